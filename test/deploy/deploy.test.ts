/**
 * deploy/: the systemd unit passes `systemd-analyze verify` (required in CI, which installs systemd), the
 * example production config is read by the real config loader as PostgreSQL with the Shamir seal, and the
 * container file runs as a non-root user with the data directory as a volume.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { deploymentFiles, loadConfigFile, runDoctor } from '../../src/server/index.js';
import { CLI, buildOnce } from '../helpers/cli.js';
import { tempDir } from '../kms/helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const deploy = (f: string) => join(root, 'deploy', f);
const unit = readFileSync(deploy('enseal.service'), 'utf8');
const containerfile = readFileSync(deploy('Containerfile'), 'utf8');

/** `Key=value` lines of the unit (comments and sections left out), in order. */
function directives(text: string): [string, string][] {
  return text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

function value(key: string): string | undefined {
  return directives(unit).find(([k]) => k === key)?.[1];
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('deploy/enseal.service', () => {
  it.skipIf(!hasSystemdAnalyze && !process.env.CI)('passes systemd-analyze verify', () => {
    buildOnce();
    // verify insists that ExecStart's binary exists: point it at this machine's node and this checkout's build,
    // and change nothing else.
    const dir = mkdtempSync(join(tmpdir(), 'enseal-unit-'));
    const copy = unit.replace(/^ExecStart=\S+ \S+ /m, `ExecStart=${process.execPath} ${CLI} `);
    const a = unit.split('\n');
    const b = copy.split('\n');
    expect(b.length).toBe(a.length);
    expect(a.filter((line, i) => line !== b[i])).toEqual([
      'ExecStart=/usr/bin/node /opt/enseal/dist/cli/main.js serve --config /etc/enseal/enseal.toml',
    ]);
    writeFileSync(join(dir, 'enseal.service'), copy);
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'enseal.service')], { encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    // A bad value is only a warning (exit 0), so the output must not mention the unit either.
    expect(r.stderr + r.stdout).not.toMatch(/enseal\.service/);
    expect(r.status, r.stderr).toBe(0);
  });

  it('is hardened: its own user, read-only system, no privileges, no core dumps, state directory', () => {
    expect(value('User')).toBe('enseal');
    expect(value('ProtectSystem')).toBe('strict');
    expect(value('ProtectHome')).toBe('yes');
    expect(value('PrivateTmp')).toBe('yes');
    expect(value('NoNewPrivileges')).toBe('yes');
    expect(value('CapabilityBoundingSet')).toBe('');
    expect(value('LockPersonality')).toBe('yes');
    expect(value('RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6');
    expect(value('SystemCallFilter')).toBe('@system-service');
    expect(value('LimitCORE')).toBe('0');
    expect(value('StateDirectory')).toBe('enseal');
    expect(value('StateDirectoryMode')).toBe('0700');
    // Node's JIT needs writable-then-executable memory: the setting stays off, with the reason written down.
    expect(value('MemoryDenyWriteExecute')).toBeUndefined();
    expect(unit).toMatch(/^# MemoryDenyWriteExecute= is left off on purpose: V8/m);
  });
});

describe('deploy/enseal.prod.toml', () => {
  it('is read by the real config loader: PostgreSQL store, Shamir seal (no dev), TLS files', async () => {
    const config = await loadConfigFile(deploy('enseal.prod.toml'));
    expect(config.dev).toBeUndefined();
    expect(config.insecureHttp).toBeUndefined();
    expect(config.tlsProfile).toBe('modern');
    const files = deploymentFiles(config);
    expect(files.store).toMatchObject({ kind: 'postgres', host: '/run/postgresql', hasPassword: false });
    expect(files.tls).toEqual({ cert: '/etc/enseal/tls/cert.pem', key: '/etc/enseal/tls/key.pem' });
    // The data directory is the unit's StateDirectory, and the volume of the container.
    expect(files.dataDir).toBe(`/var/lib/${value('StateDirectory')}`);
    expect(containerfile).toMatch(new RegExp(`^VOLUME \\["${files.dataDir}"\\]$`, 'm'));
    // node-postgres reads the URL as the local socket, peer authentication, database enseal.
    const client = new pg.Client({ connectionString: config.storage });
    expect([client.host, client.user, client.database]).toEqual(['/run/postgresql', 'enseal', 'enseal']);
    // The doctor reads it as a Shamir deployment: the seal check waits for the server, never fails on dev.
    const report = await runDoctor({ config });
    const seal = report.checks.find((c) => c.id === 'seal-type')!;
    expect(seal.status).toBe('unknown');
    expect(report.checks.find((c) => c.id === 'store-encrypted')!.message).toContain('PostgreSQL');
  });

  it('is the file the unit and the container start with', () => {
    expect(value('ExecStart')).toContain('serve --config /etc/enseal/enseal.toml');
    expect(containerfile).toContain('CMD ["serve", "--config", "/etc/enseal/enseal.toml"]');
  });
});

describe('deploy/Containerfile', () => {
  const instructions = containerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => /^[A-Z]+ /.test(l));

  it('runs as a non-root user, with the data directory as a volume and a health check', () => {
    const users = instructions.filter((l) => l.startsWith('USER '));
    expect(users.length).toBeGreaterThan(0);
    const last = users.at(-1)!.slice('USER '.length).split(':')[0]!;
    expect(['root', '0']).not.toContain(last);
    expect(instructions.some((l) => l.startsWith('VOLUME ') && l.includes('/var/lib/enseal'))).toBe(true);
    expect(instructions.some((l) => l.startsWith('HEALTHCHECK ') && l.includes('healthcheck.mjs'))).toBe(
      true,
    );
    expect(instructions.some((l) => l.startsWith('RUN ') && l.includes('npm ci --omit=dev'))).toBe(true);
    // After the last USER, nothing writes outside the volume (read-only root filesystem friendly).
    const after = instructions.slice(instructions.lastIndexOf(users.at(-1)!) + 1);
    expect(after.filter((l) => l.startsWith('RUN '))).toEqual([]);
  });

  it('copies only files that exist in the repository', () => {
    for (const l of instructions.filter((x) => x.startsWith('COPY ') && !x.includes('--from='))) {
      const parts = l.split(/\s+/).slice(1, -1);
      for (const p of parts) expect(existsSync(join(root, p)), p).toBe(true);
    }
  });
});

describe('deploy/healthcheck.mjs', () => {
  it('exits 0 while the API answers and 1 when nothing listens', async () => {
    buildOnce();
    const dir = tempDir();
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--dev', '--data-dir', dir, '--listen', '127.0.0.1:0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    try {
      const deadline = Date.now() + 30_000;
      while (!out.includes('API docs:')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const url = /listening on (https:\/\/\S+)/.exec(out)![1]!;
      const check = (addr: string) =>
        spawnSync(process.execPath, [deploy('healthcheck.mjs')], {
          env: { ...process.env, ENSEAL_HEALTH_ADDR: addr },
        }).status;
      expect(check(url)).toBe(0);
      expect(check('https://127.0.0.1:1')).toBe(1);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
