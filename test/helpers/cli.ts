/** Runs the built `enseal` binary the way a user does: a real process, stdin, stdout, stderr, exit status. */
import { spawnSync } from 'node:child_process';
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

let built = false;

/** The newest modification time under `dir` (recursively), in ms. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/ once per test file, unless it is already newer than every source file (as after `npm test`'s
 * pretest build). Skipping matters: several test files compiling into the same dist/ at once can let one
 * spawn a half-written module.
 */
export function buildOnce(): void {
  if (built) return;
  const fresh = existsSync(CLI) && statSync(CLI).mtimeMs >= newestMtime(join(root, 'src'));
  if (!fresh) execSync('npm run build --silent', { cwd: root, stdio: 'inherit' });
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
