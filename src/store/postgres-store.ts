/**
 * The shared store: PostgreSQL through `pg`, for several enseal nodes on one database. Transactions run at
 * READ COMMITTED with explicit row locks (`SELECT … FOR UPDATE`) on the rows they change, and the audit
 * chain is serialised with a transaction-scoped advisory lock, so two nodes rotating one key produce
 * versions n+1 and n+2, never two versions n+1. Deadlocks and serialisation failures are retried.
 */
import pg from 'pg';
import { EnsealError, ErrorCode, invalidArgument } from '../crypto/index.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { storeError } from './store-error.js';
import { auditRow, buffer, bytes, contextRow, num, versionRow, type Row } from './rows.js';
import type { Store, StoreTransaction, WrappedRef } from './types.js';

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:port/db`. */
  connectionString?: string;
  /** Extra pool settings (size, timeouts, TLS). */
  pool?: pg.PoolConfig;
  /** A schema to use instead of `public` (created if missing), for isolating tenants or tests. */
  schema?: string;
}

// Arbitrary fixed lock ids: one guards migrations, one the audit chain.
const MIGRATION_LOCK = 0x656e7365616c01n;
const AUDIT_LOCK = 0x656e7365616c02n;
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_RETRIES = 10;
const AUDIT_CHUNK = 1000;

/** The PostgreSQL store. */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  #closed = false;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /**
   * Connects a pool (no query runs until the first transaction). Call {@link migrate} before use.
   *
   * @example
   * ```ts no-run
   * const store = await PostgresStore.connect({ connectionString: process.env.DATABASE_URL });
   * await store.migrate();
   * ```
   */
  static async connect(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw invalidArgument('schema', 'must be a lower-case SQL identifier');
    }
    const pool = new pg.Pool({
      ...options.pool,
      ...(options.connectionString ? { connectionString: options.connectionString } : {}),
    });
    // An idle client can lose its connection (server restart); without a listener that would crash the process.
    pool.on('error', () => undefined);
    if (schema !== undefined) {
      pool.on('connect', (client) => {
        client.query(`SET search_path TO ${schema}`).catch(() => undefined);
      });
      const client = await pool.connect().catch((cause: unknown) => {
        throw storeError('connect', cause);
      });
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await client.query(`SET search_path TO ${schema}`);
      } finally {
        client.release();
      }
    }
    return new PostgresStore(pool);
  }

  async migrate(): Promise<number> {
    const client = await this.#pool.connect().catch((cause: unknown) => {
      throw storeError('connect', cause);
    });
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
      try {
        await client.query(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)',
        );
        const { rows } = await client.query('SELECT MAX(version) AS v FROM schema_migrations');
        const current = rows[0]?.v === null || rows[0]?.v === undefined ? 0 : num(rows[0].v);
        if (current > SCHEMA_VERSION) {
          throw new EnsealError(
            ErrorCode.STORE,
            `store schema ${current} is newer than this enseal (${SCHEMA_VERSION}); upgrade enseal`,
          );
        }
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          await client.query('BEGIN');
          try {
            for (const sql of m.postgres) await client.query(sql);
            await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
              m.version,
              Date.now(),
            ]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        }
        return SCHEMA_VERSION;
      } finally {
        await client
          .query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()])
          .catch(() => undefined);
      }
    } catch (err) {
      throw storeError('migrate', err);
    } finally {
      client.release();
    }
  }

  async transaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    if (this.#closed) throw new EnsealError(ErrorCode.STORE, 'store is closed');
    for (let attempt = 0; ; attempt++) {
      const client = await this.#pool.connect().catch((cause: unknown) => {
        throw storeError('connect', cause);
      });
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await fn(this.#api(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        const code = (err as { code?: string }).code;
        if (code !== undefined && RETRYABLE.has(code) && attempt < MAX_RETRIES) {
          await new Promise((r) => setTimeout(r, Math.random() * 10 * (attempt + 1)));
          continue;
        }
        throw err instanceof EnsealError ? err : storeError('transaction', err);
      } finally {
        client.release(broken);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  #api(client: pg.PoolClient): StoreTransaction {
    const q = async (sql: string, params: unknown[] = []): Promise<pg.QueryResult<Row>> =>
      client.query<Row>(sql, params);
    const one = async (sql: string, params: unknown[] = []): Promise<Row | undefined> =>
      (await q(sql, params)).rows[0];
    const changed = async (sql: string, params: unknown[]): Promise<number> =>
      (await q(sql, params)).rowCount ?? 0;
    return {
      async getMeta(key, options = {}) {
        const lock = options.lock === 'update' ? ' FOR UPDATE' : options.lock === 'share' ? ' FOR SHARE' : '';
        const r = await one(`SELECT value FROM meta WHERE key = $1${lock}`, [key]);
        return r === undefined ? undefined : bytes(r.value);
      },
      async putMeta(key, value) {
        await q(
          'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
          [key, buffer(value)],
        );
      },
      async listMeta(prefix) {
        const { rows } = await q(
          'SELECT key FROM meta WHERE left(key, length($1)) = $1 ORDER BY key COLLATE "C"',
          [prefix],
        );
        return rows.map((r) => r.key as string);
      },
      async deleteMeta(key) {
        await q('DELETE FROM meta WHERE key = $1', [key]);
      },
      async getKey(name, options = {}) {
        const r = await one(
          `SELECT name, doc, updated_at FROM keys WHERE name = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
          [name],
        );
        return r === undefined
          ? undefined
          : { name: r.name as string, doc: r.doc as string, updatedAt: num(r.updated_at) };
      },
      async insertKey(row) {
        return (
          (await changed(
            'INSERT INTO keys (name, doc, updated_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
            [row.name, row.doc, row.updatedAt],
          )) === 1
        );
      },
      async updateKey(row) {
        return (
          (await changed('UPDATE keys SET doc = $1, updated_at = $2 WHERE name = $3', [
            row.doc,
            row.updatedAt,
            row.name,
          ])) === 1
        );
      },
      async deleteKey(name) {
        return (await changed('DELETE FROM keys WHERE name = $1', [name])) === 1;
      },
      async listKeys(options = {}) {
        // Both the bound and the order are in "C" (byte order, like SQLite): comparing in the database's
        // collation while sorting in another would skip names between pages. LIMIT NULL means no limit.
        const { rows } = await q(
          'SELECT name FROM keys WHERE name COLLATE "C" > $1 ORDER BY name COLLATE "C" LIMIT $2',
          [options.after ?? '', options.limit ?? null],
        );
        return rows.map((r) => r.name as string);
      },
      async getVersions(name) {
        return (await q('SELECT * FROM key_versions WHERE name = $1 ORDER BY version', [name])).rows.map(
          versionRow,
        );
      },
      async getVersion(name, version) {
        const r = await one('SELECT * FROM key_versions WHERE name = $1 AND version = $2', [name, version]);
        return r === undefined ? undefined : versionRow(r);
      },
      async insertVersion(row) {
        const n = await changed(
          'INSERT INTO key_versions (name, version, term, wrapped, created_at, reserved) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
          [row.name, row.version, row.term, buffer(row.wrapped), row.createdAt, row.reserved],
        );
        return n === 1;
      },
      async rewrapVersion(name, version, term, wrapped) {
        return (
          (await changed('UPDATE key_versions SET term = $1, wrapped = $2 WHERE name = $3 AND version = $4', [
            term,
            buffer(wrapped),
            name,
            version,
          ])) === 1
        );
      },
      async deleteVersionsBelow(name, minVersion) {
        return changed('DELETE FROM key_versions WHERE name = $1 AND version < $2', [name, minVersion]);
      },
      async reserveEncryptions(name, version, count) {
        const r = await one(
          'UPDATE key_versions SET reserved = reserved + $1 WHERE name = $2 AND version = $3 RETURNING reserved',
          [count, name, version],
        );
        if (r === undefined)
          throw new EnsealError(ErrorCode.KEY_NOT_FOUND, `no version ${version} of key "${name}"`);
        return num(r.reserved);
      },
      async getContext(name, contextId) {
        const r = await one('SELECT * FROM key_contexts WHERE name = $1 AND context_id = $2', [
          name,
          contextId,
        ]);
        return r === undefined ? undefined : contextRow(r);
      },
      async insertContext(row) {
        const n = await changed(
          'INSERT INTO key_contexts (name, context_id, term, wrapped, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
          [row.name, row.contextId, row.term, buffer(row.wrapped), row.createdAt],
        );
        return n === 1;
      },
      async rewrapContext(name, contextId, term, wrapped) {
        return (
          (await changed(
            'UPDATE key_contexts SET term = $1, wrapped = $2 WHERE name = $3 AND context_id = $4',
            [term, buffer(wrapped), name, contextId],
          )) === 1
        );
      },
      async deleteContext(name, contextId) {
        return (
          (await changed('DELETE FROM key_contexts WHERE name = $1 AND context_id = $2', [
            name,
            contextId,
          ])) === 1
        );
      },
      async listContexts(name) {
        return (
          await q('SELECT * FROM key_contexts WHERE name = $1 ORDER BY context_id COLLATE "C"', [name])
        ).rows.map(contextRow);
      },
      async listWrappedNotInTerm(term, limit) {
        const { rows } = await q(
          `SELECT 'version' AS kind, name, version, NULL AS context_id, term FROM key_versions WHERE term <> $1
           UNION ALL SELECT 'context', name, NULL, context_id, term FROM key_contexts WHERE term <> $1
           ORDER BY term, name LIMIT $2`,
          [term, limit],
        );
        return rows.map((r): WrappedRef =>
          r.kind === 'version'
            ? { kind: 'version', name: r.name as string, version: num(r.version), term: num(r.term) }
            : {
                kind: 'context',
                name: r.name as string,
                contextId: r.context_id as string,
                term: num(r.term),
              },
        );
      },
      async lastAudit(options = {}) {
        if (options.lock) await q('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK.toString()]);
        const r = await one('SELECT seq, entry, hash, mac FROM audit_log ORDER BY seq DESC LIMIT 1');
        return r === undefined ? undefined : auditRow(r);
      },
      async appendAudit(rows) {
        if (rows.length === 0) return;
        // One multi-row INSERT per chunk: the group commit exists to make audit writes cheap. Chunks keep
        // the bind parameters under the protocol's limit of 65535.
        for (let start = 0; start < rows.length; start += AUDIT_CHUNK) {
          const chunk = rows.slice(start, start + AUDIT_CHUNK);
          const params = chunk.flatMap((r) => [r.seq, r.entry, r.hash, r.mac]);
          const values = chunk.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4})`);
          await q(`INSERT INTO audit_log (seq, entry, hash, mac) VALUES ${values.join(', ')}`, params);
        }
      },
      async readAudit(afterSeq, limit) {
        return (
          await q('SELECT seq, entry, hash, mac FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2', [
            afterSeq,
            limit,
          ])
        ).rows.map(auditRow);
      },
    };
  }
}
