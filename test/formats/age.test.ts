import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnsealError, randomBytes, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import {
  AgeArmorDecoder,
  AgeDecryptor,
  AgeScryptIdentity,
  AgeScryptRecipient,
  AgeX25519Identity,
  ageDearmor,
  ageDecrypt,
  ageDecryptStream,
  ageEncrypt,
  ageEncryptStream,
} from '../../src/formats/index.js';
import { codeOf } from '../helpers/errors.js';

const id = AgeX25519Identity.generate();
const CODES = ['ERR_MALFORMED', 'ERR_DECRYPT_FAILED', 'ERR_NO_IDENTITY_MATCH', 'ERR_UNSUPPORTED'];

describe('age library', () => {
  it('round-trips buffers across chunk boundaries, binary and armored', () => {
    for (const size of [0, 1, 65535, 65536, 65537, 200_000]) {
      const data = randomBytes(size);
      expect(ageDecrypt(ageEncrypt(data, [id.recipient.toString()]), [id])).toEqual(data);
      expect(ageDecrypt(ageEncrypt(data, [id.recipient]), [id])).toEqual(data);
    }
    const armored = ageEncrypt(utf8Encode('text'), [id.recipient], { armor: true });
    expect(utf8Decode(ageDecrypt(armored, [id]))).toBe('text');
  });

  it('streams through web TransformStreams in constant-size chunks', async () => {
    const data = randomBytes(300_000);
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < data.length; i += 10_000) c.enqueue(data.slice(i, i + 10_000));
        c.close();
      },
    });
    const out = await new Response(
      source.pipeThrough(ageEncryptStream([id.recipient])).pipeThrough(ageDecryptStream([id])),
    ).arrayBuffer();
    expect(new Uint8Array(out)).toEqual(data);
  });

  it('reports a missing identity, a wrong passphrase and a tampered payload distinctly', () => {
    const file = ageEncrypt(utf8Encode('x'), [id.recipient]);
    expect(codeOf(() => ageDecrypt(file, [AgeX25519Identity.generate()]))).toBe('ERR_NO_IDENTITY_MATCH');
    const pfile = ageEncrypt(utf8Encode('x'), [new AgeScryptRecipient('right', 10)]);
    expect(codeOf(() => ageDecrypt(pfile, [new AgeScryptIdentity('wrong')]))).toBe('ERR_NO_IDENTITY_MATCH');
    expect(utf8Decode(ageDecrypt(pfile, [new AgeScryptIdentity('right')]))).toBe('x');
    const tampered = file.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(codeOf(() => ageDecrypt(tampered, [id]))).toBe('ERR_DECRYPT_FAILED');
    expect(codeOf(() => ageDecrypt(file.subarray(0, file.length - 1), [id]))).toBe('ERR_DECRYPT_FAILED');
  });

  it('refuses an scrypt work factor above the bound without computing it', () => {
    const pfile = Buffer.from(ageEncrypt(utf8Encode('x'), [new AgeScryptRecipient('pw', 10)]));
    const hostile = Buffer.from(pfile.toString('latin1').replace(/ 10\n/, ' 30\n'), 'latin1');
    expect(codeOf(() => ageDecrypt(hostile, [new AgeScryptIdentity('pw')]))).toBe('ERR_MALFORMED');
  });

  it('rejects every single-bit flip of a small file', () => {
    const file = ageEncrypt(utf8Encode('flip me'), [id.recipient]);
    for (let i = 0; i < file.length; i++) {
      const copy = file.slice();
      copy[i]! ^= 1 << (i % 8);
      expect(CODES).toContain(codeOf(() => ageDecrypt(copy, [id])));
    }
  });

  it('random and mutated files give typed errors and never hang', () => {
    const good = ageEncrypt(randomBytes(100), [id.recipient]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        expect(CODES).toContain(codeOf(() => ageDecrypt(bytes, [id])));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(
        fc.nat(good.length - 1),
        fc.uint8Array({ maxLength: 4 }),
        fc.nat(good.length + 4),
        (at, ins, cut) => {
          const mutated = new Uint8Array([
            ...good.subarray(0, at),
            ...ins,
            ...good.subarray(at + 1),
          ]).subarray(0, cut);
          const code = codeOf(() => ageDecrypt(mutated, [id]));
          if (code === 'no error') expect(ageDecrypt(mutated, [id])).toEqual(ageDecrypt(good, [id]));
          else expect(CODES).toContain(code);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('releases only authenticated chunks, even when fed byte by byte', () => {
    const data = randomBytes(70_000);
    const file = ageEncrypt(data, [id.recipient]);
    file[file.length - 5]! ^= 1; // corrupt the second (last) chunk
    const dec = new AgeDecryptor([id]);
    const released: Uint8Array[] = [];
    expect(() => {
      for (let i = 0; i < file.length; i += 997)
        dec.push(file.subarray(i, i + 997), (c) => void released.push(c));
      dec.finish((c) => void released.push(c));
    }).toThrow(EnsealError);
    expect(Buffer.concat(released)).toEqual(Buffer.from(data.subarray(0, 65536)));
  });

  it('enforces the header size limit even when no line feed arrives, with bounded buffering', () => {
    // 64 MiB after the version line with no LF, in 64 KiB pieces: the decoder must give up once the header
    // limit (1 MiB) is passed, instead of buffering (and rescanning) everything it is given.
    const piece = new Uint8Array(65536).fill(0x41);
    const dec = new AgeDecryptor([id]);
    dec.push(utf8Encode('age-encryption.org/v1\n-> X25519 '));
    let fed = 0;
    let error: unknown;
    try {
      for (; fed < 64 << 20; fed += piece.length) dec.push(piece);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EnsealError);
    expect((error as EnsealError).code).toBe('ERR_MALFORMED');
    expect((error as Error).message).toContain('header too large');
    expect(fed).toBeLessThanOrEqual(1 << 20);
    // Fed byte by byte, the same limit holds and the work stays linear.
    const slow = new AgeDecryptor([id]);
    const one = new Uint8Array([0x41]);
    slow.push(utf8Encode('age-encryption.org/v1\n'));
    let n = 0;
    expect(() => {
      for (; n < 2 << 20; n++) slow.push(one);
    }).toThrow(/header too large/);
    expect(n).toBeLessThanOrEqual(1 << 20);
    // A whole buffer without a line feed fails the same way.
    const whole = new Uint8Array(4 << 20).fill(0x41);
    whole.set(utf8Encode('age-encryption.org/v1\n'));
    expect(() => ageDecrypt(whole, [id])).toThrow(/header too large/);
  });

  it('decodes armor as it streams, in any chunking, with the whole-buffer rules', () => {
    const data = randomBytes(300_000);
    const armored = ageEncrypt(data, [id.recipient], { armor: true });
    const whole = ageDecrypt(armored, [id]);
    expect(Buffer.from(whole)).toEqual(Buffer.from(data));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70_000 }), (step) => {
        const dec = new AgeArmorDecoder();
        const out: Uint8Array[] = [];
        let beforeEnd = 0;
        for (let i = 0; i < armored.length; i += step) {
          dec.push(armored.subarray(i, i + step), (b) => void out.push(b));
          if (i + step < armored.length) beforeEnd = out.reduce((n, b) => n + b.length, 0);
        }
        dec.finish((b) => void out.push(b));
        // Output is released while input still arrives (it was collected whole before), so memory stays
        // bounded for armored files of any size.
        if (step < 100_000) expect(beforeEnd).toBeGreaterThan(0);
        return Buffer.concat(out).equals(Buffer.from(ageDearmor(armored)));
      }),
      { numRuns: 30 },
    );
    const text = Buffer.from(armored).toString('latin1');
    for (const bad of [
      text.replace('\n', '\n\n'), // empty line after BEGIN
      text.replace(/\n([A-Za-z0-9+/]{64})\n/, '\n$1A\n'), // a 65-column line
      text + 'x', // data after the END line
      text.replace('-----END AGE ENCRYPTED FILE-----', ''), // no END line
    ]) {
      expect(() => ageDecrypt(Buffer.from(bad, 'latin1'), [id])).toThrow(EnsealError);
    }
    expect(ageDecrypt(Buffer.from('\r\n ' + text.replace(/\n/g, '\r\n') + ' \n', 'latin1'), [id])).toEqual(
      whole,
    );
  });
});
