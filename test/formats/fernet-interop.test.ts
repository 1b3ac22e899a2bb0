/** Fernet, PBKDF2 and raw AES-GCM against Python's `cryptography`, in both directions. */
import { describe, expect, it } from 'vitest';
import {
  aeadOpen,
  aeadSeal,
  base64Decode,
  base64Encode,
  hexDecode,
  hexEncode,
  randomBytes,
  utf8Encode,
} from '../../src/crypto/index.js';
import { Fernet, fernetKeyFromPassword, generateFernetKey } from '../../src/formats/index.js';
import { python, runPython } from '../helpers/peers.js';

const py = python(['cryptography'], 'apt-get install python3-cryptography');

const PY_FERNET = `
import sys, json
from cryptography.fernet import Fernet, MultiFernet, InvalidToken
req = json.load(sys.stdin)
out = {}
if req['op'] == 'decrypt':
    f = MultiFernet([Fernet(k) for k in req['keys']])
    res = []
    for t in req['tokens']:
        try:
            if 'ttl' in req and 'now' in req:
                res.append(f.decrypt_at_time(t.encode(), req['ttl'], req['now']).hex())
            else:
                res.append(f.decrypt(t.encode()).hex())
        except InvalidToken:
            res.append(None)
    out['plaintexts'] = res
elif req['op'] == 'encrypt':
    f = MultiFernet([Fernet(k) for k in req['keys']])
    out['tokens'] = [f.encrypt_at_time(bytes.fromhex(p), req.get('now', 1700000000)).decode() for p in req['plaintexts']]
elif req['op'] == 'rotate':
    f = MultiFernet([Fernet(k) for k in req['keys']])
    out['tokens'] = [f.rotate(t.encode()).decode() for t in req['tokens']]
json.dump(out, sys.stdout)
`;

function pyFernet(req: object): Record<string, (string | null)[]> {
  return JSON.parse(runPython(py, PY_FERNET, JSON.stringify(req)).toString());
}

const plaintexts = [
  new Uint8Array(0),
  utf8Encode('hello'),
  randomBytes(1),
  randomBytes(15),
  randomBytes(16),
  randomBytes(1000),
  randomBytes(1 << 20),
];

describe.skipIf(!py.available)('Fernet interop with Python cryptography', () => {
  it('tokens made here decrypt in Python', () => {
    const key = generateFernetKey();
    const f = new Fernet(key);
    const res = pyFernet({ op: 'decrypt', keys: [key], tokens: plaintexts.map((p) => f.encrypt(p)) });
    expect(res.plaintexts).toEqual(plaintexts.map((p) => hexEncode(p)));
  });

  it('tokens made in Python decrypt here', () => {
    const key = generateFernetKey();
    const res = pyFernet({ op: 'encrypt', keys: [key], plaintexts: plaintexts.map((p) => hexEncode(p)) });
    const f = new Fernet(key);
    expect(res.tokens!.map((t) => hexEncode(f.decrypt(t!)))).toEqual(plaintexts.map((p) => hexEncode(p)));
  });

  it('TTL behaves the same on both sides', () => {
    const key = generateFernetKey();
    const made = 1_700_000_000;
    const ours = new Fernet(key).encrypt('t', { now: made * 1000 });
    const theirs = pyFernet({
      op: 'encrypt',
      keys: [key],
      plaintexts: [hexEncode(utf8Encode('t'))],
      now: made,
    }).tokens![0]!;
    // Python rejects both after the TTL and accepts both before it.
    expect(
      pyFernet({ op: 'decrypt', keys: [key], tokens: [ours, theirs], ttl: 60, now: made + 61 }).plaintexts,
    ).toEqual([null, null]);
    expect(
      pyFernet({ op: 'decrypt', keys: [key], tokens: [ours, theirs], ttl: 60, now: made + 59 }).plaintexts,
    ).toEqual(['74', '74']);
    const f = new Fernet(key);
    for (const t of [ours, theirs]) {
      expect(() => f.decrypt(t, { ttl: 60, now: (made + 61) * 1000 })).toThrow(
        expect.objectContaining({ code: 'ERR_TOKEN_EXPIRED' }),
      );
      expect(f.decryptString(t, { ttl: 60, now: (made + 59) * 1000 })).toBe('t');
    }
  });

  it('rotation agrees with MultiFernet in both directions', () => {
    const oldKey = generateFernetKey();
    const newKey = generateFernetKey();
    const tokenOld = new Fernet(oldKey).encrypt('r', { now: 1_600_000_000_000 });
    const rotatedByPython = pyFernet({ op: 'rotate', keys: [newKey, oldKey], tokens: [tokenOld] })
      .tokens![0]!;
    expect(new Fernet(newKey).decryptString(rotatedByPython)).toBe('r');
    expect(new Fernet(newKey).extractTimestamp(rotatedByPython).getTime()).toBe(1_600_000_000_000);
    const rotatedHere = new Fernet([newKey, oldKey]).rotate(tokenOld);
    expect(pyFernet({ op: 'decrypt', keys: [newKey], tokens: [rotatedHere] }).plaintexts).toEqual(['72']);
  });

  it("the seed's PBKDF2 → urlsafe_b64encode → Fernet key derivation gives identical keys", () => {
    const salt = randomBytes(16);
    const program = `
import sys, base64
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
salt = bytes.fromhex(sys.argv[1]) if len(sys.argv) > 1 else bytes.fromhex(sys.stdin.read().strip())
kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=100000)
print(base64.urlsafe_b64encode(kdf.derive(b"your-secure-password")).decode())
`;
    const theirs = runPython(py, program, hexEncode(salt)).toString().trim();
    expect(fernetKeyFromPassword('your-secure-password', salt)).toBe(theirs);
  });

  it('raw AES-256-GCM agrees in both directions', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const aad = utf8Encode('aad');
    const msg = randomBytes(777);
    const program = `
import sys, json, base64
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
r = json.load(sys.stdin)
a = AESGCM(base64.b64decode(r['key']))
print(json.dumps({
  'sealed': base64.b64encode(a.encrypt(base64.b64decode(r['nonce']), base64.b64decode(r['msg']), base64.b64decode(r['aad']))).decode(),
  'opened': base64.b64encode(a.decrypt(base64.b64decode(r['nonce']), base64.b64decode(r['ours']), base64.b64decode(r['aad']))).decode(),
}))
`;
    const ours = aeadSeal('aes-256-gcm', key, nonce, msg, aad);
    const res = JSON.parse(
      runPython(
        py,
        program,
        JSON.stringify({
          key: base64Encode(key),
          nonce: base64Encode(nonce),
          aad: base64Encode(aad),
          msg: base64Encode(msg),
          ours: base64Encode(ours),
        }),
      ).toString(),
    );
    expect(hexEncode(base64Decode(res.opened))).toBe(hexEncode(msg));
    expect(hexEncode(aeadOpen('aes-256-gcm', key, nonce, base64Decode(res.sealed), aad))).toBe(
      hexEncode(msg),
    );
    expect(hexDecode(hexEncode(ours))).toEqual(base64Decode(res.sealed));
  });
});
