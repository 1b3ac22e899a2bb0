/**
 * The key manager: named keys with versions, purposes and rotation policies, kept in a store under a
 * keyring that only an unsealed node can open. Every call is checked against the seal state and the key's
 * policy, recorded in the audit log before its result is returned, and counted by the usage monitor.
 *
 * One KeyManager per process; several processes (nodes) may share a PostgreSQL store. Nodes cache keys for
 * `cacheTtlMs` (default one second), so a configuration change made on one node reaches the others within
 * that time; writes (rotation, reservations, deletion) always go through store transactions with row locks.
 */
import {
  base64Decode,
  base64Encode,
  constantTimeEqual,
  decryptFailed,
  hkdf,
  EnsealError,
  ErrorCode,
  hexEncode,
  hmac,
  invalidArgument,
  isEnsealError,
  randomBytes,
  utf8Decode,
  utf8Encode,
  wipe,
  type RsaSignatureScheme,
} from '../crypto/index.js';
import type { KeyRow, Store, StoreTransaction } from '../store/index.js';
import {
  AuditLog,
  type AuditEvent,
  type AuditOutcome,
  type AuditVerifyResult,
  type AuditEntry,
  type AuditCheckpoint,
} from './audit-log.js';
import { BatchPool, type PoolItem } from './batch-pool.js';
import { formatVersioned, parseVersioned } from './ciphertext.js';
import {
  decryptWith,
  deriveContextKey,
  encryptWith,
  generateMaterial,
  macEquals,
  macWith,
  publicKeyOf,
  signWith,
  verifyWith,
} from './key-material.js';
import {
  encryptionVersion,
  newPolicy,
  nextRotationAt,
  parsePolicy,
  updatePolicy,
  type CreateKeyOptions,
  type KeyConfigUpdate,
  type KeyPolicy,
} from './key-policy.js';
import type { KeyPurpose, KeyType } from './key-types.js';
import type { Keyring } from './keyring.js';
import { Fernet } from '../formats/index.js';
import {
  SYSTEM_CALL,
  checkKeyName,
  checkNotReserved,
  checkVersion,
  decodeContext,
  isReservedKeyName,
} from './names.js';
import {
  readSealedKeyring,
  SealState,
  writeSealedKeyring,
  type InitOptions,
  type InitResult,
  type RootKeyProof,
  type SealStatus,
} from './seal.js';
import {
  UsageMonitor,
  type UsageCounter,
  type UsageMonitorOptions,
  type UsageWarning,
  type UsageWindow,
} from './usage-monitor.js';
import { RECORD_KEY_LABEL, RecordAuthenticator, recordTampered } from './record-seal.js';

const DAY = 24 * 60 * 60 * 1000;
/** Default waiting period before a scheduled deletion takes effect (AWS KMS's minimum). */
export const DEFAULT_DELETION_WAIT_MS = 7 * DAY;
/** Default largest plaintext accepted (Vault's request limit). */
export const DEFAULT_MAX_PLAINTEXT_BYTES = 32 * 1024 * 1024;
const INDEX_CONTEXT_ID = '#index';
const MAX_CACHED_CONTEXTS = 10_000;
/** Largest batch accepted in one call. */
export const MAX_BATCH_ITEMS = 10_000;

/** What `exportKey` can return, as Vault's export types, and the purpose each needs. */
export type ExportKind = 'encryption-key' | 'signing-key' | 'hmac-key' | 'public-key';
const EXPORT_PURPOSE: Readonly<Record<ExportKind, KeyPurpose>> = {
  'encryption-key': 'encrypt',
  'signing-key': 'sign',
  'hmac-key': 'mac',
  'public-key': 'sign',
};

/** The metrics label of requests that named no existing key. */
const UNKNOWN_KEY = '(unknown)';

/** Meta prefixes of the server's right-conferring records, authenticated by {@link KeyManager.records}. */
const LEGACY_RECORD_PREFIXES = ['token/', 'policy/'] as const;

export interface KeyManagerOptions {
  store: Store;
  /** Milliseconds since the epoch; injectable for tests of rotation and deletion schedules. */
  clock?: () => number;
  /** How long a node trusts its cached copy of a key (default 1000 ms). */
  cacheTtlMs?: number;
  /** Encryptions reserved per store round trip (default 4096). */
  reservationBlock?: number;
  maxPlaintextBytes?: number;
  /** Shortest deletion waiting period callers may ask for (default 7 days). */
  minDeletionWaitMs?: number;
  monitor?: UsageMonitorOptions;
  /** Called when a stored record fails its authenticator (a store writer forged or altered it). */
  onTampered?: (kind: string, name: string) => void;
  /**
   * Worker threads for the AEAD work of large encrypt/decrypt batches (default 0: batches run in the calling
   * thread). `enseal serve` sizes it to the cores. Keys reach the workers only in memory.
   */
  batchWorkers?: number;
  /** Batches of at least this many items go to the workers (default 512, where they start to pay here). */
  batchWorkerThreshold?: number;
}

/** Who is calling; recorded in the audit log and the usage counters. */
export interface CallContext {
  caller?: string;
  /** Set only by enseal's own subsystems, for the reserved keys they own (see `RESERVED_KEY_PREFIX`). */
  system?: typeof SYSTEM_CALL;
}

export interface EncryptOptions {
  /** Derivation context (derived keys only): base64 text or bytes. */
  context?: string | Uint8Array;
  /** Authenticated but not encrypted data that decryption must present again. */
  associatedData?: Uint8Array;
  /** Encrypt with this version instead of the latest (never below minEncryptionVersion). */
  keyVersion?: number;
}

export interface DecryptOptions {
  context?: string | Uint8Array;
  associatedData?: Uint8Array;
}

export interface DataKeyOptions {
  /** 128, 256 (default) or 512. */
  bits?: 128 | 256 | 512;
  context?: string | Uint8Array;
}

export interface SignOptions {
  keyVersion?: number;
  /** RSA only: `pss` (default) or `pkcs1v15`. */
  scheme?: RsaSignatureScheme;
}

/** What `readKey` shows: the policy, versions and public keys; never private or secret material. */
export interface KeyInfo extends KeyPolicy {
  readonly versions: {
    version: number;
    createdAt: string;
    encryptionsReserved: number;
    publicKey?: string;
  }[];
  /** ISO time of the next automatic rotation, or null when rotation is off. */
  readonly nextRotation: string | null;
  readonly deletionScheduledAt: string | null;
}

/** One item's outcome in a batch: a value, or the error that item alone failed with. */
export type BatchResult<T> =
  { value: T; version: number; error?: undefined } | { error: Error; value?: undefined };

export interface ScheduledRun {
  readonly rotated: string[];
  readonly purged: string[];
}

interface Usage {
  next: number;
  end: number;
  exhausted: boolean;
  refill?: Promise<void>;
}

interface ContextEntry {
  readonly secret: Uint8Array;
  readonly derived: Map<number, Uint8Array>;
}

interface CachedKey {
  readonly policy: KeyPolicy;
  readonly material: Map<number, Uint8Array>;
  readonly publicKeys: Map<number, Uint8Array>;
  readonly created: Map<number, number>;
  readonly reserved: Map<number, number>;
  readonly usage: Map<number, Usage>;
  readonly contexts: Map<string, ContextEntry>;
  readonly indexKey?: Uint8Array;
  readonly loadedAt: number;
  /** Fernet instances for the seeds' routes, built once per load (HKDF per request would dominate). */
  fernet?: { encrypt: Fernet; decrypt: Fernet };
}

function sealedError(): EnsealError {
  return new EnsealError(ErrorCode.SEALED, 'the key manager is sealed; unseal it before use');
}

function notFound(name: string): EnsealError {
  return new EnsealError(ErrorCode.KEY_NOT_FOUND, `no key named "${name}"`);
}

function wrongPurpose(policy: KeyPolicy, wanted: KeyPurpose): EnsealError {
  return new EnsealError(
    ErrorCode.KEY_USAGE,
    `key "${policy.name}" is a ${policy.type} ${policy.purpose} key; it cannot be used to ${wanted}`,
  );
}

/** The associated data that binds a wrapped version to its identity, so blobs cannot be swapped. */
function versionLabel(name: string, version: number, type: KeyType): Uint8Array {
  return utf8Encode(`enseal/key-version/v1\u0000${name}\u0000${version}\u0000${type}`);
}

function contextLabel(name: string, contextId: string): Uint8Array {
  return utf8Encode(`enseal/key-context/v1\u0000${name}\u0000${contextId}`);
}

/** Which audit outcome an error is: refusals by policy are "denied", everything else "error". */
function outcomeOf(err: unknown): AuditOutcome {
  if (!(err instanceof EnsealError)) return 'error';
  switch (err.code) {
    case ErrorCode.KEY_USAGE:
    case ErrorCode.KEY_NOT_FOUND:
    case ErrorCode.NOT_ALLOWED:
    case ErrorCode.KEY_PENDING_DELETION:
    case ErrorCode.EXPORT_FORBIDDEN:
    case ErrorCode.INVALID_ARGUMENT:
    case ErrorCode.KEY_EXISTS:
    case ErrorCode.KEY_RESERVED:
      return 'denied';
    default:
      return 'error';
  }
}

export class KeyManager {
  /** The record authenticator of the current keyring, with its key (wiped on seal or keyring change). */
  #recordAuth: { keyring: Keyring; key: Uint8Array; auth: RecordAuthenticator } | undefined;
  readonly #store: Store;
  readonly #clock: () => number;
  readonly #ttl: number;
  readonly #block: number;
  readonly #maxPlaintext: number;
  readonly #minDeletionWait: number;
  readonly #seal: SealState;
  readonly #monitor: UsageMonitor;
  #audit: AuditLog | undefined;
  readonly #cache = new Map<string, CachedKey>();
  readonly #loading = new Map<string, Promise<CachedKey>>();
  readonly #onTampered: ((kind: string, name: string) => void) | undefined;
  #tampered = 0;
  readonly #pool: BatchPool | undefined;
  readonly #poolThreshold: number;

