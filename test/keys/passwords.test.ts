import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnsealError, hexEncode, pbkdf2, randomBytes, scrypt, utf8Encode } from '../../src/crypto/index.js';
import { formatPhc, parsePhc } from '../../src/formats/index.js';
import { assertPassword, hashPassword, needsRehash, verifyPassword } from '../../src/keys/index.js';
import { python, runPython } from '../helpers/peers.js';

const CHEAP_ARGON = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

describe('password hashing', () => {
  it('defaults to Argon2id with OWASP parameters', async () => {
    const phc = await hashPassword('correct horse');
    expect(phc.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(await verifyPassword('correct horse', phc)).toBe(true);
    expect(await verifyPassword('correct hors3', phc)).toBe(false);
    expect(needsRehash(phc)).toBe(false);
  });

  it('supports scrypt and PBKDF2-SHA256 in passlib-compatible strings', async () => {
    const s = await hashPassword('pw', { algorithm: 'scrypt', scrypt: { logN: 10, r: 8, p: 1 } });
    expect(s).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(await verifyPassword('pw', s)).toBe(true);
    const p = await hashPassword('pw', { algorithm: 'pbkdf2-sha256', pbkdf2: { iterations: 1000 } });
    expect(p).toMatch(/^\$pbkdf2-sha256\$1000\$/);
    expect(await verifyPassword('pw', p)).toBe(true);
    expect(await verifyPassword('pW', p)).toBe(false);
  });

  it("verifies the seeds' PBKDF2 (100,000 iterations, 16-byte salt) and asks for a rehash", async () => {
    const salt = randomBytes(16);
    const hash = pbkdf2('sha256', utf8Encode('seed password'), salt, 100_000, 32);
    const phc = formatPhc({ algorithm: 'pbkdf2-sha256', params: { i: 100_000 }, salt, hash });
    expect(await verifyPassword('seed password', phc)).toBe(true);
    expect(needsRehash(phc)).toBe(true);
    expect(needsRehash(phc, { algorithm: 'pbkdf2-sha256', pbkdf2: { iterations: 100_000 } })).toBe(false);
  });

  it('needsRehash flags weaker parameters and other algorithms', async () => {
    const weak = await hashPassword('x', { argon2id: CHEAP_ARGON });
    expect(needsRehash(weak)).toBe(true);
    expect(needsRehash(weak, { argon2id: CHEAP_ARGON })).toBe(false);
    expect(needsRehash(weak, { algorithm: 'scrypt' })).toBe(true);
  });

  it('assertPassword throws ERR_PASSWORD_MISMATCH', async () => {
    const phc = await hashPassword('a', { argon2id: CHEAP_ARGON });
    await expect(assertPassword('b', phc)).rejects.toMatchObject({ code: 'ERR_PASSWORD_MISMATCH' });
    await assertPassword('a', phc);
  });

  it('refuses hostile parameters before computing anything', async () => {
    const salt = 'c2FsdHNhbHRzYWx0';
    const hash = 'aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
    for (const phc of [
      `$argon2id$v=19$m=99999999,t=2,p=1$${salt}$${hash}`,
      `$argon2id$v=19$m=19456,t=99999,p=1$${salt}$${hash}`,
      `$scrypt$ln=30,r=8,p=1$${salt}$${hash}`,
      `$pbkdf2-sha256$999999999$${salt}$${hash}`,
    ]) {
      await expect(verifyPassword('x', phc)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    }
  });

  it('the PHC parser gives typed errors for random and mutated strings', async () => {
    const good = await hashPassword('x', { argon2id: CHEAP_ARGON });
    const check = (text: string) => {
      try {
        const parsed = parsePhc(text);
        expect(formatPhc(parsed).length).toBeGreaterThan(0);
      } catch (err) {
        expect(err).toBeInstanceOf(EnsealError);
        expect(['ERR_MALFORMED', 'ERR_UNSUPPORTED']).toContain((err as EnsealError).code);
      }
    };
    fc.assert(fc.property(fc.string({ maxLength: 200 }), check), { numRuns: 3000 });
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.string({ maxLength: 4 }), (at, s) =>
        check(good.slice(0, at) + s + good.slice(at + 1)),
      ),
      { numRuns: 3000 },
    );
  });
});

const py = python(['hashlib'], 'apt-get install python3');
const passlib = python(['passlib.hash'], 'apt-get install python3-passlib');

describe.skipIf(!py.available)('password hashes agree with Python', () => {
  it('PBKDF2 and scrypt bytes match hashlib', () => {
    const salt = randomBytes(16);
    const program = `
import sys, hashlib
salt = bytes.fromhex(sys.stdin.read().strip())
print(hashlib.pbkdf2_hmac('sha256', b'pw', salt, 1000, 32).hex())
print(hashlib.scrypt(b'pw', salt=salt, n=1024, r=8, p=1, dklen=32).hex())
`;
    const [p, s] = runPython(py, program, hexEncode(salt)).toString().trim().split('\n');
    expect(hexEncode(pbkdf2('sha256', utf8Encode('pw'), salt, 1000, 32))).toBe(p);
    expect(hexEncode(scrypt(utf8Encode('pw'), salt, { N: 1024, r: 8, p: 1 }))).toBe(s);
  });
});

describe.skipIf(!passlib.available)('PHC strings interoperate with passlib', () => {
  it('passlib verifies ours and we verify passlib’s', async () => {
    const ours = [
      await hashPassword('pw', { algorithm: 'pbkdf2-sha256', pbkdf2: { iterations: 1000 } }),
      await hashPassword('pw', { algorithm: 'scrypt', scrypt: { logN: 10, r: 8, p: 1 } }),
    ];
    const program = `
import sys, json
from passlib.hash import pbkdf2_sha256, scrypt
ours = json.load(sys.stdin)
print(json.dumps({
  'verified': [pbkdf2_sha256.verify('pw', ours[0]), scrypt.verify('pw', ours[1]), pbkdf2_sha256.verify('px', ours[0])],
  'theirs': [pbkdf2_sha256.using(rounds=1000).hash('pw'), scrypt.using(rounds=10).hash('pw')],
}))
`;
    const res = JSON.parse(runPython(passlib, program, JSON.stringify(ours)).toString());
    expect(res.verified).toEqual([true, true, false]);
    for (const theirs of res.theirs as string[]) {
      expect(await verifyPassword('pw', theirs)).toBe(true);
      expect(await verifyPassword('px', theirs)).toBe(false);
    }
  });
});

const argon2cffi = python(['argon2'], 'apt-get install python3-argon2');

describe.skipIf(!argon2cffi.available)('Argon2id PHC strings interoperate with argon2-cffi', () => {
  it('argon2-cffi verifies ours and we verify argon2-cffi’s', async () => {
    const ours = await hashPassword('pw', { argon2id: { memoryKiB: 2048, iterations: 2, parallelism: 1 } });
    const program = `
import sys, json
from argon2 import PasswordHasher, exceptions
ph = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=2)
ours = sys.stdin.read().strip()
def ok(p, h):
    try:
        return ph.verify(h, p)
    except exceptions.VerifyMismatchError:
        return False
print(json.dumps({'verified': [ok('pw', ours), ok('px', ours)], 'theirs': ph.hash('pw')}))
`;
    const res = JSON.parse(runPython(argon2cffi, program, ours).toString());
    expect(res.verified).toEqual([true, false]);
    expect(await verifyPassword('pw', res.theirs)).toBe(true);
    expect(await verifyPassword('px', res.theirs)).toBe(false);
  });
});
