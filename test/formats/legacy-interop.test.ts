/** The seeds' legacy formats, produced by the real libraries the seeds used. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  base64Decode,
  base64Encode,
  eaxDecrypt,
  eaxEncrypt,
  hexDecode,
  hexEncode,
  randomBytes,
  rsaOaepGenerateKeyPair,
  utf8Decode,
} from '../../src/crypto/index.js';
import {
  decryptLegacyEax,
  decryptLegacyEaxUnauthenticated,
  decryptLegacyRsaCbc,
} from '../../src/formats/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
import { python, runPython } from '../helpers/peers.js';

const pycryptodome = python(['Cryptodome'], 'apt-get install python3-pycryptodome');
const cryptography = python(['cryptography'], 'apt-get install python3-cryptography');

describe.skipIf(!pycryptodome.available)('EAX against PyCryptodome', () => {
  it('both directions, random keys, nonces, headers and messages', () => {
    const cases = Array.from({ length: 40 }, (_, i) => ({
      key: randomBytes([16, 24, 32][i % 3]!),
      nonce: randomBytes(i % 5 === 0 ? 12 : 16),
      header: randomBytes(i % 4 === 0 ? 0 : i),
      msg: randomBytes(i * 37),
    }));
    const ours = cases.map((c) => eaxEncrypt(c.key, c.nonce, c.msg, c.header));
    const program = `
import sys, json
from Cryptodome.Cipher import AES
req = json.load(sys.stdin)
out = []
for c, o in zip(req['cases'], req['ours']):
    k, n, h, m = (bytes.fromhex(c[x]) for x in ('key', 'nonce', 'header', 'msg'))
    d = AES.new(k, AES.MODE_EAX, nonce=n)
    d.update(h)
    opened = d.decrypt_and_verify(bytes.fromhex(o['ct']), bytes.fromhex(o['tag']))
    e = AES.new(k, AES.MODE_EAX, nonce=n)
    e.update(h)
    ct, tag = e.encrypt_and_digest(m)
    out.append({'opened': opened.hex(), 'ct': ct.hex(), 'tag': tag.hex()})
print(json.dumps(out))
`;
    const hexCases = cases.map((c) => ({
      key: hexEncode(c.key),
      nonce: hexEncode(c.nonce),
      header: hexEncode(c.header),
      msg: hexEncode(c.msg),
    }));
    const res = JSON.parse(
      runPython(
        pycryptodome,
        program,
        JSON.stringify({
          cases: hexCases,
          ours: ours.map((o) => ({ ct: hexEncode(o.ciphertext), tag: hexEncode(o.tag) })),
        }),
      ).toString(),
    ) as { opened: string; ct: string; tag: string }[];
    res.forEach((r, i) => {
      const c = cases[i]!;
      expect(r.opened).toBe(hexEncode(c.msg));
      expect(r.ct).toBe(hexEncode(ours[i]!.ciphertext));
      expect(r.tag).toBe(hexEncode(ours[i]!.tag));
      expect(hexEncode(eaxDecrypt(c.key, c.nonce, hexDecode(r.ct), hexDecode(r.tag), c.header))).toBe(
        hexEncode(c.msg),
      );
    });
  });

  it("reads the seed's exact values: base64(nonce + ciphertext), tag discarded", () => {
    const program = `
import base64, json
from Cryptodome.Cipher import AES
def encrypt_data(key, data):
    cipher = AES.new(key, AES.MODE_EAX)
    nonce = cipher.nonce
    ciphertext, tag = cipher.encrypt_and_digest(data.encode('utf-8'))
    return base64.b64encode(nonce + ciphertext).decode('utf-8'), base64.b64encode(nonce + ciphertext + tag).decode('utf-8')
key = b'Sixteen byte key'
print(json.dumps([encrypt_data(key, s) for s in ['Sensitive Data', '', 'ünïcødé ✓', 'x' * 1000]]))
`;
    const values = JSON.parse(runPython(pycryptodome, program).toString()) as [string, string][];
    const key = new TextEncoder().encode('Sixteen byte key');
    const expected = ['Sensitive Data', '', 'ünïcødé ✓', 'x'.repeat(1000)];
    values.forEach(([seedValue, withTag], i) => {
      expect(utf8Decode(decryptLegacyEaxUnauthenticated(seedValue, key))).toBe(expected[i]);
      expect(utf8Decode(decryptLegacyEax(withTag, key))).toBe(expected[i]);
    });
  });
});

describe('legacy EAX decoders', () => {
  it('the authenticated variant rejects every modification; the unauthenticated one is named for it', async () => {
    const key = randomBytes(16);
    const nonce = randomBytes(16);
    const { ciphertext, tag } = eaxEncrypt(key, nonce, new TextEncoder().encode('amount=100'));
    const value = new Uint8Array([...nonce, ...ciphertext, ...tag]);
    for (let i = 0; i < value.length; i++) {
      const copy = value.slice();
      copy[i]! ^= 1;
      expect(await asyncCodeOf(() => decryptLegacyEax(copy, key))).toBe('ERR_DECRYPT_FAILED');
    }
    // Without its tag, a flipped bit goes unnoticed: exactly why this decoder is labelled unauthenticated.
    const noTag = new Uint8Array([...nonce, ...ciphertext]);
    noTag[16 + 7]! ^= 0x01 ^ 0x09; // '1' -> '9'
    expect(utf8Decode(decryptLegacyEaxUnauthenticated(noTag, key))).toBe('amount=900');
  });

  it('malformed input gives typed errors', async () => {
    const key = randomBytes(16);
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 60 }), async (text) => {
        const code = await asyncCodeOf(() => decryptLegacyEax(text, key));
        expect(['ERR_MALFORMED', 'ERR_DECRYPT_FAILED']).toContain(code);
      }),
    );
  });
});

describe.skipIf(!cryptography.available)('RSA-OAEP-wrapped AES-CBC from Python cryptography', () => {
  it('decrypts values made by Python, for 128- and 256-bit AES keys', async () => {
    const { privateKey, publicKey } = await rsaOaepGenerateKeyPair(2048);
    const program = `
import sys, os, json, base64
from cryptography.hazmat.primitives import hashes, padding as sympad, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
pub = serialization.load_der_public_key(base64.b64decode(sys.stdin.read()))
out = []
for size, msg in [(16, b'hello'), (32, b''), (32, os.urandom(1000))]:
    key, iv = os.urandom(size), os.urandom(16)
    padder = sympad.PKCS7(128).padder()
    data = padder.update(msg) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(data) + enc.finalize()
    wrapped = pub.encrypt(key, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    out.append([base64.b64encode(wrapped + iv + ct).decode(), msg.hex()])
print(json.dumps(out))
`;
    const values = JSON.parse(runPython(cryptography, program, base64Encode(publicKey)).toString()) as [
      string,
      string,
    ][];
    for (const [value, msg] of values) {
      expect(hexEncode(await decryptLegacyRsaCbc(value, privateKey))).toBe(msg);
      const tampered = base64Decode(value);
      tampered[10]! ^= 1;
      expect(await asyncCodeOf(decryptLegacyRsaCbc(tampered, privateKey))).toBe('ERR_DECRYPT_FAILED');
    }
  });
});
