/**
 * A named key's configuration (what Vault calls its policy) and the rules that govern changing it. The
 * document is stored as JSON next to the wrapped versions; it holds no key material.
 */
import { EnsealError, ErrorCode, invalidArgument, malformed } from '../crypto/index.js';
import {
  DEFAULT_ROTATION_PERIOD_MS,
  isKeyType,
  KEY_TYPES,
  keyTypeInfo,
  MIN_ROTATION_PERIOD_MS,
  type KeyPurpose,
  type KeyType,
} from './key-types.js';
import { checkVersion } from './names.js';

export interface KeyPolicy {
  readonly name: string;
  readonly type: KeyType;
  readonly purpose: KeyPurpose;
  /** Derive a distinct key per caller-supplied context (per tenant, per data subject). */
  readonly derived: boolean;
  readonly exportable: boolean;
  readonly allowPlaintextBackup: boolean;
  readonly deletionAllowed: boolean;
  readonly latestVersion: number;
  /** Versions below this cannot decrypt, verify or be used at all (still stored until trimmed). */
  readonly minDecryptionVersion: number;
  /** 0 means "always the latest"; otherwise encryption uses this version or newer. */
  readonly minEncryptionVersion: number;
  /** Versions below this were trimmed and are gone for good. */
  readonly minAvailableVersion: number;
  /** 0 turns automatic rotation off. */
  readonly autoRotatePeriodMs: number;
  /** Rotate automatically once a version has reserved this many encryptions (0: no bound). */
  readonly maxEncryptionsPerVersion: number;
  readonly hmacKeyBytes?: number;
  readonly createdAt: number;
  readonly lastRotatedAt: number;
  /** When set, the key serves nothing and is purged at this time unless the deletion is cancelled. */
  readonly deletionScheduledFor?: number;
}

export interface CreateKeyOptions {
  type?: KeyType;
  derived?: boolean;
  exportable?: boolean;
  allowPlaintextBackup?: boolean;
  deletionAllowed?: boolean;
  /** Milliseconds; 0 turns automatic rotation off; default by purpose (encryption/MAC 365 days, signing 90). */
  autoRotatePeriodMs?: number;
  /** HMAC key size in bytes for `hmac` keys (32–512). */
  hmacKeyBytes?: number;
}

/** The changeable part of a policy. */
export interface KeyConfigUpdate {
  minDecryptionVersion?: number;
  minEncryptionVersion?: number;
  deletionAllowed?: boolean;
  /** One-way: once true it cannot go back to false. */
  exportable?: boolean;
  /** One-way: once true it cannot go back to false. */
  allowPlaintextBackup?: boolean;
  autoRotatePeriodMs?: number;
}

function checkRotationPeriod(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument('autoRotatePeriodMs', 'must be a non-negative integer of milliseconds');
  }
  if (value !== 0 && value < MIN_ROTATION_PERIOD_MS) {
    throw invalidArgument('autoRotatePeriodMs', 'must be 0 (off) or at least one hour');
  }
  return value;
}

function checkFlag(what: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalidArgument(what, 'must be a boolean');
  return value;
}

/** The policy of a newly created key. */
export function newPolicy(name: string, options: CreateKeyOptions, now: number): KeyPolicy {
  const type = options.type ?? 'aes256-gcm96';
  const info = keyTypeInfo(type);
  const derived = checkFlag('derived', options.derived);
  if (derived && info.purpose !== 'encrypt') {
    throw invalidArgument('derived', 'is supported only for encryption keys');
  }
  let hmacKeyBytes: number | undefined;
  if (options.hmacKeyBytes !== undefined) {
    if (type !== 'hmac') throw invalidArgument('hmacKeyBytes', 'applies only to hmac keys');
    const n = options.hmacKeyBytes;
    if (!Number.isInteger(n) || n < 32 || n > 512) throw invalidArgument('hmacKeyBytes', 'must be 32-512');
    hmacKeyBytes = n;
  }
  return {
    name,
    type,
    purpose: info.purpose,
    derived,
    exportable: checkFlag('exportable', options.exportable),
    allowPlaintextBackup: checkFlag('allowPlaintextBackup', options.allowPlaintextBackup),
    deletionAllowed: checkFlag('deletionAllowed', options.deletionAllowed),
    latestVersion: 1,
    minDecryptionVersion: 1,
    minEncryptionVersion: 0,
    minAvailableVersion: 1,
    autoRotatePeriodMs: checkRotationPeriod(
      options.autoRotatePeriodMs ?? DEFAULT_ROTATION_PERIOD_MS[info.purpose],
    ),
    maxEncryptionsPerVersion: info.maxEncryptions ?? 0,
    ...(hmacKeyBytes === undefined ? {} : { hmacKeyBytes }),
    createdAt: now,
    lastRotatedAt: now,
  };
}

function notAllowed(message: string): EnsealError {
  return new EnsealError(ErrorCode.NOT_ALLOWED, message);
}

