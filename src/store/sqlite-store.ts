/**
 * The embedded store: one SQLite file through better-sqlite3, in WAL mode, where a transaction that returned
 * is on disk even after a power cut. better-sqlite3 is synchronous; the async contract is kept by running one
 * transaction at a time per connection (an async queue), because a transaction's callback may await between
 * statements and nothing else may slip into it.
 *
 * Durability without blocking the event loop: with `synchronous=FULL`, every COMMIT would fsync the WAL
 * inside better-sqlite3's synchronous call, 2-5 ms on an ordinary disk during which the process serves
 * nobody. A file store runs with `synchronous=NORMAL` (a COMMIT only writes its WAL frames; checkpoints
 * still sync both files) and this class makes the WAL durable itself: after a COMMIT that changed anything,
 * the transaction's promise settles only once an `fdatasync` of the WAL, run on libuv's thread pool, has
 * covered it. Commits that arrive while a sync is running share the next one (group sync). Every
 * transaction, read-only ones included, waits for the syncs of everything committed before it ended, so no
 * caller ever sees data that is not yet durable; a failed sync fails this and every later transaction
 * (fail closed), because after an fsync error the kernel may have dropped the unwritten pages.
 */
import { closeSync, fdatasync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { EnsealError, ErrorCode } from '../crypto/index.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { storeError } from './store-error.js';
import {
  auditRow,
  blobRow,
  buffer,
  bytes,
  commitRow,
  contextRow,
  groupRow,
  leafRow,
  num,
  queuedRow,
  rosterText,
  versionRow,
  type Row,
} from './rows.js';
import type { E2eeCheckpointRow, KeyRow, Store, StoreTransaction, WrappedRef } from './types.js';
import { checkLeafRun } from './e2ee-rows.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for a throwaway store. */
  path: string;
  /** How long to wait for another process's write lock (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * Let SQLite fsync inside every COMMIT (`synchronous=FULL`) instead of syncing the WAL off the event loop
   * (default false; both are durable, the default blocks the process less).
   */
  syncAtCommit?: boolean;
}

/** Queue rows written by one INSERT (three parameters each, far below SQLite's limit). */
const QUEUE_ROWS_PER_INSERT = 100;
const MAX_BUSY_RETRIES = 20;

/**
 * Creates a new store file with mode 0600 before SQLite opens it: SQLite would create it under the umask
 * (usually 0644), and gives its -wal and -shm files the mode of the database file.
 */
function createPrivate(path: string): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch {
    // Already there (its mode is then the operator's choice, which `enseal doctor` reports), or unusable, which
    // SQLite's own open reports next.
  }
}

