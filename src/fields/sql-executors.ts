/** {@link SqlExecutor}s over the two drivers enseal ships with. */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { SqlExecutor } from './batch-job.js';

/** Over a better-sqlite3 connection (synchronous underneath; transactions are BEGIN IMMEDIATE). */
export function sqliteExecutor(db: Database.Database): SqlExecutor {
  const exec: SqlExecutor = {
    dialect: 'sqlite',
    concurrency: 1,
    async query(sql, params = []) {
      const stmt = db.prepare(sql);
      if (stmt.reader) return stmt.all(...params) as Record<string, unknown>[];
      stmt.run(...params);
      return [];
    },
    async transaction(fn) {
      db.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn(exec);
        db.exec('COMMIT');
        return out;
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    },
  };
  return exec;
}

/**
 * Over a pg pool: each transaction takes one client for its whole length, so as many transactions run at once
 * as the pool has connections (`max`, default 10): parallel job workers each hold one.
 */
export function postgresExecutor(pool: pg.Pool): SqlExecutor {
  const concurrency = pool.options.max ?? 10;
  const over = (q: pg.Pool | pg.PoolClient): SqlExecutor => ({
    dialect: 'postgres',
    concurrency,
    async query(sql, params = []) {
      return (await q.query(sql, params as unknown[])).rows as Record<string, unknown>[];
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const out = await fn(over(client));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  });
  return over(pool);
}
