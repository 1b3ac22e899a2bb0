/**
 * The storage contract of the key manager. Two implementations honour it: SQLite (embedded, one node) and
 * PostgreSQL (several nodes sharing one store). The store holds only wrapped key material and metadata; it
 * never sees a plaintext key, so it needs no cryptography of its own.
 *
 * Every read and write happens inside {@link Store.transaction}. A transaction either commits all of its
 * writes or none of them, and `forUpdate` reads lock the row until commit, so two nodes rotating the same
 * key serialise instead of both writing "version 3".
 */

/** A named key's metadata row. `doc` is the key's JSON configuration, opaque to the store. */
export interface KeyRow {
  readonly name: string;
  readonly doc: string;
  /** Unix milliseconds of the last write. */
  readonly updatedAt: number;
}

/** One wrapped version of a named key. */
export interface KeyVersionRow {
  readonly name: string;
  readonly version: number;
  /** Keyring term whose key wrapped `wrapped`. */
  readonly term: number;
  readonly wrapped: Uint8Array;
  /** Unix milliseconds. */
  readonly createdAt: number;
  /**
   * Encryptions reserved under this version so far. Nodes reserve blocks before using them, so after a
   * crash the count can only be too high, never too low.
   */
  readonly reserved: number;
}

/** A per-context secret of a derived key; deleting it crypto-shreds the context's data. */
export interface KeyContextRow {
  readonly name: string;
  /** A keyed hash of the context, so contexts are not stored in clear. */
  readonly contextId: string;
  readonly term: number;
  readonly wrapped: Uint8Array;
  readonly createdAt: number;
}

/** One audit log entry: `entry` is canonical JSON; `hash` chains it to its predecessor; `mac` seals both. */
export interface AuditRow {
  readonly seq: number;
  readonly entry: string;
  readonly hash: string;
  readonly mac: string;
}

/** A wrapped blob that may need re-wrapping when the keyring rotates. */
export type WrappedRef =
  | { readonly kind: 'version'; readonly name: string; readonly version: number; readonly term: number }
  | { readonly kind: 'context'; readonly name: string; readonly contextId: string; readonly term: number };

/** One leaf of the e2ee directory's transparency log. */
export interface E2eeLeafRow {
  /** The leaf index, from 0, without gaps. */
  readonly index: number;
  /** The user the entry is about (an index, so a user's entries are found without a scan). */
  readonly userId: string;
  /** The canonical entry bytes. */
  readonly entry: Uint8Array;
  /** RFC 9162 leaf hash of `entry`. */
  readonly leafHash: Uint8Array;
  /** Unix milliseconds. */
  readonly createdAt: number;
}

/** A signed checkpoint of the log and the witness cosignature lines collected for it. */
export interface E2eeCheckpointRow {
  readonly size: number;
  /** The signed note, the log's signature only. */
  readonly note: string;
  /** Cosignature lines (`— name base64\n`), by witness name. */
  readonly cosignatures: Readonly<Record<string, string>>;
  readonly createdAt: number;
}

/** A key package handed out by {@link StoreTransaction.claimE2eeKeyPackage}. */
export interface E2eeClaimedKeyPackage {
  readonly keyPackage: Uint8Array;
  readonly lastResort: boolean;
}

/** A member of a relay group: one device of one user. */
export interface E2eeMember {
  readonly user: string;
  readonly device: string;
}

/** A relay group: an id with an epoch and its roster (the relay keeps nothing else about it). */
export interface E2eeGroupRow {
  /** The group id, unpadded base64url. */
  readonly groupId: string;
  readonly epoch: number;
  readonly roster: readonly E2eeMember[];
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** An accepted commit: the frame that moved `groupId` from `epoch` to `epoch + 1`. */
export interface E2eeCommitRow {
  readonly groupId: string;
  readonly epoch: number;
  readonly sender: E2eeMember;
  readonly frame: Uint8Array;
  readonly createdAt: number;
}

/** A message for the queues of some devices (stored once, referenced by each recipient's queue row). */
export interface E2eeMessage {
  readonly groupId: string;
  readonly epoch: number;
  readonly kind: 'commit' | 'welcome' | 'application';
  readonly sender: E2eeMember;
  readonly frame: Uint8Array;
  /** Unix milliseconds. */
  readonly receivedAt: number;
  /** Unix milliseconds after which it is dropped, delivered or not. */
  readonly expiresAt: number;
}

/** A queued message as one device reads it. */
export interface E2eeQueuedMessage extends E2eeMessage {
  /** Global, increasing: a device reads its queue in this order. */
  readonly seq: number;
}

/** A blob (an encrypted file) of a group, written in chunks. */
export interface E2eeBlobRow {
  readonly blobId: string;
  readonly groupId: string;
  readonly owner: E2eeMember;
  /** Set by {@link StoreTransaction.completeE2eeBlob}; undefined while chunks are still being written. */
  readonly chunks?: number;
  readonly size?: number;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** A login challenge issued to one device; usable once, until `expiresAt`. */
export interface E2eeChallengeRow {
  /** The challenge bytes, hex. */
  readonly challenge: string;
  readonly user: string;
  readonly device: string;
  readonly expiresAt: number;
}

export interface StoreTransaction {
  /**
   * With `lock: 'share'`, other transactions may also share-lock the row but none may update it until this
   * one ends; with `lock: 'update'`, the row is exclusively locked. (SQLite has one writer at a time, so
   * every write transaction already holds both.)
   */
  getMeta(key: string, options?: { lock?: 'share' | 'update' }): Promise<Uint8Array | undefined>;
  putMeta(key: string, value: Uint8Array): Promise<void>;
  deleteMeta(key: string): Promise<void>;
  /** Keys (not values) that start with `prefix`, ascending. */
  listMeta(prefix: string): Promise<string[]>;

