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
import { checkLeafRun } from './e2ee-rows.js';
import type { E2eeCheckpointRow, Store, StoreTransaction, WrappedRef } from './types.js';

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
/** Serialises e2ee queue writes, so message seqs become visible in increasing order (see enqueueE2ee). */
const E2EE_QUEUE_LOCK = 0x656e7365616c03n;
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
      // ---- e2ee
      async lockE2eeLog() {
        return num((await one('SELECT size FROM e2ee_log_head WHERE id = 1 FOR UPDATE'))?.size ?? 0);
      },
      async e2eeLogSize() {
        return num((await one('SELECT size FROM e2ee_log_head WHERE id = 1'))?.size ?? 0);
      },
      async appendE2eeLeaves(rows) {
        if (rows.length === 0) return;
        // FOR UPDATE again: a caller that forgot lockE2eeLog still cannot fork the log.
        const size = num((await one('SELECT size FROM e2ee_log_head WHERE id = 1 FOR UPDATE'))?.size ?? 0);
        checkLeafRun(size, rows);
        for (const r of rows) {
          await q(
            'INSERT INTO e2ee_log_leaves (idx, user_id, entry, leaf_hash, created_at) VALUES ($1, $2, $3, $4, $5)',
            [r.index, r.userId, buffer(r.entry), buffer(r.leafHash), r.createdAt],
          );
        }
        await q('UPDATE e2ee_log_head SET size = $1 WHERE id = 1', [size + rows.length]);
      },
      async readE2eeLeaves(start, end) {
        return (
          await q('SELECT * FROM e2ee_log_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx', [start, end])
        ).rows.map(leafRow);
      },
      async readE2eeLeafHashes(start, end) {
        return (
          await q('SELECT leaf_hash FROM e2ee_log_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx', [
            start,
            end,
          ])
        ).rows.map((r) => bytes(r.leaf_hash));
      },
      async listE2eeUserLeaves(userId) {
        return (await q('SELECT * FROM e2ee_log_leaves WHERE user_id = $1 ORDER BY idx', [userId])).rows.map(
          leafRow,
        );
      },
      async insertE2eeCheckpoint(size, note, createdAt) {
        return (
          (await changed(
            'INSERT INTO e2ee_checkpoints (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
            [size, note, createdAt],
          )) === 1
        );
      },
      async getE2eeCheckpoint(size) {
        const r =
          size === undefined
            ? await one('SELECT * FROM e2ee_checkpoints ORDER BY size DESC LIMIT 1')
            : await one('SELECT * FROM e2ee_checkpoints WHERE size = $1', [size]);
        if (r === undefined) return undefined;
        const cosignatures: Record<string, string> = {};
        const { rows } = await q(
          'SELECT witness, line FROM e2ee_cosignatures WHERE size = $1 ORDER BY witness COLLATE "C"',
          [r.size],
        );
        for (const c of rows) cosignatures[c.witness as string] = c.line as string;
        return {
          size: num(r.size),
          note: r.note as string,
          cosignatures,
          createdAt: num(r.created_at),
        } satisfies E2eeCheckpointRow;
      },
      async putE2eeCosignature(size, witness, line) {
        await q(
          'INSERT INTO e2ee_cosignatures (size, witness, line) VALUES ($1, $2, $3) ON CONFLICT (size, witness) DO UPDATE SET line = EXCLUDED.line',
          [size, witness, line],
        );
      },
      async insertE2eeKeyPackages(user, device, packages, createdAt) {
        for (const p of packages) {
          await q(
            'INSERT INTO e2ee_key_packages (user_id, device_id, package, created_at) VALUES ($1, $2, $3, $4)',
            [user, device, buffer(p), createdAt],
          );
        }
      },
      async putE2eeLastResortKeyPackage(user, device, keyPackage, createdAt) {
        await q(
          `INSERT INTO e2ee_last_resort (user_id, device_id, package, created_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (user_id, device_id) DO UPDATE SET package = EXCLUDED.package, created_at = EXCLUDED.created_at`,
          [user, device, buffer(keyPackage), createdAt],
        );
      },
      async countE2eeKeyPackages(user, device) {
        return num(
          (
            await one('SELECT COUNT(*) AS n FROM e2ee_key_packages WHERE user_id = $1 AND device_id = $2', [
              user,
              device,
            ])
          )?.n ?? 0,
        );
      },
      async claimE2eeKeyPackage(user, device) {
        // SKIP LOCKED: a concurrent claimer takes the next package instead of waiting for this one, and the
        // DELETE … RETURNING hands each package to exactly one transaction. A package deleted by a claimer
        // that committed after this statement's snapshot yields no row; another attempt sees the rest.
        for (let attempt = 0; attempt < 3; attempt++) {
          const r = await one(
            `DELETE FROM e2ee_key_packages WHERE id = (
               SELECT id FROM e2ee_key_packages WHERE user_id = $1 AND device_id = $2
               ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING package`,
            [user, device],
          );
          if (r !== undefined) return { keyPackage: bytes(r.package), lastResort: false };
          const left = await one(
            'SELECT 1 AS x FROM e2ee_key_packages WHERE user_id = $1 AND device_id = $2 LIMIT 1',
            [user, device],
          );
          if (left === undefined) break;
        }
        const l = await one('SELECT package FROM e2ee_last_resort WHERE user_id = $1 AND device_id = $2', [
          user,
          device,
        ]);
        return l === undefined ? undefined : { keyPackage: bytes(l.package), lastResort: true };
      },
      async deleteE2eeKeyPackages(user, device) {
        return (
          (await changed('DELETE FROM e2ee_key_packages WHERE user_id = $1 AND device_id = $2', [
            user,
            device,
          ])) +
          (await changed('DELETE FROM e2ee_last_resort WHERE user_id = $1 AND device_id = $2', [
            user,
            device,
          ]))
        );
      },
      async insertE2eeGroup(row) {
        return (
          (await changed(
            'INSERT INTO e2ee_groups (group_id, epoch, roster, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
            [row.groupId, row.epoch, rosterText(row.roster), row.createdAt, row.updatedAt],
          )) === 1
        );
      },
      async getE2eeGroup(groupId, options = {}) {
        const r = await one(
          `SELECT * FROM e2ee_groups WHERE group_id = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
          [groupId],
        );
        return r === undefined ? undefined : groupRow(r);
      },
      async updateE2eeGroup(groupId, epoch, roster, updatedAt) {
        return (
          (await changed(
            'UPDATE e2ee_groups SET epoch = $1, roster = $2, updated_at = $3 WHERE group_id = $4',
            [epoch, rosterText(roster), updatedAt, groupId],
          )) === 1
        );
      },
      async insertE2eeCommit(row) {
        return (
          (await changed(
            `INSERT INTO e2ee_commits (group_id, epoch, sender_user, sender_device, frame, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
            [row.groupId, row.epoch, row.sender.user, row.sender.device, buffer(row.frame), row.createdAt],
          )) === 1
        );
      },
      async listE2eeCommits(groupId, fromEpoch, limit) {
        return (
          await q('SELECT * FROM e2ee_commits WHERE group_id = $1 AND epoch >= $2 ORDER BY epoch LIMIT $3', [
            groupId,
            fromEpoch,
            limit,
          ])
        ).rows.map(commitRow);
      },
      async enqueueE2ee(m, recipients) {
        // Identity values are handed out at insert but become visible at commit: without this lock, seq 11
        // could commit before seq 10, and a device that read 11 and asks for "after 11" would never see 10.
        await q('SELECT pg_advisory_xact_lock($1)', [E2EE_QUEUE_LOCK.toString()]);
        const r = await one(
          `INSERT INTO e2ee_messages (group_id, epoch, kind, sender_user, sender_device, frame, received_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`,
          [
            m.groupId,
            m.epoch,
            m.kind,
            m.sender.user,
            m.sender.device,
            buffer(m.frame),
            m.receivedAt,
            m.expiresAt,
          ],
        );
        const seq = num(r?.seq);
        // One statement for every recipient (one round trip per message, not one per device).
        if (recipients.length > 0)
          await q(
            `INSERT INTO e2ee_queue (user_id, device_id, seq)
             SELECT u, d, $3 FROM unnest($1::text[], $2::text[]) AS t(u, d) ON CONFLICT DO NOTHING`,
            [recipients.map((r) => r.user), recipients.map((r) => r.device), seq],
          );
        return seq;
      },
      async readE2eeInbox(member, after, now, limit) {
        return (
          await q(
            `SELECT m.* FROM e2ee_queue q JOIN e2ee_messages m ON m.seq = q.seq
             WHERE q.user_id = $1 AND q.device_id = $2 AND q.seq > $3 AND m.expires_at > $4 ORDER BY q.seq LIMIT $5`,
            [member.user, member.device, after, now, limit],
          )
        ).rows.map(queuedRow);
      },
      async ackE2eeInbox(member, upTo) {
        const { rows } = await q(
          'DELETE FROM e2ee_queue WHERE user_id = $1 AND device_id = $2 AND seq <= $3 RETURNING seq',
          [member.user, member.device, upTo],
        );
        const seqs = rows.map((r) => num(r.seq));
        if (seqs.length > 0) {
          await q(
            `DELETE FROM e2ee_messages m WHERE m.seq = ANY($1::bigint[])
             AND NOT EXISTS (SELECT 1 FROM e2ee_queue q WHERE q.seq = m.seq)`,
            [seqs],
          );
        }
        return seqs.length;
      },
      async expireE2ee(now) {
        return (
          (await changed('DELETE FROM e2ee_messages WHERE expires_at <= $1', [now])) +
          (await changed('DELETE FROM e2ee_blobs WHERE expires_at <= $1', [now])) +
          (await changed('DELETE FROM e2ee_challenges WHERE expires_at <= $1', [now]))
        );
      },
      async insertE2eeBlob(row) {
        return (
          (await changed(
            `INSERT INTO e2ee_blobs (blob_id, group_id, owner_user, owner_device, chunks, size, created_at, expires_at)
             VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6) ON CONFLICT DO NOTHING`,
            [row.blobId, row.groupId, row.owner.user, row.owner.device, row.createdAt, row.expiresAt],
          )) === 1
        );
      },
      async getE2eeBlob(blobId) {
        const r = await one('SELECT * FROM e2ee_blobs WHERE blob_id = $1', [blobId]);
        return r === undefined ? undefined : blobRow(r);
      },
      async putE2eeBlobChunk(blobId, n, data) {
        // Share lock: a concurrent completion waits for this chunk (or this write sees the blob complete).
        const b = await one('SELECT chunks FROM e2ee_blobs WHERE blob_id = $1 FOR SHARE', [blobId]);
        if (b === undefined || (b.chunks !== null && b.chunks !== undefined)) return false;
        await q(
          'INSERT INTO e2ee_blob_chunks (blob_id, n, data) VALUES ($1, $2, $3) ON CONFLICT (blob_id, n) DO UPDATE SET data = EXCLUDED.data',
          [blobId, n, buffer(data)],
        );
        return true;
      },
      async putE2eeRecoveryBlob(user, blob, updatedAt) {
        await q(
          `INSERT INTO e2ee_recovery_blobs (user_id, blob, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (user_id) DO UPDATE SET blob = EXCLUDED.blob, updated_at = EXCLUDED.updated_at`,
          [user, buffer(blob), updatedAt],
        );
      },
      async getE2eeRecoveryBlob(user) {
        const r = await one('SELECT blob FROM e2ee_recovery_blobs WHERE user_id = $1', [user]);
        return r === undefined ? undefined : bytes(r.blob);
      },
      async getE2eeBlobChunk(blobId, n) {
        const r = await one('SELECT data FROM e2ee_blob_chunks WHERE blob_id = $1 AND n = $2', [blobId, n]);
        return r === undefined ? undefined : bytes(r.data);
      },
      async completeE2eeBlob(blobId, chunks) {
        const b = await one('SELECT chunks FROM e2ee_blobs WHERE blob_id = $1 FOR UPDATE', [blobId]);
        if (b === undefined || (b.chunks !== null && b.chunks !== undefined)) return undefined;
        const s = await one(
          'SELECT COUNT(*) AS c, COALESCE(MAX(n), -1) AS mx, COALESCE(SUM(length(data)), 0) AS sz FROM e2ee_blob_chunks WHERE blob_id = $1',
          [blobId],
        );
        if (num(s?.c) !== chunks || num(s?.mx) !== chunks - 1) return undefined;
        const size = num(s?.sz);
        await q('UPDATE e2ee_blobs SET chunks = $1, size = $2 WHERE blob_id = $3', [chunks, size, blobId]);
        return size;
      },
      async insertE2eeChallenge(row) {
        await q(
          'INSERT INTO e2ee_challenges (challenge, user_id, device_id, expires_at) VALUES ($1, $2, $3, $4)',
          [row.challenge, row.user, row.device, row.expiresAt],
        );
      },
      async takeE2eeChallenge(challenge) {
        const r = await one('DELETE FROM e2ee_challenges WHERE challenge = $1 RETURNING *', [challenge]);
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
}
