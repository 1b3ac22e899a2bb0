/**
 * Ed25519 checkpoint cosignatures (c2sp.org/tlog-cosignature, `cosignature/v1`, signature type 0x04). The
 * signature line holds key ID || u64 big-endian timestamp || Ed25519 signature over
 * `cosignature/v1\ntime <timestamp>\n<checkpoint body>`. A cosignature states that, at that time, this was the
 * largest consistent tree head the cosigner had seen for the log.
 */
import {
  EnsealError,
  ErrorCode,
  concatBytes,
  invalidArgument,
  malformed,
  sign,
  signingPublicKey,
  utf8Encode,
  verify,
} from '../crypto/index.js';
import { SignatureType, noteKeyId, type NoteSignature, type NoteVerifier } from './signed-note.js';

const HEADER = 'cosignature/v1\n';
/** Timestamps are POSIX seconds; they must fit in 2^63 − 1 and, here, in a safe integer. */
const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

/** The message an Ed25519 v1 cosignature signs. */
export function cosignatureMessage(checkpointBody: Uint8Array, timestamp: number): Uint8Array {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0)
    throw invalidArgument('timestamp', 'must be a non-negative safe integer');
  return concatBytes(utf8Encode(`${HEADER}time ${timestamp}\n`), checkpointBody);
}

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  let v = BigInt(n);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Splits a cosignature's bytes (after the key ID) into timestamp and Ed25519 signature. Throws ERR_MALFORMED. */
export function decodeCosignature(signature: Uint8Array): { timestamp: number; signature: Uint8Array } {
  if (!(signature instanceof Uint8Array) || signature.length !== 8 + 64) {
    throw malformed('cosignature', 'expected an 8-byte timestamp and a 64-byte signature');
  }
  let t = 0n;
  for (let i = 0; i < 8; i++) t = (t << 8n) | BigInt(signature[i]!);
  if (t > BigInt(MAX_TIMESTAMP)) throw malformed('cosignature', 'timestamp is out of range');
  return { timestamp: Number(t), signature: signature.slice(8) };
}

/** The key ID of an Ed25519 cosigner: SHA-256(name || 0x0A || 0x04 || key)[:4]. */
export function cosignerKeyId(name: string, publicKey: Uint8Array): number {
  return noteKeyId(name, SignatureType.COSIGNATURE_V1, publicKey);
}

/** A witness's signing key. `cosign` returns the signature line to append to the checkpoint's note. */
export interface Cosigner {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  cosign(checkpointBody: Uint8Array, timestamp: number): NoteSignature;
}

/** An Ed25519 cosigner for a 32-byte private key. */
export function ed25519Cosigner(name: string, privateKey: Uint8Array): Cosigner {
  const publicKey = signingPublicKey('ed25519', privateKey);
  const key = privateKey.slice();
  const keyId = cosignerKeyId(name, publicKey);
  return {
    name,
    keyId,
    publicKey,
    cosign(body, timestamp) {
      if (timestamp === 0) throw invalidArgument('timestamp', 'must not be zero in a checkpoint cosignature');
      const sig = sign('ed25519', key, cosignatureMessage(body, timestamp));
      return { name, keyId, signature: concatBytes(u64(timestamp), sig) };
    },
  };
}

/** A note verifier for a cosigner's key. It also records the timestamp of the last signature it accepted. */
export interface CosignatureVerifier extends NoteVerifier {
  readonly publicKey: Uint8Array;
  /** The timestamp inside a cosignature this verifier accepts, or throws ERR_SIGNATURE_INVALID. */
  timestampOf(text: Uint8Array, signature: Uint8Array): number;
}

/**
 * An Ed25519 cosignature verifier. `maxFutureSeconds` (default 600) bounds how far in the future a timestamp
 * may be, against `now()` (seconds; default the system clock).
 */
export function ed25519CosignatureVerifier(
  name: string,
  publicKey: Uint8Array,
  options: { maxFutureSeconds?: number; now?: () => number } = {},
): CosignatureVerifier {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw invalidArgument('publicKey', 'must be a 32-byte Ed25519 public key');
  }
  const key = publicKey.slice();
  const maxFuture = options.maxFutureSeconds ?? 600;
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const check = (text: Uint8Array, signature: Uint8Array): number | undefined => {
    let decoded;
    try {
      decoded = decodeCosignature(signature);
    } catch {
      return undefined;
    }
    if (decoded.timestamp === 0 || decoded.timestamp > now() + maxFuture) return undefined;
    return verify('ed25519', key, cosignatureMessage(text, decoded.timestamp), decoded.signature)
      ? decoded.timestamp
      : undefined;
  };
  return {
    name,
    keyId: cosignerKeyId(name, key),
    publicKey: key,
    verify: (text, signature) => check(text, signature) !== undefined,
    timestampOf(text, signature) {
      const t = check(text, signature);
      if (t === undefined)
        throw new EnsealError(ErrorCode.SIGNATURE_INVALID, `cosignature by "${name}" does not verify`);
      return t;
    },
  };
}
