/** Signed notes, checkpoints and cosignatures: the spec examples, round trips, and hostile input. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EnsealError,
  ErrorCode,
  generateSigningKeyPair,
  randomBytes,
  utf8Encode,
} from '../../src/crypto/index.js';
import {
  addSignatures,
  decodeCosignature,
  ed25519CosignatureVerifier,
  ed25519Cosigner,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatCheckpoint,
  formatVerifierKey,
  noteVerifierFromKey,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseNote,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  SignatureType,
} from '../../src/e2ee/index.js';
import { codeOf } from '../helpers/errors.js';

// From c2sp.org/signed-note, "Verifier keys / Example".
const SPEC_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const SPEC_NOTE =
  'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
// From c2sp.org/tlog-cosignature: a checkpoint with a log signature and a witness cosignature.
const SPEC_COSIGNED =
  'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n' +
  '— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n' +
  '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n';

describe('signed notes', () => {
  it('verifies the spec example with the spec verifier key', () => {
    const v = noteVerifierFromKey(SPEC_VKEY);
    expect(v.keyId).toBe(0x530d903a);
    const opened = openNote(SPEC_NOTE, [v]);
    expect(opened.text).toBe('This is an example message.\n');
    expect(opened.verified).toHaveLength(1);
    // One flipped character of the text: the known key's signature fails, so the note is rejected.
    expect(codeOf(() => openNote(SPEC_NOTE.replace('example message', 'example massage'), [v]))).toBe(
      ErrorCode.SIGNATURE_INVALID,
    );
  });

  it('round-trips verifier keys and rejects a wrong key ID', () => {
    const k = parseVerifierKey(SPEC_VKEY);
    expect(formatVerifierKey(k.name, k.type, k.publicKey)).toBe(SPEC_VKEY);
    expect(codeOf(() => parseVerifierKey(SPEC_VKEY.replace('530d903a', '530d903b')))).toBe(
      ErrorCode.MALFORMED,
    );
    expect(codeOf(() => parseVerifierKey(SPEC_VKEY.replace('530d903a', '530D903A')))).toBe(
      ErrorCode.MALFORMED,
    );
    expect(codeOf(() => parseVerifierKey('a+b'))).toBe(ErrorCode.MALFORMED);
  });

  it('signs, ignores unknown keys, and needs one known signature', () => {
    const a = ed25519NoteSigner('log.example/a', generateSigningKeyPair('ed25519').privateKey);
    const b = ed25519NoteSigner('log.example/b', generateSigningKeyPair('ed25519').privateKey);
    const note = signNote('hello\n\nworld\n', [a, b]);
    const va = ed25519NoteVerifier(a.name, a.publicKey);
    const opened = openNote(note, [va]);
    expect(opened.text).toBe('hello\n\nworld\n');
    expect(opened.verified.map((x) => x.signature.name)).toEqual([a.name]);
    expect(opened.signatures).toHaveLength(2);
    const stranger = ed25519NoteVerifier('log.example/c', generateSigningKeyPair('ed25519').publicKey);
    expect(codeOf(() => openNote(note, [stranger]))).toBe(ErrorCode.SIGNATURE_INVALID);
    // Same name, other key: a different key ID, so it is unknown and ignored, and no known signature remains.
    const impostor = ed25519NoteVerifier(a.name, generateSigningKeyPair('ed25519').publicKey);
    expect(codeOf(() => openNote(note, [impostor]))).toBe(ErrorCode.SIGNATURE_INVALID);
  });

  it('rejects malformed notes precisely', () => {
    const bad = [
      'no blank line\n— a AAAAAAA=\n',
      'text\n\n',
      'text\n\n— a AAAAAAA=',
      'text\n\n—  AAAAAAA=\n',
      'text\n\n— a+b AAAAAAA=\n',
      'text\n\n— a AAAA\n',
      'text\n\n— a not-base64\n',
      'te\x01xt\n\n— a AAAAAAA=\n',
      'text\n\n- a AAAAAAA=\n',
      'text\n\n— a AAAAAAA=\n\n',
    ];
    for (const s of bad)
      expect(
        codeOf(() => parseNote(s)),
        JSON.stringify(s),
      ).toBe(ErrorCode.MALFORMED);
    expect(codeOf(() => parseNote(Uint8Array.of(0xff, 0x0a, 0x0a)))).toBe(ErrorCode.MALFORMED);
    const many = 'x\n\n' + '— a AAAAAAA=\n'.repeat(65);
    expect(codeOf(() => parseNote(many))).toBe(ErrorCode.MALFORMED);
    expect(parseNote('x\n\n' + '— a AAAAAAA=\n'.repeat(16)).signatures).toHaveLength(16);
  });

  it('never crashes on random or mutated input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.uint8Array({ maxLength: 300 })), (input) => {
        const code = codeOf(() => parseNote(input));
        expect(['no error', ErrorCode.MALFORMED]).toContain(code);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.nat(SPEC_NOTE.length - 1), fc.integer({ min: 0, max: 0x7e }), (at, ch) => {
        const mutated = SPEC_NOTE.slice(0, at) + String.fromCharCode(ch) + SPEC_NOTE.slice(at + 1);
        const code = codeOf(() => openNote(mutated, [noteVerifierFromKey(SPEC_VKEY)]));
        if (mutated !== SPEC_NOTE) expect([ErrorCode.MALFORMED, ErrorCode.SIGNATURE_INVALID]).toContain(code);
      }),
      { numRuns: 500 },
    );
  });

  it('parses a long hostile note in linear time', () => {
    const big = 'a\n'.repeat(100_000) + '\n— a AAAAAAA=\n';
    const t = performance.now();
    parseNote(big);
    expect(performance.now() - t).toBeLessThan(1000);
    expect(codeOf(() => parseNote('\n'.repeat(300_000)))).toBe(ErrorCode.MALFORMED);
  });
});

describe('checkpoints', () => {
  it('parses the spec checkpoint and round-trips it', () => {
    const note = parseNote(SPEC_COSIGNED);
    const cp = parseCheckpoint(note.text);
    expect(cp.origin).toBe('example.com/behind-the-sofa');
    expect(cp.size).toBe(20852163);
    expect(cp.extensions).toEqual([]);
    expect(formatCheckpoint(cp)).toBe(note.text);
  });

  it('rejects malformed bodies', () => {
    const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
    const bad = [
      `o\n01\n${root}\n`,
      `o\n-1\n${root}\n`,
      `o\n1\n${root}`,
      `o\n1\n\n`,
      `\n1\n${root}\n`,
      `o\n1\nAAAA\n`,
      `o\n1\n${root}\n\next\n`,
      `o\n99999999999999999\n${root}\n`,
      `o\n1\n`,
      `o\n1\n${root}\n` + 'e\n'.repeat(17),
    ];
    for (const s of bad)
      expect(
        codeOf(() => parseCheckpoint(s)),
        JSON.stringify(s),
      ).toBe(ErrorCode.MALFORMED);
    expect(parseCheckpoint(`o\n0\n${root}\next one\n`).extensions).toEqual(['ext one']);
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(['no error', ErrorCode.MALFORMED]).toContain(codeOf(() => parseCheckpoint(s)));
      }),
    );
  });

  it('signs and opens a checkpoint', () => {
    const log = ed25519NoteSigner('log.example/dir', generateSigningKeyPair('ed25519').privateKey);
    const cp = { origin: log.name, size: 3, rootHash: randomBytes(32), extensions: [] };
    const signed = signCheckpoint(cp, [log]);
    const opened = openCheckpoint(signed, [ed25519NoteVerifier(log.name, log.publicKey)]);
    expect(opened.checkpoint.size).toBe(3);
    expect(opened.checkpoint.rootHash).toEqual(cp.rootHash);
  });
});

describe('cosignatures', () => {
  it('decodes the timestamp of the spec cosignature', () => {
    const note = parseNote(SPEC_COSIGNED);
    const w = note.signatures[1]!;
    expect(w.name).toBe('witness.example.com/w1');
    expect(decodeCosignature(w.signature).timestamp).toBe(1679315147);
  });

  it('cosigns, verifies, and rejects timestamps in the future or zero', () => {
    const log = ed25519NoteSigner('log.example/dir', generateSigningKeyPair('ed25519').privateKey);
    const body = formatCheckpoint({ origin: log.name, size: 1, rootHash: randomBytes(32), extensions: [] });
    const signed = signNote(body, [log]);
    const witness = ed25519Cosigner('witness.example/w1', generateSigningKeyPair('ed25519').privateKey);
    const now = 1_700_000_000;
    const line = witness.cosign(utf8Encode(body), now);
    const cosigned = addSignatures(signed, [line]);
    const v = ed25519CosignatureVerifier(witness.name, witness.publicKey, { now: () => now });
    const opened = openNote(cosigned, [v]);
    expect(v.timestampOf(utf8Encode(opened.text), opened.verified[0]!.signature.signature)).toBe(now);
    // A cosignature key is not a note key: verifying it as an ordinary Ed25519 note signature fails.
    expect(codeOf(() => openNote(cosigned, [ed25519NoteVerifier(witness.name, witness.publicKey)]))).toBe(
      ErrorCode.SIGNATURE_INVALID,
    );
    const early = ed25519CosignatureVerifier(witness.name, witness.publicKey, { now: () => now - 3600 });
    expect(codeOf(() => openNote(cosigned, [early]))).toBe(ErrorCode.SIGNATURE_INVALID);
    expect(codeOf(() => witness.cosign(utf8Encode(body), 0))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(formatVerifierKey(witness.name, SignatureType.COSIGNATURE_V1, witness.publicKey)).toContain('+');
    expect(() => decodeCosignature(new Uint8Array(71))).toThrow(EnsealError);
  });
});