  /** With `forUpdate`, the row stays locked until the transaction ends. */
  getKey(name: string, options?: { forUpdate?: boolean }): Promise<KeyRow | undefined>;
  /** Inserts a new key; returns false (and writes nothing) when the name is taken. */
  insertKey(row: KeyRow): Promise<boolean>;
  /** Replaces an existing key's document; returns false when there is no such key. */
  updateKey(row: KeyRow): Promise<boolean>;
  /** Deletes the key with its versions and contexts; returns false when there was no such key. */
  deleteKey(name: string): Promise<boolean>;
  /** Names in ascending order, strictly after `after`, at most `limit`. */
  listKeys(options?: { after?: string; limit?: number }): Promise<string[]>;

  /** Versions of one key in ascending order. */
  getVersions(name: string): Promise<KeyVersionRow[]>;
  getVersion(name: string, version: number): Promise<KeyVersionRow | undefined>;
  /** Inserts a version; returns false when that version already exists. */
  insertVersion(row: KeyVersionRow): Promise<boolean>;
  /** Replaces a version's wrapped material and term (keyring rotation); returns false when absent. */
  rewrapVersion(name: string, version: number, term: number, wrapped: Uint8Array): Promise<boolean>;
  /** Deletes versions below `minVersion`; returns how many went. */
  deleteVersionsBelow(name: string, minVersion: number): Promise<number>;
  /** Adds `count` to a version's reservation atomically and returns the new total. */
  reserveEncryptions(name: string, version: number, count: number): Promise<number>;

  getContext(name: string, contextId: string): Promise<KeyContextRow | undefined>;
  /** Inserts a context secret; returns false when one already exists (another node won the race). */
  insertContext(row: KeyContextRow): Promise<boolean>;
  rewrapContext(name: string, contextId: string, term: number, wrapped: Uint8Array): Promise<boolean>;
  deleteContext(name: string, contextId: string): Promise<boolean>;
  /** Every context secret of one key (for backup), ordered by contextId. */
  listContexts(name: string): Promise<KeyContextRow[]>;

  /** Wrapped blobs whose term differs from `term`, oldest first, at most `limit`. */
  listWrappedNotInTerm(term: number, limit: number): Promise<WrappedRef[]>;

  /**
   * The newest audit row. With `lock`, concurrent appenders (other nodes) wait until this transaction ends,
   * so the hash chain has exactly one successor per entry.
   */
  lastAudit(options?: { lock?: boolean }): Promise<AuditRow | undefined>;
  appendAudit(rows: readonly AuditRow[]): Promise<void>;
  /** Rows with seq > `afterSeq` in ascending order, at most `limit`. */
  readAudit(afterSeq: number, limit: number): Promise<AuditRow[]>;
  // ---- e2ee: the directory's transparency log

  /**
   * Locks the log head until the transaction ends and returns the log size. Appenders call it first, so two
   * nodes appending at once take turns and the log never forks.
   */
  lockE2eeLog(): Promise<number>;
  /** The log size, without locking. */
  e2eeLogSize(): Promise<number>;
  /**
   * Appends leaves after {@link lockE2eeLog}: their indexes must continue the log without a gap (ERR_STORE
   * otherwise, and nothing is written).
   */
  appendE2eeLeaves(rows: readonly E2eeLeafRow[]): Promise<void>;
  /** Leaves `[start, end)` in index order. */
  readE2eeLeaves(start: number, end: number): Promise<E2eeLeafRow[]>;
  /** Leaf hashes `[start, end)` in index order. */
  readE2eeLeafHashes(start: number, end: number): Promise<Uint8Array[]>;
  /** Every leaf about `userId`, in index order. */
  listE2eeUserLeaves(userId: string): Promise<E2eeLeafRow[]>;
  /** Stores a signed checkpoint; returns false (and writes nothing) when one of that size exists. */
  insertE2eeCheckpoint(size: number, note: string, createdAt: number): Promise<boolean>;
  /** The checkpoint of `size`, or the largest one when `size` is omitted. */
  getE2eeCheckpoint(size?: number): Promise<E2eeCheckpointRow | undefined>;
  /** Adds (or replaces) a witness's cosignature line on the checkpoint of `size`. */
  putE2eeCosignature(size: number, witness: string, line: string): Promise<void>;

