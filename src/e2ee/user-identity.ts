/**
 * The `user-identity` directory entry (kind 5 of docs/e2ee-service.md): a user's identity key, an optional
 * recovery key, and the identity key's signature over both, domain-separated. It is the first entry of every
 * user; the rest of the user's chain (devices, revocations, MLS keys, recovery sets) hangs off its keys.
 *
 * Body: `opaque8 identity_key || opaque8 recovery_key_or_empty || 64-byte signature`; the signature covers
 * `"enseal e2ee user identity v1\n" || string8(user) || opaque8 identity_key || opaque8 recovery_key_or_empty`.
 *
 * This module also reads any leaf of the log ({@link decodeDirectoryLeaf}): kinds 1 to 4 through
 * transparency.ts, kind 5 here, so the client can verify a user's entries before the log's own decoder knows
 * the fifth kind.
 */
import {
  EnsealError,
  ErrorCode,
  invalidArgument,
  malformed,
  sign,
  utf8Encode,
  verify,
} from '../crypto/index.js';
import {
  DIRECTORY_ENTRY_MAX_BYTES,
  DIRECTORY_ENTRY_VERSION,
  decodeDirectoryEntry,
  type DirectoryEntry,
  type MlsKeyBinding,
} from './transparency.js';
import { Reader, Writer } from './wire.js';

/** The kind byte of a `user-identity` entry. */
export const USER_IDENTITY_KIND = 5;
const CONTEXT = utf8Encode('enseal e2ee user identity v1\n');

/** A user's published identity: the trust anchor of every device of the user. */
export interface UserIdentity {
  readonly userId: string;
  readonly identityKey: Uint8Array;
  /** Empty when the user has no recovery key. */
  readonly recoveryKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** A log leaf: one of the four kinds of transparency.ts, or a user identity. */
export type DirectoryLeaf =
  | DirectoryEntry
  | {
      readonly kind: 'user-identity';
      readonly userId: string;
      readonly time: number;
      readonly identity: UserIdentity;
    };

function tbs(userId: string, identityKey: Uint8Array, recoveryKey: Uint8Array): Uint8Array {
  return new Writer().raw(CONTEXT).string8(userId).bytes8(identityKey).bytes8(recoveryKey).finish();
}

/** Signs a user identity with the identity private key; `recoveryKey` is the recovery public key, if any. */
export function signUserIdentity(
  userId: string,
  identityPrivateKey: Uint8Array,
  identityKey: Uint8Array,
  recoveryKey: Uint8Array = new Uint8Array(0),
): UserIdentity {
  if (typeof userId !== 'string' || userId.length === 0) throw invalidArgument('userId', 'must not be empty');
  if (identityKey.length !== 32) throw invalidArgument('identityKey', 'must be a 32-byte Ed25519 key');
  if (recoveryKey.length !== 0 && recoveryKey.length !== 32)
    throw invalidArgument('recoveryKey', 'must be empty or a 32-byte Ed25519 key');
  return {
    userId,
    identityKey: identityKey.slice(),
    recoveryKey: recoveryKey.slice(),
    signature: sign('ed25519', identityPrivateKey, tbs(userId, identityKey, recoveryKey)),
  };
}

/** True when the identity's signature verifies under its own identity key. */
export function verifyUserIdentity(id: UserIdentity): boolean {
  if (id.identityKey.length !== 32 || id.signature.length !== 64) return false;
  return verify('ed25519', id.identityKey, tbs(id.userId, id.identityKey, id.recoveryKey), id.signature);
}

/** The entry body sent to `POST /v1/e2ee/users/:user` as `identity`. */
export function encodeUserIdentityBody(id: UserIdentity): Uint8Array {
  return new Writer().bytes8(id.identityKey).bytes8(id.recoveryKey).raw(id.signature).finish();
}

/** The body of an `mls-signature-key` entry, sent as `mls_binding`. */
export function encodeMlsBindingBody(binding: MlsKeyBinding): Uint8Array {
  return new Writer()
    .string8(binding.deviceId)
    .bytes8(binding.mlsSignatureKey)
    .raw(binding.signature)
    .finish();
}

function readIdentityBody(rd: Reader, userId: string): UserIdentity {
  const identityKey = rd.bytes8(32, 32);
  const recoveryKey = rd.bytes8(0, 32);
  if (recoveryKey.length !== 0 && recoveryKey.length !== 32)
    throw malformed('user identity', 'recovery key must be empty or 32 bytes');
  const signature = rd.raw(64);
  return { userId, identityKey, recoveryKey, signature };
}

/** The canonical leaf bytes of a user identity entry. */
export function encodeUserIdentityEntry(id: UserIdentity, time: number): Uint8Array {
  if (!Number.isSafeInteger(time) || time < 0) throw invalidArgument('time', 'must be POSIX seconds');
  return new Writer()
    .u8(DIRECTORY_ENTRY_VERSION)
    .u8(USER_IDENTITY_KIND)
    .string8(id.userId)
    .u64(time)
    .raw(encodeUserIdentityBody(id))
    .finish();
}

/** Decodes any leaf of the directory log, strictly. Throws ERR_MALFORMED or ERR_UNSUPPORTED. */
export function decodeDirectoryLeaf(bytes: Uint8Array): DirectoryLeaf {
  if (!(bytes instanceof Uint8Array)) throw malformed('directory entry', 'expected bytes');
  if (bytes.length > DIRECTORY_ENTRY_MAX_BYTES) throw malformed('directory entry', 'too large');
  if (bytes.length < 2 || bytes[1] !== USER_IDENTITY_KIND) return decodeDirectoryEntry(bytes);
  const rd = new Reader(bytes, 'directory entry');
  const version = rd.u8();
  if (version !== DIRECTORY_ENTRY_VERSION)
    throw new EnsealError(ErrorCode.UNSUPPORTED, `directory entry version ${version} is not supported`);
  rd.u8();
  const userId = rd.string8(1, 255);
  const time = rd.u64();
  const identity = readIdentityBody(rd, userId);
  rd.end();
  return { kind: 'user-identity', userId, time, identity };
}
