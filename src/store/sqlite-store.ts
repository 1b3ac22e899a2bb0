/**
 * The embedded store: one SQLite file through better-sqlite3, in WAL mode with `synchronous=FULL`, so a
 * commit that returned is on disk even after a power cut. better-sqlite3 is synchronous; the async contract
 * is kept by running one transaction at a time per connection (an async queue), because a transaction's
 * callback may await between statements and nothing else may slip into it.
 */
import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { EnsealError, ErrorCode } from '../crypto/index.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { storeError } from './store-error.js';
import { auditRow, buffer, bytes, contextRow, versionRow, type Row } from './rows.js';
import type { KeyRow, Store, StoreTransaction, WrappedRef } from './types.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for a throwaway store. */
  path: string;
  /** How long to wait for another process's write lock (default 5000 ms). */
  busyTimeoutMs?: number;
}

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

  private constructor(db: Database.Database) {
    this.#db = db;
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
    try {
      createPrivate(options.path);
      db = new Database(options.path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    } catch (cause) {
      throw storeError('open', cause);
    }
    return new SqliteStore(db);
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
    return run;
  }

  async #runTransaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    if (this.#closed) throw new EnsealError(ErrorCode.STORE, 'store is closed');
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
    return result;
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
    this.#db.close();
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
    };
  }

  /** @internal For fault-injection tests: runs raw SQL outside the contract. */
  unsafeExec(sql: string): void {
    this.#db.exec(sql);
  }
}
