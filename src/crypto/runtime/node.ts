/**
 * Node runtime: OpenSSL through node:crypto (AES-NI, vectorised ChaCha20) for everything it offers. HChaCha20
 * comes from @noble/ciphers because OpenSSL does not expose it; the XChaCha20-Poly1305 built on it then runs
 * the bulk cipher in OpenSSL.
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  pbkdf2Sync,
  randomFillSync,
  scryptSync,
  sign,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';
import { createRequire } from 'node:module';
import type * as NobleChacha from '@noble/ciphers/chacha.js';
import type * as NobleAes from '@noble/ciphers/aes.js';
import type { CryptoRuntime, HashName, RuntimeAead, ScryptCost } from './types.js';

// @noble/ciphers serves two rarely used primitives (HChaCha20 for XChaCha20-Poly1305, AES-CMAC for legacy
// EAX) through a synchronous interface, so it is loaded with require() on first use (Node ≥ 20.19 loads ES
// modules that way) instead of at start-up, where it cost about 30 ms of every CLI command.
const requireNoble = createRequire(import.meta.url);
let noble: { hchacha: typeof NobleChacha.hchacha; cmac: typeof NobleAes.cmac } | undefined;

function nobleCiphers(): NonNullable<typeof noble> {
  noble ??= {
    hchacha: (requireNoble('@noble/ciphers/chacha.js') as typeof NobleChacha).hchacha,
    cmac: (requireNoble('@noble/ciphers/aes.js') as typeof NobleAes).cmac,
  };
  return noble;
}

const TAG = 16;

function view(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function aeadSeal(
  alg: RuntimeAead,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  room = 0,
) {
  // The tag is always 16 bytes when sealing; no options object keeps the per-message overhead down.
  const cipher = createCipheriv(alg as 'aes-256-gcm', key, nonce);
  if (aad.length > 0) cipher.setAAD(aad);
  // Every byte is overwritten below and the caller fills `room`, so large outputs skip zero-filling.
  const length = room + plaintext.length + TAG;
  const out = length >= 65536 ? view(Buffer.allocUnsafeSlow(length)) : new Uint8Array(length);
  const body = cipher.update(plaintext);
  out.set(body, room);
  const fin = cipher.final();
  out.set(fin, room + body.length);
  out.set(cipher.getAuthTag(), room + body.length + fin.length);
  return out;
}

function aeadOpen(alg: RuntimeAead, key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array) {
  if (sealed.length < TAG) return null;
  const ctLen = sealed.length - TAG;
  // The tag passed below is always exactly the last 16 bytes, so a truncated tag can never be accepted even
  // without the authTagLength option (which costs an options parse on every call).
  const decipher = createDecipheriv(alg as 'aes-256-gcm', key, nonce);
  decipher.setAuthTag(sealed.subarray(ctLen));
  if (aad.length > 0) decipher.setAAD(aad);
  const body = decipher.update(sealed.subarray(0, ctLen));
  try {
    const fin = decipher.final();
    if (fin.length === 0) return view(body);
    return view(Buffer.concat([body, fin]));
  } catch {
    body.fill(0);
    return null;
  }
}

// "expand 32-byte k" as little-endian words (RFC 8439 §2.3).
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

function u32le(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) {
    out[i] = bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24);
  }
  return out;
}

function hchacha20(key: Uint8Array, input16: Uint8Array): Uint8Array {
  const out = new Uint32Array(8);
  nobleCiphers().hchacha(SIGMA, u32le(key), u32le(input16), out);
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = out[i]!;
    bytes[4 * i] = w & 0xff;
    bytes[4 * i + 1] = (w >>> 8) & 0xff;
    bytes[4 * i + 2] = (w >>> 16) & 0xff;
    bytes[4 * i + 3] = (w >>> 24) & 0xff;
  }
  out.fill(0);
  return bytes;
}

function cbcName(key: Uint8Array): 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' {
  return key.length === 16 ? 'aes-128-cbc' : key.length === 24 ? 'aes-192-cbc' : 'aes-256-cbc';
}

function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  try {
    const d = createDecipheriv(cbcName(key), key, iv);
    return view(Buffer.concat([d.update(ciphertext), d.final()]));
  } catch {
    return null;
  }
}

function aesCtr(key: Uint8Array, counterBlock: Uint8Array, data: Uint8Array): Uint8Array {
  const name = key.length === 16 ? 'aes-128-ctr' : key.length === 24 ? 'aes-192-ctr' : 'aes-256-ctr';
  const c = createCipheriv(name, key, counterBlock);
  return view(Buffer.concat([c.update(data), c.final()]));
}

// PKCS#8 / SPKI prefixes let raw 32-byte keys become KeyObjects without hand-written ASN.1 parsing.
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

function privateKey(prefix: Buffer, raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([prefix, raw]), format: 'der', type: 'pkcs8' });
}

function publicKey(prefix: Buffer, raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([prefix, raw]), format: 'der', type: 'spki' });
}

/**
 * Parsed Ed25519 keys, reused. Turning raw bytes into a KeyObject costs more than the signature over a short
 * message, and MLS signs and verifies with the same few keys over and over. A private key is remembered for
 * the array that holds it (a WeakMap, so it goes when the array does) together with a copy of its bytes, and
 * used only while the array still holds those bytes: a wiped or rewritten array is parsed afresh. Public keys
 * are not secret; the last few hundred are kept by value.
 */
