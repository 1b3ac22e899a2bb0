/**
 * Backup and restore of named keys, as age files (the format of `enseal encrypt` and the `age` CLI), so a
 * backup can be opened with standard tools in an emergency. A backup holds key material in plaintext inside
 * the age encryption; it is encrypted to X25519 recipients (keep their identities offline, ideally split
 * between people) or to a passphrase (age's scrypt recipient).
 *
 * A full backup covers every key and needs no per-key opt-in: it is the operator's disaster recovery. A
 * single-key backup needs the key's `allowPlaintextBackup`, as in Vault.
 *
 * A backup carries an authenticator from the keyring that made it (format v2). A restore validates the whole
 * document before it writes anything: names, types and purposes, version bounds, material sizes. Into the
 * keyring that made it, the authenticator must verify; a backup from elsewhere (or from format v1) may only
 * create keys that do not exist yet, so no backup can replace a key's material or loosen its settings.
 */
import {
  base64Decode,
  constantTimeEqualHex,
  EnsealError,
  ErrorCode,
  hexDecode,
  invalidArgument,
  malformed,
  utf8Decode,
  utf8Encode,
  wipe,
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
import { materialLooksValid } from './key-material.js';
import { checkRestoredPolicy } from './key-policy.js';
import { checkKeyName, checkNotReserved } from './names.js';
import { recordTampered } from './record-seal.js';

const FORMAT = 'enseal-key-backup';
const FORMAT_VERSION = 2;

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
  /** Merge into keys that already exist (default: refuse); only with a backup made by this keyring. */
  force?: boolean;
  /** The one key the backup must hold (a restore at `transit/restore/<name>`). */
  expectName?: string;
}

interface BackupBody {
  createdAt: string;
  scope: 'full' | 'key';
  keys: KeySnapshot[];
}

/** v2: the body as text, with the id of the keyring that made it and that keyring's MAC over the text. */
interface BackupFile {
  format: typeof FORMAT;
  version: 2;
  keyring: string;
  mac: string;
  body: string;
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

function encode(km: KeyManager, doc: BackupBody, target: BackupTarget): Uint8Array {
  const body = JSON.stringify(doc);
  const file: BackupFile = { format: FORMAT, version: FORMAT_VERSION, ...km.backupSeal(body), body };
  const plain = utf8Encode(JSON.stringify(file));
  try {
    return ageEncrypt(plain, recipientsOf(target), { armor: target.armor === true });
  } finally {
    plain.fill(0);
  }
}

/** The backup's body, and whether this keyring made it (its authenticator verified). */
function decode(km: KeyManager, file: Uint8Array, source: RestoreSource): { doc: BackupBody; ours: boolean } {
  const plain = ageDecrypt(file, identitiesOf(source));
  let outer: Record<string, unknown>;
  try {
    outer = JSON.parse(utf8Decode(plain)) as Record<string, unknown>;
  } catch {
    throw malformed('backup', 'the decrypted content is not an enseal key backup');
  } finally {
    plain.fill(0);
  }
  if (outer?.format !== FORMAT || (outer.version !== 1 && outer.version !== 2))
    throw malformed('backup', `not an ${FORMAT} v1 or v2 document`);
  let doc: unknown = outer;
  let ours = false;
  if (outer.version === 2) {
    if (typeof outer.body !== 'string' || typeof outer.keyring !== 'string' || typeof outer.mac !== 'string')
      throw malformed('backup', 'v2 needs body, keyring and mac');
    const mine = km.backupSeal(outer.body);
    if (outer.keyring === mine.keyring) {
      if (!constantTimeEqualHex(outer.mac, hexDecode(mine.mac))) throw recordTampered('backup', 'document');
      ours = true;
    }
    try {
      doc = JSON.parse(outer.body);
    } catch {
      throw malformed('backup', 'the body is not JSON');
    }
  }
  return { doc: checkBody(doc), ours };
}

/** Validates every key of a backup body before anything is written. */
function checkBody(value: unknown): BackupBody {
  const doc = value as Partial<BackupBody> | null;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.keys))
    throw malformed('backup', 'has no key list');
  const names = new Set<string>();
  for (const k of doc.keys as unknown[]) {
    const snapshot = k as Partial<KeySnapshot> | null;
    const name = (snapshot?.policy as { name?: unknown } | undefined)?.name;
    checkKeyName(name);
    if (names.has(name)) throw malformed('backup', `holds key "${name}" twice`);
    names.add(name);
    const policy = checkRestoredPolicy(snapshot!.policy, name);
    checkVersions(snapshot!, policy.type, policy.latestVersion, name);
  }
  return doc as BackupBody;
}

