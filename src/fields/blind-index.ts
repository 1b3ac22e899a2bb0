/**
 * Blind indexes: a keyed, truncated hash of a (normalised) value, stored next to the ciphertext so that
 * equality queries work without decrypting. The key is derived per table and index from an index root key
 * (never a bare or salted hash, which anyone could recompute), and the output is truncated so that many rows
 * share each index value: an index that identified rows one-to-one would leak as much as deterministic
 * encryption.
 *
 * The planner follows CipherSweet's reasoning: with R rows and an index of L bits over an input with K bits
 * of entropy, the expected number of rows per index value is C = R / 2^min(L, K); it aims for 2 ≤ C ≤ √R, so
 * every lookup returns a few false positives (filtered after decryption) and no value is singled out.
 */
import { concatBytes, hexEncode, hkdf, hmac, invalidArgument, utf8Encode } from '../crypto/index.js';

export type Normalizer = 'trim' | 'lowercase' | 'digits' | 'alphanumeric' | 'collapse-spaces';

const NORMALIZERS: Readonly<Record<Normalizer, (s: string) => string>> = {
  trim: (s) => s.trim(),
  lowercase: (s) => s.toLowerCase(),
  digits: (s) => s.replace(/[^0-9]/g, ''),
  alphanumeric: (s) => s.replace(/[^\p{L}\p{N}]/gu, ''),
  'collapse-spaces': (s) => s.replace(/\s+/g, ' '),
};

export function isNormalizer(value: unknown): value is Normalizer {
  return typeof value === 'string' && Object.hasOwn(NORMALIZERS, value);
}

/** Applies normalizers in order, after Unicode NFC so that equal-looking strings index equally. */
export function normalize(value: string, normalizers: readonly Normalizer[]): string {
  let out = value.normalize('NFC');
  for (const n of normalizers) out = NORMALIZERS[n](out);
  return out;
}

export interface BlindIndexPlan {
  /** Index length in bits. */
  readonly bits: number;
  /** Expected rows per index value at the planned row count. */
  readonly coincidences: number;
  /** False when the input has too little entropy for any length to keep C ≥ 2 without C exceeding √R. */
  readonly safe: boolean;
}

/**
 * Chooses an index length for `rows` rows (the table's expected size, not today's) and `inputBits` bits of
 * value entropy (for example about 30 for US SSNs, 1 for a boolean).
 */
export function planBlindIndex(rows: number, inputBits: number): BlindIndexPlan {
  if (!Number.isFinite(rows) || rows < 4) throw invalidArgument('rows', 'must be at least 4');
  if (!Number.isFinite(inputBits) || inputBits <= 0) throw invalidArgument('inputBits', 'must be positive');
  // The longest index that still leaves at least two rows per value at the expected size.
  const bits = Math.min(Math.floor(Math.log2(rows / 2)), 256);
  const coincidences = rows / 2 ** Math.min(bits, inputBits);
  return { bits, coincidences, safe: coincidences >= 2 && coincidences <= Math.sqrt(rows) };
}

/** The key of one index: HKDF over the root, bound to table and index name. */
export function deriveIndexKey(rootKey: Uint8Array, table: string, index: string): Uint8Array {
  return hkdf(
    'sha256',
    rootKey,
    new Uint8Array(0),
    utf8Encode(`enseal/blind-index/v1\u0000${table}\u0000${index}`),
    32,
  );
}

/**
 * The index value of one or more parts (compound indexes hash their parts length-prefixed, so ("ab","c")
 * and ("a","bc") differ), truncated to `bits` and hex-encoded.
 */
export function blindIndexValue(key: Uint8Array, parts: readonly Uint8Array[], bits: number): string {
  if (!Number.isInteger(bits) || bits < 1 || bits > 256) throw invalidArgument('bits', 'must be 1-256');
  const framed = concatBytes(
    ...parts.flatMap((p) => {
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, p.length);
      return [len, p];
    }),
  );
  const mac = hmac('sha256', key, framed);
  const bytes = mac.slice(0, Math.ceil(bits / 8));
  const spare = bytes.length * 8 - bits;
  if (spare > 0) bytes[bytes.length - 1]! &= 0xff << spare;
  return hexEncode(bytes);
}
