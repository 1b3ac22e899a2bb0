/**
 * `enseal serve`: runs the encryption service until SIGINT/SIGTERM, then drains and exits.
 *
 * `--workers N` (N > 1) runs N server processes with node:cluster, sharing the listening socket (the
 * primary hands out connections) and the store. Each worker is a full node, exactly as two nodes on one
 * PostgreSQL database are: the audit chain stays single-writer and ordered because every append reads the
 * last entry and writes the next one inside one write transaction (SQLite's write lock, taken by BEGIN
 * IMMEDIATE; PostgreSQL's advisory lock), so appends from different workers serialise and never fork the
 * chain. The first worker starts alone (it initialises a fresh store); the others start once it serves.
 * Each node must be unsealed on its own, which a client cannot aim at one worker through a shared port, so
 * several workers are offered only in --dev mode (the dev seal unseals every worker at start).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Command } from 'commander';
import { serveConfigFrom, serveConfigOptions, type ServeConfigFlags } from '../serve-config.js';

interface ServeFlags extends ServeConfigFlags {
  workers?: string;
}

/** What a worker tells the primary once it serves. */
interface Ready {
  readonly type: 'enseal:ready';
  readonly lines: string[];
}

function parseWorkers(text: string | undefined): number {
  if (text === undefined) return 1;
  if (!/^\d{1,3}$/.test(text) || Number(text) < 1)
    throw new Error('--workers must be a whole number (1-999)');
  return Number(text);
}

function untilSignal(): Promise<void> {
  return new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/** The primary of `--workers N`: starts the workers, prints what the first one printed, stops them all. */
async function runPrimary(count: number): Promise<void> {
  let stopping = false;
  const started = (worker: Worker) =>
    new Promise<string[]>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`a server worker exited (${code}) at start`));
      worker.once('exit', onExit);
      worker.on('message', (m: Ready) => {
        if (m?.type !== 'enseal:ready') return;
        worker.off('exit', onExit);
        resolve(m.lines);
      });
    });
  const first = cluster.fork();
  const lines = await started(first);
  await Promise.all(Array.from({ length: count - 1 }, () => started(cluster.fork())));
  // A worker that dies while serving is replaced (after a second, so a crash loop cannot spin).
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    process.stderr.write(
      `enseal: server worker ${worker.process.pid} exited (${signal ?? code}); restarting it\n`,
    );
    setTimeout(() => {
      if (!stopping) cluster.fork();
    }, 1000);
  });
  process.stdout.write(
    lines
      .map((l) => (l.startsWith('enseal is listening on') ? `${l} (${count} worker processes)` : l))
      .join('\n') + '\n',
  );
  await untilSignal();
  stopping = true;
  process.stdout.write('enseal: shutting down (draining requests)\n');
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          w.once('exit', () => resolve());
          w.process.kill('SIGTERM');
        }),
    ),
  );
}

export function registerServe(program: Command): void {
  serveConfigOptions(
    program.command('serve').description('Run the encryption service (Vault-Transit-compatible HTTPS API)'),
  )
    .option(
      '--workers <n>',
      'server processes sharing the port and the store (default 1; more than 1 only with --dev for now)',
    )
    .action(async (flags: ServeFlags) => {
      const workers = parseWorkers(flags.workers);
      const config = await serveConfigFrom(flags);
      if (workers > 1 && config.dev !== true) {
        throw new Error(
          '--workers above 1 needs --dev for now: every worker is a node that must be unsealed on its own, ' +
            'and unseal requests cannot be aimed at one worker through a shared port',
        );
      }
      if (workers > 1 && cluster.isPrimary) return runPrimary(workers);
      config.logLevel ??= 'warn'; // a flag or the config file's log-level wins
      const { startServer } = await import('../../server/index.js');
      const server = await startServer(config);
      const lines = [
        '',
        ...server.warnings.map((w) => `WARNING: ${w}`),
        `enseal is listening on ${server.url}`,
        ...(server.caFile ? [`Development CA (trust it to connect): ${server.caFile}`] : []),
        ...(server.rootToken ? [`Root token: ${server.rootToken}`] : []),
        '',
        'Try it:',
        `  export ENSEAL_ADDR=${server.url}${server.rootToken ? ` ENSEAL_TOKEN=${server.rootToken}` : ''}${server.caFile ? ` ENSEAL_CACERT=${server.caFile}` : ''}`,
        `  curl ${server.caFile ? '--cacert "$ENSEAL_CACERT" ' : ''}-H "X-Vault-Token: $ENSEAL_TOKEN" -d '{"plaintext":"aGVsbG8="}' $ENSEAL_ADDR/v1/transit/encrypt/seeds`,
        `Operator console: ${server.url}/ui`,
        `API docs: ${server.url}/docs`,
        '',
      ];
      if (cluster.isWorker) process.send!({ type: 'enseal:ready', lines } satisfies Ready);
      else process.stdout.write(lines.join('\n') + '\n');
      await untilSignal();
      if (!cluster.isWorker) process.stdout.write('enseal: shutting down (draining requests)\n');
      await server.close();
      if (cluster.isWorker) process.exit(0);
    });
}