const signingKeys = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>();
const verifyingKeys = new Map<string, KeyObject>();
const VERIFYING_KEYS_KEPT = 512;

function ed25519Private(raw: Uint8Array): KeyObject {
  const known = signingKeys.get(raw);
  if (known !== undefined && known.bytes.length === raw.length && timingSafeEqual(known.bytes, raw))
    return known.key;
  const key = privateKey(ED25519_PKCS8, raw);
  signingKeys.set(raw, { bytes: raw.slice(), key });
  return key;
}

function ed25519Public(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  let key = verifyingKeys.get(id);
  if (key === undefined) {
    key = publicKey(ED25519_SPKI, raw);
    if (verifyingKeys.size >= VERIFYING_KEYS_KEPT) verifyingKeys.delete(verifyingKeys.keys().next().value!);
    verifyingKeys.set(id, key);
  }
  return key;
}

function rawPublic(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  return view(der.subarray(der.length - 32));
}

function p256Private(raw: Uint8Array): KeyObject {
  const pub = p256PublicFromPrivate(raw);
  return createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: b64u(raw),
      x: b64u(pub.subarray(1, 33)),
      y: b64u(pub.subarray(33, 65)),
    },
    format: 'jwk',
  });
}

function p256PublicFromPrivate(raw: Uint8Array): Uint8Array {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(raw);
  return view(ecdh.getPublicKey());
}

function p256PublicKeyObject(point: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33, 65)) },
    format: 'jwk',
  });
}

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function aeadSealDetached(
  alg: RuntimeAead,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
) {
  const cipher = createCipheriv(alg as 'aes-256-gcm', key, nonce);
  if (aad.length > 0) cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const fin = cipher.final();
  const ciphertext = fin.length === 0 ? view(body) : view(Buffer.concat([body, fin]));
  return { ciphertext, tag: view(cipher.getAuthTag()) };
}

export const runtime: CryptoRuntime = {
  name: 'node',
  aeadSealDetached,
  base64: {
    encode(bytes, url) {
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(
        url ? 'base64url' : 'base64',
      );
    },
    decode(text, url) {
      return view(Buffer.from(text, url ? 'base64url' : 'base64'));
    },
  },
  randomFill(out) {
    randomFillSync(out);
  },
  aeadSeal,
  aeadOpen,
  hchacha20,
  aesCbcEncrypt(key, iv, plaintext, room, tail) {
    const c = createCipheriv(cbcName(key), key, iv);
    // PKCS#7 always adds 1 to 16 bytes; writing both parts into one buffer saves a join and a copy. Every
    // byte is written here or by the caller, so the buffer comes unzeroed from Node's pool (small tokens
    // would otherwise each cost a zeroed off-heap allocation).
    const out = view(Buffer.allocUnsafe(room + (plaintext.length - (plaintext.length % 16) + 16) + tail));
    const body = c.update(plaintext);
    out.set(body, room);
    out.set(c.final(), room + body.length);
    return out;
  },
  aesCbcDecrypt,
  aesCtr,
  aesCmac(key, data) {
    return nobleCiphers().cmac(data, key);
  },
  digest(hash: HashName, data) {
    return view(createHash(hash).update(data).digest());
  },
  hmac(hash: HashName, key, data) {
    return view(createHmac(hash, key).update(data).digest());
  },
  hkdf(hash: HashName, ikm, salt, info, length) {
    return new Uint8Array(hkdfSync(hash, ikm, salt, info, length));
  },
  pbkdf2(hash: HashName, password, salt, iterations, length) {
    return view(pbkdf2Sync(password, salt, iterations, length, hash));
  },
  scrypt(password, salt, cost: ScryptCost, length) {
    // maxmem must cover 128 * N * r * p plus working space, or OpenSSL refuses.
    const maxmem = 128 * cost.N * cost.r + 128 * cost.r * cost.p + 1024 * 1024;
    return view(scryptSync(password, salt, length, { N: cost.N, r: cost.r, p: cost.p, maxmem }));
  },
  timingSafeEqual(a, b) {
    return a.length === b.length && timingSafeEqual(a, b);
  },
  x25519PublicKey(priv) {
    return rawPublic(createPublicKey(privateKey(X25519_PKCS8, priv)));
  },
  x25519(priv, pub) {
    return view(
      diffieHellman({ privateKey: privateKey(X25519_PKCS8, priv), publicKey: publicKey(X25519_SPKI, pub) }),
    );
  },
  ed25519PublicKey(priv) {
    return rawPublic(createPublicKey(privateKey(ED25519_PKCS8, priv)));
  },
  ed25519Sign(priv, message) {
    return view(sign(null, message, ed25519Private(priv)));
  },
  ed25519Verify(pub, message, signature) {
    try {
      return verify(null, message, ed25519Public(pub), signature);
    } catch {
      return false;
    }
  },
  p256PublicKey(priv) {
    return p256PublicFromPrivate(priv);
  },
  p256Sign(priv, message) {
    return view(sign('sha256', message, { key: p256Private(priv), dsaEncoding: 'ieee-p1363' }));
  },
  p256Verify(pub, message, signature) {
    try {
      return verify(
        'sha256',
        message,
        { key: p256PublicKeyObject(pub), dsaEncoding: 'ieee-p1363' },
        signature,
      );
    } catch {
      return false;
    }
  },
};
