/**
 * The field-value format for data keys held by a key server (`enseal serve`): each value carries its data key
 * wrapped by the server, so that the server alone can later make it readable again, and is sealed with
 * AES-256-GCM under that data key. The header (wrapped key and nonce included) is authenticated with the
 * field's associated data (table, column, row id), as in envelope v1. The layout is in docs/formats.md,
 * "Field values under a server data key".
 *
 * ```
 * 0      1  format = 0x81            5   4  key version (u32)
 * 1      1  suite  = 0x01 (AES-GCM)  9   2  wrapped length L
 * 2      1  wrapped form             11  L  wrapped bytes
 * 3      2  reserved = 0             …  12  nonce, then ciphertext ‖ 16-byte tag
 * ```
 */
import {
  aeadOpen,
  aeadSeal,
  base64Decode,
  base64Encode,
  base64UrlDecode,
  base64UrlEncode,
  EnsealError,
  ErrorCode,
  invalidArgument,
  malformed,
  randomPublicBytes,
  utf8Decode,
  utf8Encode,
} from '../crypto/index.js';

/** The text prefix of a value under a server data key (distinct from an envelope's `ens1.`). */
export const REMOTE_VALUE_PREFIX = 'ensr1.';
/** The first byte of the binary form (an envelope starts with 0x01). */
export const REMOTE_VALUE_FORMAT = 0x81;
const SUITE_AES_256_GCM = 0x01;
/** Wrapped-key forms: a `vault:v<N>:<base64>` string stored as N and its decoded bytes, or opaque UTF-8. */
const FORM_OPAQUE = 0x00;
const FORM_VAULT = 0x01;
const FIXED = 11;
const NONCE = 12;
const TAG = 16;
/** A server's wrapped 256-bit key is about 60 bytes; anything far larger is not one. */
export const MAX_WRAPPED_LENGTH = 2048;
/** Far below what a text column or a request body must carry, and bounds the parser's work. */
const MAX_TEXT_LENGTH = 16 * 1024 * 1024;
const VAULT = /^vault:v([1-9][0-9]{0,9}):([A-Za-z0-9+/]+={0,2})$/;

export interface RemoteValue {
  /** The wrapped data key, as the key server gave it (`vault:v3:…`). */
  readonly wrapped: string;
  /** The server key version that wrapped the data key (0 when the wrapped form does not say). */
  readonly keyVersion: number;
  /** Every byte before the ciphertext: authenticated as associated data. */
  readonly header: Uint8Array;
  readonly nonce: Uint8Array;
  /** Ciphertext ‖ tag. */
  readonly sealed: Uint8Array;
}

/** True when `value` is (or claims to be) a value of this format; says nothing about its validity. */
export function isRemoteValue(value: unknown): boolean {
  if (typeof value === 'string') return value.startsWith(REMOTE_VALUE_PREFIX);
  return value instanceof Uint8Array && value.length > 0 && value[0] === REMOTE_VALUE_FORMAT;
}

/** The server key version in a `vault:v<N>:…` wrapped key; 0 for any other form. */
export function wrappedKeyVersion(wrapped: string): number {
  const m = VAULT.exec(wrapped);
  return m === null ? 0 : Number(m[1]);
}

/** The wrapped key as the header stores it: compact for the server's own form, verbatim otherwise. */
function wrappedForm(wrapped: string): { form: number; version: number; bytes: Uint8Array } {
  const m = VAULT.exec(wrapped);
  if (m !== null) {
    const version = Number(m[1]);
    let bytes: Uint8Array | undefined;
    try {
      bytes = base64Decode(m[2]!, 'wrapped key');
    } catch {
      bytes = undefined; // non-canonical base64: keep the string verbatim
    }
    if (bytes !== undefined && version <= 0xffffffff) return { form: FORM_VAULT, version, bytes };
  }
  return { form: FORM_OPAQUE, version: 0, bytes: utf8Encode(wrapped) };
}

/**
 * The header up to the nonce for a wrapped key: the same for every value under one data key, so encrypting
 * callers compute it once per key (`prefix` of {@link sealRemoteValue}).
 */
export function remoteValuePrefix(wrapped: string): Uint8Array {
  const w = wrappedForm(wrapped);
  if (w.bytes.length === 0 || w.bytes.length > MAX_WRAPPED_LENGTH)
    throw invalidArgument('wrapped data key', `must be 1-${MAX_WRAPPED_LENGTH} bytes`);
  const out = new Uint8Array(FIXED + w.bytes.length);
  const view = new DataView(out.buffer);
  out[0] = REMOTE_VALUE_FORMAT;
  out[1] = SUITE_AES_256_GCM;
  out[2] = w.form;
  view.setUint32(5, w.version);
  view.setUint16(9, w.bytes.length);
  out.set(w.bytes, FIXED);
  return out;
}

