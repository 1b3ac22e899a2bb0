/**
 * Validation of the names and numbers callers hand the key manager. Key names end up in URL paths, file
 * names of backups and audit entries, so they are restricted to a small safe alphabet: no separators, no
 * dot segments, no control or look-alike characters.
 */
import { EnsealError, ErrorCode, base64Decode, invalidArgument } from '../crypto/index.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Throws INVALID_ARGUMENT unless `name` is 1–128 of [A-Za-z0-9_.-], starting with a letter or digit. */
export function checkKeyName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name) || name.includes('..')) {
    throw invalidArgument(
      'key name',
      'must be 1-128 characters of A-Z a-z 0-9 _ . -, start with a letter or digit, and not contain ".."',
    );
  }
}

/**
 * Key names that belong to enseal's own subsystems (the e2ee transparency log's signing key is
 * `enseal-e2ee-log`). Whoever could sign with that key could forge the log's checkpoints, so no API caller,
 * root included, may create, read, use, change, back up or restore a key under this prefix; only a call
 * marked {@link SYSTEM_CALL} may. Matched without regard to case so that a look-alike cannot sit beside it.
 */
export const RESERVED_KEY_PREFIX = 'enseal-';

/** Whether `name` is under {@link RESERVED_KEY_PREFIX}. */
export function isReservedKeyName(name: string): boolean {
  return name.slice(0, RESERVED_KEY_PREFIX.length).toLowerCase() === RESERVED_KEY_PREFIX;
}

/**
 * Marks a call made by enseal's own code for one of its reserved keys. It is a value held in the process,
 * never data: nothing a request carries can become it.
 */
export const SYSTEM_CALL: unique symbol = Symbol('enseal.system-call');

/** Throws KEY_RESERVED when `name` is reserved and the call is not marked {@link SYSTEM_CALL}. */
export function checkNotReserved(name: string, system: symbol | undefined): void {
  if (system !== SYSTEM_CALL && isReservedKeyName(name)) {
    throw new EnsealError(
      ErrorCode.KEY_RESERVED,
      `key "${name}" is reserved for enseal's own use (names starting "${RESERVED_KEY_PREFIX}"); pick another name`,
    );
  }
}

/** Throws INVALID_ARGUMENT unless `value` is a version number (a positive safe integer). */
export function checkVersion(what: string, value: unknown, allowZero = false): asserts value is number {
  const min = allowZero ? 0 : 1;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalidArgument(what, `must be an integer ≥ ${min}`);
  }
}

/** Largest derivation context accepted, in bytes. */
export const MAX_CONTEXT_BYTES = 1024;

/** Decodes a base64 context (as Vault clients send it) or accepts bytes; 1–1024 bytes. */
export function decodeContext(context: string | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (typeof context === 'string') {
    try {
      bytes = base64Decode(context);
    } catch {
      throw invalidArgument('context', 'must be base64');
    }
  } else if (context instanceof Uint8Array) {
    bytes = context;
  } else {
    throw invalidArgument('context', 'must be base64 text or bytes');
  }
  if (bytes.length === 0 || bytes.length > MAX_CONTEXT_BYTES) {
    throw invalidArgument('context', `must be 1-${MAX_CONTEXT_BYTES} bytes`);
  }
  return bytes;
}

/** Accepts base64 text or bytes for a plaintext, associated data or message. */
export function decodeBytes(what: string, value: string | Uint8Array, maxBytes: number): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === 'string') {
    try {
      bytes = base64Decode(value);
    } catch {
      throw invalidArgument(what, 'must be base64');
    }
  } else if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    throw invalidArgument(what, 'must be base64 text or bytes');
  }
  if (bytes.length > maxBytes) throw invalidArgument(what, `must be at most ${maxBytes} bytes`);
  return bytes;
}
