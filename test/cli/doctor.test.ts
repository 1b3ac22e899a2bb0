/**
 * `enseal doctor` as an operator runs it, against real `enseal serve` processes: a dev server (whose dev seal
 * and live root token fail, and whose file permissions pass until one is loosened), and a production-shaped
 * one (TLS files, Shamir init, an admin identity by client certificate, the root token revoked) that passes.
 */
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDevCertificates, issueDevClientCertificate } from '../../src/tls/index.js';
import { buildOnce, enseal } from '../helpers/cli.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';
import { tempDir } from '../kms/helpers.js';

interface Doctor {
  status: number;
  text: string;
  stderr: string;
}

function doctor(args: string[], env: Record<string, string>): Doctor {
  const r = enseal(['doctor', ...args], undefined, {
    ENSEAL_ADDR: '',
    ENSEAL_TOKEN: '',
    ENSEAL_CACERT: '',
    ...env,
  });
  return { status: r.status, text: r.stdout.toString(), stderr: r.stderr };
}

interface Check {
  id: string;
  status: string;
  message: string;
  fix: string | null;
  requirement: string;
}

function checks(d: Doctor): Map<string, Check> {
  const report = JSON.parse(d.text) as { ok: boolean; checks: Check[] };
  return new Map(report.checks.map((c) => [c.id, c]));
}

/** Whether this machine has any dm-crypt device at all (then the store may legitimately be on one). */
function hostHasDmCrypt(): boolean {
  try {
    return readdirSync('/sys/block').some((d) => {
      const uuid = join('/sys/block', d, 'dm', 'uuid');
      return existsSync(uuid) && readFileSync(uuid, 'utf8').startsWith('CRYPT-');
    });
  } catch {
    return false;
  }
}

function https(
  url: string,
  path: string,
  o: { ca: Buffer; token?: string; body?: unknown; cert?: Buffer; key?: Buffer; method?: string },
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, url),
      {
        method: o.method ?? 'POST',
        ca: o.ca,
        ...(o.cert ? { cert: o.cert, key: o.key } : {}),
        headers: { ...(o.token ? { 'x-vault-token': o.token } : {}), 'content-type': 'application/json' },
      },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += String(d)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: body ? JSON.parse(body) : {} }));
      },
    );
    req.on('error', reject);
    req.end(o.body === undefined ? undefined : JSON.stringify(o.body));
  });
}

describe('enseal doctor against enseal serve --dev', () => {
  let dev: ServeProcess | undefined;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    buildOnce();
    dir = tempDir();
    dev = await startServe(['--dev', '--data-dir', dir]);
    env = {
      ENSEAL_ADDR: dev.url,
      ENSEAL_TOKEN: readFileSync(join(dir, 'dev-root-token'), 'utf8').trim(),
      ENSEAL_CACERT: join(dir, 'tls', 'dev-ca.pem'),
    };
  });
  afterAll(() => stopServe(dev));

  it('--json: the dev seal and the live root token fail, the permissions of a fresh setup pass, exit 1', () => {
    const d = doctor(['--dev', '--data-dir', dir, '--json'], env);
    expect(d.status).toBe(1);
    const c = checks(d);
    expect(JSON.parse(d.text).ok).toBe(false);
    expect(c.get('seal-type')).toMatchObject({ status: 'fail' });
    expect(c.get('seal-type')!.message).toContain('dev-unseal.key');
    expect(c.get('root-token')).toMatchObject({ status: 'fail' });
    for (const id of ['store-permissions', 'key-permissions', 'tls-permissions'])
      expect(c.get(id), id).toMatchObject({ status: 'pass' });
    expect(c.get('server')).toMatchObject({ status: 'pass' });
    expect(c.get('audit-chain')).toMatchObject({ status: 'pass' });
    expect(c.get('tls-profile')).toMatchObject({ status: 'pass' }); // audited: TLS 1.3 only
    const crypt = c.get('store-encrypted')!;
    expect(hostHasDmCrypt() ? ['pass', 'fail', 'unknown'] : ['unknown', 'fail']).toContain(crypt.status);
    expect(crypt.message).not.toContain('could not run');
    for (const check of c.values()) {
      expect(check.requirement, check.id).toMatch(/PCI DSS|GDPR|HIPAA/);
      if (check.status !== 'pass') expect(check.fix, check.id).toBeTruthy();
    }
  });

  it('a key file made world-readable (chmod 644) fails with the chmod that fixes it', () => {
    const keyFile = join(dir, 'dev-unseal.key');
    chmodSync(keyFile, 0o644);
    try {
      const d = doctor(['--dev', '--data-dir', dir], env);
      expect(d.status).toBe(1);
      const line = d.text.split('\n').findIndex((l) => /^FAIL +key-permissions: /.test(l));
      expect(line, d.text).toBeGreaterThanOrEqual(0);
      expect(d.text.split('\n')[line]).toContain(`${keyFile} is 0644`);
      expect(d.text.split('\n')[line + 1]).toContain(`fix: chmod 600 ${keyFile}`);
      expect(d.text).toMatch(/^PASS +store-permissions/m);
    } finally {
      chmodSync(keyFile, 0o600);
    }
  });

  it('without ENSEAL_ADDR the server checks are unknown and say how to give it; files are still checked', () => {
    const d = doctor(['--dev', '--data-dir', dir, '--json'], {});
    const c = checks(d);
    for (const id of ['server', 'audit-chain', 'key-rotation', 'root-token']) {
      expect(c.get(id)).toMatchObject({ status: 'unknown' });
      expect(c.get(id)!.fix).toContain('ENSEAL_ADDR');
    }
    expect(c.get('seal-type')!.status).toBe('fail'); // the configuration alone says dev
    expect(d.status).toBe(1);
  });

  it('bad usage exits 2; --help explains the checks and the exit status', () => {
    expect(doctor(['--no-such-flag'], {}).status).toBe(2);
    expect(doctor(['--tls-profile', 'old'], {}).status).toBe(2);
    const help = enseal(['doctor', '--help']);
    expect(help.status).toBe(0);
    const text = help.stdout.toString();
    for (const w of ['ENSEAL_ADDR', 'ENSEAL_TOKEN', 'store-encrypted', 'root-token', 'Exit status', '--json'])
      expect(text).toContain(w);
  });
});

