/**
 * Unauthenticated AES modes, for formats that compose them with a MAC themselves (Fernet: AES-128-CBC then
 * HMAC-SHA256; EAX: CTR plus CMAC) and for legacy decoders. Never use these on their own: callers must
 * verify a MAC over the ciphertext before decrypting.
 */
import { runtime } from '#runtime';
import { assertBytes, assertInteger } from './bytes.js';

/** AES-CBC with PKCS#7 padding. */
export function aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return aesCbcEncryptWithRoom(key, iv, plaintext, 0, 0);
}

/**
 * {@link aesCbcEncrypt} whose result has `room` bytes before the ciphertext and `tail` bytes after it, which
 * the caller MUST overwrite (they may be uninitialised): Fernet puts its header and MAC there, so a token is
 * built without joining buffers.
 */
export function aesCbcEncryptWithRoom(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
  room: number,
  tail: number,
): Uint8Array {
  assertBytes('key', key, 16, 24, 32);
  assertBytes('iv', iv, 16);
  assertBytes('plaintext', plaintext);
  assertInteger('room', room, 0, 1024);
  assertInteger('tail', tail, 0, 1024);
  return runtime.aesCbcEncrypt(key, iv, plaintext, room, tail);
}

/** Returns null on bad length or padding. Only call after the ciphertext has been authenticated. */
export function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  assertBytes('key', key, 16, 24, 32);
  assertBytes('iv', iv, 16);
  assertBytes('ciphertext', ciphertext);
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) return null;
  return runtime.aesCbcDecrypt(key, iv, ciphertext);
}

/** AES-CTR keystream XOR starting at the 16-byte `counterBlock` (big-endian increment of the whole block). */
export function aesCtr(key: Uint8Array, counterBlock: Uint8Array, data: Uint8Array): Uint8Array {
  assertBytes('key', key, 16, 24, 32);
  assertBytes('counterBlock', counterBlock, 16);
  assertBytes('data', data);
  return runtime.aesCtr(key, counterBlock, data);
}

/** AES-CMAC (RFC 4493), the OMAC1 that EAX is built on. */
export function aesCmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  assertBytes('key', key, 16, 24, 32);
  assertBytes('data', data);
  return runtime.aesCmac(key, data);
}
