/** Runs the built `enseal` binary the way a user does: a real process, stdin, stdout, stderr, exit status. */
import { spawnSync } from 'node:child_process';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

let built = false;

/** Builds dist/ once per test file (fast: tsc on the sources). */
export function buildOnce(): void {
  if (built) return;
  execSync('npx tsc -p tsconfig.build.json', { cwd: root, stdio: 'inherit' });
  built = true;
}

export interface CliResult {
  status: number;
  stdout: Buffer;
  stderr: string;
}

export function enseal(
  args: string[],
  input?: string | Uint8Array,
  env: Record<string, string> = {},
  cwd?: string,
): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    input,
    env: { ...process.env, ...env },
    cwd,
    maxBuffer: 1 << 30,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}
