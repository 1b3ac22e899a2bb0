import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EnsealError } from '../../src/crypto/index.js';
import { base64UrlDecode, base64UrlEncode, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { Fernet, fernetKeyFromPassword, generateFernetKey } from '../../src/formats/index.js';
import { encryptFernetAt } from '../../src/formats/fernet.js';
import { loadJson } from '../helpers/vectors.js';
import { codeOf } from '../helpers/errors.js';

interface SpecCase {
  token: string;
  now: string;
  iv?: number[];
  src?: string;
  secret: string;
  ttl_sec?: number;
  desc?: string;
}

describe('Fernet spec vectors', () => {
  it('generate.json: tokens are byte-exact', () => {
    const cases = loadJson<SpecCase[]>('fernet', 'generate.json');
    for (const c of cases) {
      const seconds = Date.parse(c.now) / 1000;
      expect(encryptFernetAt(c.secret, utf8Encode(c.src!), seconds, new Uint8Array(c.iv!))).toBe(c.token);
    }
    console.log(`fernet generate.json: ${cases.length} cases, all byte-exact`);
  });

  it('verify.json: tokens decrypt within their TTL', () => {
    const cases = loadJson<SpecCase[]>('fernet', 'verify.json');
    for (const c of cases) {
      expect(new Fernet(c.secret).decryptString(c.token, { ttl: c.ttl_sec, now: new Date(c.now) })).toBe(
        c.src,
      );
    }
    console.log(`fernet verify.json: ${cases.length} cases, all verified`);
  });

  it('invalid.json: every token is rejected', () => {
    const cases = loadJson<SpecCase[]>('fernet', 'invalid.json');
    for (const c of cases) {
      const code = codeOf(() =>
        new Fernet(c.secret).decrypt(c.token, { ttl: c.ttl_sec, now: new Date(c.now) }),
      );
      expect(['ERR_DECRYPT_FAILED', 'ERR_TOKEN_EXPIRED'], c.desc).toContain(code);
    }
    console.log(`fernet invalid.json: ${cases.length} cases, all rejected`);
  });
});

describe('Fernet', () => {
  it('round-trips, and tokens carry their time', () => {
    const f = new Fernet(generateFernetKey());
    const t = f.encrypt('data', { now: 1_700_000_000_000 });
    expect(f.decryptString(t)).toBe('data');
    expect(f.extractTimestamp(t).getTime()).toBe(1_700_000_000_000);
  });

  it('enforces TTL and clock skew', () => {
    const f = new Fernet(generateFernetKey());
    const t = f.encrypt('x', { now: 1_000_000 });
    expect(f.decryptString(t, { ttl: 10, now: 1_000_000 + 10_000 })).toBe('x');
    expect(codeOf(() => f.decrypt(t, { ttl: 10, now: 1_000_000 + 11_000 }))).toBe('ERR_TOKEN_EXPIRED');
    expect(codeOf(() => f.decrypt(t, { now: 1_000_000 - 61_000 }))).toBe('ERR_TOKEN_EXPIRED');
    expect(f.decryptString(t, { now: 1_000_000 - 59_000 })).toBe('x');
  });

  it('rotates: encrypt with the first key, decrypt with any, rotate keeps the timestamp', () => {
    const oldKey = generateFernetKey();
    const newKey = generateFernetKey();
    const token = new Fernet(oldKey).encrypt('v', { now: 5_000_000 });
    const multi = new Fernet([newKey, oldKey]);
    expect(multi.decryptString(token)).toBe('v');
    const rotated = multi.rotate(token);
    expect(new Fernet(newKey).decryptString(rotated)).toBe('v');
    expect(new Fernet(newKey).extractTimestamp(rotated).getTime()).toBe(5_000_000);
    expect(codeOf(() => new Fernet(oldKey).decrypt(rotated))).toBe('ERR_DECRYPT_FAILED');
  });

  it('derives keys from passwords as the seed does', () => {
    const key = fernetKeyFromPassword('your-secure-password', new Uint8Array(16).fill(1));
    expect(key).toHaveLength(44);
    expect(base64UrlDecode(key, 'k', 'required')).toHaveLength(32);
  });

  it('rejects keys that are not 32 url-safe base64 bytes, without echoing them', () => {
    for (const bad of ['', 'short', base64UrlEncode(new Uint8Array(31), true), 'x'.repeat(44)]) {
      try {
        new Fernet(bad);
        expect.unreachable();
      } catch (err) {
        expect((err as EnsealError).code).toBe('ERR_INVALID_ARGUMENT');
        if (bad.length > 0) expect((err as Error).message).not.toContain(bad);
      }
    }
  });

  it('every single-bit flip of a token fails', () => {
    const f = new Fernet(generateFernetKey());
    const raw = base64UrlDecode(f.encrypt('secret value'), 't', 'required');
    for (let i = 0; i < raw.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = raw.slice();
        copy[i]! ^= 1 << bit;
        expect(codeOf(() => f.decrypt(base64UrlEncode(copy, true)))).toBe('ERR_DECRYPT_FAILED');
      }
    }
  });

  it('random and mutated tokens never crash or decrypt', () => {
    const f = new Fernet(generateFernetKey());
    const good = f.encrypt('p');
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        expect(codeOf(() => f.decrypt(text))).toBe('ERR_DECRYPT_FAILED');
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.string({ minLength: 0, maxLength: 3 }), (at, insert) => {
        const mutated = good.slice(0, at) + insert + good.slice(at + 1);
        if (mutated === good) return;
        expect(codeOf(() => f.decrypt(mutated))).toBe('ERR_DECRYPT_FAILED');
      }),
      { numRuns: 2000 },
    );
    expect(utf8Decode(f.decrypt(good))).toBe('p');
  });
});