/** Applies a configuration change, enforcing Vault's invariants and the one-way switches. */
export function updatePolicy(policy: KeyPolicy, update: KeyConfigUpdate): KeyPolicy {
  const next = { ...policy };
  if (update.minDecryptionVersion !== undefined) {
    checkVersion('minDecryptionVersion', update.minDecryptionVersion);
    if (update.minDecryptionVersion > policy.latestVersion) {
      throw invalidArgument(
        'minDecryptionVersion',
        `cannot exceed the latest version (${policy.latestVersion})`,
      );
    }
    if (update.minDecryptionVersion < policy.minAvailableVersion) {
      throw notAllowed(`versions below ${policy.minAvailableVersion} were trimmed and cannot be re-enabled`);
    }
    next.minDecryptionVersion = update.minDecryptionVersion;
  }
  if (update.minEncryptionVersion !== undefined) {
    checkVersion('minEncryptionVersion', update.minEncryptionVersion, true);
    if (update.minEncryptionVersion > policy.latestVersion) {
      throw invalidArgument(
        'minEncryptionVersion',
        `cannot exceed the latest version (${policy.latestVersion})`,
      );
    }
    next.minEncryptionVersion = update.minEncryptionVersion;
  }
  if (next.minEncryptionVersion !== 0 && next.minEncryptionVersion < next.minDecryptionVersion) {
    throw invalidArgument('minEncryptionVersion', 'must be 0 or at least minDecryptionVersion');
  }
  if (update.deletionAllowed !== undefined)
    next.deletionAllowed = checkFlag('deletionAllowed', update.deletionAllowed);
  for (const flag of ['exportable', 'allowPlaintextBackup'] as const) {
    const value = update[flag];
    if (value === undefined) continue;
    if (checkFlag(flag, value) === false && policy[flag]) {
      throw notAllowed(`${flag} is a one-way switch: once enabled it cannot be disabled`);
    }
    next[flag] = value;
  }
  if (update.autoRotatePeriodMs !== undefined)
    next.autoRotatePeriodMs = checkRotationPeriod(update.autoRotatePeriodMs);
  return next;
}

/** When automatic rotation is next due, or undefined when it is off. */
export function nextRotationAt(policy: KeyPolicy): number | undefined {
  return policy.autoRotatePeriodMs === 0 ? undefined : policy.lastRotatedAt + policy.autoRotatePeriodMs;
}

/**
 * The version an encryption or signature uses: the latest unless the caller asks for an older one, which
 * must not be below `minEncryptionVersion` (nor below `minDecryptionVersion`, or it could not be read back).
 */
export function encryptionVersion(policy: KeyPolicy, requested?: number): number {
  if (requested === undefined || requested === 0) return policy.latestVersion;
  checkVersion('keyVersion', requested);
  const floor = Math.max(policy.minEncryptionVersion, policy.minDecryptionVersion);
  if (requested > policy.latestVersion || requested < floor) {
    throw new EnsealError(
      ErrorCode.NOT_ALLOWED,
      `keyVersion must be between ${floor} and ${policy.latestVersion} for key "${policy.name}"`,
    );
  }
  return requested;
}

export function parsePolicy(doc: string): KeyPolicy {
  return JSON.parse(doc) as KeyPolicy;
}

/**
 * Validates a policy that came from outside the store (a backup): every field present with its type and
 * range, the purpose the one its type has, and the version bounds consistent. Throws MALFORMED naming the
 * first bad field.
 */
export function checkRestoredPolicy(value: unknown, name: string): KeyPolicy {
  const bad = (field: string, why: string) => malformed('backup', `key "${name}": ${field} ${why}`);
  if (typeof value !== 'object' || value === null) throw bad('policy', 'is missing');
  const p = value as Record<string, unknown>;
  if (p.name !== name) throw bad('name', 'does not match');
  if (!isKeyType(p.type)) throw bad('type', 'is not a known key type');
  if (p.purpose !== KEY_TYPES[p.type].purpose) throw bad('purpose', `is not that of a ${p.type} key`);
  for (const f of ['derived', 'exportable', 'allowPlaintextBackup', 'deletionAllowed'])
    if (typeof p[f] !== 'boolean') throw bad(f, 'must be a boolean');
  if (p.derived === true && p.purpose !== 'encrypt') throw bad('derived', 'is only for encryption keys');
  const int = (f: string, min: number) => {
    const v = p[f];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      throw bad(f, `must be an integer ≥ ${min}`);
    return v;
  };
  const latest = int('latestVersion', 1);
  const minDec = int('minDecryptionVersion', 1);
  const minEnc = int('minEncryptionVersion', 0);
  const minAvail = int('minAvailableVersion', 1);
  if (minDec > latest || minEnc > latest || minAvail > minDec)
    throw bad('versions', 'are inconsistent (min_available ≤ min_decryption ≤ latest)');
  int('autoRotatePeriodMs', 0);
  int('maxEncryptionsPerVersion', 0);
  int('createdAt', 0);
  int('lastRotatedAt', 0);
  if (p.hmacKeyBytes !== undefined) {
    const n = int('hmacKeyBytes', 32);
    if (p.type !== 'hmac' || n > 512) throw bad('hmacKeyBytes', 'must be 32-512 and only for hmac keys');
  }
  if (p.deletionScheduledFor !== undefined) int('deletionScheduledFor', 0);
  return p as unknown as KeyPolicy;
}