  // ---- e2ee: key packages

  /** Adds one-time key packages of a device. */
  insertE2eeKeyPackages(
    user: string,
    device: string,
    packages: readonly Uint8Array[],
    createdAt: number,
  ): Promise<void>;
  /** Sets (or replaces) the device's last-resort key package. */
  putE2eeLastResortKeyPackage(
    user: string,
    device: string,
    keyPackage: Uint8Array,
    createdAt: number,
  ): Promise<void>;
  /** One-time key packages the device has left. */
  countE2eeKeyPackages(user: string, device: string): Promise<number>;
  /**
   * Takes one key package of the device: a one-time package is deleted by this call (two transactions never
   * get the same one, and neither waits for the other); with none left, the last-resort package, which stays.
   */
  claimE2eeKeyPackage(user: string, device: string): Promise<E2eeClaimedKeyPackage | undefined>;
  /** Deletes every key package of a device (it was revoked); returns how many went. */
  deleteE2eeKeyPackages(user: string, device: string): Promise<number>;

  // ---- e2ee: relay groups, queues, blobs

  /** Creates a group; returns false when the id is taken. */
  insertE2eeGroup(row: E2eeGroupRow): Promise<boolean>;
  /** With `forUpdate`, the row stays locked until the transaction ends (commits on one group take turns). */
  getE2eeGroup(groupId: string, options?: { forUpdate?: boolean }): Promise<E2eeGroupRow | undefined>;
  /** Sets a group's epoch and roster; returns false when there is no such group. */
  updateE2eeGroup(
    groupId: string,
    epoch: number,
    roster: readonly E2eeMember[],
    updatedAt: number,
  ): Promise<boolean>;
  /** Records an accepted commit; returns false when that epoch already has one. */
  insertE2eeCommit(row: E2eeCommitRow): Promise<boolean>;
  /** Accepted commits of a group with epoch ≥ `fromEpoch`, ascending, at most `limit`. */
  listE2eeCommits(groupId: string, fromEpoch: number, limit: number): Promise<E2eeCommitRow[]>;
  /**
   * Queues one message for `recipients` and returns its seq. Seqs grow in commit order across nodes (queue
   * writes take turns), so a reader that saw seq n never later finds a smaller one appear.
   */
  enqueueE2ee(message: E2eeMessage, recipients: readonly E2eeMember[]): Promise<number>;
  /** The device's queued messages with seq > `after` that have not expired at `now`, ascending, at most `limit`. */
  readE2eeInbox(member: E2eeMember, after: number, now: number, limit: number): Promise<E2eeQueuedMessage[]>;
  /** Removes the device's queue rows with seq ≤ `upTo` (and messages no queue refers to any more). */
  ackE2eeInbox(member: E2eeMember, upTo: number): Promise<number>;
  /** Deletes messages, blobs and challenges that expired before `now`; returns how many rows went. */
  expireE2ee(now: number): Promise<number>;
  /** Creates a blob; returns false when the id is taken. */
  insertE2eeBlob(row: E2eeBlobRow): Promise<boolean>;
  getE2eeBlob(blobId: string): Promise<E2eeBlobRow | undefined>;
  /** Writes (or rewrites) chunk `n` of an incomplete blob; returns false when the blob is absent or complete. */
  putE2eeBlobChunk(blobId: string, n: number, data: Uint8Array): Promise<boolean>;
  getE2eeBlobChunk(blobId: string, n: number): Promise<Uint8Array | undefined>;
  /**
   * Marks a blob complete when it holds exactly chunks 0 … `chunks - 1`; returns its size in bytes, or
   * undefined (and changes nothing) when it is absent, complete already or has other chunks.
   */
  completeE2eeBlob(blobId: string, chunks: number): Promise<number | undefined>;

  // ---- e2ee: device login challenges

  insertE2eeChallenge(row: E2eeChallengeRow): Promise<void>;
  /** Deletes and returns a challenge (so it is used once), or undefined when it is unknown. */
  takeE2eeChallenge(challenge: string): Promise<E2eeChallengeRow | undefined>;

  // ---- e2ee: recovery backups (opaque ciphertext, one per user)

  /** Stores (or replaces) the user's recovery backup. */
  putE2eeRecoveryBlob(user: string, blob: Uint8Array, updatedAt: number): Promise<void>;
  /** The user's recovery backup, or undefined when none is stored. */
  getE2eeRecoveryBlob(user: string): Promise<Uint8Array | undefined>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies pending migrations; returns the schema version now in force. Safe to run concurrently. */
  migrate(): Promise<number>;
  /**
   * Runs `fn` in one transaction and commits when it resolves, rolls back when it throws. Transactions that
   * lose a deadlock or serialisation race are retried, so `fn` must be safe to run more than once.
   */
  transaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
