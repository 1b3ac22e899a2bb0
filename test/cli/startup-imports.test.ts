import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, buildOnce } from '../helpers/cli.js';

// Start-up cost is measured in bench/cli-startup.mjs; this checks its cause structurally (no timing): which
// modules a command loads. Before, every command loaded every command group and their libraries; the age
// commands now load one bundle (scripts/bundle-cli.mjs) instead of about 45 modules.
const dir = mkdtempSync(join(tmpdir(), 'enseal-startup-'));
const hooks = join(dir, 'hooks.mjs');
const preload = join(dir, 'preload.mjs');
writeFileSync(
  hooks,
  `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (!url.startsWith('node:')) appendFileSync(process.env.ENSEAL_TEST_IMPORT_LOG, url + '\\n');
  return next(url, context);
}
`,
);
writeFileSync(
  preload,
  `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
);

beforeAll(() => buildOnce());

function loaded(args: string[]): string[] {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(log, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(preload).href, CLI, ...args], {
    env: { ...process.env, ENSEAL_TEST_IMPORT_LOG: log },
    encoding: 'utf8',
  });
  expect(r.status).toBe(0);
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

const HEAVY =
  /\/(commander|fastify|better-sqlite3|pg|hash-wasm|jose|@hpke|@peculiar|openpgp|cli-progress|ts-mls)\//;

describe('CLI start-up loads only what the command needs', () => {
  it('--version loads no module besides the entry point and its version constant', () => {
    expect(loaded(['--version']).filter((u) => !/\/cli\/(main|version)\.js$/.test(u))).toEqual([]);
  });

  it('keygen loads only the bundled age commands: no other module of dist/, no library file', () => {
    const urls = loaded(['keygen']).filter((u) => !/\/cli\/(main|version)\.js$/.test(u));
    expect(urls.some((u) => u.endsWith('/cli/age-bundle/age-main.js'))).toBe(true);
    expect(urls.filter((u) => !u.includes('/cli/age-bundle/'))).toEqual([]);
    // Lazily loaded libraries stay out until used (they are chunks of their own).
    expect(urls.length).toBeLessThanOrEqual(3);
  });

  it('another command loads its own group through the modules, not the age bundle', () => {
    const urls = loaded(['keyset', '--help']);
    expect(urls.some((u) => u.endsWith('/cli/commands/keyset.js'))).toBe(true);
    expect(urls.filter((u) => u.includes('/age-bundle/') || /\/cli\/commands\/(?!keyset)/.test(u))).toEqual(
      [],
    );
    expect(urls.filter((u) => HEAVY.test(u) && !u.includes('/commander/'))).toEqual([]);
  });
});
