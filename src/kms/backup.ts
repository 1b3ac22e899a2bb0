/**
 * Backup and restore of named keys, as age files (the format of `enseal encrypt` and the `age` CLI), so a
 * backup can be opened with standard tools in an emergency. A backup holds key material in plaintext inside
 * the age encryption; it is encrypted to X25519 recipients (keep their identities offline, ideally split
 * between people) or to a passphrase (age's scrypt recipient).
 *
 * A full backup covers every key and needs no per-key opt-in: it is the operator's disaster recovery. A
 * single-key backup needs the key's `allowPlaintextBackup`, as in Vault.
 */
import {
  EnsealError,
  ErrorCode,
  invalidArgument,
  malformed,
  utf8Decode,
  utf8Encode,
} from '../crypto/index.js';
import {
  AgeScryptIdentity,
  AgeScryptRecipient,
  ageDecrypt,
  ageEncrypt,
  type AgeIdentity,
  type AgeRecipient,
} from '../formats/index.js';
import type { CallContext, KeyManager, KeySnapshot } from './key-manager.js';
import { checkKeyName } from './names.js';

const FORMAT = 'enseal-key-backup';
const FORMAT_VERSION = 1;

/** Whom a backup is encrypted to: age recipients (`age1…` strings or objects), or a passphrase. */
export interface BackupTarget {
  recipients?: readonly (string | AgeRecipient)[];
  passphrase?: string;
  /** ASCII armor instead of binary. */
  armor?: boolean;
}

/** What opens a backup: age identities, or the passphrase. */
export interface RestoreSource {
  identities?: readonly AgeIdentity[];
  passphrase?: string;
  /** Replace keys that already exist (default: refuse). */
  force?: boolean;
}

interface BackupDocument {
  format: typeof FORMAT;
  version: typeof FORMAT_VERSION;
  createdAt: string;
  scope: 'full' | 'key';
  keys: KeySnapshot[];
}

function recipientsOf(target: BackupTarget): (string | AgeRecipient)[] {
  const recipients = [...(target.recipients ?? [])];
  if (target.passphrase !== undefined) {
    if (recipients.length > 0)
      throw invalidArgument('passphrase', 'cannot be combined with recipients (age forbids it)');
    recipients.push(new AgeScryptRecipient(target.passphrase));
  }
  if (recipients.length === 0)
    throw invalidArgument('recipients', 'or a passphrase is required to encrypt a backup');
  return recipients;
}

function identitiesOf(source: RestoreSource): AgeIdentity[] {
  const identities = [...(source.identities ?? [])];
  if (source.passphrase !== undefined) identities.push(new AgeScryptIdentity(source.passphrase));
  if (identities.length === 0)
    throw invalidArgument('identities', 'or a passphrase is required to open a backup');
  return identities;
}

function encode(doc: BackupDocument, target: BackupTarget): Uint8Array {
  const plain = utf8Encode(JSON.stringify(doc));
  try {
    return ageEncrypt(plain, recipientsOf(target), { armor: target.armor === true });
  } finally {
    plain.fill(0);
  }
}

function decode(file: Uint8Array, source: RestoreSource): BackupDocument {
  const plain = ageDecrypt(file, identitiesOf(source));
  let doc: BackupDocument;
  try {
    doc = JSON.parse(utf8Decode(plain)) as BackupDocument;
  } catch {
    throw malformed('backup', 'the decrypted content is not an enseal key backup');
  } finally {
    plain.fill(0);
  }
  if (doc?.format !== FORMAT || doc.version !== FORMAT_VERSION || !Array.isArray(doc.keys)) {
    throw malformed('backup', `not an ${FORMAT} v${FORMAT_VERSION} document`);
  }
  for (const k of doc.keys) checkKeyName(k?.policy?.name);
  return doc;
}

/**
 * Backs up every key. Returns the age file; write it somewhere other than the store.
 *
 * @example
 * ```ts no-run
 * const identity = AgeX25519Identity.generate();
 * const file = await backupAllKeys(km, { recipients: [identity.recipient.toString()] });
 * ```
 */
export async function backupAllKeys(
  km: KeyManager,
  target: BackupTarget,
  ctx: CallContext = {},
): Promise<Uint8Array> {
  recipientsOf(target);
  const keys: KeySnapshot[] = [];
  for (const name of await km.allKeyNames()) keys.push(await km.snapshotKey(name));
  const file = encode(
    { format: FORMAT, version: FORMAT_VERSION, createdAt: new Date().toISOString(), scope: 'full', keys },
    target,
  );
  await km.recordEvent({ op: 'backup', outcome: 'ok', detail: { keys: keys.length, scope: 'full' } }, ctx);
  return file;
}

/** Backs up one key; needs its `allowPlaintextBackup`. */
export async function backupKey(
  km: KeyManager,
  name: string,
  target: BackupTarget,
  ctx: CallContext = {},
): Promise<Uint8Array> {
  checkKeyName(name);
  recipientsOf(target);
  const snapshot = await km.snapshotKey(name);
  if (!snapshot.policy.allowPlaintextBackup) {
    await km.recordEvent({ op: 'backup', key: name, outcome: 'denied', code: ErrorCode.NOT_ALLOWED }, ctx);
    throw new EnsealError(
      ErrorCode.NOT_ALLOWED,
      `key "${name}" does not allow plaintext backup; set allowPlaintextBackup first`,
    );
  }
  const file = encode(
    {
      format: FORMAT,
      version: FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      scope: 'key',
      keys: [snapshot],
    },
    target,
  );
  await km.recordEvent({ op: 'backup', key: name, outcome: 'ok', detail: { scope: 'key' } }, ctx);
  return file;
}

/**
 * Restores every key of a backup (full or single-key). Keys that exist are refused unless `force`; a full
 * restore is meant for an empty, freshly initialised store. Returns the restored names.
 */
export async function restoreBackup(
  km: KeyManager,
  file: Uint8Array,
  source: RestoreSource,
  ctx: CallContext = {},
): Promise<string[]> {
  const doc = decode(file, source);
  const restored: string[] = [];
  for (const snapshot of doc.keys) {
    await km.restoreSnapshot(snapshot, { force: source.force === true }, ctx);
    restored.push(snapshot.policy.name);
  }
  return restored;
}
