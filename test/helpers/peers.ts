/**
 * Real external implementations the interop tests run against. On a developer machine without one, its tests
 * are skipped with a visible line saying what to install; with CI=true a missing peer fails the run instead.
 */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Peer {
  readonly available: boolean;
  readonly command: string;
}

const inCi = process.env.CI === 'true' || process.env.CI === '1';

function missing(what: string, install: string): Peer {
  const line = `interop peer missing: ${what} (install: ${install})`;
  if (inCi) throw new Error(`${line}; CI=true, so this is a failure, not a skip`);
  console.warn(`SKIPPED ${line}`);
  return { available: false, command: '' };
}

/** A python3 that can import every module in `modules`; Debian's /usr/bin/python3 is tried first. */
export function python(modules: string[], install: string): Peer {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(candidate, ['-c', modules.map((m) => `import ${m}`).join(';')], { stdio: 'ignore' });
    if (r.status === 0) return { available: true, command: candidate };
  }
  return missing(`python3 with ${modules.join(', ')}`, install);
}

/** An executable on PATH that answers `versionArgs` with status 0. */
export function tool(name: string, versionArgs: string[], install: string): Peer {
  const r = spawnSync(name, versionArgs, { stdio: 'ignore' });
  if (r.error === undefined && r.status === 0) return { available: true, command: name };
  return missing(name, install);
}

/** The first of `names` found as an executable file on PATH (no version call: browsers start slowly). */
export function executable(names: string[], install: string): Peer {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of names) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return { available: true, command: join(dir, name) };
      } catch {
        // not here
      }
    }
  }
  return missing(names.join(' or '), install);
}

/** Runs a peer and returns stdout; throws with stderr on a non-zero exit. */
export function run(command: string, args: string[], options: SpawnSyncOptions = {}): Buffer {
  const r = spawnSync(command, args, { maxBuffer: 1 << 30, ...options });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${r.status}: ${r.stderr?.toString() ?? ''}`);
  }
  return r.stdout as Buffer;
}

/** Runs an inline Python program with `input` on stdin; returns stdout. */
export function runPython(
  py: Peer,
  program: string,
  input?: string | Uint8Array,
  options: SpawnSyncOptions = {},
): Buffer {
  return run(py.command, ['-c', program], { input, ...options });
}

/**
 * Runs a peer without blocking the event loop (needed when the peer talks to a server in this process);
 * resolves with stdout, rejects with stderr on a non-zero exit.
 */
export function runAsync(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${command} exited ${code}: ${Buffer.concat(err).toString()}`));
    });
    child.stdin.end(options.input ?? '');
  });
}
