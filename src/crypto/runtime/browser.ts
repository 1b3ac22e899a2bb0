/**
 * Browser runtime: randomness from WebCrypto's getRandomValues, everything else from the audited,
 * synchronous noble libraries, so the envelope and keyset code keeps one synchronous API on every platform.
 * Nothing here imports a `node:` module; test/browser-build.test.ts proves it by evaluating a bundle built
 * with the `browser` condition in a context that has no Node APIs.
 */
import { cbc, cmac, ctr, gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305, hchacha } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { pbkdf2 } from '@noble/hashes/pbkdf2.js';
import { scrypt } from '@noble/hashes/scrypt.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha224, sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import type { CryptoRuntime, HashName, RuntimeAead } from './types.js';

const HASHES = { sha1, sha224, sha256, sha384, sha512 } as const;

function hashFn(name: HashName) {
  return HASHES[name];
}

function aead(alg: RuntimeAead, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array) {
  return alg === 'chacha20-poly1305' ? chacha20poly1305(key, nonce, aad) : gcm(key, nonce, aad);
}

const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

function u32le(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(bytes.length / 4);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getUint32(4 * i, true);
  return out;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export const runtime: CryptoRuntime = {
  name: 'browser',
  randomFill(out) {
    // getRandomValues is limited to 65,536 bytes per call.
    for (let i = 0; i < out.length; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, i + 65536));
  },
  aeadSeal(alg, key, nonce, plaintext, aad, room = 0) {
    const sealed = aead(alg, key, nonce, aad).encrypt(plaintext);
    if (room === 0) return sealed;
    const out = new Uint8Array(room + sealed.length);
    out.set(sealed, room);
    return out;
  },
  aeadSealDetached(alg, key, nonce, plaintext, aad) {
    const sealed = aead(alg, key, nonce, aad).encrypt(plaintext);
    return { ciphertext: sealed.subarray(0, sealed.length - 16), tag: sealed.subarray(sealed.length - 16) };
  },
  aeadOpen(alg, key, nonce, sealed, aad) {
    try {
      return aead(alg, key, nonce, aad).decrypt(sealed);
    } catch {
      return null;
    }
  },
  hchacha20(key, input16) {
    const out = new Uint32Array(8);
    hchacha(SIGMA, u32le(key), u32le(input16), out);
    const bytes = new Uint8Array(32);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < 8; i++) dv.setUint32(4 * i, out[i]!, true);
    return bytes;
  },
  aesCbcEncrypt(key, iv, plaintext, room, tail) {
    const ct = cbc(key, iv).encrypt(plaintext);
    if (room === 0 && tail === 0) return ct;
    const out = new Uint8Array(room + ct.length + tail);
    out.set(ct, room);
    return out;
  },
  aesCbcDecrypt(key, iv, ciphertext) {
    try {
      return cbc(key, iv).decrypt(ciphertext);
    } catch {
      return null;
    }
  },
  aesCtr(key, counterBlock, data) {
    return ctr(key, counterBlock).encrypt(data);
  },
  aesCmac(key, data) {
    return cmac(data, key);
  },
  digest(hash, data) {
    return hashFn(hash)(data);
  },
  hmac(hash, key, data) {
    return hmac(hashFn(hash), key, data);
  },
  hkdf(hash, ikm, salt, info, length) {
    return hkdf(hashFn(hash), ikm, salt, info, length);
  },
  pbkdf2(hash, password, salt, iterations, length) {
    return pbkdf2(hashFn(hash), password, salt, { c: iterations, dkLen: length });
  },
  scrypt(password, salt, cost, length) {
    return scrypt(password, salt, { N: cost.N, r: cost.r, p: cost.p, dkLen: length, maxmem: 2 ** 31 });
  },
  timingSafeEqual: constantTimeEqual,
  x25519PublicKey(priv) {
    return x25519.getPublicKey(priv);
  },
  x25519(priv, pub) {
    return x25519.getSharedSecret(priv, pub);
  },
  ed25519PublicKey(priv) {
    return ed25519.getPublicKey(priv);
  },
  ed25519Sign(priv, message) {
    return ed25519.sign(message, priv);
  },
  ed25519Verify(pub, message, signature) {
    try {
      // zip215: false = strict RFC 8032 §5.1.7 decoding, matching OpenSSL (noble defaults to ZIP-215 rules).
      return ed25519.verify(signature, message, pub, { zip215: false });
    } catch {
      return false;
    }
  },
  p256PublicKey(priv) {
    return p256.getPublicKey(priv, false);
  },
  p256Sign(priv, message) {
    return p256.sign(message, priv);
  },
  p256Verify(pub, message, signature) {
    try {
      // lowS: false accepts both s and n-s, as ECDSA (and OpenSSL, which does not normalise s) does.
      return p256.verify(signature, message, pub, { lowS: false });
    } catch {
      return false;
    }
  },
};