  private constructor(options: KeyManagerOptions) {
    this.#store = options.store;
    this.#clock = options.clock ?? Date.now;
    this.#ttl = options.cacheTtlMs ?? 1000;
    this.#block = options.reservationBlock ?? 4096;
    this.#maxPlaintext = options.maxPlaintextBytes ?? DEFAULT_MAX_PLAINTEXT_BYTES;
    this.#minDeletionWait = options.minDeletionWaitMs ?? DEFAULT_DELETION_WAIT_MS;
    this.#seal = new SealState(this.#store, this.#clock);
    this.#monitor = new UsageMonitor(options.monitor);
    this.#onTampered = options.onTampered;
    const workers = Math.trunc(options.batchWorkers ?? 0);
    this.#pool = workers > 0 ? new BatchPool({ size: workers }) : undefined;
    this.#poolThreshold = Math.max(1, Math.trunc(options.batchWorkerThreshold ?? 512));
  }

  /**
   * Opens a key manager on a store, applying pending schema migrations. It starts sealed.
   *
   * @example
   * ```ts
   * const km = await KeyManager.open({ store: SqliteStore.open({ path: ':memory:' }) });
   * const { shares } = await km.init({ shares: 5, threshold: 3 });
   * for (const share of shares!.slice(0, 3)) await km.unseal(share);
   * await km.createKey('orders');
   * const ct = await km.encrypt('orders', utf8Encode('4111 1111 1111 1111'));
   * utf8Decode(await km.decrypt('orders', ct)); // '4111 1111 1111 1111'
   * await km.close();
   * ```
   */
  static async open(options: KeyManagerOptions): Promise<KeyManager> {
    await options.store.migrate();
    return new KeyManager(options);
  }

  // ---------------------------------------------------------------- seal

  status(): Promise<SealStatus> {
    return this.#seal.status();
  }

  /** True until this node is unsealed (and again after it seals): the HTTP front answers 503 meanwhile. */
  get sealed(): boolean {
    return this.#seal.keyring === undefined || this.#audit === undefined;
  }

