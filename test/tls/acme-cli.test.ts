/**
 * `enseal tls acme` as a user runs it: the built binary against Pebble (issue with dns-01 and tls-alpn-01,
 * renew that is not due, forced renew), and bad input that must fail fast with a typed error.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateInfo } from '../../src/tls/index.js';
import { buildOnce, CLI, enseal } from '../helpers/cli.js';
import { tempDir } from '../kms/helpers.js';
import { dnsHookCommand, freePort, pebbleAvailable, startPebble, type Pebble } from './pebble.js';

const available = pebbleAvailable();
let pebble: Pebble;
let caFile: string;
let passFile: string;

beforeAll(async () => {
  buildOnce();
  if (!available) return;
  pebble = await startPebble();
  const dir = tempDir();
  caFile = join(dir, 'pebble-listener-ca.pem');
  writeFileSync(caFile, pebble.listenerCa);
  passFile = join(dir, 'pass.txt');
  writeFileSync(passFile, 'cli account passphrase\n');
}, 60_000);

afterAll(async () => pebble?.stop());

/** The CLI without blocking this process (the tls-alpn-01 responder lives in the child, not here). */
function ensealAsync(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    child.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

describe.skipIf(!available)('enseal tls acme (CLI) against Pebble', () => {
  it('issues with dns-01, skips a renewal that is not due, and renews with --force', () => {
    const dir = tempDir();
    const common = [
      '--directory',
      pebble.directoryUrl,
      '--ca-file',
      caFile,
      '--account-dir',
      join(dir, 'account'),
      '--passphrase-file',
      passFile,
      '--agree-tos',
      '-d',
      'cli.enseal.test',
      '--challenge',
      'dns-01',
      '--dns-hook',
      dnsHookCommand(pebble),
      '--cert',
      join(dir, 'cert.pem'),
      '--key',
      join(dir, 'key.pem'),
      '--json',
    ];
    const issued = enseal(['tls', 'acme', 'issue', ...common]);
    expect(issued.stderr).toBe('');
    expect(issued.status).toBe(0);
    const first = JSON.parse(issued.stdout.toString()) as {
      renewed: boolean;
      certificate: { serial: string };
    };
    expect(first.renewed).toBe(true);
    expect(certificateInfo(readFileSync(join(dir, 'cert.pem'), 'utf8')).serialNumber).toBe(
      first.certificate.serial,
    );

    // issue refuses to overwrite; renew does nothing until due.
    const again = enseal(['tls', 'acme', 'issue', ...common]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toContain('ERR_OUTPUT_EXISTS');
    const notDue = JSON.parse(enseal(['tls', 'acme', 'renew', ...common]).stdout.toString()) as {
      renewed: boolean;
      reason: string;
      renewAt: string;
    };
    expect(notDue).toMatchObject({ renewed: false, reason: 'lifetime' });
    expect(Date.parse(notDue.renewAt)).toBeGreaterThan(Date.now());

    // Neither the passphrase nor anything secret shows up in the output.
    for (const out of [issued.stderr, issued.stdout.toString(), again.stderr])
      expect(out).not.toContain('cli account passphrase');

    const forced = enseal(['tls', 'acme', 'renew', ...common, '--force']);
    expect(forced.status).toBe(0);
    const second = JSON.parse(forced.stdout.toString()) as {
      renewed: boolean;
      certificate: { serial: string };
    };
    expect(second.renewed).toBe(true);
    expect(second.certificate.serial).not.toBe(first.certificate.serial);
    // A fraction small enough that the fresh certificate is already due.
    // Revoke the current certificate; a second revocation is refused by the CA with its problem type.
    const revokeArgs = [
      'tls',
      'acme',
      'revoke',
      '--directory',
      pebble.directoryUrl,
      '--ca-file',
      caFile,
      '--account-dir',
      join(dir, 'account'),
      '--passphrase-file',
      passFile,
      '--cert',
      join(dir, 'cert.pem'),
      '--reason',
      '4',
      '--json',
    ];
    const revoked = enseal(revokeArgs);
    expect(revoked.stderr).toBe('');
    expect(JSON.parse(revoked.stdout.toString())).toMatchObject({
      revoked: true,
      serial: second.certificate.serial,
    });
    const twice = enseal(revokeArgs);
    expect(twice.status).not.toBe(0);
    expect(JSON.parse(twice.stderr)).toMatchObject({
      error: { code: 'ERR_ACME_FAILED', message: expect.stringContaining('alreadyRevoked') },
    });

    const early = JSON.parse(
      enseal(['tls', 'acme', 'renew', ...common, '--renew-fraction', '0.0000000001']).stdout.toString(),
    ) as { renewed: boolean; reason: string };
    expect(early).toMatchObject({ renewed: true, reason: 'lifetime' });
  });

  it('issues with tls-alpn-01 from the CLI process', async () => {
    const dir = tempDir();
    const r = await ensealAsync([
      'tls',
      'acme',
      'issue',
      '--directory',
      pebble.directoryUrl,
      '--ca-file',
      caFile,
      '--account-dir',
      join(dir, 'account'),
      '--passphrase-file',
      passFile,
      '--agree-tos',
      '-d',
      'alpn-cli.enseal.test',
      '--challenge',
      'tls-alpn-01',
      '--tls-port',
      String(pebble.tlsPort),
      '--listen-host',
      '127.0.0.1',
      '--cert',
      join(dir, 'cert.pem'),
      '--key',
      join(dir, 'key.pem'),
    ]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/wrote .*cert\.pem/);
    expect(certificateInfo(readFileSync(join(dir, 'cert.pem'), 'utf8')).dnsNames).toEqual([
      'alpn-cli.enseal.test',
    ]);
  });

  it('fails with ERR_ACME_UNREACHABLE when the ACME server certificate is not trusted', () => {
    const dir = tempDir();
    const r = enseal([
      'tls',
      'acme',
      'issue',
      '--directory',
      pebble.directoryUrl,
      '--account-dir',
      dir,
      '--passphrase-file',
      passFile,
      '--agree-tos',
      '-d',
      'x.enseal.test',
      '--cert',
      join(dir, 'c'),
      '--key',
      join(dir, 'k'),
      '--challenge',
      'dns-01',
      '--dns-hook',
      'true',
    ]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('ERR_ACME_UNREACHABLE');
    expect(r.stderr).toContain('--ca-file');
  });
});

describe.skipIf(!available)('enseal tls acme (CLI) with external account binding', () => {
  it('passes --eab-kid and --eab-hmac-key-file to newAccount', async () => {
    const key = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
    const eabPebble = await startPebble({ eab: { kid: 'cli-kid', hmacKeyB64u: key } });
    try {
      const dir = tempDir();
      writeFileSync(join(dir, 'eab.key'), key + '\n');
      const args = (extra: string[]) => [
        'tls',
        'acme',
        'issue',
        '--directory',
        eabPebble.directoryUrl,
        '--ca-file',
        join(dir, 'ca.pem'),
        '--account-dir',
        join(dir, 'account'),
        '--passphrase-file',
        passFile,
        '--agree-tos',
        '-d',
        'eab-cli.enseal.test',
        '--challenge',
        'dns-01',
        '--dns-hook',
        dnsHookCommand(eabPebble),
        '--cert',
        join(dir, 'cert.pem'),
        '--key',
        join(dir, 'key.pem'),
        ...extra,
      ];
      writeFileSync(join(dir, 'ca.pem'), eabPebble.listenerCa);
      const without = await ensealAsync(args([]));
      expect(without.stderr).toContain('external account binding');
      const r = await ensealAsync(
        args(['--eab-kid', 'cli-kid', '--eab-hmac-key-file', join(dir, 'eab.key')]),
      );
      expect(r.stderr).toMatch(/wrote .*cert\.pem/);
      expect(r.status).toBe(0);
      expect(r.stderr + r.stdout).not.toContain(key);
    } finally {
      await eabPebble.stop();
    }
  }, 30_000);
});

describe('enseal tls acme: bad input', () => {
  it('fails fast with ERR_ACME_UNREACHABLE when nothing listens at the directory', async () => {
    const dir = tempDir();
    const pass = join(dir, 'p');
    writeFileSync(pass, 'x');
    const port = await freePort();
    const r = enseal([
      'tls',
      'acme',
      'renew',
      '--directory',
      `https://127.0.0.1:${port}/dir`,
      '--account-dir',
      dir,
      '--passphrase-file',
      pass,
      '-d',
      'x.enseal.test',
      '--cert',
      join(dir, 'c'),
      '--key',
      join(dir, 'k'),
    ]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_ACME_UNREACHABLE/);
    expect(r.stderr).toContain('ECONNREFUSED');
  });

  it('times out with ERR_ACME_UNREACHABLE when the server accepts but never answers', async () => {
    // A TCP listener that never speaks TLS: the client's own timeout must end the wait.
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const { port } = silent.address() as { port: number };
    const { AcmeClient } = await import('../../src/tls/index.js');
    const key = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const client = new AcmeClient({
      directoryUrl: `https://127.0.0.1:${port}/dir`,
      accountKey: key,
      timeoutMs: 500,
    });
    await expect(client.directory()).rejects.toMatchObject({ code: 'ERR_ACME_UNREACHABLE' });
    for (const s of sockets) s.destroy();
    silent.close();
  });

  it('rejects usage errors before contacting anything', () => {
    const usageDir = tempDir();
    const usagePass = join(usageDir, 'pass.txt');
    writeFileSync(usagePass, 'usage test passphrase\n');
    const r1 = enseal(['tls', 'acme', 'issue', '--cert', 'c', '--key', 'k']);
    expect(r1.stderr).toContain('--domain');
    expect(r1.status).toBe(2);
    const r2 = enseal(['tls', 'acme', 'issue', '-d', '*.example.com', '--cert', 'c', '--key', 'k']);
    expect(r2.stderr).toContain('wildcard names need --challenge dns-01');
    const r3 = enseal([
      'tls',
      'acme',
      'issue',
      '-d',
      'example.com',
      '--directory',
      'http://example.com/dir',
      '--cert',
      'c',
      '--key',
      'k',
      '--passphrase-file',
      usagePass,
      '--account-dir',
      usageDir,
    ]);
    expect(r3.stderr).toContain('must be an https URL');
    expect(r3.status).toBe(2);
    const help = enseal(['tls', 'acme', '--help']);
    expect(help.stdout.toString()).toContain('issue');
    expect(help.stdout.toString()).toContain('renew');
  });
});