describe('enseal doctor against a production-shaped server', () => {
  let prod: ServeProcess | undefined;
  afterAll(() => stopServe(prod));

  it('Shamir init, an admin by client certificate, the root token revoked: every server check passes', async () => {
    buildOnce();
    const dir = tempDir();
    const tlsDir = join(dir, 'tls');
    const files = await ensureDevCertificates(tlsDir);
    const admin = await issueDevClientCertificate(tlsDir, 'ops-admin');
    const config = join(dir, 'enseal.toml');
    writeFileSync(
      config,
      [
        `data-dir = ${JSON.stringify(join(dir, 'data'))}`,
        `tls-cert = ${JSON.stringify(files.cert)}`,
        `tls-key = ${JSON.stringify(files.key)}`,
        `tls-client-ca = ${JSON.stringify(files.caCert)}`,
        'tls-profile = "modern"',
        '[client-cert-policies]',
        '"ops-admin" = ["admin"]',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    prod = await startServe(['--config', config]);
    const ca = readFileSync(files.caCert);
    const base = { ENSEAL_ADDR: prod.url, ENSEAL_CACERT: files.caCert };

    const init = enseal(['operator', 'init', '--shares', '3', '--threshold', '2', '--json'], undefined, base);
    expect(init.status, init.stderr).toBe(0);
    const { keys, root_token: root } = JSON.parse(init.stdout.toString()) as {
      keys: string[];
      root_token: string;
    };
    for (const share of keys.slice(0, 2))
      expect(enseal(['operator', 'unseal', share], undefined, base).status).toBe(0);

    // While the root token lives, the doctor says so.
    let c = checks(doctor(['--config', config, '--json'], { ...base, ENSEAL_TOKEN: root }));
    expect(c.get('root-token')!.status).toBe('fail');
    expect(c.get('seal-type')).toMatchObject({ status: 'pass' });
    expect(c.get('seal-type')!.message).toContain('2 of 3');

    // An identity that outlives the root token: a policy, and a client certificate mapped to it.
    const policy = [
      'path "sys/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }',
      'path "transit/*" { capabilities = ["create", "read", "update", "delete", "list"] }',
      'path "auth/token/*" { capabilities = ["create", "read", "update"] }',
    ].join('\n');
    expect(
      (
        await https(prod.url, '/v1/sys/policies/acl/admin', {
          ca,
          token: root,
          body: { policy },
          method: 'PUT',
        })
      ).status,
    ).toBe(204);
    const created = await https(prod.url, '/v1/auth/token/create', {
      ca,
      cert: readFileSync(admin.cert),
      key: readFileSync(admin.key),
      body: { policies: ['admin'], ttl: '1h', display_name: 'doctor' },
    });
    expect(created.status).toBe(200);
    const adminToken = (created.json.auth as { client_token: string }).client_token;
    expect((await https(prod.url, '/v1/auth/token/revoke-self', { ca, token: root })).status).toBe(204);

    const d = doctor(['--config', config, '--json'], { ...base, ENSEAL_TOKEN: adminToken });
    c = checks(d);
    for (const id of [
      'server',
      'seal-type',
      'tls-profile',
      'tls-certificate',
      'audit-chain',
      'key-rotation',
      'root-token',
    ])
      expect(c.get(id), `${id}: ${c.get(id)?.message}`).toMatchObject({ status: 'pass' });
    for (const id of ['store-permissions', 'key-permissions', 'tls-permissions'])
      expect(c.get(id), `${id}: ${c.get(id)?.message}`).toMatchObject({ status: 'pass' });
    expect(c.get('root-token')!.message).toContain('was revoked');
    // Only the disk under the store may keep it from exiting 0 (a virtual disk is unknown, which does not fail).
    expect(d.status).toBe(c.get('store-encrypted')!.status === 'fail' ? 1 : 0);
  });
});