  /**
   * Creates the root key and keyring. Shamir shares (if any) are returned once and never stored. The audit
   * log starts with an `init` entry (so an initialised store always has a head checkpoint), and `seed` may
   * write the first authenticated records (the root token) in the same transaction.
   */
  init(
    options: InitOptions = {},
    seed?: (tx: StoreTransaction, records: RecordAuthenticator) => Promise<AuditEvent['detail']>,
  ): Promise<InitResult> {
    return this.#seal.init(options, async (tx, keyring) => {
      const detail = await seed?.(tx, this.#recordsOf(keyring));
      await this.#auditFor(keyring).appendInTransaction(tx, [
        { op: 'init', caller: 'local', outcome: 'ok', ...(detail ? { detail } : {}) },
      ]);
    });
  }

  /** Adds one unseal share; returns progress. Unseals when the threshold is reached. */
  async unseal(share: string, ctx: CallContext = {}): Promise<SealStatus> {
    return this.#afterUnseal(await this.#seal.submitShare(share), ctx);
  }

  async unsealWithPassphrase(passphrase: string, ctx: CallContext = {}): Promise<SealStatus> {
    return this.#afterUnseal(await this.#seal.unsealWithPassphrase(passphrase), ctx);
  }

  /** Development only: unseals from the dev key file named at init. */
  async unsealDev(ctx: CallContext = {}): Promise<SealStatus> {
    return this.#afterUnseal(await this.#seal.unsealDev(), ctx);
  }

  async #afterUnseal(status: SealStatus, ctx: CallContext): Promise<SealStatus> {
    if (status.sealed || this.#audit !== undefined) return status;
    if (!this.#seal.keyring!.recordsAuthenticated) await this.#authenticateLegacyRecords();
    this.#audit = this.#auditFor(this.#seal.keyring!);
    const failed = this.#seal.failedAttempts;
    this.#seal.failedAttempts = 0;
    await this.#audit.record({
      op: 'unseal',
      caller: ctx.caller ?? 'local',
      outcome: 'ok',
      detail: { failedAttemptsWhileSealed: failed },
    });
    await this.#raiseAuditAnchor();
    return status;
  }

  /**
   * A store written before records were authenticated: seal every token, policy and key-settings record
   * once, then mark the keyring so that from now on an unauthenticated record is refused as tampered.
   */
  async #authenticateLegacyRecords(): Promise<void> {
    const root = this.#seal.rootKey!;
    const sealed = await this.#store.transaction(async (tx) => {
      const keyring = this.#seal.keyringFor(await readSealedKeyring(tx, 'update'));
      if (keyring.recordsAuthenticated) return undefined;
      const records = this.#recordsOf(keyring);
      for (const prefix of LEGACY_RECORD_PREFIXES) {
        for (const key of await tx.listMeta(prefix)) {
          const raw = utf8Decode((await tx.getMeta(key))!);
          if (RecordAuthenticator.isSealed(raw)) continue;
          await tx.putMeta(key, utf8Encode(records.seal(prefix.slice(0, -1), key.slice(prefix.length), raw)));
        }
      }
      for (const name of await tx.listKeys({ limit: Number.MAX_SAFE_INTEGER })) {
        const row = (await tx.getKey(name, { forUpdate: true }))!;
        if (RecordAuthenticator.isSealed(row.doc)) continue;
        await tx.updateKey({ ...row, doc: records.seal('key-settings', name, row.doc) });
      }
      const next = keyring.withRecordsAuthenticated().seal(root);
      await writeSealedKeyring(tx, next);
      return next;
    });
    if (sealed) this.#seal.keyringFor(sealed);
  }

  #auditFor(keyring: Keyring): AuditLog {
    return new AuditLog(
      this.#store,
      { macKey: keyring.auditKey, hashKey: keyring.subkey('enseal/audit-hash/v1') },
      this.#clock,
    );
  }

  /** Wipes every unwrapped key from memory; the node serves nothing until unsealed again. */
  async seal(ctx: CallContext = {}): Promise<void> {
    const audit = this.#audit;
    if (audit !== undefined) {
      await audit.record({ op: 'seal', caller: ctx.caller ?? 'local', outcome: 'ok' }).catch(() => undefined);
      await this.#raiseAuditAnchor().catch(() => undefined);
    }
    this.#audit = undefined;
    for (const key of this.#cache.values()) this.#wipeCached(key);
    this.#cache.clear();
    this.#recordAuth?.key.fill(0);
    this.#recordAuth = undefined;
    this.#seal.seal();
  }

  #wipeCached(key: CachedKey): void {
    for (const m of key.material.values()) wipe(m);
    for (const c of key.contexts.values()) {
      wipe(c.secret);
      for (const d of c.derived.values()) wipe(d);
    }
    if (key.indexKey) wipe(key.indexKey);
  }

  /** New unseal shares (or passphrase) for the same root key; needs the current ones. */
  async rekey(proof: RootKeyProof, next: InitOptions, ctx: CallContext = {}): Promise<InitResult> {
    this.#requireUnsealed();
    const result = await this.#seal.rekey(proof, next);
    await this.#record({
      op: 'rekey',
      caller: ctx.caller ?? 'local',
      outcome: 'ok',
      detail: { type: result.type },
    });
    return result;
  }

  /** A new root key; the keyring is re-sealed under it online. Needs the unseal shares (or passphrase). */
  async rotateRootKey(proof: RootKeyProof, ctx: CallContext = {}): Promise<void> {
    this.#requireUnsealed();
    await this.#seal.rotateRootKey(proof);
    await this.#record({ op: 'root.rotate', caller: ctx.caller ?? 'local', outcome: 'ok' });
  }

  /**
   * Adds a keyring term and re-wraps every stored key version and context secret under it, in batches,
   * online. Each batch commits on its own; a crash leaves some blobs under the old term, which the keyring
   * keeps until none remain, so everything stays readable and a second call finishes the job.
   */
  async rotateKeyring(ctx: CallContext = {}, batchSize = 100): Promise<{ term: number; rewrapped: number }> {
    this.#requireUnsealed();
    const root = this.#seal.rootKey!;
    const started = await this.#store.transaction(async (tx) => {
      const stored = await this.#keyringIn(tx, 'update');
      if (stored.terms.length > 1) return stored; // an earlier rotation did not finish: finish it
      const next = stored.withNewTerm(this.#clock());
      const sealed = next.seal(root);
      await writeSealedKeyring(tx, sealed);
      return sealed;
    });
    const current = started instanceof Uint8Array ? this.#seal.keyringFor(started) : started;
    let rewrapped = 0;
    for (;;) {
      const n = await this.#store.transaction(async (tx) => {
        const keyring = await this.#keyringIn(tx);
        const refs = await tx.listWrappedNotInTerm(keyring.current, batchSize);
        for (const ref of refs) await this.#rewrapRef(tx, keyring, ref);
        return refs.length;
      });
      rewrapped += n;
      if (n < batchSize) break;
    }
    // Drop old terms only when nothing uses them. The exclusive lock on the keyring row waits for every
    // transaction that is wrapping under the keyring it read (they hold a share lock), so no node can still
    // be writing a blob under a term that is about to disappear.
    const finished = await this.#store.transaction(async (tx) => {
      const stored = await this.#keyringIn(tx, 'update');
      if ((await tx.listWrappedNotInTerm(stored.current, 1)).length > 0) return undefined;
      const sealed = stored.withoutOldTerms().seal(root);
      await writeSealedKeyring(tx, sealed);
      return sealed;
    });
    if (finished) this.#seal.keyringFor(finished);
    await this.#record({
      op: 'keyring.rotate',
      caller: ctx.caller ?? 'local',
      outcome: 'ok',
      detail: { term: current.current, rewrapped, finished: finished !== undefined },
    });
    return { term: current.current, rewrapped };
  }

  /**
   * The keyring as stored, read under a lock inside `tx`: every transaction that wraps key material goes
   * through here, so it wraps under the current term even if another node rotated the keyring a moment ago.
   */
  async #keyringIn(tx: StoreTransaction, lock: 'share' | 'update' = 'share'): Promise<Keyring> {
    this.#requireUnsealed();
    const sealed = await readSealedKeyring(tx, lock);
    try {
      return this.#seal.keyringFor(sealed);
    } catch (err) {
      if (err instanceof EnsealError && err.code === ErrorCode.DECRYPT_FAILED) {
        // Another node rotated the root key: this node's root key is stale. Seal once the transaction ends.
        setImmediate(() => void this.seal({ caller: 'system:root-key-changed' }));
        throw sealedError();
      }
      throw err;
    }
  }

  async #rewrapRef(
    tx: StoreTransaction,
    keyring: Keyring,
    ref: Awaited<ReturnType<StoreTransaction['listWrappedNotInTerm']>>[number],
  ): Promise<void> {
    if (ref.kind === 'version') {
      const row = await tx.getVersion(ref.name, ref.version);
      const keyRow = await tx.getKey(ref.name);
      if (row === undefined || keyRow === undefined) return;
      const label = versionLabel(ref.name, ref.version, this.#openDoc(keyring, keyRow).type);
      const secret = keyring.unwrap(row.term, label, row.wrapped);
      const { term, wrapped } = keyring.wrap(label, secret);
      wipe(secret);
      await tx.rewrapVersion(ref.name, ref.version, term, wrapped);
    } else {
      const row = await tx.getContext(ref.name, ref.contextId);
      if (row === undefined) return;
      const label = contextLabel(ref.name, ref.contextId);
      const secret = keyring.unwrap(row.term, label, row.wrapped);
      const { term, wrapped } = keyring.wrap(label, secret);
      wipe(secret);
      await tx.rewrapContext(ref.name, ref.contextId, term, wrapped);
    }
  }

  #requireUnsealed(): Keyring {
    const keyring = this.#seal.keyring;
    if (keyring === undefined || this.#audit === undefined) throw sealedError();
    return keyring;
  }

  // ---------------------------------------------------------------- authenticated records

  #recordsOf(keyring: Keyring): RecordAuthenticator {
    // Derived once per keyring: an HKDF per transaction was 6 % of the server's CPU under relay load.
    const held = this.#recordAuth;
    if (held?.keyring === keyring) return held.auth;
    held?.key.fill(0);
    const key = keyring.subkey(RECORD_KEY_LABEL);
    const auth = new RecordAuthenticator(key);
    this.#recordAuth = { keyring, key, auth };
    return auth;
  }

  /**
   * The authenticator of right-conferring records (token records, ACL policies): a store writer without the
   * unseal shares can neither forge nor alter them. ERR_SEALED while sealed.
   */
  records(): RecordAuthenticator {
    return this.#recordsOf(this.#requireUnsealed());
  }

  #sealDoc(policy: KeyPolicy): string {
    return this.records().seal('key-settings', policy.name, JSON.stringify(policy));
  }

  #openDoc(keyring: Keyring, row: KeyRow): KeyPolicy {
    const policy = parsePolicy(this.#recordsOf(keyring).open('key-settings', row.name, row.doc));
    if (policy.name !== row.name) throw recordTampered('key-settings', row.name);
    return policy;
  }

  /** {@link #openDoc}, reporting a tampered record before refusing it. */
  async #openDocReported(keyring: Keyring, row: KeyRow): Promise<KeyPolicy> {
    try {
      return this.#openDoc(keyring, row);
    } catch (err) {
      if (err instanceof EnsealError && err.code === ErrorCode.RECORD_TAMPERED)
        this.reportTampered('key-settings', row.name);
      throw err;
    }
  }

  /**
   * Records that a stored record failed its authenticator: audited (when the log can be written), counted
   * in the metrics and the usage monitor, and handed to the `onTampered` callback. The record is never used.
   */
  reportTampered(kind: string, name: string): void {
    this.#tampered += 1;
    this.#onTampered?.(kind, name);
    this.#monitor.observe(this.#clock(), '', `store.tampered.${kind}`, 'system:store', 'error');
    // Not awaited: callers may be inside a store transaction, and the audit write needs one of its own.
    void this.#audit
      ?.record({
        op: 'store.tampered',
        caller: 'system:store',
        outcome: 'error',
        code: ErrorCode.RECORD_TAMPERED,
        detail: { kind, name: name.slice(0, 128) },
      })
      .catch(() => undefined);
  }

  /**
   * Runs a change to the server's own records (tokens, policies) in one store transaction, with its audit
   * entry appended in the same transaction: the change and its record commit together or not at all.
   */
  async changeRecords<T>(
    op: string,
    ctx: CallContext,
    fn: (
      tx: StoreTransaction,
      records: RecordAuthenticator,
    ) => Promise<{ result: T; detail?: AuditEvent['detail'] }>,
  ): Promise<T> {
    return this.#run(op, '', ctx, async () => {
      const records = this.records();
      const audit = this.#audit!;
      const result = await this.#store.transaction(async (tx) => {
        const out = await fn(tx, records);
        await audit.appendInTransaction(tx, [
          {
            op,
            caller: ctx.caller ?? 'local',
            outcome: 'ok',
            ...(out.detail ? { detail: out.detail } : {}),
          },
        ]);
        return out.result;
      });
      return { result, audited: true };
    });
  }

  /** Reads inside one store transaction (token and policy lookups), with the record authenticator. */
  readRecords<T>(fn: (tx: StoreTransaction, records: RecordAuthenticator) => Promise<T>): Promise<T> {
    const records = this.records();
    return this.#store.transaction((tx) => fn(tx, records));
  }

  // ---------------------------------------------------------------- plumbing

  async #record(event: AuditEvent): Promise<void> {
    const audit = this.#audit;
    if (audit === undefined) throw sealedError();
    await audit.record(event);
  }

  /**
   * Runs a data operation: seal check, the operation, the audit record (awaited before the result is
   * released), and the usage counters. Errors are audited too, then rethrown.
   */
  async #run<T>(
    op: string,
    name: string,
    ctx: CallContext,
    fn: () => Promise<{
      result: T;
      version?: number;
      sensitive?: Record<string, Uint8Array>;
      detail?: AuditEvent['detail'];
      /** The entry was already written inside the operation's own transaction. */
      audited?: boolean;
    }>,
  ): Promise<T> {
    const caller = ctx.caller ?? 'local';
    if (this.#seal.keyring === undefined || this.#audit === undefined) {
      this.#monitor.observe(this.#clock(), name, op, caller, 'denied');
      throw sealedError();
    }
    let out: Awaited<ReturnType<typeof fn>>;
    try {
      // Every named operation passes here, so a reserved key is refused whatever face the call came from;
      // a restore decides for itself (it may bring back a reserved key from this keyring's own backup).
      if (op !== 'key.restore') checkNotReserved(name, ctx.system);
      out = await fn();
    } catch (err) {
      const outcome = outcomeOf(err);
      // A name that is not a key must not become a metrics series of its own.
      const label = err instanceof EnsealError && err.code === ErrorCode.KEY_NOT_FOUND ? UNKNOWN_KEY : name;
      this.#monitor.observe(this.#clock(), label, op, caller, outcome);
      const code = err instanceof EnsealError ? err.code : 'ERR_INTERNAL';
      await this.#record({ op, caller, outcome, ...(name ? { key: name } : {}), code });
      throw err;
    }
    if (out.audited !== true) {
      await this.#record({
        op,
        caller,
        outcome: 'ok',
        ...(name ? { key: name } : {}),
        ...(out.version === undefined ? {} : { version: out.version }),
        ...(out.sensitive === undefined ? {} : { sensitive: out.sensitive }),
        ...(out.detail === undefined ? {} : { detail: out.detail }),
      });
    }
    this.#monitor.observe(this.#clock(), name, op, caller, 'ok');
    return out.result;
  }

  /**
   * Runs a state change and writes its audit entry in the same store transaction, so the change and its
   * record commit together or not at all.
   */
  async #mutate<T>(
    op: string,
    name: string,
    ctx: CallContext,
    fn: (tx: StoreTransaction) => Promise<{ result: T; detail?: AuditEvent['detail']; version?: number }>,
  ): Promise<T> {
    return this.#run(op, name, ctx, async () => {
      const audit = this.#audit!;
      let detail: AuditEvent['detail'];
      let version: number | undefined;
      const result = await this.#store.transaction(async (tx) => {
        const out = await fn(tx);
        detail = out.detail;
        version = out.version;
        await audit.appendInTransaction(tx, [
          {
            op,
            caller: ctx.caller ?? 'local',
            outcome: 'ok',
            key: name,
            ...(version ? { version } : {}),
            ...(detail ? { detail } : {}),
          },
        ]);
        return out.result;
      });
      this.#cache.delete(name);
      return { result, audited: true };
    });
  }

  async #load(name: string): Promise<CachedKey> {
    const cached = this.#cache.get(name);
    if (cached !== undefined && this.#clock() - cached.loadedAt < this.#ttl) return cached;
    let pending = this.#loading.get(name);
    if (pending === undefined) {
      pending = this.#fetch(name).finally(() => this.#loading.delete(name));
      this.#loading.set(name, pending);
    }
    return pending;
  }

  /**
   * The cached key, reloaded first when `version` is newer than its latest: another node rotated the key
   * within the cache's lifetime, and its ciphertexts must open here at once, not after the cache expires.
   */
  async #loadFor(name: string, version: number): Promise<CachedKey> {
    const key = await this.#load(name);
    if (version <= key.policy.latestVersion) return key;
    let pending = this.#loading.get(name);
    if (pending === undefined) {
      pending = this.#fetch(name).finally(() => this.#loading.delete(name));
      this.#loading.set(name, pending);
    }
    return pending;
  }

  async #fetch(name: string): Promise<CachedKey> {
    checkKeyName(name);
    const { row, versions, index } = await this.#store.transaction(async (tx) => ({
      row: await tx.getKey(name),
      versions: await tx.getVersions(name),
      index: await tx.getContext(name, INDEX_CONTEXT_ID),
    }));
    if (row === undefined) {
      this.#cache.delete(name);
      throw notFound(name);
    }
    let keyring = this.#requireUnsealed();
    const policy = await this.#openDocReported(keyring, row);
    if ([...versions, ...(index ? [index] : [])].some((v) => !keyring.hasTerm(v.term))) {
      keyring = await this.#reloadKeyring();
    }
    const material = new Map<number, Uint8Array>();
    const publicKeys = new Map<number, Uint8Array>();
    const created = new Map<number, number>();
    const reserved = new Map<number, number>();
    for (const v of versions) {
      const secret = keyring.unwrap(v.term, versionLabel(name, v.version, policy.type), v.wrapped);
      material.set(v.version, secret);
      created.set(v.version, v.createdAt);
      reserved.set(v.version, v.reserved);
      if (policy.purpose === 'sign') publicKeys.set(v.version, await publicKeyOf(policy.type, secret));
    }
    const old = this.#cache.get(name);
    const key: CachedKey = {
      policy,
      material,
      publicKeys,
      created,
      reserved,
      // Reservations survive a reload: they were paid for in the store.
      usage: old?.usage ?? new Map(),
      contexts: new Map(),
      ...(index
        ? { indexKey: keyring.unwrap(index.term, contextLabel(name, INDEX_CONTEXT_ID), index.wrapped) }
        : {}),
      loadedAt: this.#clock(),
    };
    // The replaced entry is not wiped here: operations in flight may still hold it across an await (an
    // encryption waiting for its usage reservation, say) and would then seal with zeroed key bytes, a
    // ciphertext nobody can open (the soak found such values). Its buffers become garbage once those end;
    // sealing the node still wipes everything cached.
    this.#cache.set(name, key);
    return key;
  }

  /** Another node rotated the keyring, or the root key: follow it, or seal this node if the root changed. */
  async #reloadKeyring(): Promise<Keyring> {
    try {
      return await this.#seal.reloadKeyring();
    } catch (err) {
      if (err instanceof EnsealError && err.code === ErrorCode.DECRYPT_FAILED) {
        await this.seal({ caller: 'system:root-key-changed' });
        throw sealedError();
      }
      throw err;
    }
  }

  #usable(key: CachedKey, purpose: KeyPurpose): KeyPolicy {
    const policy = key.policy;
    if (policy.deletionScheduledFor !== undefined) {
      throw new EnsealError(
        ErrorCode.KEY_PENDING_DELETION,
        `key "${policy.name}" is scheduled for deletion and serves nothing; cancel the deletion to use it`,
      );
    }
    if (policy.purpose !== purpose) throw wrongPurpose(policy, purpose);
    return policy;
  }

  #versionKey(key: CachedKey, version: number): Uint8Array {
    const { policy } = key;
    const material = key.material.get(version);
    if (material === undefined || version < policy.minDecryptionVersion || version > policy.latestVersion) {
      // Deliberately the same as a failed tag check when decrypting: the caller learns nothing more.
      throw new EnsealError(
        ErrorCode.DECRYPT_FAILED,
        'decryption failed: the ciphertext is not authentic under any available key, or was modified',
      );
    }
    return material;
  }

  /** Takes one encryption slot of `version`; false when the version reached its usage bound. */
  async #slot(key: CachedKey, version: number): Promise<boolean> {
    const limit = key.policy.maxEncryptionsPerVersion;
    for (;;) {
      let u = key.usage.get(version);
      if (u === undefined) {
        u = { next: 0, end: 0, exhausted: false };
        key.usage.set(version, u);
      }
      if (u.next < u.end) {
        u.next += 1;
        return true;
      }
      if (u.exhausted) return false;
      u.refill ??= this.#refill(key.policy.name, version, u, limit).finally(() => {
        u.refill = undefined;
      });
      await u.refill;
    }
  }

  async #refill(name: string, version: number, u: Usage, limit: number): Promise<void> {
    const total = await this.#store.transaction((tx) => tx.reserveEncryptions(name, version, this.#block));
    u.next = total - this.#block;
    u.end = limit > 0 ? Math.min(total, limit) : total;
    if (u.next >= u.end) u.exhausted = true;
  }

  /**
   * {@link #encryptionSlot} without a promise, for batch items with no context and no version asked for: the
   * latest version's key when the key is cached, fresh and not derived, and a reserved slot is at hand;
   * undefined otherwise (the caller then takes the general path). A batch of 1,000 items used to pay four
   * awaits per item here.
   */
  #cachedSlot(name: string): { key: CachedKey; version: number; dataKey: Uint8Array } | undefined {
    const key = this.#cache.get(name);
    if (key === undefined || this.#clock() - key.loadedAt >= this.#ttl) return undefined;
    const policy = this.#usable(key, 'encrypt');
    if (policy.derived) return undefined;
    const version = encryptionVersion(policy, undefined);
    const u = key.usage.get(version);
    if (u === undefined || u.next >= u.end) return undefined;
    const dataKey = this.#versionKey(key, version);
    u.next += 1;
    return { key, version, dataKey };
  }

  /** The version to encrypt with, rotating first when the latest reached its usage bound. */
  async #encryptionSlot(
    name: string,
    requested: number | undefined,
  ): Promise<{ key: CachedKey; version: number }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const key = await this.#load(name);
      const policy = this.#usable(key, 'encrypt');
      const version = encryptionVersion(policy, requested);
      if (await this.#slot(key, version)) return { key, version };
      if (requested !== undefined && requested !== policy.latestVersion) break;
      await this.#rotate(name, { caller: 'system:usage-limit' }, version);
    }
    throw new EnsealError(ErrorCode.KEY_USAGE_LIMIT, `key "${name}" reached its usage bound; rotate it`);
  }

  #checkPlaintext(plaintext: Uint8Array): void {
    if (!(plaintext instanceof Uint8Array)) throw invalidArgument('plaintext', 'must be a Uint8Array');
    if (plaintext.length > this.#maxPlaintext) {
      throw invalidArgument('plaintext', `must be at most ${this.#maxPlaintext} bytes`);
    }
  }

  #aad(value: Uint8Array | undefined): Uint8Array {
    if (value === undefined) return new Uint8Array(0);
    if (!(value instanceof Uint8Array)) throw invalidArgument('associatedData', 'must be a Uint8Array');
    if (value.length > 64 * 1024) throw invalidArgument('associatedData', 'must be at most 64 KiB');
    return value;
  }

  /** The data key for a version: the version key, or for derived keys the context's own key. */
  async #dataKey(
    key: CachedKey,
    version: number,
    context: string | Uint8Array | undefined,
    create: boolean,
  ): Promise<Uint8Array> {
    const versionKey = this.#versionKey(key, version);
    if (!key.policy.derived) {
      if (context !== undefined)
        throw invalidArgument('context', `is only for derived keys; "${key.policy.name}" is not derived`);
      return versionKey;
    }
    if (context === undefined)
      throw invalidArgument('context', `is required: "${key.policy.name}" is a derived key`);
    const bytes = decodeContext(context);
    const contextId = hexEncode(hmac('sha256', key.indexKey!, bytes));
    let entry = key.contexts.get(contextId);
    if (entry === undefined) {
      entry = await this.#contextEntry(key, contextId, create);
      if (key.contexts.size >= MAX_CACHED_CONTEXTS) key.contexts.clear();
      key.contexts.set(contextId, entry);
    }
    let derived = entry.derived.get(version);
    if (derived === undefined) {
      derived = deriveContextKey(versionKey, entry.secret, bytes);
      entry.derived.set(version, derived);
    }
    return derived;
  }

  async #contextEntry(key: CachedKey, contextId: string, create: boolean): Promise<ContextEntry> {
    const name = key.policy.name;
    const label = contextLabel(name, contextId);
    for (let attempt = 0; attempt < 2; attempt++) {
      const row = await this.#store.transaction((tx) => tx.getContext(name, contextId));
      if (row !== undefined) {
        const keyring = this.#requireUnsealed().hasTerm(row.term)
          ? this.#seal.keyring!
          : await this.#reloadKeyring();
        return { secret: keyring.unwrap(row.term, label, row.wrapped), derived: new Map() };
      }
      // A shredded (or never used) context cannot decrypt: same answer as a bad tag.
      if (!create)
        throw new EnsealError(
          ErrorCode.DECRYPT_FAILED,
          'decryption failed: the ciphertext is not authentic under any available key, or was modified',
        );
      const secret = randomBytes(32);
      const inserted = await this.#store.transaction(async (tx) => {
        const { term, wrapped } = (await this.#keyringIn(tx)).wrap(label, secret);
        return tx.insertContext({ name, contextId, term, wrapped, createdAt: this.#clock() });
      });
      if (inserted) return { secret, derived: new Map() };
      wipe(secret); // another node created it first; use theirs
    }
    throw new EnsealError(ErrorCode.STORE, 'store: context secret could not be created');
  }

  // ---------------------------------------------------------------- keys

  /** Creates a named key with version 1. */
  async createKey(name: string, options: CreateKeyOptions = {}, ctx: CallContext = {}): Promise<KeyInfo> {
    await this.#mutate('key.create', name, ctx, async (tx) => {
      checkKeyName(name);
      const keyring = await this.#keyringIn(tx);
      const now = this.#clock();
      const policy = newPolicy(name, options, now);
      const inserted = await tx.insertKey({ name, doc: this.#sealDoc(policy), updatedAt: now });
      if (!inserted) throw new EnsealError(ErrorCode.KEY_EXISTS, `a key named "${name}" already exists`);
      await this.#insertVersion(tx, keyring, policy, 1, now);
      if (policy.derived) {
        const label = contextLabel(name, INDEX_CONTEXT_ID);
        const secret = randomBytes(32);
        const { term, wrapped } = keyring.wrap(label, secret);
        wipe(secret);
        await tx.insertContext({ name, contextId: INDEX_CONTEXT_ID, term, wrapped, createdAt: now });
      }
      return { result: undefined, version: 1, detail: { type: policy.type, derived: policy.derived } };
    });
    return this.#fresh(name);
  }

  async #insertVersion(
    tx: StoreTransaction,
    keyring: Keyring,
    policy: KeyPolicy,
    version: number,
    now: number,
    material?: Uint8Array,
  ): Promise<void> {
    const secret = material ?? (await generateMaterial(policy.type, policy.hmacKeyBytes));
    const { term, wrapped } = keyring.wrap(versionLabel(policy.name, version, policy.type), secret);
    if (material === undefined) wipe(secret);
    const ok = await tx.insertVersion({
      name: policy.name,
      version,
      term,
      wrapped,
      createdAt: now,
      reserved: 0,
    });
    if (!ok)
      throw new EnsealError(ErrorCode.STORE, `store: version ${version} of "${policy.name}" already exists`);
  }

  async #lockKey(tx: StoreTransaction, name: string): Promise<KeyPolicy> {
    checkKeyName(name);
    const row = await tx.getKey(name, { forUpdate: true });
    if (row === undefined) throw notFound(name);
    return this.#openDocReported(this.#requireUnsealed(), row);
  }

  async #writePolicy(tx: StoreTransaction, policy: KeyPolicy): Promise<void> {
    const row: KeyRow = { name: policy.name, doc: this.#sealDoc(policy), updatedAt: this.#clock() };
    if (!(await tx.updateKey(row))) throw notFound(policy.name);
  }

  /** Policy, versions and public keys of a key. */
  async readKey(name: string, ctx: CallContext = {}): Promise<KeyInfo> {
    return this.#run('key.read', name, ctx, async () => {
      checkKeyName(name);
      this.#cache.delete(name);
      const key = await this.#load(name);
      return { result: this.#info(key) };
    });
  }

  /** The state a mutation just committed (its own audit entry covers it; no separate read is recorded). */
  async #fresh(name: string): Promise<KeyInfo> {
    this.#cache.delete(name);
    return this.#info(await this.#load(name));
  }

  #info(key: CachedKey): KeyInfo {
    const { policy } = key;
    const next = nextRotationAt(policy);
    return {
      ...policy,
      versions: [...key.material.keys()].map((version) => ({
        version,
        createdAt: new Date(key.created.get(version)!).toISOString(),
        encryptionsReserved: key.reserved.get(version) ?? 0,
        ...(key.publicKeys.has(version) ? { publicKey: base64Encode(key.publicKeys.get(version)!) } : {}),
      })),
      nextRotation: next === undefined ? null : new Date(next).toISOString(),
      deletionScheduledAt:
        policy.deletionScheduledFor === undefined
          ? null
          : new Date(policy.deletionScheduledFor).toISOString(),
    };
  }

  /** Key names in order, paginated. */
  async listKeys(options: { after?: string; limit?: number } = {}, ctx: CallContext = {}): Promise<string[]> {
    return this.#run('key.list', '', ctx, async () => {
      const limit = options.limit ?? 1000;
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        throw invalidArgument('limit', 'must be 1-10000');
      if (ctx.system === SYSTEM_CALL)
        return { result: await this.#store.transaction((tx) => tx.listKeys({ ...options, limit })) };
      // Reserved keys are not listed to callers who cannot use them; pages stay full so paging never stops early.
      const names: string[] = [];
      let after = options.after;
      for (;;) {
        const page = await this.#store.transaction((tx) =>
          tx.listKeys({ ...(after !== undefined ? { after } : {}), limit }),
        );
        names.push(...page.filter((n) => !isReservedKeyName(n)));
        if (page.length < limit || names.length >= limit) return { result: names.slice(0, limit) };
        after = page[page.length - 1];
      }
    });
  }

  /** Changes min versions, deletion permission, one-way export switches or the rotation period. */
  async updateKeyConfig(name: string, update: KeyConfigUpdate, ctx: CallContext = {}): Promise<KeyInfo> {
    await this.#mutate('key.config', name, ctx, async (tx) => {
      const policy = updatePolicy(await this.#lockKey(tx, name), update);
      await this.#writePolicy(tx, policy);
      return {
        result: undefined,
        detail: Object.fromEntries(Object.entries(update).map(([k, v]) => [k, v as number | boolean])),
      };
    });
    return this.#fresh(name);
  }

  /** Adds a new version, which becomes the one used for new encryptions and signatures. */
  async rotateKey(name: string, ctx: CallContext = {}): Promise<KeyInfo> {
    await this.#rotate(name, ctx);
    return this.#fresh(name);
  }

  /**
   * Rotation under the key's row lock. With `ifLatest`, rotates only if that version is still the latest, so
   * several callers hitting the usage bound at once produce one new version, not several.
   */
  async #rotate(name: string, ctx: CallContext, ifLatest?: number): Promise<void> {
    await this.#mutate('key.rotate', name, ctx, async (tx) => {
      const policy = await this.#lockKey(tx, name);
      if (policy.deletionScheduledFor !== undefined) {
        throw new EnsealError(ErrorCode.KEY_PENDING_DELETION, `key "${name}" is scheduled for deletion`);
      }
      if (ifLatest !== undefined && policy.latestVersion !== ifLatest) {
        return { result: undefined, version: policy.latestVersion, detail: { skipped: true } };
      }
      const now = this.#clock();
      const version = policy.latestVersion + 1;
      await this.#insertVersion(tx, await this.#keyringIn(tx), policy, version, now);
      await this.#writePolicy(tx, { ...policy, latestVersion: version, lastRotatedAt: now });
      return { result: undefined, version };
    });
  }

  /** Deletes versions below `minAvailableVersion` for good (at most min(minDecryption, minEncryption)). */
  async trimKey(name: string, minAvailableVersion: number, ctx: CallContext = {}): Promise<KeyInfo> {
    await this.#mutate('key.trim', name, ctx, async (tx) => {
      checkVersion('minAvailableVersion', minAvailableVersion);
      const policy = await this.#lockKey(tx, name);
      const ceiling =
        policy.minEncryptionVersion === 0
          ? policy.minDecryptionVersion
          : Math.min(policy.minDecryptionVersion, policy.minEncryptionVersion);
      if (minAvailableVersion > ceiling) {
        throw new EnsealError(
          ErrorCode.NOT_ALLOWED,
          `cannot trim above minDecryptionVersion/minEncryptionVersion (${ceiling}); raise them first`,
        );
      }
      if (minAvailableVersion <= policy.minAvailableVersion)
        return { result: undefined, detail: { trimmed: 0, minAvailableVersion } };
      const trimmed = await tx.deleteVersionsBelow(name, minAvailableVersion);
      await this.#writePolicy(tx, { ...policy, minAvailableVersion });
      return { result: undefined, detail: { trimmed, minAvailableVersion } };
    });
    return this.#fresh(name);
  }

  /**
   * Schedules deletion after a waiting period (default 7 days). Needs `deletionAllowed`. During the wait
   * the key serves nothing; {@link cancelKeyDeletion} restores it. The scheduler purges it afterwards.
   */
  async scheduleKeyDeletion(
    name: string,
    options: { waitMs?: number } = {},
    ctx: CallContext = {},
  ): Promise<string> {
    return this.#mutate('key.delete', name, ctx, async (tx) => {
      const wait = options.waitMs ?? Math.max(DEFAULT_DELETION_WAIT_MS, this.#minDeletionWait);
      if (!Number.isSafeInteger(wait) || wait < this.#minDeletionWait) {
        throw invalidArgument('waitMs', `must be at least ${this.#minDeletionWait} ms`);
      }
      const policy = await this.#lockKey(tx, name);
      if (!policy.deletionAllowed) {
        throw new EnsealError(
          ErrorCode.NOT_ALLOWED,
          `key "${name}" does not allow deletion; set deletionAllowed first`,
        );
      }
      const at = policy.deletionScheduledFor ?? this.#clock() + wait;
      await this.#writePolicy(tx, { ...policy, deletionScheduledFor: at });
      return {
        result: new Date(at).toISOString(),
        detail: { deletionScheduledFor: new Date(at).toISOString() },
      };
    });
  }

  async cancelKeyDeletion(name: string, ctx: CallContext = {}): Promise<KeyInfo> {
    await this.#mutate('key.delete.cancel', name, ctx, async (tx) => {
      const { deletionScheduledFor, ...rest } = await this.#lockKey(tx, name);
      void deletionScheduledFor;
      await this.#writePolicy(tx, rest);
      return { result: undefined };
    });
    return this.#fresh(name);
  }

  /**
   * Crypto-shredding: forgets the secret of one derivation context. Data encrypted under that context can
   * no longer be decrypted by anyone, while the key keeps serving every other context.
   */
  async deleteContext(name: string, context: string | Uint8Array, ctx: CallContext = {}): Promise<boolean> {
    const bytes = decodeContext(context);
    const key = await this.#load(name);
    if (!key.policy.derived) throw invalidArgument('context', `"${name}" is not a derived key`);
    const contextId = hexEncode(hmac('sha256', key.indexKey!, bytes));
    const deleted = await this.#mutate('key.context.delete', name, ctx, async (tx) => ({
      result: await tx.deleteContext(name, contextId),
    }));
    return deleted;
  }

  // ---------------------------------------------------------------- data operations

  /**
   * Encrypts with the key's latest version; returns `vault:v<version>:<base64>`.
   *
   * @example
   * ```ts no-run
   * const ct = await km.encrypt('orders', utf8Encode('secret'), { associatedData: utf8Encode('order 7') });
   * ```
   */
  async encrypt(
    name: string,
    plaintext: Uint8Array,
    options: EncryptOptions = {},
    ctx: CallContext = {},
  ): Promise<string> {
    return this.#run('encrypt', name, ctx, async () => {
      this.#checkPlaintext(plaintext);
      const aad = this.#aad(options.associatedData);
      const { key, version } = await this.#encryptionSlot(name, options.keyVersion);
      const dataKey = await this.#dataKey(key, version, options.context, true);
      const result = formatVersioned(version, encryptWith(key.policy.type, dataKey, plaintext, aad));
      return { result, version, ...this.#sensitive(options.context, options.associatedData) };
    });
  }

  /**
   * Encrypts many values in one call: one key lookup and one audit entry for the whole batch (as Vault
   * audits one request), with a result or an error per item; one bad item never fails the others.
   */
  async encryptBatch(
    name: string,
    items: readonly (EncryptOptions & { plaintext: Uint8Array })[],
    ctx: CallContext = {},
  ): Promise<BatchResult<string>[]> {
    return this.#run('encrypt.batch', name, ctx, async () => {
      this.#checkBatch(items);
      const results: BatchResult<string>[] = [];
      const pooled =
        this.#pool !== undefined && items.length >= this.#poolThreshold ? new Pooled() : undefined;
      for (const item of items) {
        try {
          this.#checkPlaintext(item.plaintext);
          const aad = this.#aad(item.associatedData);
          const fast =
            item.keyVersion === undefined && item.context === undefined ? this.#cachedSlot(name) : undefined;
          const { key, version } = fast ?? (await this.#encryptionSlot(name, item.keyVersion));
          const dataKey = fast?.dataKey ?? (await this.#dataKey(key, version, item.context, true));
          if (
            pooled?.add(results.length, key.policy.type, { key: dataKey, version, data: item.plaintext, aad })
          ) {
            results.push({ error: PENDING });
          } else {
            results.push({
              value: formatVersioned(version, encryptWith(key.policy.type, dataKey, item.plaintext, aad)),
              version,
            });
          }
        } catch (error) {
          if (isEnsealError(error, ErrorCode.SEALED)) throw error;
          results.push({ error: error as Error });
        }
      }
      if (pooled !== undefined) await pooled.finish(this.#pool!, 'encrypt', results);
      const failed = results.filter((r) => r.error !== undefined).length;
      return { result: results, detail: { items: items.length, failed } };
    });
  }

  /** Decrypts many values in one call, with a result or an error per item (see {@link encryptBatch}). */
  async decryptBatch(
    name: string,
    items: readonly (DecryptOptions & { ciphertext: string })[],
    ctx: CallContext = {},
  ): Promise<BatchResult<Uint8Array>[]> {
    return this.#run('decrypt.batch', name, ctx, async () => {
      this.#checkBatch(items);
      let key = await this.#load(name);
      this.#usable(key, 'encrypt');
      const results: BatchResult<Uint8Array>[] = [];
      const pooled =
        this.#pool !== undefined && items.length >= this.#poolThreshold ? new Pooled() : undefined;
      for (const item of items) {
        try {
          const { version, bytes } = parseVersioned('ciphertext', item.ciphertext);
          const aad = this.#aad(item.associatedData);
          if (version > key.policy.latestVersion) key = await this.#loadFor(name, version);
          const dataKey = await this.#dataKey(key, version, item.context, false);
          if (pooled?.add(results.length, key.policy.type, { key: dataKey, version, data: bytes, aad })) {
            results.push({ error: PENDING });
          } else {
            results.push({ value: decryptWith(key.policy.type, dataKey, bytes, aad), version });
          }
        } catch (error) {
          if (isEnsealError(error, ErrorCode.SEALED)) throw error;
          results.push({ error: error as Error });
        }
      }
      if (pooled !== undefined) await pooled.finish(this.#pool!, 'decrypt', results);
      const failed = results.filter((r) => r.error !== undefined).length;
      return { result: results, detail: { items: items.length, failed } };
    });
  }

  #checkBatch(items: readonly unknown[]): void {
    if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BATCH_ITEMS) {
      throw invalidArgument('batch', `must hold 1-${MAX_BATCH_ITEMS} items`);
    }
  }

  #sensitive(
    context: string | Uint8Array | undefined,
    aad: Uint8Array | undefined,
  ): { sensitive?: Record<string, Uint8Array> } {
    if (context === undefined && aad === undefined) return {};
    const sensitive: Record<string, Uint8Array> = {};
    if (context !== undefined)
      sensitive.context = typeof context === 'string' ? utf8Encode(context) : context;
    if (aad !== undefined) sensitive.associatedData = aad;
    return { sensitive };
  }

  /** Decrypts a `vault:v<version>:` ciphertext. Any authentication failure is ERR_DECRYPT_FAILED. */
  async decrypt(
    name: string,
    ciphertext: string,
    options: DecryptOptions = {},
    ctx: CallContext = {},
  ): Promise<Uint8Array> {
    return this.#run('decrypt', name, ctx, async () => {
      const { version, bytes } = parseVersioned('ciphertext', ciphertext);
      const aad = this.#aad(options.associatedData);
      const key = await this.#loadFor(name, version);
      this.#usable(key, 'encrypt');
      const dataKey = await this.#dataKey(key, version, options.context, false);
      return {
        result: decryptWith(key.policy.type, dataKey, bytes, aad),
        version,
        ...this.#sensitive(options.context, options.associatedData),
      };
    });
  }

  /** Re-encrypts under the latest version without ever returning the plaintext. */
  async rewrap(
    name: string,
    ciphertext: string,
    options: DecryptOptions = {},
    ctx: CallContext = {},
  ): Promise<string> {
    return this.#run('rewrap', name, ctx, async () => {
      const { version, bytes } = parseVersioned('ciphertext', ciphertext);
      const aad = this.#aad(options.associatedData);
      const key = await this.#loadFor(name, version);
      this.#usable(key, 'encrypt');
      const plain = decryptWith(
        key.policy.type,
        await this.#dataKey(key, version, options.context, false),
        bytes,
        aad,
      );
      try {
        const slot = await this.#encryptionSlot(name, undefined);
        const dataKey = await this.#dataKey(slot.key, slot.version, options.context, true);
        return {
          result: formatVersioned(slot.version, encryptWith(slot.key.policy.type, dataKey, plain, aad)),
          version: slot.version,
          detail: { fromVersion: version },
        };
      } finally {
        wipe(plain);
      }
    });
  }

  /**
   * A fresh data key for envelope encryption of large data: its plaintext (unless `plaintext` is false) and
   * its ciphertext under the named key. Store the ciphertext; decrypt it when the data is needed.
   */
  async generateDataKey(
    name: string,
    options: DataKeyOptions & { plaintext?: boolean } = {},
    ctx: CallContext = {},
  ): Promise<{ ciphertext: string; plaintext?: Uint8Array; keyVersion: number }> {
    return this.#run(
      options.plaintext === false ? 'datakey.wrapped' : 'datakey.plaintext',
      name,
      ctx,
      async () => {
        const bits = options.bits ?? 256;
        if (bits !== 128 && bits !== 256 && bits !== 512)
          throw invalidArgument('bits', 'must be 128, 256 or 512');
        const { key, version } = await this.#encryptionSlot(name, undefined);
        const dataKey = await this.#dataKey(key, version, options.context, true);
        const secret = randomBytes(bits / 8);
        const ciphertext = formatVersioned(
          version,
          encryptWith(key.policy.type, dataKey, secret, new Uint8Array(0)),
        );
        if (options.plaintext === false) wipe(secret);
        return {
          result: {
            ciphertext,
            keyVersion: version,
            ...(options.plaintext === false ? {} : { plaintext: secret }),
          },
          version,
        };
      },
    );
  }

  /** Signs with the latest (or a chosen) version; returns `vault:v<version>:<base64 signature>`. */
  async sign(
    name: string,
    message: Uint8Array,
    options: SignOptions = {},
    ctx: CallContext = {},
  ): Promise<string> {
    return this.#run('sign', name, ctx, async () => {
      if (!(message instanceof Uint8Array)) throw invalidArgument('message', 'must be a Uint8Array');
      const key = await this.#load(name);
      const policy = this.#usable(key, 'sign');
      const version = encryptionVersion(policy, options.keyVersion);
      const sig = await signWith(
        policy.type,
        this.#versionKey(key, version),
        message,
        options.scheme ?? 'pss',
      );
      return { result: formatVersioned(version, sig), version, sensitive: { message } };
    });
  }

  /** Verifies a `vault:v<version>:` signature; false when it does not verify. */
  async verify(
    name: string,
    message: Uint8Array,
    signature: string,
    options: SignOptions = {},
    ctx: CallContext = {},
  ): Promise<boolean> {
    return this.#run('verify', name, ctx, async () => {
      if (!(message instanceof Uint8Array)) throw invalidArgument('message', 'must be a Uint8Array');
      const { version, bytes } = parseVersioned('signature', signature);
      const key = await this.#load(name);
      const policy = this.#usable(key, 'sign');
      const publicKey = key.publicKeys.get(version);
      const ok =
        publicKey !== undefined &&
        version >= policy.minDecryptionVersion &&
        (await verifyWith(policy.type, publicKey, message, bytes, options.scheme ?? 'pss'));
      return { result: ok, version, detail: { valid: ok } };
    });
  }

  /** HMAC-SHA256 with an `hmac` key; returns `vault:v<version>:<base64>`. */
  async hmac(
    name: string,
    message: Uint8Array,
    options: { keyVersion?: number } = {},
    ctx: CallContext = {},
  ): Promise<string> {
    return this.#run('hmac', name, ctx, async () => {
      if (!(message instanceof Uint8Array)) throw invalidArgument('message', 'must be a Uint8Array');
      const key = await this.#load(name);
      const policy = this.#usable(key, 'mac');
      const version = encryptionVersion(policy, options.keyVersion);
      return { result: formatVersioned(version, macWith(this.#versionKey(key, version), message)), version };
    });
  }

  async verifyHmac(name: string, message: Uint8Array, mac: string, ctx: CallContext = {}): Promise<boolean> {
    return this.#run('hmac.verify', name, ctx, async () => {
      const { version, bytes } = parseVersioned('hmac', mac);
      const key = await this.#load(name);
      const policy = this.#usable(key, 'mac');
      const material = key.material.get(version);
      const ok =
        material !== undefined &&
        version >= policy.minDecryptionVersion &&
        macEquals(macWith(material, message), bytes);
      return { result: ok, version, detail: { valid: ok } };
    });
  }

  /**
   * A Fernet (Python `cryptography`) token under a named encryption key, for the seeds' `/encrypt` route:
   * the Fernet key is HKDF-derived from the key's latest version, so it rotates with the key and never
   * leaves the key manager.
   */
  async encryptFernet(name: string, plaintext: Uint8Array, ctx: CallContext = {}): Promise<string> {
    return this.#run('fernet.encrypt', name, ctx, async () => {
      this.#checkPlaintext(plaintext);
      const key = await this.#load(name);
      const policy = this.#usable(key, 'encrypt');
      if (policy.derived)
        throw invalidArgument('key', `"${name}" is derived; Fernet tokens carry no context`);
      return { result: this.#fernet(key).encrypt.encrypt(plaintext), version: policy.latestVersion };
    });
  }

  /** Opens a Fernet token made by {@link encryptFernet} under any usable version of the key. */
  async decryptFernet(name: string, token: string, ctx: CallContext = {}): Promise<Uint8Array> {
    return this.#run('fernet.decrypt', name, ctx, async () => {
      const key = await this.#load(name);
      this.#usable(key, 'encrypt');
      return { result: this.#fernet(key).decrypt.decrypt(token) };
    });
  }

  #fernet(key: CachedKey): { encrypt: Fernet; decrypt: Fernet } {
    if (key.fernet === undefined) {
      const { policy } = key;
      const versions = [...key.material.keys()]
        .filter((v) => v >= policy.minDecryptionVersion)
        .sort((a, b) => b - a);
      if (versions.length === 0) throw decryptFailed();
      key.fernet = {
        encrypt: new Fernet([this.#fernetKey(key, policy.latestVersion)]),
        decrypt: new Fernet(versions.map((v) => this.#fernetKey(key, v))),
      };
    }
    return key.fernet;
  }

  #fernetKey(key: CachedKey, version: number): Uint8Array {
    return hkdf(
      'sha256',
      this.#versionKey(key, version),
      new Uint8Array(0),
      utf8Encode(`enseal/fernet/v1\u0000${key.policy.name}`),
      32,
    );
  }

  /** Raw key material of every usable version (or one), only for keys created with `exportable`. */
  async exportKey(
    name: string,
    version?: number,
    ctx: CallContext = {},
    kind: ExportKind = 'encryption-key',
  ): Promise<{ version: number; key: string }[]> {
    return this.#run('key.export', name, ctx, async () => {
      const key = await this.#load(name);
      const { policy } = key;
      if (policy.deletionScheduledFor !== undefined) {
        throw new EnsealError(
          ErrorCode.KEY_PENDING_DELETION,
          `key "${name}" is scheduled for deletion and serves nothing; cancel the deletion to use it`,
        );
      }
      if (EXPORT_PURPOSE[kind] !== policy.purpose) {
        throw new EnsealError(
          ErrorCode.KEY_USAGE,
          `key "${name}" is a ${policy.type} key; export it as ${Object.entries(EXPORT_PURPOSE)
            .filter(([, p]) => p === policy.purpose)
            .map(([k]) => k)
            .join(' or ')}`,
        );
      }
      // A public key is no secret: it needs no opt-in, and never carries private material.
      if (kind !== 'public-key' && !policy.exportable) {
        throw new EnsealError(ErrorCode.EXPORT_FORBIDDEN, `key "${name}" is not exportable`);
      }
      // Vault exports the versions that still serve: from min_decryption_version to the latest.
      const serving = (v: number) => v >= policy.minDecryptionVersion && v <= policy.latestVersion;
      if (version !== undefined && key.material.has(version) && !serving(version)) {
        throw new EnsealError(
          ErrorCode.NOT_ALLOWED,
          `version ${version} of key "${name}" is below min_decryption_version ${policy.minDecryptionVersion} and serves nothing, export included`,
        );
      }
      const versions =
        version === undefined ? [...key.material.keys()].filter(serving).sort((a, b) => a - b) : [version];
      const material = (v: number) =>
        kind === 'public-key' ? this.#publicKey(key, v) : this.#versionKey(key, v);
      return {
        result: versions.map((v) => ({ version: v, key: base64Encode(material(v)) })),
        detail: { versions: versions.length, kind },
      };
    });
  }

  #publicKey(key: CachedKey, version: number): Uint8Array {
    this.#versionKey(key, version); // the same version checks as any use
    return key.publicKeys.get(version)!;
  }

  // ---------------------------------------------------------------- internals shared with backup

  /** @internal Everything needed to rebuild `name` in another store: policy, versions, contexts (plaintext). */
  async snapshotKey(name: string): Promise<KeySnapshot> {
    const keyring = this.#requireUnsealed();
    const { row, versions, contexts } = await this.#store.transaction(async (tx) => {
      const r = await tx.getKey(name);
      if (r === undefined) throw notFound(name);
      return { row: r, versions: await tx.getVersions(name), contexts: await tx.listContexts(name) };
    });
    const policy = await this.#openDocReported(keyring, row);
    let ring = keyring;
    if ([...versions, ...contexts].some((v) => !ring.hasTerm(v.term))) ring = await this.#reloadKeyring();
    return {
      policy,
      versions: versions.map((v) => ({
        version: v.version,
        createdAt: v.createdAt,
        reserved: v.reserved,
        material: base64Encode(ring.unwrap(v.term, versionLabel(name, v.version, policy.type), v.wrapped)),
      })),
      contexts: contexts.map((c) => ({
        contextId: c.contextId,
        createdAt: c.createdAt,
        secret: base64Encode(ring.unwrap(c.term, contextLabel(name, c.contextId), c.wrapped)),
      })),
    };
  }

  /**
   * @internal Writes a validated snapshot into this store. A new key is created as the snapshot says. An
   * existing key (only with `force`, and only from a backup this keyring authenticated) is never replaced:
   * versions it has must match the backup's byte for byte, missing ones are added, and its settings keep
   * their one-way state (exportable, plaintext backup, a pending deletion, the highest minimum decryption
   * version and usage reservations).
   */
  async restoreSnapshot(
    snapshot: KeySnapshot,
    options: { force?: boolean; authenticated?: boolean },
    ctx: CallContext,
  ): Promise<void> {
    const name = snapshot.policy.name;
    await this.#mutate('key.restore', name, ctx, async (tx) => {
      checkKeyName(name);
      // Only this keyring's own full backup may bring a reserved key back: anything else could plant a key
      // whose material the uploader knows under a name enseal signs with.
      if (options.authenticated !== true) checkNotReserved(name, ctx.system);
      const keyring = await this.#keyringIn(tx);
      const row = await tx.getKey(name, { forUpdate: true });
      if (row === undefined) {
        await tx.insertKey({ name, doc: this.#sealDoc(snapshot.policy), updatedAt: this.#clock() });
        for (const v of snapshot.versions) {
          const secret = base64Decode(v.material);
          await this.#insertRestoredVersion(tx, keyring, snapshot.policy, v, secret);
          wipe(secret);
        }
        await this.#restoreContexts(tx, keyring, snapshot);
        return {
          result: undefined,
          detail: { versions: snapshot.versions.length, contexts: snapshot.contexts.length, merged: false },
        };
      }
      if (!options.force)
        throw new EnsealError(
          ErrorCode.KEY_EXISTS,
          `a key named "${name}" already exists; pass force to merge into it`,
        );
      if (!options.authenticated)
        throw new EnsealError(
          ErrorCode.NOT_ALLOWED,
          `key "${name}" exists; only a backup made by this keyring may be merged into it`,
        );
      const current = this.#openDoc(keyring, row);
      if (current.type !== snapshot.policy.type)
        throw new EnsealError(
          ErrorCode.NOT_ALLOWED,
          `key "${name}" is a ${current.type} key; the backup holds ${snapshot.policy.type}`,
        );
      let added = 0;
      for (const v of snapshot.versions) {
        const stored = await tx.getVersion(name, v.version);
        const secret = base64Decode(v.material);
        try {
          if (stored !== undefined) {
            const mine = keyring.unwrap(
              stored.term,
              versionLabel(name, v.version, current.type),
              stored.wrapped,
            );
            const same = mine.length === secret.length && constantTimeEqual(mine, secret);
            wipe(mine);
            if (!same)
              throw new EnsealError(
                ErrorCode.NOT_ALLOWED,
                `version ${v.version} of "${name}" differs from the stored one; a restore never replaces key material`,
              );
            continue;
          }
          if (v.version < current.minAvailableVersion) continue; // trimmed on purpose; never brought back
          await this.#insertRestoredVersion(tx, keyring, current, v, secret);
          added++;
        } finally {
          wipe(secret);
        }
      }
      const merged: KeyPolicy = {
        ...current,
        latestVersion: Math.max(current.latestVersion, snapshot.policy.latestVersion),
        minDecryptionVersion: Math.max(current.minDecryptionVersion, snapshot.policy.minDecryptionVersion),
      };
      await this.#writePolicy(tx, merged);
      return { result: undefined, detail: { versions: added, contexts: 0, merged: true } };
    });
  }

  /** Wraps one version's material from a backup and inserts it, with the backup's usage reservation. */
  async #insertRestoredVersion(
    tx: StoreTransaction,
    keyring: Keyring,
    policy: KeyPolicy,
    v: KeySnapshot['versions'][number],
    secret: Uint8Array,
  ): Promise<void> {
    const { term, wrapped } = keyring.wrap(versionLabel(policy.name, v.version, policy.type), secret);
    await tx.insertVersion({
      name: policy.name,
      version: v.version,
      term,
      wrapped,
      createdAt: v.createdAt,
      reserved: v.reserved,
    });
  }

  async #restoreContexts(tx: StoreTransaction, keyring: Keyring, snapshot: KeySnapshot): Promise<void> {
    for (const c of snapshot.contexts) {
      const secret = base64Decode(c.secret);
      const { term, wrapped } = keyring.wrap(contextLabel(snapshot.policy.name, c.contextId), secret);
      wipe(secret);
      await tx.insertContext({
        name: snapshot.policy.name,
        contextId: c.contextId,
        term,
        wrapped,
        createdAt: c.createdAt,
      });
    }
  }

  /** @internal The keyring's backup authenticator: an id naming this keyring, and a MAC over a backup body. */
  backupSeal(body: string): { keyring: string; mac: string } {
    const key = this.#requireUnsealed().subkey('enseal/backup/v1');
    return {
      keyring: hexEncode(hmac('sha256', key, utf8Encode('enseal/backup/keyring-id'))).slice(0, 32),
      mac: hexEncode(hmac('sha256', key, utf8Encode(`enseal/backup/v2\u0000${body}`))),
    };
  }

  /** @internal Records a backup-level event (the backup module calls it). */
  recordEvent(event: Omit<AuditEvent, 'caller'>, ctx: CallContext): Promise<void> {
    this.#requireUnsealed();
    return this.#record({ ...event, caller: ctx.caller ?? 'local' });
  }

  /**
   * Records a request refused before it reached the key manager (for example by the server's access
   * policies): audited as denied when unsealed (unless `audit` is false), and always counted, so bursts of
   * denials are flagged.
   */
  async recordDenied(op: string, key: string, code: string, ctx: CallContext, audit = true): Promise<void> {
    const caller = ctx.caller ?? 'local';
    // Counted without the key: a refused caller may name anything, and names must not grow the metrics.
    this.#monitor.observe(this.#clock(), '', op, caller, 'denied');
    if (this.#audit === undefined || !audit) return;
    await this.#audit
      .record({ op, caller, outcome: 'denied', code, ...(key ? { key } : {}) })
      .catch(() => undefined);
  }

  /** @internal All key names (for full backup). */
  async allKeyNames(): Promise<string[]> {
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.#store.transaction((tx) =>
        tx.listKeys({ ...(after ? { after } : {}), limit: 1000 }),
      );
      names.push(...page);
      if (page.length < 1000) return names;
      after = page[page.length - 1];
    }
  }

  // ---------------------------------------------------------------- scheduler

  /**
   * Applies rotation policies and purges keys whose deletion waiting period is over. Safe to run on every
   * node: rotation takes the key's row lock and skips keys another node already rotated.
   */
  async runScheduledTasks(): Promise<ScheduledRun> {
    this.#requireUnsealed();
    const now = this.#clock();
    const rotated: string[] = [];
    const purged: string[] = [];
    for (const name of await this.allKeyNames()) {
      // Reserved keys change only through the subsystem that owns them (nothing can schedule their deletion).
      if (isReservedKeyName(name)) continue;
      const row = await this.#store.transaction((tx) => tx.getKey(name));
      if (row === undefined) continue;
      const policy = await this.#openDocReported(this.#requireUnsealed(), row).catch(() => undefined);
      if (policy === undefined) continue;
      if (policy.deletionScheduledFor !== undefined) {
        if (policy.deletionScheduledFor <= now && (await this.#purge(name, now))) purged.push(name);
        continue;
      }
      const due = nextRotationAt(policy);
      if (due !== undefined && due <= now) {
        await this.#rotate(name, { caller: 'system:scheduler' }, policy.latestVersion);
        rotated.push(name);
      }
    }
    await this.#raiseAuditAnchor();
    return { rotated, purged };
  }

  async #purge(name: string, now: number): Promise<boolean> {
    return this.#mutate('key.purge', name, { caller: 'system:scheduler' }, async (tx) => {
      const policy = await this.#lockKey(tx, name);
      if (policy.deletionScheduledFor === undefined || policy.deletionScheduledFor > now)
        return { result: false };
      return { result: await tx.deleteKey(name) };
    });
  }

  /** Runs {@link runScheduledTasks} every `intervalMs` while unsealed; returns a function that stops it. */
  startScheduler(intervalMs = 60_000, onError?: (err: unknown) => void): () => void {
    const timer = setInterval(() => {
      if (this.#seal.keyring === undefined) return;
      this.runScheduledTasks().catch((err: unknown) => onError?.(err));
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  // ---------------------------------------------------------------- audit and monitoring

  /** Checks the audit chain; names every modified, inserted, deleted or reordered entry. */
  /**
   * Verifies the audit chain, its head checkpoint, the position sealed in the keyring (so a store rolled
   * back to an older consistent state is caught) and, when given, a checkpoint exported earlier.
   */
  verifyAudit(checkpoint?: AuditCheckpoint): Promise<AuditVerifyResult> {
    const keyring = this.#requireUnsealed();
    return this.#audit!.verify({ initialized: true, anchor: keyring.auditAnchor, checkpoint });
  }

  /** A MACed checkpoint of the audit head: keep it outside the service, pass it to verifyAudit later. */
  auditCheckpoint(): Promise<AuditCheckpoint> {
    this.#requireUnsealed();
    return this.#audit!.checkpoint();
  }

  /**
   * Seals the current audit head into the keyring (at unseal, seal and each scheduler run), so a later
   * verify notices a log that falls behind it. Only ever moves forward.
   */
  async #raiseAuditAnchor(): Promise<void> {
    const audit = this.#audit;
    const root = this.#seal.rootKey;
    if (audit === undefined || root === undefined) return;
    await audit.drain();
    const sealed = await this.#store.transaction(async (tx) => {
      const keyring = this.#seal.keyringFor(await readSealedKeyring(tx, 'update'));
      const head = await tx.lastAudit();
      if (head === undefined || (keyring.auditAnchor?.seq ?? 0) >= head.seq) return undefined;
      const next = keyring.withAuditAnchor({ seq: head.seq, hash: head.hash }).seal(root);
      await writeSealedKeyring(tx, next);
      return next;
    });
    if (sealed) this.#seal.keyringFor(sealed);
  }

  /** Audit entries as JSON lines, oldest first. */
  async *exportAudit(): AsyncGenerator<string> {
    this.#requireUnsealed();
    for await (const entry of this.#audit!.entries()) yield JSON.stringify(entry satisfies AuditEntry) + '\n';
  }

  /** The keyed hash under which a sensitive value appears in the audit log. */
  auditHash(value: Uint8Array): string {
    this.#requireUnsealed();
    return this.#audit!.hashValue(value);
  }

  usage(): UsageCounter[] {
    return this.#monitor.counters();
  }

  /**
   * What the usage monitor keeps for display: requests per window by key and by caller, the recent anomaly
   * warnings and the warning totals. Labels are key names and callers, never secrets.
   */
  usageReport(): {
    windowMs: number;
    windows: UsageWindow[];
    warnings: UsageWarning[];
    warningCounts: Readonly<Record<UsageWarning['kind'], number>>;
  } {
    return {
      windowMs: this.#monitor.windowMs,
      windows: this.#monitor.history(),
      warnings: this.#monitor.recentWarnings(),
      warningCounts: this.#monitor.warningCounts(),
    };
  }

  /** Prometheus text: request counters and anomaly warnings. */
  metrics(): string {
    return (
      this.#monitor.prometheus() +
      '# HELP enseal_store_tampered_records_total Stored records refused because their authenticator failed.\n' +
      '# TYPE enseal_store_tampered_records_total counter\n' +
      `enseal_store_tampered_records_total ${this.#tampered}\n`
    );
  }

  /** Waits for pending audit writes, wipes keys, closes the store. */
  async close(): Promise<void> {
    await this.seal().catch(() => undefined);
    await this.#pool?.close();
    await this.#store.close();
  }
}

/** Placeholder result of an item handed to the batch pool, replaced once the pool answers. */
const PENDING = new Error('pending');

/** The items of one batch that go to the worker pool, with the result slot each fills. */
class Pooled {
  readonly #slots: number[] = [];
  readonly #items: PoolItem[] = [];
  /** Copies of the data keys: a cache reload during the batch wipes the cached ones. */
  readonly #keys = new Map<Uint8Array, Uint8Array>();
  #type: KeyType | undefined;

  /** Takes the item unless its key type differs from the others' (then the caller runs it itself). */
  add(slot: number, type: KeyType, item: PoolItem): boolean {
    if (this.#type !== undefined && this.#type !== type) return false;
    this.#type = type;
    let key = this.#keys.get(item.key);
    if (key === undefined) {
      key = Uint8Array.from(item.key);
      this.#keys.set(item.key, key);
    }
    this.#slots.push(slot);
    this.#items.push({ ...item, key });
    return true;
  }

  async finish<T extends string | Uint8Array>(
    pool: BatchPool,
    kind: 'encrypt' | 'decrypt',
    results: BatchResult<T>[],
  ): Promise<void> {
    if (this.#type === undefined) return;
    let out;
    try {
      out = await pool.run(kind, this.#type, this.#items);
    } finally {
      for (const key of this.#keys.values()) wipe(key);
    }
    out.forEach((o, n) => {
      const slot = this.#slots[n]!;
      const version = this.#items[n]!.version;
      results[slot] = (
        'code' in o
          ? { error: new EnsealError(o.code as ErrorCode, o.message) }
          : { value: 'text' in o ? o.text : o.plain, version }
      ) as BatchResult<T>;
    });
  }
}

export interface KeySnapshot {
  policy: KeyPolicy;
  versions: { version: number; createdAt: number; reserved: number; material: string }[];
  contexts: { contextId: string; createdAt: number; secret: string }[];
}
