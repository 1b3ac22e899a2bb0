/**
 * The binary inbox answer: valid answers round-trip, and random, truncated, extended or mutated bytes are
 * ERR_MALFORMED (never a crash, a hang or a partial answer); the caps on counts and lengths hold.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnsealError, ErrorCode } from '../../src/crypto/index.js';
import {
  INBOX_WIRE_MAX_MESSAGES,
  decodeInboxAnswer,
  encodeInboxAnswer,
  inboxAnswerHeader,
  type InboxWireMessage,
} from '../../src/e2ee/index.js';

const nameArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,20}$/);
const gidArb = fc.stringMatching(/^[A-Za-z0-9_-]{22,86}$/);
const messageArb = fc.record({
  seqStep: fc.integer({ min: 1, max: 2 ** 40 }),
  kind: fc.constantFrom('commit' as const, 'welcome' as const, 'application' as const),
  groupId: gidArb,
  epoch: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  sender: fc.record({ user: nameArb, device: nameArb }),
  receivedAt: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  frame: fc.uint8Array({ minLength: 1, maxLength: 600 }),
});
const answerArb = fc.array(messageArb, { maxLength: 12 }).map((list) => {
  let seq = 0;
  return list.map(({ seqStep, ...m }): InboxWireMessage => ({ ...m, seq: (seq += seqStep) }));
});

/** Decodes, or throws only ERR_MALFORMED. */
function decodeOrMalformed(bytes: Uint8Array): InboxWireMessage[] | 'malformed' {
  try {
    return decodeInboxAnswer(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(EnsealError);
    expect((err as EnsealError).code).toBe(ErrorCode.MALFORMED);
    return 'malformed';
  }
}

describe('binary inbox answer', () => {
  it('round-trips any valid answer, and encodes it one way', () => {
    fc.assert(
      fc.property(answerArb, (messages) => {
        const bytes = encodeInboxAnswer(messages);
        const back = decodeInboxAnswer(bytes);
        expect(back).toEqual(messages);
        expect(encodeInboxAnswer(back)).toEqual(bytes);
      }),
    );
  });

  it('random bytes: ERR_MALFORMED or a valid answer, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const r = decodeOrMalformed(bytes);
        if (r !== 'malformed') expect(encodeInboxAnswer(r)).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
    // With a valid header in front, so the decoder gets past it.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 400 }), (n, rest) => {
        const bytes = new Uint8Array([...inboxAnswerHeader(0).subarray(0, 4), 0, 0, 0, 0, ...rest]);
        new DataView(bytes.buffer).setUint32(4, n);
        const r = decodeOrMalformed(bytes);
        if (r !== 'malformed') expect(encodeInboxAnswer(r)).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated answers: cut or extended is ERR_MALFORMED; a changed or dropped byte too, unless still a valid encoding', () => {
    fc.assert(
      fc.property(
        answerArb.filter((m) => m.length > 0),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.constantFrom('flip', 'cut', 'extend', 'drop'),
        (messages, at, x, how) => {
          const good = encodeInboxAnswer(messages);
          const i = at % good.length;
          const bad =
            how === 'flip'
              ? good.map((b, j) => (j === i ? b ^ x : b))
              : how === 'cut'
                ? good.subarray(0, i)
                : how === 'extend'
                  ? new Uint8Array([...good, x])
                  : new Uint8Array([...good.subarray(0, i), ...good.subarray(i + 1)]);
          const r = decodeOrMalformed(bad);
          if (how === 'cut' || how === 'extend') expect(r).toBe('malformed');
          else if (r !== 'malformed') expect(encodeInboxAnswer(r)).toEqual(bad);
        },
      ),
      { numRuns: 2000 },
    );
  });

  const one: InboxWireMessage = {
    seq: 7,
    kind: 'application',
    groupId: 'q83vEjRWeJq83vEjRWeJqw',
    epoch: 3,
    sender: { user: 'alice', device: 'phone' },
    receivedAt: 1_700_000_000_000,
    frame: new Uint8Array(256),
  };
  const code = (f: () => unknown) => {
    try {
      f();
      return 'ok';
    } catch (err) {
      return (err as EnsealError).code;
    }
  };

  it('caps: message count, frame length, seq order, integer range, alphabets', () => {
    const good = encodeInboxAnswer([one]);
    expect(decodeInboxAnswer(good)).toEqual([one]);
    const edit = (f: (b: Uint8Array, v: DataView) => void) => {
      const b = good.slice();
      f(b, new DataView(b.buffer));
      return b;
    };
    // A count past the cap, or larger than the bytes could hold, is refused before anything is read.
    expect(code(() => decodeInboxAnswer(edit((_, v) => v.setUint32(4, INBOX_WIRE_MAX_MESSAGES + 1))))).toBe(
      ErrorCode.MALFORMED,
    );
    expect(code(() => decodeInboxAnswer(edit((_, v) => v.setUint32(4, 2))))).toBe(ErrorCode.MALFORMED);
    // A frame length past what remains, or over 4 MiB, or zero.
    const frameAt = good.length - 256 - 4;
    for (const n of [257, 4 * 1024 * 1024 + 1, 0xffffffff, 0])
      expect(code(() => decodeInboxAnswer(edit((_, v) => v.setUint32(frameAt, n))))).toBe(
        ErrorCode.MALFORMED,
      );
    // A seq past 2^53 - 1.
    expect(code(() => decodeInboxAnswer(edit((_, v) => v.setUint32(8, 0x20_0000))))).toBe(
      ErrorCode.MALFORMED,
    );
    // Seqs that do not increase.
    expect(code(() => decodeInboxAnswer(encodeInboxAnswer([one, { ...one, seq: 8 }])))).toBe('ok');
    const twice = encodeInboxAnswer([one, { ...one, seq: 8 }]);
    new DataView(twice.buffer).setUint32(8 + good.length - 8 + 4, 7);
    expect(code(() => decodeInboxAnswer(twice))).toBe(ErrorCode.MALFORMED);
    // Unknown kind, version, magic; a name outside the alphabet.
    expect(code(() => decodeInboxAnswer(edit((b) => (b[16] = 4))))).toBe(ErrorCode.MALFORMED);
    expect(code(() => decodeInboxAnswer(edit((b) => (b[3] = 2))))).toBe(ErrorCode.MALFORMED);
    expect(code(() => decodeInboxAnswer(edit((b) => (b[0] = 0x7b))))).toBe(ErrorCode.MALFORMED);
    const userAt = 8 + 17 + 1 + one.groupId.length + 1;
    expect(code(() => decodeInboxAnswer(edit((b) => (b[userAt] = 0x2f))))).toBe(ErrorCode.MALFORMED);
    expect(code(() => decodeInboxAnswer(edit((b) => (b[userAt] = 0xc3))))).toBe(ErrorCode.MALFORMED);
    // What cannot be encoded is refused rather than written wrong.
    expect(code(() => encodeInboxAnswer([{ ...one, sender: { user: '../x', device: 'd' } }]))).toBe(
      ErrorCode.MALFORMED,
    );
    expect(code(() => encodeInboxAnswer([{ ...one, frame: new Uint8Array(0) }]))).toBe(ErrorCode.MALFORMED);
  });

  it('a large count with few bytes answers at once (no allocation or loop by the count)', () => {
    const b = inboxAnswerHeader(0);
    new DataView(b.buffer).setUint32(4, INBOX_WIRE_MAX_MESSAGES);
    const start = Date.now();
    expect(code(() => decodeInboxAnswer(b))).toBe(ErrorCode.MALFORMED);
    expect(Date.now() - start).toBeLessThan(100);
  });
});
