/**
 * Every error a caller can cause is an {@link EnsealError} with a stable `code`. Codes are part of the public
 * API: once published they are never renamed or reused. Authentication failures carry one fixed message and no
 * detail, so that no caller can learn *why* a ciphertext was rejected (no padding or MAC oracle).
 */

/** Stable error codes. Each is documented in docs/errors.md. */
export const ErrorCode = {
  /** Ciphertext, token or tag did not authenticate, or was malformed past the header. Deliberately vague. */
  DECRYPT_FAILED: 'ERR_DECRYPT_FAILED',
  /** An encoded value (envelope, token, key string, PHC string, header) could not be parsed. */
  MALFORMED: 'ERR_MALFORMED',
  /** An argument had the wrong type, length or range. */
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  /** Algorithm, suite, version or parameter set is not supported. */
  UNSUPPORTED: 'ERR_UNSUPPORTED',
  /** No key with the requested id or version exists (or it is not enabled). */
  KEY_NOT_FOUND: 'ERR_KEY_NOT_FOUND',
  /** The key exists but its purpose or status forbids the operation. */
  KEY_USAGE: 'ERR_KEY_USAGE',
  /** The key reached its safe usage bound; rotate it. */
  KEY_USAGE_LIMIT: 'ERR_KEY_USAGE_LIMIT',
  /** A Fernet token or other timed value is older than its TTL, or from the future beyond clock skew. */
  TOKEN_EXPIRED: 'ERR_TOKEN_EXPIRED',
  /** Plaintext key material was requested without the explicit opt-in. */
  EXPORT_FORBIDDEN: 'ERR_EXPORT_FORBIDDEN',
  /** A password did not match its stored hash. */
  PASSWORD_MISMATCH: 'ERR_PASSWORD_MISMATCH',
  /** A required key-encryption key, passphrase or identity was not provided. */
  KEK_MISSING: 'ERR_KEK_MISSING',
  /** A signature did not verify. */
  SIGNATURE_INVALID: 'ERR_SIGNATURE_INVALID',
  /** Reading or writing a file or stream failed. */
  IO: 'ERR_IO',
  /** No identity could open the file (age). */
  NO_IDENTITY_MATCH: 'ERR_NO_IDENTITY_MATCH',
  /** Output already exists and overwriting was not requested. */
  OUTPUT_EXISTS: 'ERR_OUTPUT_EXISTS',
  /** The key store could not be reached or refused a write; nothing was changed. */
  STORE: 'ERR_STORE',
  /** The key manager is sealed: it serves nothing until enough unseal shares (or the passphrase) arrive. */
  SEALED: 'ERR_SEALED',
  /** The key manager has not been initialised (`init`), or already has been. */
  INVALID_STATE: 'ERR_INVALID_STATE',
  /** The unseal shares or passphrase did not open the root key; unseal progress was reset. */
  UNSEAL_FAILED: 'ERR_UNSEAL_FAILED',
  /** A key with that name already exists. */
  KEY_EXISTS: 'ERR_KEY_EXISTS',
  /** The key is scheduled for deletion and serves nothing until the deletion is cancelled. */
  KEY_PENDING_DELETION: 'ERR_KEY_PENDING_DELETION',
  /** The key's configuration forbids this (deletion_allowed, exportable, allow_plaintext_backup, min versions). */
  NOT_ALLOWED: 'ERR_NOT_ALLOWED',
  /** The key belongs to one of enseal's own subsystems (names starting `enseal-`); no API caller may use or change it. */
  KEY_RESERVED: 'ERR_KEY_RESERVED',
  /** The audit record could not be written, so the operation's result was withheld (fail closed). */
  AUDIT_FAILED: 'ERR_AUDIT_FAILED',
  /** The token is missing, unknown, expired or revoked, or its policies do not allow this path. */
  PERMISSION_DENIED: 'ERR_PERMISSION_DENIED',
  /** The ACME server refused a request or an order failed (the ACME problem type and detail are kept). */
  ACME_FAILED: 'ERR_ACME_FAILED',
  /** The ACME server could not be reached in time, or its TLS certificate was not trusted. */
  ACME_UNREACHABLE: 'ERR_ACME_UNREACHABLE',
  /** No usable data key: the key server gave none in time, or a remote key is not cached for a synchronous call. */
  DATA_KEY_UNAVAILABLE: 'ERR_DATA_KEY_UNAVAILABLE',
  /** A network peer could not be reached: host not found, connection refused or unreachable, or no TCP connection in time. */
  CONNECT_FAILED: 'ERR_CONNECT_FAILED',
  /** A TLS audit could not run: the port does not speak TLS, answered garbage, or accepted no protocol at all. */
  TLS_AUDIT_FAILED: 'ERR_TLS_AUDIT_FAILED',
  /** Too many failed authentications from this address, or too many requests: wait and retry. */
  RATE_LIMITED: 'ERR_RATE_LIMITED',
  /** A stored record (token, policy, key settings, backup) fails its authenticator: it was forged or modified. */
  RECORD_TAMPERED: 'ERR_RECORD_TAMPERED',
  /** A Merkle inclusion or consistency proof did not verify against the checkpoint it was checked with. */
  E2EE_PROOF_INVALID: 'ERR_E2EE_PROOF_INVALID',
  /** Two checkpoints of one transparency log cannot both be true (same size, different roots, or not consistent). */
  E2EE_SPLIT_VIEW: 'ERR_E2EE_SPLIT_VIEW',
  /** A checkpoint is older than one already verified or cosigned for its log (rollback), or the old size did not match. */
  E2EE_ROLLBACK: 'ERR_E2EE_ROLLBACK',
  /** A checkpoint lacks the log's signature or the cosignatures its witness policy requires. */
  E2EE_QUORUM: 'ERR_E2EE_QUORUM',
  /** An MLS message, commit, welcome or state was rejected by the protocol's checks; the group state is unchanged. */
  E2EE_MLS_REJECTED: 'ERR_E2EE_MLS_REJECTED',
  /** Commits this device needs to reach a message's epoch were not delivered (dropped or withheld by the relay); the group state is unchanged. */
  E2EE_MISSING_COMMITS: 'ERR_E2EE_MISSING_COMMITS',
  /** Application messages of a group member were not delivered (the sender's numbering has a hole): dropped by the relay. */
  E2EE_MISSING_MESSAGES: 'ERR_E2EE_MISSING_MESSAGES',
  /** A credential, device or key is not vouched for by the key directory (unknown, revoked or badly signed). */
  E2EE_UNTRUSTED_IDENTITY: 'ERR_E2EE_UNTRUSTED_IDENTITY',
  /** The e2ee service refused a change that conflicts with its state: a stale epoch, a user or group that exists. */
  E2EE_CONFLICT: 'ERR_E2EE_CONFLICT',
  /** The e2ee service has no such user, device, group, blob or checkpoint (or the caller may not see it). */
  E2EE_NOT_FOUND: 'ERR_E2EE_NOT_FOUND',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error enseal throws on purpose. `switch (err.code)` narrows reliably. */
export class EnsealError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'EnsealError';
  }

  /** Serialisable form for CLIs and HTTP responses; never includes `cause`, which may hold secrets. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

const DECRYPT_FAILED_MESSAGE =
  'decryption failed: the ciphertext is not authentic under any available key, or was modified';

/**
 * The one error every authentication failure becomes. The message never varies with the cause: callers
 * (and attackers) learn only that the value did not open.
 */
export function decryptFailed(): EnsealError {
  return new EnsealError(ErrorCode.DECRYPT_FAILED, DECRYPT_FAILED_MESSAGE);
}

/** A precise parse error: parsing happens before any secret is touched, so detail is safe and useful. */
export function malformed(what: string, detail: string): EnsealError {
  return new EnsealError(ErrorCode.MALFORMED, `${what}: ${detail}`);
}

export function invalidArgument(name: string, detail: string): EnsealError {
  return new EnsealError(ErrorCode.INVALID_ARGUMENT, `${name} ${detail}`);
}

export function unsupported(detail: string): EnsealError {
  return new EnsealError(ErrorCode.UNSUPPORTED, detail);
}

/** True when `err` is an EnsealError, optionally with the given code. */
export function isEnsealError(err: unknown, code?: ErrorCode): err is EnsealError {
  return err instanceof EnsealError && (code === undefined || err.code === code);
}
