/**
 * Strict text encodings. Decoders reject anything that would not re-encode to the same string (wrong
 * alphabet, bad padding, non-zero trailing bits), because lenient base64 makes one ciphertext have many
 * spellings, which breaks equality checks, caches and audit trails. Portable: no Buffer, no atob.
 */
import { runtime } from '#runtime';
import { malformed } from './errors.js';

const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function reverse(alphabet: string): Int16Array {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
}
const STD_REV = reverse(STD);
const URL_REV = reverse(URL);

function encode(bytes: Uint8Array, alphabet: string, pad: boolean): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + alphabet[(n >>> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + (pad ? '==' : '');
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + alphabet[(n >>> 6) & 63]! + (pad ? '=' : '');
  }
  return out;
}

type Padding = 'required' | 'forbidden' | 'optional';

function decode(text: string, table: Int16Array, padding: Padding, what: string): Uint8Array {
  if (typeof text !== 'string') throw malformed(what, 'expected a string');
  let end = text.length;
  while (end > 0 && text.length - end < 2 && text.charCodeAt(end - 1) === 61) end--;
  const padCount = text.length - end;
  const rem = end % 4;
  if (rem === 1) throw malformed(what, 'invalid base64 length');
  if (padCount > 0 && (padding === 'forbidden' || (end + padCount) % 4 !== 0)) {
    throw malformed(what, 'invalid base64 padding');
  }
  if (padding === 'required' && rem !== 0 && padCount === 0) throw malformed(what, 'missing base64 padding');
  const out = new Uint8Array((end * 3) >>> 2);
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? table[c]! : -1;
    if (v < 0) throw malformed(what, 'invalid base64 character');
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) throw malformed(what, 'non-canonical base64');
  return out;
}

const native = runtime.base64;

/** Standard base64 with padding (RFC 4648 §4). */
export function base64Encode(bytes: Uint8Array): string {
  return native ? native.encode(bytes, false) : encode(bytes, STD, true);
}

/** Strict standard base64; padding required. */
export function base64Decode(text: string, what = 'base64'): Uint8Array {
  return decodeStrict(text, false, 'required', what);
}

/** URL-safe base64 (RFC 4648 §5), without padding unless asked. */
export function base64UrlEncode(bytes: Uint8Array, pad = false): string {
  if (native === undefined) return encode(bytes, URL, pad);
  const s = native.encode(bytes, true);
  return pad ? s + '='.repeat((4 - (s.length % 4)) % 4) : s;
}

/** Strict URL-safe base64; `padding` says whether `=` must, must not, or may appear. */
export function base64UrlDecode(
  text: string,
  what = 'base64url',
  padding: Padding = 'forbidden',
): Uint8Array {
  return decodeStrict(text, true, padding, what);
}

/**
 * Native decoders are lenient (they skip junk and accept any padding), so their result is accepted only when
 * re-encoding gives back exactly the input; otherwise the portable strict decoder runs to name the problem.
 */
function decodeStrict(text: string, url: boolean, padding: Padding, what: string): Uint8Array {
  if (native !== undefined && typeof text === 'string') {
    const out = native.decode(text, url);
    const again = url ? native.encode(out, true) : native.encode(out, false);
    const pad = url ? '='.repeat((4 - (again.length % 4)) % 4) : '';
    if (
      text === again + (padding === 'required' ? pad : '') ||
      (padding === 'optional' && url && text === again + pad)
    ) {
      return out;
    }
  }
  return decode(text, url ? URL_REV : STD_REV, padding, what);
}

const HEX = '0123456789abcdef';

export function hexEncode(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX[b >>> 4]! + HEX[b & 15]!;
  return out;
}

/** Hex decode; accepts either case, rejects odd length and non-hex characters. */
export function hexDecode(text: string, what = 'hex'): Uint8Array {
  if (typeof text !== 'string' || text.length % 2 !== 0) throw malformed(what, 'hex must have even length');
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text.charCodeAt(2 * i));
    const lo = hexValue(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw malformed(what, 'invalid hex character');
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