/** The SQLite store. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  #queue: Promise<unknown> = Promise.resolve();
  #statements = new Map<string, Database.Statement>();
  #tx: StoreTransaction;
  #closed = false;
  /** The WAL file whose syncs this class runs, or undefined when SQLite syncs at COMMIT (memory, URIs). */
  readonly #walPath: string | undefined;
  #walFd: number | undefined;
  #totalChanges: Database.Statement | undefined;
  /** SQLite's total_changes() after the last COMMIT: a transaction that moved it wrote something. */
  #changes = 0;
  /** Write commits so far, and how many of them a completed WAL sync covers. */
  #committed = 0;
  #synced = 0;
  #syncRunning = false;
  #syncFailed: unknown;
  #syncWaiters: { upTo: number; resolve: () => void; reject: (err: unknown) => void }[] = [];

  private constructor(db: Database.Database, walPath: string | undefined) {
    this.#db = db;
    this.#walPath = walPath;
    this.#tx = this.#transactionApi();
  }

  /**
   * Opens (creating if needed) a store file. Call {@link migrate} before use.
   *
   * @example
   * ```ts no-run
   * const store = SqliteStore.open({ path: '/var/lib/enseal/enseal.db' });
   * await store.migrate();
   * ```
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    let db: Database.Database;
    let walPath: string | undefined;
    try {
      createPrivate(options.path);
      db = new Database(options.path);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      const file = (db.pragma('database_list') as { name: string; file: string }[]).find(
        (d) => d.name === 'main',
      )?.file;
      // Plain files only: a URI may carry its own VFS or options, so SQLite keeps syncing those itself.
      walPath =
        mode === 'wal' && file && !options.path.startsWith('file:') && options.syncAtCommit !== true
          ? `${file}-wal`
          : undefined;
      db.pragma(walPath === undefined ? 'synchronous = FULL' : 'synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    } catch (cause) {
      throw storeError('open', cause);
    }
    return new SqliteStore(db, walPath);
  }

  #stmt(sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (s === undefined) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #get(sql: string, ...params: unknown[]): Row | undefined {
    return this.#stmt(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: unknown[]): Row[] {
    return this.#stmt(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: unknown[]): number {
    return this.#stmt(sql).run(...params).changes;
  }

  async migrate(): Promise<number> {
    return this.transaction(async () => {
      this.#db.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
      );
      const row = this.#db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as {
        v: number | null;
      };
      const current = row.v ?? 0;
      if (current > SCHEMA_VERSION) {
        throw new EnsealError(
          ErrorCode.STORE,
          `store schema ${current} is newer than this enseal (${SCHEMA_VERSION}); upgrade enseal`,
        );
      }
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        for (const sql of m.sqlite) this.#db.exec(sql);
        this.#db
          .prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)')
          .run(m.version, Date.now());
      }
      return SCHEMA_VERSION;
    });
  }

  transaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => this.#runTransaction(fn));
    this.#queue = run.catch(() => undefined);
    // The queue moves on at COMMIT; the caller waits for the WAL sync that covers what it saw.
    return run.then(async ({ result, upTo }) => {
      if (upTo > this.#synced) await this.#durable(upTo);
      return result;
    });
  }

  /** Resolves once a WAL sync has covered the first `upTo` write commits. */
  #durable(upTo: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#syncWaiters.push({ upTo, resolve, reject });
      this.#startSync();
    });
  }

  #startSync(): void {
    if (this.#syncRunning || this.#syncWaiters.length === 0) return;
    if (this.#syncFailed !== undefined) {
      const err = storeError('sync', this.#syncFailed);
      for (const w of this.#syncWaiters.splice(0)) w.reject(err);
      return;
    }
    let fd: number;
    try {
      fd = this.#walDescriptor();
    } catch (cause) {
      this.#syncFailed = cause;
      this.#startSync();
      return;
    }
    this.#syncRunning = true;
    const target = this.#committed;
    fdatasync(fd, (err) => {
      this.#syncRunning = false;
      if (err) this.#syncFailed = err;
      else this.#synced = Math.max(this.#synced, target);
      const waiting = this.#syncWaiters;
      this.#syncWaiters = [];
      for (const w of waiting) {
        if (err) w.reject(storeError('sync', err));
        else if (w.upTo <= target) w.resolve();
        else this.#syncWaiters.push(w);
      }
      this.#startSync();
    });
  }

  /**
   * The WAL's descriptor, opened on first use (SQLite creates the file at the first write). Its directory is
   * synced once then, so the file's name is as durable as its contents.
   */
  #walDescriptor(): number {
    if (this.#walFd !== undefined) return this.#walFd;
    const fd = openSync(this.#walPath!, 'r');
    try {
      const dir = openSync(dirname(this.#walPath!), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (cause) {
      closeSync(fd);
      throw cause;
    }
    this.#walFd = fd;
    return fd;
  }

  async #runTransaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<{ result: T; upTo: number }> {
    if (this.#closed) throw new EnsealError(ErrorCode.STORE, 'store is closed');
    if (this.#syncFailed !== undefined) throw storeError('sync', this.#syncFailed);
    await this.#begin();
    let result: T;
    try {
      result = await fn(this.#tx);
    } catch (err) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // the transaction is already gone (SQLite rolls back on some errors itself)
      }
      throw err instanceof EnsealError ? err : storeError('transaction', err);
    }
    try {
      this.#db.exec('COMMIT');
    } catch (cause) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // nothing to roll back
      }
      throw storeError('commit', cause);
    }
    if (this.#walPath !== undefined) {
      this.#totalChanges ??= this.#db.prepare('SELECT total_changes()').pluck();
      const changes = this.#totalChanges.get() as number;
      if (changes !== this.#changes) {
        this.#changes = changes;
        this.#committed += 1;
      }
    }
    return { result, upTo: this.#committed };
  }

  /** BEGIN IMMEDIATE takes the write lock now, so a busy database is noticed here, where retrying is safe. */
  async #begin(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.#db.exec('BEGIN IMMEDIATE');
        return;
      } catch (cause) {
        // Extended codes (SQLITE_BUSY_RECOVERY, SQLITE_BUSY_TIMEOUT) are just as transient.
        const code = (cause as { code?: unknown }).code;
        const busy = typeof code === 'string' && code.startsWith('SQLITE_BUSY');
        if (!busy || attempt >= MAX_BUSY_RETRIES) throw storeError('begin', cause);
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    await Promise.allSettled(this.#committed > this.#synced ? [this.#durable(this.#committed)] : []);
    this.#db.close();
    if (this.#walFd !== undefined) closeSync(this.#walFd);
    this.#walFd = undefined;
  }

  #transactionApi(): StoreTransaction {
    // The methods below are plain closures over the private helpers, bound once per store.
    const get = (sql: string, ...p: unknown[]) => this.#get(sql, ...p);
    const all = (sql: string, ...p: unknown[]) => this.#all(sql, ...p);
    const run = (sql: string, ...p: unknown[]) => this.#run(sql, ...p);
    const stmt = (sql: string) => this.#stmt(sql);
    return {
      async getMeta(key) {
        const r = get('SELECT value FROM meta WHERE key = ?', key);
        return r === undefined ? undefined : bytes(r.value);
      },
      async putMeta(key, value) {
        run(
          'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
          key,
          buffer(value),
        );
      },
      async listMeta(prefix) {
        return all(
          'SELECT key FROM meta WHERE substr(key, 1, length(?)) = ? ORDER BY key',
          prefix,
          prefix,
        ).map((r) => r.key as string);
      },
      async deleteMeta(key) {
        run('DELETE FROM meta WHERE key = ?', key);
      },
      // SQLite has one writer at a time and BEGIN IMMEDIATE took the lock: every read is "for update".
      async getKey(name) {
        const r = get('SELECT name, doc, updated_at FROM keys WHERE name = ?', name);
        return r === undefined
          ? undefined
          : ({ name: r.name, doc: r.doc, updatedAt: r.updated_at } as KeyRow);
      },
      async insertKey(row) {
        return (
          run(
            'INSERT INTO keys (name, doc, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING',
            row.name,
            row.doc,
            row.updatedAt,
          ) === 1
        );
      },
      async updateKey(row) {
        return (
          run('UPDATE keys SET doc = ?, updated_at = ? WHERE name = ?', row.doc, row.updatedAt, row.name) ===
          1
        );
      },
      async deleteKey(name) {
        return run('DELETE FROM keys WHERE name = ?', name) === 1;
      },
      async listKeys(options = {}) {
        // BINARY collation is byte order, the same order PostgreSQL pages in; LIMIT -1 means no limit.
        const rows = all(
          'SELECT name FROM keys WHERE name > ? ORDER BY name LIMIT ?',
          options.after ?? '',
          options.limit ?? -1,
        );
        return rows.map((r) => r.name as string);
      },
      async getVersions(name) {
        return all('SELECT * FROM key_versions WHERE name = ? ORDER BY version', name).map(versionRow);
      },
      async getVersion(name, version) {
        const r = get('SELECT * FROM key_versions WHERE name = ? AND version = ?', name, version);
        return r === undefined ? undefined : versionRow(r);
      },
      async insertVersion(row) {
        return (
          run(
            'INSERT INTO key_versions (name, version, term, wrapped, created_at, reserved) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
            row.name,
            row.version,
            row.term,
            buffer(row.wrapped),
            row.createdAt,
            row.reserved,
          ) === 1
        );
      },
      async rewrapVersion(name, version, term, wrapped) {
        return (
          run(
            'UPDATE key_versions SET term = ?, wrapped = ? WHERE name = ? AND version = ?',
            term,
            buffer(wrapped),
            name,
            version,
          ) === 1
        );
      },
      async deleteVersionsBelow(name, minVersion) {
        return run('DELETE FROM key_versions WHERE name = ? AND version < ?', name, minVersion);
      },
      async reserveEncryptions(name, version, count) {
        const r = get(
          'UPDATE key_versions SET reserved = reserved + ? WHERE name = ? AND version = ? RETURNING reserved',
          count,
          name,
          version,
        );
        if (r === undefined)
          throw new EnsealError(ErrorCode.KEY_NOT_FOUND, `no version ${version} of key "${name}"`);
        return r.reserved as number;
      },
      async getContext(name, contextId) {
        const r = get('SELECT * FROM key_contexts WHERE name = ? AND context_id = ?', name, contextId);
        return r === undefined ? undefined : contextRow(r);
      },
      async insertContext(row) {
        return (
          run(
            'INSERT INTO key_contexts (name, context_id, term, wrapped, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
            row.name,
            row.contextId,
            row.term,
            buffer(row.wrapped),
            row.createdAt,
          ) === 1
        );
      },
      async rewrapContext(name, contextId, term, wrapped) {
        return (
          run(
            'UPDATE key_contexts SET term = ?, wrapped = ? WHERE name = ? AND context_id = ?',
            term,
            buffer(wrapped),
            name,
            contextId,
          ) === 1
        );
      },
      async deleteContext(name, contextId) {
        return run('DELETE FROM key_contexts WHERE name = ? AND context_id = ?', name, contextId) === 1;
      },
      async listContexts(name) {
        return all('SELECT * FROM key_contexts WHERE name = ? ORDER BY context_id', name).map(contextRow);
      },
      async listWrappedNotInTerm(term, limit) {
        const rows = all(
          `SELECT 'version' AS kind, name, version, NULL AS context_id, term FROM key_versions WHERE term <> ?
           UNION ALL SELECT 'context', name, NULL, context_id, term FROM key_contexts WHERE term <> ?
           ORDER BY term, name LIMIT ?`,
          term,
          term,
          limit,
        );
        return rows.map((r): WrappedRef =>
          r.kind === 'version'
            ? {
                kind: 'version',
                name: r.name as string,
                version: r.version as number,
                term: r.term as number,
              }
            : {
                kind: 'context',
                name: r.name as string,
                contextId: r.context_id as string,
                term: r.term as number,
              },
        );
      },
      async lastAudit() {
        const r = get('SELECT seq, entry, hash, mac FROM audit_log ORDER BY seq DESC LIMIT 1');
        return r === undefined ? undefined : auditRow(r);
      },
      async appendAudit(rows) {
        const insert = stmt('INSERT INTO audit_log (seq, entry, hash, mac) VALUES (?, ?, ?, ?)');
        for (const r of rows) insert.run(r.seq, r.entry, r.hash, r.mac);
      },
      async readAudit(afterSeq, limit) {
        return all(
          'SELECT seq, entry, hash, mac FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?',
          afterSeq,
          limit,
        ).map(auditRow);
      },
      // ---- e2ee (one writer at a time: the log head, group rows and queue seqs are serialised already)
      async lockE2eeLog() {
        return num(get('SELECT size FROM e2ee_log_head WHERE id = 1')?.size ?? 0);
      },
      async e2eeLogSize() {
        return num(get('SELECT size FROM e2ee_log_head WHERE id = 1')?.size ?? 0);
      },
      async appendE2eeLeaves(rows) {
        if (rows.length === 0) return;
        const size = num(get('SELECT size FROM e2ee_log_head WHERE id = 1')?.size ?? 0);
        checkLeafRun(size, rows);
        const insert = stmt(
          'INSERT INTO e2ee_log_leaves (idx, user_id, entry, leaf_hash, created_at) VALUES (?, ?, ?, ?, ?)',
        );
        for (const r of rows) insert.run(r.index, r.userId, buffer(r.entry), buffer(r.leafHash), r.createdAt);
        run('UPDATE e2ee_log_head SET size = ? WHERE id = 1', size + rows.length);
      },
      async readE2eeLeaves(start, end) {
        return all('SELECT * FROM e2ee_log_leaves WHERE idx >= ? AND idx < ? ORDER BY idx', start, end).map(
          leafRow,
        );
      },
      async readE2eeLeafHashes(start, end) {
        return all(
          'SELECT leaf_hash FROM e2ee_log_leaves WHERE idx >= ? AND idx < ? ORDER BY idx',
          start,
          end,
        ).map((r) => bytes(r.leaf_hash));
      },
      async listE2eeUserLeaves(userId) {
        return all('SELECT * FROM e2ee_log_leaves WHERE user_id = ? ORDER BY idx', userId).map(leafRow);
      },
      async insertE2eeCheckpoint(size, note, createdAt) {
        return (
          run(
            'INSERT INTO e2ee_checkpoints (size, note, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
            size,
            note,
            createdAt,
          ) === 1
        );
      },
      async getE2eeCheckpoint(size) {
        const r =
          size === undefined
            ? get('SELECT * FROM e2ee_checkpoints ORDER BY size DESC LIMIT 1')
            : get('SELECT * FROM e2ee_checkpoints WHERE size = ?', size);
        if (r === undefined) return undefined;
        const cosignatures: Record<string, string> = {};
        for (const c of all(
          'SELECT witness, line FROM e2ee_cosignatures WHERE size = ? ORDER BY witness',
          r.size,
        ))
          cosignatures[c.witness as string] = c.line as string;
        return {
          size: num(r.size),
          note: r.note as string,
          cosignatures,
          createdAt: num(r.created_at),
        } satisfies E2eeCheckpointRow;
      },
      async putE2eeCosignature(size, witness, line) {
        run(
          'INSERT INTO e2ee_cosignatures (size, witness, line) VALUES (?, ?, ?) ON CONFLICT(size, witness) DO UPDATE SET line = excluded.line',
          size,
          witness,
          line,
        );
      },
      async insertE2eeKeyPackages(user, device, packages, createdAt) {
        const insert = stmt(
          'INSERT INTO e2ee_key_packages (user_id, device_id, package, created_at) VALUES (?, ?, ?, ?)',
        );
        for (const p of packages) insert.run(user, device, buffer(p), createdAt);
      },
      async putE2eeLastResortKeyPackage(user, device, keyPackage, createdAt) {
        run(
          `INSERT INTO e2ee_last_resort (user_id, device_id, package, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(user_id, device_id) DO UPDATE SET package = excluded.package, created_at = excluded.created_at`,
          user,
          device,
          buffer(keyPackage),
          createdAt,
        );
      },
      async countE2eeKeyPackages(user, device) {
        return num(
          get('SELECT COUNT(*) AS n FROM e2ee_key_packages WHERE user_id = ? AND device_id = ?', user, device)
            ?.n ?? 0,
        );
      },
      async claimE2eeKeyPackage(user, device) {
        const r = get(
          `DELETE FROM e2ee_key_packages WHERE id = (
             SELECT id FROM e2ee_key_packages WHERE user_id = ? AND device_id = ? ORDER BY id LIMIT 1)
           RETURNING package`,
          user,
          device,
        );
        if (r !== undefined) return { keyPackage: bytes(r.package), lastResort: false };
        const l = get(
          'SELECT package FROM e2ee_last_resort WHERE user_id = ? AND device_id = ?',
          user,
          device,
        );
        return l === undefined ? undefined : { keyPackage: bytes(l.package), lastResort: true };
      },
      async deleteE2eeKeyPackages(user, device) {
        return (
          run('DELETE FROM e2ee_key_packages WHERE user_id = ? AND device_id = ?', user, device) +
          run('DELETE FROM e2ee_last_resort WHERE user_id = ? AND device_id = ?', user, device)
        );
      },
      async insertE2eeGroup(row) {
        return (
          run(
            'INSERT INTO e2ee_groups (group_id, epoch, roster, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
            row.groupId,
            row.epoch,
            rosterText(row.roster),
            row.createdAt,
            row.updatedAt,
          ) === 1
        );
      },
      async getE2eeGroup(groupId) {
        const r = get('SELECT * FROM e2ee_groups WHERE group_id = ?', groupId);
        return r === undefined ? undefined : groupRow(r);
      },
      async updateE2eeGroup(groupId, epoch, roster, updatedAt) {
        return (
          run(
            'UPDATE e2ee_groups SET epoch = ?, roster = ?, updated_at = ? WHERE group_id = ?',
            epoch,
            rosterText(roster),
            updatedAt,
            groupId,
          ) === 1
        );
      },
      async insertE2eeCommit(row) {
        return (
          run(
            `INSERT INTO e2ee_commits (group_id, epoch, sender_user, sender_device, frame, created_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
            row.groupId,
            row.epoch,
            row.sender.user,
            row.sender.device,
            buffer(row.frame),
            row.createdAt,
          ) === 1
        );
      },
      async listE2eeCommits(groupId, fromEpoch, limit) {
        return all(
          'SELECT * FROM e2ee_commits WHERE group_id = ? AND epoch >= ? ORDER BY epoch LIMIT ?',
          groupId,
          fromEpoch,
          limit,
        ).map(commitRow);
      },
      async enqueueE2ee(m, recipients) {
        const r = get(
          `INSERT INTO e2ee_messages (group_id, epoch, kind, sender_user, sender_device, frame, received_at, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
          m.groupId,
          m.epoch,
          m.kind,
          m.sender.user,
          m.sender.device,
          buffer(m.frame),
          m.receivedAt,
          m.expiresAt,
        );
        const seq = num(r?.seq);
        // One statement per 100 recipients rather than one per recipient: this runs for every message.
        for (let i = 0; i < recipients.length; i += QUEUE_ROWS_PER_INSERT) {
          const part = recipients.slice(i, i + QUEUE_ROWS_PER_INSERT);
          stmt(
            `INSERT OR IGNORE INTO e2ee_queue (user_id, device_id, seq) VALUES ${part.map(() => '(?, ?, ?)').join(', ')}`,
          ).run(part.flatMap((d) => [d.user, d.device, seq]));
        }
        return seq;
      },
      async readE2eeInbox(member, after, now, limit) {
        return all(
          `SELECT m.* FROM e2ee_queue q JOIN e2ee_messages m ON m.seq = q.seq
           WHERE q.user_id = ? AND q.device_id = ? AND q.seq > ? AND m.expires_at > ? ORDER BY q.seq LIMIT ?`,
          member.user,
          member.device,
          after,
          now,
          limit,
        ).map(queuedRow);
      },
      async ackE2eeInbox(member, upTo) {
        const gone = all(
          'DELETE FROM e2ee_queue WHERE user_id = ? AND device_id = ? AND seq <= ? RETURNING seq',
          member.user,
          member.device,
          upTo,
        ).map((r) => num(r.seq));
        // The messages no queue refers to any more, in one statement.
        if (gone.length > 0)
          run(
            `DELETE FROM e2ee_messages WHERE seq IN (SELECT value FROM json_each(?))
             AND NOT EXISTS (SELECT 1 FROM e2ee_queue q WHERE q.seq = e2ee_messages.seq)`,
            JSON.stringify(gone),
          );
        return gone.length;
      },
      async expireE2ee(now) {
        return (
          run('DELETE FROM e2ee_messages WHERE expires_at <= ?', now) +
          run('DELETE FROM e2ee_blobs WHERE expires_at <= ?', now) +
          run('DELETE FROM e2ee_challenges WHERE expires_at <= ?', now)
        );
      },
      async insertE2eeBlob(row) {
        return (
          run(
            `INSERT INTO e2ee_blobs (blob_id, group_id, owner_user, owner_device, chunks, size, created_at, expires_at)
             VALUES (?, ?, ?, ?, NULL, NULL, ?, ?) ON CONFLICT DO NOTHING`,
            row.blobId,
            row.groupId,
            row.owner.user,
            row.owner.device,
            row.createdAt,
            row.expiresAt,
          ) === 1
        );
      },
      async getE2eeBlob(blobId) {
        const r = get('SELECT * FROM e2ee_blobs WHERE blob_id = ?', blobId);
        return r === undefined ? undefined : blobRow(r);
      },
      async putE2eeBlobChunk(blobId, n, data) {
        const b = get('SELECT chunks FROM e2ee_blobs WHERE blob_id = ?', blobId);
        if (b === undefined || (b.chunks !== null && b.chunks !== undefined)) return false;
        run(
          'INSERT INTO e2ee_blob_chunks (blob_id, n, data) VALUES (?, ?, ?) ON CONFLICT(blob_id, n) DO UPDATE SET data = excluded.data',
          blobId,
          n,
          buffer(data),
        );
        return true;
      },
      async putE2eeRecoveryBlob(user, blob, updatedAt) {
        run(
          `INSERT INTO e2ee_recovery_blobs (user_id, blob, updated_at) VALUES (?, ?, ?)
           ON CONFLICT(user_id) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at`,
          user,
          buffer(blob),
          updatedAt,
        );
      },
      async getE2eeRecoveryBlob(user) {
        const r = get('SELECT blob FROM e2ee_recovery_blobs WHERE user_id = ?', user);
        return r === undefined ? undefined : bytes(r.blob);
      },
      async getE2eeBlobChunk(blobId, n) {
        const r = get('SELECT data FROM e2ee_blob_chunks WHERE blob_id = ? AND n = ?', blobId, n);
        return r === undefined ? undefined : bytes(r.data);
      },
      async completeE2eeBlob(blobId, chunks) {
        const b = get('SELECT chunks FROM e2ee_blobs WHERE blob_id = ?', blobId);
        if (b === undefined || (b.chunks !== null && b.chunks !== undefined)) return undefined;
        const s = get(
          'SELECT COUNT(*) AS c, COALESCE(MAX(n), -1) AS mx, COALESCE(SUM(length(data)), 0) AS sz FROM e2ee_blob_chunks WHERE blob_id = ?',
          blobId,
        );
        if (num(s?.c) !== chunks || num(s?.mx) !== chunks - 1) return undefined;
        const size = num(s?.sz);
        run('UPDATE e2ee_blobs SET chunks = ?, size = ? WHERE blob_id = ?', chunks, size, blobId);
        return size;
      },
      async insertE2eeChallenge(row) {
        run(
          'INSERT INTO e2ee_challenges (challenge, user_id, device_id, expires_at) VALUES (?, ?, ?, ?)',
          row.challenge,
          row.user,
          row.device,
          row.expiresAt,
        );
      },
      async takeE2eeChallenge(challenge) {
        const r = get('DELETE FROM e2ee_challenges WHERE challenge = ? RETURNING *', challenge);
        return r === undefined
          ? undefined
          : {
              challenge: r.challenge as string,
              user: r.user_id as string,
              device: r.device_id as string,
              expiresAt: num(r.expires_at),
            };
      },
    };
  }

  /** @internal For fault-injection tests: runs raw SQL outside the contract. */
  unsafeExec(sql: string): void {
    this.#db.exec(sql);
  }
}
