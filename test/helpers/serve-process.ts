/** `enseal serve` as a real child process, started the way an operator starts it, on a free loopback port. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLI } from './cli.js';

/** A running `enseal serve` process and what it printed at start. */
export interface ServeProcess {
  readonly child: ChildProcess;
  /** The HTTPS URL it listens on. */
  readonly url: string;
  /** The development CA it printed (`--dev` only). */
  readonly ca?: Buffer;
  /** The root token it printed (`--dev` only, on the node that initialised the store). */
  readonly token?: string;
  /** Everything printed so far, stdout and stderr. */
  output(): string;
}

/** Starts `enseal serve --listen 127.0.0.1:0 ...args` and resolves once it serves (30 s at most). */
export async function startServe(args: readonly string[]): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('API docs:')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const caFile = /Development CA \(trust it to connect\): (\S+)/.exec(out)?.[1];
  return {
    child,
    url: /listening on (https:\/\/\S+)/.exec(out)![1]!,
    ...(caFile ? { ca: readFileSync(caFile) } : {}),
    ...(/Root token: (\S+)/.exec(out) ? { token: /Root token: (\S+)/.exec(out)![1]! } : {}),
    output: () => out,
  };
}

/** Stops `server` with `signal` (SIGTERM by default) and resolves with its exit code once it has exited. */
export function stopServe(
  server: ServeProcess | undefined,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | null> {
  if (!server || server.child.exitCode !== null || server.child.signalCode !== null)
    return Promise.resolve(server?.child.exitCode ?? null);
  return new Promise((resolve) => {
    server.child.once('exit', (code) => resolve(code));
    server.child.kill(signal);
  });
}
