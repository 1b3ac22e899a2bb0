/**
 * `enseal tls ca` and `enseal tls nginx` run as a user runs them: the built binary, exit statuses, files on
 * disk, and the outputs checked with openssl and nginx.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, CLI, enseal } from '../helpers/cli.js';
import { nginxPeer, nginxTest } from '../helpers/nginx.js';
import { python, run, runAsync, tool } from '../helpers/peers.js';

const openssl = tool('openssl', ['version'], 'apt-get install openssl');
const nginx = nginxPeer();
let dir: string;
beforeAll(() => {
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'enseal-tls-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const json = (r: { stdout: Buffer }) => JSON.parse(r.stdout.toString()) as Record<string, unknown>;

describe('enseal tls ca', () => {
  it('init, issue, path and trust with a constrained CA', () => {
    const ca = join(dir, 'ca1');
    const init = enseal([
      'tls',
      'ca',
      'init',
      '--dir',
      ca,
      '--permit',
      'localhost,.test',
      '--permit',
      '127.0.0.1/32',
      '--json',
    ]);
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    const info = json(init);
    expect(info).toMatchObject({
      certificate: join(ca, 'ca.pem'),
      key: join(ca, 'ca-key.pem'),
      keyType: 'ecdsa-p256',
      keySealed: false,
      permitted: ['dns:localhost', 'dns:test', 'ip:127.0.0.1/32'],
      excluded: [],
    });
    expect(info.sha256Fingerprint).toBe(new X509Certificate(readFileSync(join(ca, 'ca.pem'))).fingerprint256);
    expect(statSync(join(ca, 'ca-key.pem')).mode & 0o777).toBe(0o600);

    const again = enseal(['tls', 'ca', 'init', '--dir', ca]);
    expect(again.status).toBe(6);
    expect(again.stderr).toMatch(
      /enseal: error: a CA already exists .* pass --force to replace it \(ERR_OUTPUT_EXISTS\)/,
    );

    const out = join(dir, 'web');
    const issue = enseal([
      'tls',
      'ca',
      'issue',
      'localhost',
      'app.test',
      '127.0.0.1',
      '--dir',
      ca,
      '--out',
      out,
      '--json',
    ]);
    expect(issue.status).toBe(0);
    expect(json(issue)).toMatchObject({
      certificate: `${out}.pem`,
      key: `${out}-key.pem`,
      names: ['dns:localhost', 'dns:app.test', 'ip:127.0.0.1'],
      usage: ['serverAuth'],
    });
    expect(statSync(`${out}-key.pem`).mode & 0o777).toBe(0o600);
    if (openssl.available) {
      expect(run('openssl', ['verify', '-CAfile', join(ca, 'ca.pem'), `${out}.pem`]).toString()).toContain(
        'OK',
      );
    }
    expect(enseal(['tls', 'ca', 'issue', 'localhost', '--dir', ca, '--out', out]).status).toBe(6);

    const outside = enseal(['tls', 'ca', 'issue', 'example.com', '--dir', ca, '--out', join(dir, 'x')]);
    expect(outside.status).toBe(2);
    expect(outside.stderr).toMatch(/outside the names this CA may certify \(ERR_INVALID_ARGUMENT\)/);
    expect(
      enseal(['tls', 'ca', 'issue', 'localhost', '--days', '900', '--dir', ca, '--out', join(dir, 'y')])
        .status,
    ).toBe(2);

    const client = enseal([
      'tls',
      'ca',
      'issue',
      'alice.test',
      '--client',
      '--no-server',
      '--dir',
      ca,
      '--out',
      join(dir, 'alice'),
      '--json',
    ]);
    expect(json(client).usage).toEqual(['clientAuth']);

    expect(enseal(['tls', 'ca', 'path', '--dir', ca]).stdout.toString()).toBe(`${ca}\n`);
    expect(enseal(['tls', 'ca', 'path', '--dir', ca, '--cert']).stdout.toString()).toBe(
      `${join(ca, 'ca.pem')}\n`,
    );
    const trust = enseal(['tls', 'ca', 'trust', '--dir', ca]).stdout.toString();
    for (const needle of [
      'update-ca-certificates',
      'security add-trusted-cert',
      'certutil -d sql:',
      `NODE_EXTRA_CA_CERTS='${join(ca, 'ca.pem')}'`,
      'curl --cacert',
      'REQUESTS_CA_BUNDLE',
    ]) {
      expect(trust).toContain(needle);
    }
    // The default directory follows ENSEAL_CAROOT.
    const viaEnv = enseal(['tls', 'ca', 'path'], undefined, { ENSEAL_CAROOT: ca });
    expect(viaEnv.stdout.toString()).toBe(`${ca}\n`);
    expect(enseal(['tls', 'ca', 'trust', '--dir', join(dir, 'none')]).status).toBe(6);
  });

  it('a sealed CA key needs its passphrase', () => {
    const ca = join(dir, 'ca2');
    const pw = join(dir, 'pw');
    writeFileSync(pw, 'a long passphrase\n');
    const init = enseal([
      'tls',
      'ca',
      'init',
      '--dir',
      ca,
      '--key-type',
      'ecdsa-p384',
      '--passphrase-file',
      pw,
      '--json',
    ]);
    expect(init.status).toBe(0);
    expect(json(init)).toMatchObject({
      keySealed: true,
      keyType: 'ecdsa-p384',
      key: join(ca, 'ca-key.enseal'),
      // No --permit: constrained to local names by default.
      permitted: ['dns:localhost', 'dns:test', 'dns:internal', 'ip:127.0.0.0/8', 'ip:::1/128'],
    });
    expect(readFileSync(join(ca, 'ca-key.enseal'), 'utf8')).not.toContain('PRIVATE KEY');
    const ok = enseal([
      'tls',
      'ca',
      'issue',
      'localhost',
      '--dir',
      ca,
      '--passphrase-file',
      pw,
      '--out',
      join(dir, 's'),
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    writeFileSync(join(dir, 'bad'), 'wrong');
    const bad = enseal([
      'tls',
      'ca',
      'issue',
      'localhost',
      '--dir',
      ca,
      '--passphrase-file',
      join(dir, 'bad'),
      '--out',
      join(dir, 't'),
    ]);
    expect(bad.status).toBe(3);
    expect(existsSync(join(dir, 't.pem'))).toBe(false);
    // No file and no terminal: refuse rather than read a secret from a pipe.
    // setsid: a new session has no controlling terminal even when the test runner has one.
    const none = spawnSync(
      'setsid',
      ['-w', process.execPath, CLI, 'tls', 'ca', 'issue', 'localhost', '--dir', ca, '--out', join(dir, 'u')],
      {
        encoding: 'utf8',
        timeout: 30_000,
        input: '',
      },
    );
    expect(none.stderr).toContain('ERR_KEK_MISSING');
    expect(none.status).toBe(5);
  });

  it('rejects unknown key types with a usage error', () => {
    const r = enseal(['tls', 'ca', 'init', '--dir', join(dir, 'ca3'), '--key-type', 'rsa-1024']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('ERR_INVALID_ARGUMENT');
    const both = enseal([
      'tls',
      'ca',
      'init',
      '--dir',
      join(dir, 'ca3'),
      '--unconstrained',
      '--permit',
      '.test',
    ]);
    expect(both.status).toBe(2);
    const open = enseal(['tls', 'ca', 'init', '--dir', join(dir, 'ca4'), '--unconstrained', '--json']);
    expect(json(open)).toMatchObject({ permitted: null, excluded: null });
  });
});

describe('enseal tls nginx', () => {
  it('prints a config, writes one with -o, and the written one passes nginx -t', async () => {
    const ca = join(dir, 'ca-nginx');
    expect(enseal(['tls', 'ca', 'init', '--dir', ca]).status).toBe(0);
    expect(enseal(['tls', 'ca', 'issue', 'localhost', '--dir', ca, '--out', join(dir, 'site')]).status).toBe(
      0,
    );
    const args = [
      'tls',
      'nginx',
      '-d',
      'localhost,www.localhost',
      '--cert',
      join(dir, 'site.pem'),
      '--key',
      join(dir, 'site-key.pem'),
    ];
    const printed = enseal([...args, '--nginx-version', '1.25.3', '--profile', 'modern']);
    expect(printed.status).toBe(0);
    const text = printed.stdout.toString();
    expect(text).toContain('server_name localhost www.localhost;');
    expect(text).toContain('http2 on;');
    expect(text).toContain('ssl_protocols TLSv1.3;');

    const file = join(dir, 'tls.conf');
    const written = enseal([
      ...args,
      '--nginx-version',
      '1.22.1',
      '--listen',
      '127.0.0.1',
      '--https-port',
      '18443',
      '--http-port',
      '18080',
      '-o',
      file,
    ]);
    expect(written.status).toBe(0);
    expect(written.stdout.toString()).toContain(`wrote ${file}`);
    expect(enseal([...args, '--nginx-version', '1.22.1', '-o', file]).status).toBe(6);
    if (nginx.available) {
      const result = await nginxTest(readFileSync(file, 'utf8'));
      expect(result.output).toContain('test is successful');
    }
    // The certificate is readable here, so it is checked: ECDSA and 90 days suit modern; one name is missing.
    expect(printed.stderr).toBe('enseal: warning: the certificate does not cover www.localhost\n');
    expect(
      enseal([
        'tls',
        'ca',
        'issue',
        'localhost',
        '--key-type',
        'rsa-2048',
        '--dir',
        ca,
        '--out',
        join(dir, 'rsa'),
      ]).status,
    ).toBe(0);
    const advised = enseal([
      'tls',
      'nginx',
      '-d',
      'localhost,other.example',
      '--cert',
      join(dir, 'rsa.pem'),
      '--key',
      join(dir, 'rsa-key.pem'),
      '--nginx-version',
      '1.22.1',
      '--profile',
      'modern',
    ]);
    expect(advised.status).toBe(0);
    expect(advised.stderr).toContain(
      'enseal: warning: the modern profile expects an ECDSA (P-256 or P-384) certificate; this one is RSA',
    );
    expect(advised.stderr).toContain('enseal: warning: the certificate does not cover other.example');
    const wrapped = enseal([...args, '--nginx-version', '1.22.1', '--http-block', '--json']);
    const parsed = json(wrapped);
    expect(parsed).toMatchObject({
      profile: 'intermediate',
      nginxVersion: '1.22.1',
      domains: ['localhost', 'www.localhost'],
      warnings: ['the certificate does not cover www.localhost'],
    });
    expect(String(parsed.config).startsWith('http {\n')).toBe(true);
  });

  it.skipIf(!nginx.available)('takes the nginx version from nginx -v when not given', () => {
    const local = /nginx\/(\d+\.\d+\.\d+)/.exec(run('sh', ['-c', 'nginx -v 2>&1']).toString())![1]!;
    const r = enseal(['tls', 'nginx', '-d', 'example.com', '--cert', '/c.pem', '--key', '/k.pem']);
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toContain(`# nginx ${local}.`);
  });

  it('refuses injection attempts and bad input with usage errors', () => {
    const base = ['tls', 'nginx', '--nginx-version', '1.22.1', '--cert', '/c.pem', '--key', '/k.pem'];
    // The generator's property test covers the input space; here three cases show the CLI path refuses too.
    for (const extra of [
      ['-d', 'example.com;include /etc/passwd'],
      ['-d', 'example.com', '--cert', '/c.pem;\nssl_protocols TLSv1'],
      ['-d', 'example.com', '--nginx-version', '1.22'],
    ]) {
      const r = enseal([...base, ...extra]);
      expect({ extra, status: r.status, out: r.stdout.toString() }).toEqual({ extra, status: 2, out: '' });
    }
    const help = enseal(['tls', 'nginx', '--help']).stdout.toString();
    expect(help).toContain('Examples:');
    expect(help).toContain('--profile <name>');
  });
});

describe('the trust instructions work', () => {
  it('curl --cacert, NODE_EXTRA_CA_CERTS and REQUESTS_CA_BUNDLE trust a server certificate from the CA', async () => {
    const ca = join(dir, 'ca-trust');
    expect(enseal(['tls', 'ca', 'init', '--dir', ca, '--permit', 'localhost,127.0.0.1']).status).toBe(0);
    expect(
      enseal(['tls', 'ca', 'issue', 'localhost', '--dir', ca, '--out', join(dir, 'trusted')]).status,
    ).toBe(0);
    const caFile = join(ca, 'ca.pem');
    const server = createServer(
      { cert: readFileSync(join(dir, 'trusted.pem')), key: readFileSync(join(dir, 'trusted-key.pem')) },
      (_req, res) => res.end('trusted\n'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const url = `https://localhost:${port}/`;
    try {
      const checked: string[] = [];
      if (tool('curl', ['--version'], 'apt-get install curl').available) {
        const out = await runAsync('curl', [
          '-sS',
          '--resolve',
          `localhost:${port}:127.0.0.1`,
          '--cacert',
          caFile,
          url,
        ]);
        expect(out.toString()).toBe('trusted\n');
        await expect(
          runAsync('curl', ['-sS', '--resolve', `localhost:${port}:127.0.0.1`, url]),
        ).rejects.toThrow();
        checked.push('curl');
      }
      const nodeGet = `require('https').get(${JSON.stringify(url)}, { lookup: (h, o, cb) => o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4) }, (r) => r.pipe(process.stdout)).on('error', (e) => { console.error(e.message); process.exit(1); })`;
      const withEnv = await runAsync(process.execPath, ['-e', nodeGet], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile },
      });
      expect(withEnv.toString()).toBe('trusted\n');
      const { NODE_EXTRA_CA_CERTS: _drop, ...without } = process.env;
      await expect(runAsync(process.execPath, ['-e', nodeGet], { env: without })).rejects.toThrow(
        /certificate/,
      );
      checked.push('node');
      const py = python(['requests'], 'apt-get install python3-requests');
      if (py.available) {
        const program = `import requests; print(requests.get(${JSON.stringify(`https://localhost:${port}/`)}).text, end='')`;
        const out = await runAsync(py.command, ['-c', program], {
          env: { ...process.env, REQUESTS_CA_BUNDLE: caFile },
        });
        expect(out.toString()).toBe('trusted\n');
        checked.push('python requests');
      }
      expect(checked).toEqual(['curl', 'node', 'python requests']);
    } finally {
      server.close();
    }
  });
});