function aadOf(head: Uint8Array, aad: Uint8Array): Uint8Array {
  const out = new Uint8Array(head.length + aad.length);
  out.set(head);
  out.set(aad, head.length);
  return out;
}

/**
 * Seals `plaintext` under a data key and returns the text form. `nonce` is for test vectors only: omit it
 * and a random 96-bit nonce is drawn (the caller bounds the uses of one data key far below 2^32).
 */
export function sealRemoteValue(input: {
  key: Uint8Array;
  wrapped: string;
  plaintext: Uint8Array;
  aad: Uint8Array;
  nonce?: Uint8Array;
  prefix?: Uint8Array;
}): string {
  return REMOTE_VALUE_PREFIX + base64UrlEncode(sealRemoteValueBytes(input));
}

/** {@link sealRemoteValue}, binary form. */
export function sealRemoteValueBytes(input: {
  key: Uint8Array;
  wrapped: string;
  plaintext: Uint8Array;
  aad: Uint8Array;
  nonce?: Uint8Array;
  /** {@link remoteValuePrefix} of `wrapped`, when the caller has it already. */
  prefix?: Uint8Array;
}): Uint8Array {
  const nonce = input.nonce ?? randomPublicBytes(NONCE);
  if (nonce.length !== NONCE) throw invalidArgument('nonce', 'must be 12 bytes');
  const prefix = input.prefix ?? remoteValuePrefix(input.wrapped);
  const head = new Uint8Array(prefix.length + NONCE);
  head.set(prefix);
  head.set(nonce, prefix.length);
  const sealed = aeadSeal('aes-256-gcm', input.key, nonce, input.plaintext, aadOf(head, input.aad));
  const out = new Uint8Array(head.length + sealed.length);
  out.set(head);
  out.set(sealed, head.length);
  return out;
}

/**
 * Parses a value of this format (text or binary) without touching any key. Anything else, truncated or
 * inconsistent is `ERR_MALFORMED`; an unknown suite or wrapped form is `ERR_UNSUPPORTED`.
 */
export function parseRemoteValue(value: string | Uint8Array): RemoteValue {
  let bytes: Uint8Array;
  if (typeof value === 'string') {
    if (!value.startsWith(REMOTE_VALUE_PREFIX)) throw malformed('field value', 'is not an ensr1 value');
    if (value.length > MAX_TEXT_LENGTH) throw malformed('field value', 'is too long');
    bytes = base64UrlDecode(value.slice(REMOTE_VALUE_PREFIX.length), 'field value');
  } else if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    throw malformed('field value', 'is neither text nor bytes');
  }
  if (bytes.length < FIXED || bytes[0] !== REMOTE_VALUE_FORMAT)
    throw malformed('field value', 'is not an ensr1 value');
  if (bytes[1] !== SUITE_AES_256_GCM)
    throw new EnsealError(ErrorCode.UNSUPPORTED, 'field value: unknown suite');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const form = bytes[2]!;
  if (view.getUint16(3) !== 0) throw malformed('field value', 'reserved bytes are not zero');
  const version = view.getUint32(5);
  const length = view.getUint16(9);
  if (length === 0 || length > MAX_WRAPPED_LENGTH)
    throw malformed('field value', 'wrapped key length is out of range');
  if (bytes.length < FIXED + length + NONCE + TAG) throw malformed('field value', 'is truncated');
  const raw = bytes.subarray(FIXED, FIXED + length);
  let wrapped: string;
  if (form === FORM_VAULT) {
    if (version === 0) throw malformed('field value', 'wrapped key version is zero');
    wrapped = `vault:v${version}:${base64Encode(raw)}`;
  } else if (form === FORM_OPAQUE) {
    if (version !== 0) throw malformed('field value', 'an opaque wrapped key has no version');
    try {
      wrapped = utf8Decode(raw);
    } catch {
      throw malformed('field value', 'wrapped key is not UTF-8');
    }
    // The compact form is the only encoding of a vault key, so that each value has exactly one encoding.
    if (wrappedForm(wrapped).form !== FORM_OPAQUE)
      throw malformed('field value', 'wrapped key is not in its compact form');
  } else {
    throw new EnsealError(ErrorCode.UNSUPPORTED, 'field value: unknown wrapped-key form');
  }
  const end = FIXED + length + NONCE;
  return {
    wrapped,
    keyVersion: version,
    // Views, not copies: nothing here is secret or written to.
    header: bytes.subarray(0, end),
    nonce: bytes.subarray(FIXED + length, end),
    sealed: bytes.subarray(end),
  };
}

/** Opens a parsed value with its unwrapped data key; anything that does not authenticate is `ERR_DECRYPT_FAILED`. */
export function openRemoteValue(value: RemoteValue, key: Uint8Array, aad: Uint8Array): Uint8Array {
  return aeadOpen('aes-256-gcm', key, value.nonce, value.sealed, aadOf(value.header, aad));
}
