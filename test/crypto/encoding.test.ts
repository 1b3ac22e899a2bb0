import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EnsealError,
  base64Decode,
  base64Encode,
  base64UrlDecode,
  base64UrlEncode,
  hexDecode,
  hexEncode,
} from '../../src/crypto/index.js';

function rejects(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EnsealError);
    expect((err as EnsealError).code).toBe('ERR_MALFORMED');
    return;
  }
  throw new Error('expected ERR_MALFORMED');
}

describe('strict encodings', () => {
  it('agree with Node Buffer on every input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const buf = Buffer.from(bytes);
        expect(base64Encode(bytes)).toBe(buf.toString('base64'));
        expect(base64UrlEncode(bytes)).toBe(buf.toString('base64url'));
        expect(hexEncode(bytes)).toBe(buf.toString('hex'));
        expect(base64Decode(buf.toString('base64'))).toEqual(bytes);
        expect(base64UrlDecode(buf.toString('base64url'))).toEqual(bytes);
        expect(hexDecode(buf.toString('hex').toUpperCase())).toEqual(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('decode only canonical strings: whatever decodes re-encodes to the same text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        for (const [decode, encode] of [
          [(t: string) => base64Decode(t), (b: Uint8Array) => base64Encode(b)],
          [(t: string) => base64UrlDecode(t), (b: Uint8Array) => base64UrlEncode(b)],
        ] as const) {
          let out: Uint8Array | undefined;
          try {
            out = decode(text);
          } catch (err) {
            expect((err as EnsealError).code).toBe('ERR_MALFORMED');
          }
          if (out !== undefined) expect(encode(out)).toBe(text);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('reject non-canonical and malformed input', () => {
    rejects(() => base64Decode('QQ')); // missing padding
    rejects(() => base64Decode('QR==')); // non-zero trailing bits
    rejects(() => base64Decode('Q==='));
    rejects(() => base64Decode('QQ=A'));
    rejects(() => base64Decode('QQ-_'));
    rejects(() => base64UrlDecode('QQ=='));
    rejects(() => base64UrlDecode('QR'));
    rejects(() => base64UrlDecode('Q'));
    rejects(() => base64UrlDecode('QQ+/'));
    rejects(() => base64UrlDecode('éé'));
    rejects(() => hexDecode('abc'));
    rejects(() => hexDecode('zz'));
    expect(base64UrlDecode('QQ==', 'x', 'optional')).toEqual(new Uint8Array([65]));
  });
});