function checkVersions(
  snapshot: Partial<KeySnapshot>,
  type: KeySnapshot['policy']['type'],
  latest: number,
  name: string,
): void {
  const bad = (why: string) => malformed('backup', `key "${name}": ${why}`);
  if (!Array.isArray(snapshot.versions) || snapshot.versions.length === 0) throw bad('has no versions');
  const seen = new Set<number>();
  for (const v of snapshot.versions) {
    if (typeof v !== 'object' || v === null) throw bad('a version is not an object');
    const { version, createdAt, reserved, material } = v;
    if (!Number.isSafeInteger(version) || version < 1 || version > latest || seen.has(version))
      throw bad(`version ${String(version)} is out of range or repeated`);
    seen.add(version);
    if (!Number.isSafeInteger(createdAt) || createdAt < 0)
      throw bad(`version ${version} has no creation time`);
    if (!Number.isSafeInteger(reserved) || reserved < 0)
      throw bad(`version ${version} has a bad usage count`);
    let bytes: Uint8Array;
    try {
      bytes = base64Decode(String(material));
    } catch {
      throw bad(`version ${version} material is not base64`);
    }
    const ok = materialLooksValid(type, bytes);
    wipe(bytes);
    if (!ok) throw bad(`version ${version} material has the wrong size for a ${type} key`);
  }
  if (!seen.has(latest)) throw bad('does not hold its latest version');
  if (!Array.isArray(snapshot.contexts)) throw bad('has no context list');
  for (const c of snapshot.contexts) {
    if (typeof c?.contextId !== 'string' || !/^(#index|[0-9a-f]{1,128})$/.test(c.contextId))
      throw bad('a context id is invalid');
    let secret: Uint8Array;
    try {
      secret = base64Decode(String(c.secret));
    } catch {
      throw bad('a context secret is not base64');
    }
    const ok = secret.length === 32;
    wipe(secret);
    if (!ok || !Number.isSafeInteger(c.createdAt)) throw bad('a context secret is invalid');
  }
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
  let pending = 0;
  for (const name of await km.allKeyNames()) {
    const snapshot = await km.snapshotKey(name);
    // A key pending deletion serves nothing, backups included: it leaves with its deletion.
    if (snapshot.policy.deletionScheduledFor !== undefined) pending++;
    else keys.push(snapshot);
  }
  const file = encode(km, { createdAt: new Date().toISOString(), scope: 'full', keys }, target);
  await km.recordEvent(
    {
      op: 'backup',
      outcome: 'ok',
      detail: { keys: keys.length, scope: 'full', skippedPendingDeletion: pending },
    },
    ctx,
  );
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
  try {
    checkNotReserved(name, ctx.system);
  } catch (err) {
    await km.recordEvent({ op: 'backup', key: name, outcome: 'denied', code: ErrorCode.KEY_RESERVED }, ctx);
    throw err;
  }
  recipientsOf(target);
  const snapshot = await km.snapshotKey(name);
  if (snapshot.policy.deletionScheduledFor !== undefined) {
    throw new EnsealError(
      ErrorCode.KEY_PENDING_DELETION,
      `key "${name}" is scheduled for deletion and serves nothing, backups included; cancel the deletion first`,
    );
  }
  if (!snapshot.policy.allowPlaintextBackup) {
    await km.recordEvent({ op: 'backup', key: name, outcome: 'denied', code: ErrorCode.NOT_ALLOWED }, ctx);
    throw new EnsealError(
      ErrorCode.NOT_ALLOWED,
      `key "${name}" does not allow plaintext backup; set allowPlaintextBackup first`,
    );
  }
  const file = encode(km, { createdAt: new Date().toISOString(), scope: 'key', keys: [snapshot] }, target);
  await km.recordEvent({ op: 'backup', key: name, outcome: 'ok', detail: { scope: 'key' } }, ctx);
  return file;
}

/**
 * Restores every key of a backup (full or single-key), after validating all of it. A key that exists is
 * refused unless `force`, and even then only a backup made by this keyring may merge into it (missing
 * versions are added; nothing is replaced or loosened). Returns the restored names.
 */
export async function restoreBackup(
  km: KeyManager,
  file: Uint8Array,
  source: RestoreSource,
  ctx: CallContext = {},
): Promise<string[]> {
  const { doc, ours } = decode(km, file, source);
  const names = doc.keys.map((k) => k.policy.name);
  if (source.expectName !== undefined && (names.length !== 1 || names[0] !== source.expectName))
    throw invalidArgument('backup', `holds ${names.join(', ') || 'no key'}, not "${source.expectName}"`);
  const existing = new Set(await km.allKeyNames());
  for (const name of names) {
    if (!existing.has(name)) continue;
    if (source.force !== true)
      throw new EnsealError(
        ErrorCode.KEY_EXISTS,
        `a key named "${name}" already exists; pass force to merge into it`,
      );
    if (!ours)
      throw new EnsealError(
        ErrorCode.NOT_ALLOWED,
        `key "${name}" exists; only a backup made by this keyring may be merged into it (this one was not)`,
      );
  }
  for (const snapshot of doc.keys) {
    await km.restoreSnapshot(snapshot, { force: source.force === true, authenticated: ours }, ctx);
  }
  await km.recordEvent(
    { op: 'restore', outcome: 'ok', detail: { keys: names.length, authenticated: ours } },
    ctx,
  );
  return names;
}
