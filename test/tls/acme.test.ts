/**
 * ACME issuance against a real ACME server (Pebble): all three challenge types, an encrypted account key,
 * renewal (not due, then due by the lifetime rule, then forced) with atomic writes, and badNonce retries.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AcmeProblemError,
  certificateInfo,
  dns01Hook,
  http01Responder,
  http01Webroot,
  issueAcmeCertificate,
  loadOrCreateAccountKey,
  openAcmeAccount,
  renewIfDue,
  splitPemChain,
  tlsAlpn01Responder,
  type AcmeClient,
  type ChallengeSolver,
} from '../../src/tls/index.js';
import { tempDir } from '../kms/helpers.js';
import { nginxPeer, startNginx } from '../helpers/nginx.js';
import { dnsHookCommand, pebbleAvailable, startPebble, type Pebble } from './pebble.js';

const LOW_COST = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
const available = pebbleAvailable();

let pebble: Pebble;
let client: AcmeClient;
let accountDir: string;

beforeAll(async () => {
  if (!available) return;
  pebble = await startPebble();
  accountDir = tempDir();
  client = await openAcmeAccount({
    dir: accountDir,
    passphrase: 'account passphrase for tests',
    params: LOW_COST,
    directoryUrl: pebble.directoryUrl,
    ca: pebble.listenerCa,
    termsOfServiceAgreed: true,
    pollTimeoutMs: 20_000,
  });
}, 30_000);

afterAll(async () => pebble?.stop());

/** The leaf verifies up to Pebble's issuing root and names exactly `domains`. */
async function expectIssued(chainPem: string, domains: string[]): Promise<void> {
  const chain = splitPemChain(chainPem).map((p) => new X509Certificate(p));
  expect(chain.length).toBeGreaterThanOrEqual(2);
  const root = new X509Certificate(await pebble.issuingRoot());
  const last = chain[chain.length - 1]!;
  expect(last.checkIssued(root) || last.fingerprint256 === root.fingerprint256).toBe(true);
  for (let i = 0; i + 1 < chain.length; i++) expect(chain[i]!.verify(chain[i + 1]!.publicKey)).toBe(true);
  for (const d of domains) expect(chain[0]!.checkHost(d.replace(/^\*\./, 'x.'))).toBeTruthy();
  expect(certificateInfo(chainPem).dnsNames.slice().sort()).toEqual(domains.slice().sort());
}

async function withSolver<T>(solver: ChallengeSolver, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await solver.close();
  }
}

describe.skipIf(!available)('ACME against Pebble', () => {
  it('issues with http-01 from a standalone responder', async () => {
    const solver = await http01Responder({ port: pebble.httpPort, host: '127.0.0.1' });
    const issued = await withSolver(solver, () =>
      issueAcmeCertificate({ client, domains: ['http.enseal.test', 'www.enseal.test'], solver }),
    );
    await expectIssued(issued.chainPem, ['http.enseal.test', 'www.enseal.test']);
    expect(issued.keyPem).toContain('BEGIN PRIVATE KEY');
  });

  it('issues for an IP address identifier (RFC 8738) with http-01, and does not renew it for its names', async () => {
    const dir = tempDir();
    const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    const solver = await http01Responder({ port: pebble.httpPort, host: '127.0.0.1' });
    await withSolver(solver, async () => {
      const first = await renewIfDue({ client, domains: ['127.0.0.1'], solver, files });
      expect(first.info.ipAddresses).toEqual(['127.0.0.1']);
      expect(new X509Certificate(readFileSync(files.cert)).checkIP('127.0.0.1')).toBe('127.0.0.1');
      const again = await renewIfDue({ client, domains: ['127.0.0.1'], solver, files });
      expect(again).toMatchObject({ renewed: false, decision: { reason: 'lifetime' } });
    });
  });

  it('issues an RSA-2048 certificate when asked', async () => {
    const solver = dns01Hook({ command: dnsHookCommand(pebble) });
    const issued = await issueAcmeCertificate({
      client,
      domains: ['rsa.enseal.test'],
      solver,
      keyType: 'rsa-2048',
    });
    const { createPrivateKey } = await import('node:crypto');
    const key = createPrivateKey(issued.keyPem);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(new X509Certificate(splitPemChain(issued.chainPem)[0]!).checkPrivateKey(key)).toBe(true);
  });

  it('issues with tls-alpn-01 (acme-tls/1 with the acmeIdentifier extension)', async () => {
    const solver = await tlsAlpn01Responder({ port: pebble.tlsPort, host: '127.0.0.1' });
    const issued = await withSolver(solver, () =>
      issueAcmeCertificate({ client, domains: ['alpn.enseal.test'], solver }),
    );
    await expectIssued(issued.chainPem, ['alpn.enseal.test']);
  });

  it('issues for an IP address with tls-alpn-01 (SNI is the reverse-DNS name, RFC 8738)', async () => {
    const solver = await tlsAlpn01Responder({ port: pebble.tlsPort, host: '127.0.0.1' });
    const issued = await withSolver(solver, () =>
      issueAcmeCertificate({ client, domains: ['127.0.0.1'], solver }),
    );
    expect(certificateInfo(issued.chainPem).ipAddresses).toEqual(['127.0.0.1']);
  });

  it('issues with dns-01 through a hook command, including a wildcard', async () => {
    const solver = dns01Hook({ command: dnsHookCommand(pebble) });
    const issued = await issueAcmeCertificate({
      client,
      domains: ['dns.enseal.test', '*.dns.enseal.test'],
      solver,
      keyType: 'ec-p384',
    });
    await expectIssued(issued.chainPem, ['dns.enseal.test', '*.dns.enseal.test']);
  });

  it('issues with http-01 through a webroot served by nginx', async (ctx) => {
    if (!nginxPeer().available) return ctx.skip();
    // The deployment this mode is for: nginx already owns port 80 and serves the webroot; enseal only writes
    // the challenge file there. (The second listen is a harness port, so startNginx waits for the server.)
    const webroot = tempDir();
    const server = await startNginx({
      http: `server { listen 127.0.0.1:${pebble.httpPort}; listen 127.0.0.1:{{HTTP_PORT}}; root ${webroot}; }`,
    });
    try {
      const issued = await issueAcmeCertificate({
        client,
        domains: ['webroot.enseal.test'],
        solver: http01Webroot(webroot),
      });
      await expectIssued(issued.chainPem, ['webroot.enseal.test']);
      // Cleanup removed the challenge file.
      expect(readdirSync(join(webroot, '.well-known', 'acme-challenge'))).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  it('fails with a typed ACME error when the challenge cannot be validated', async () => {
    // Nothing listens on the http-01 port: Pebble's validation fails and the order is refused.
    const solver = http01Webroot(tempDir());
    const err = await issueAcmeCertificate({ client, domains: ['nobody.enseal.test'], solver }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AcmeProblemError);
    expect((err as AcmeProblemError).code).toBe('ERR_ACME_FAILED');
    expect((err as AcmeProblemError).acmeType).toMatch(/connection|unauthorized|incorrectResponse/);
  });

  it('reports a failing dns-01 hook with its exit status and stderr', async () => {
    const solver = dns01Hook({ command: 'echo "provider said no" >&2; exit 3' });
    await expect(
      issueAcmeCertificate({ client, domains: ['hookfail.enseal.test'], solver }),
    ).rejects.toMatchObject({
      code: 'ERR_ACME_FAILED',
      message: expect.stringMatching(/dns-01 hook \(present\) exited 3: provider said no/),
    });
  });

  it('refuses a certificate profile the server does not offer, before ordering', async () => {
    const solver = http01Webroot(tempDir());
    const before = client.stats.requests;
    await expect(
      issueAcmeCertificate({ client, domains: ['profile.enseal.test'], solver, profile: 'shortlived' }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringContaining('offered: none'),
    });
    expect(client.stats.requests).toBe(before);
  });

  it('keeps the account key encrypted at rest and refuses a wrong passphrase', async () => {
    const text = readFileSync(join(accountDir, 'account-key.enseal'), 'utf8');
    expect(text).not.toMatch(/"d"|PRIVATE KEY/);
    expect(statSync(join(accountDir, 'account-key.enseal')).mode & 0o777).toBe(0o600);
    await expect(loadOrCreateAccountKey({ dir: accountDir, passphrase: 'wrong' })).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
    });
    const again = await loadOrCreateAccountKey({
      dir: accountDir,
      passphrase: 'account passphrase for tests',
    });
    expect(again.created).toBe(false);
    // The same key finds the same account (newAccount answers with the existing one).
    const reopened = await openAcmeAccount({
      dir: accountDir,
      passphrase: 'account passphrase for tests',
      directoryUrl: pebble.directoryUrl,
      ca: pebble.listenerCa,
      termsOfServiceAgreed: true,
    });
    expect(reopened.accountUrl).toBe(client.accountUrl);
  });

  it('renews only when due: not before two thirds of the lifetime, then at it, and when forced', async () => {
    const dir = tempDir();
    const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    const solver = await http01Responder({ port: pebble.httpPort, host: '127.0.0.1' });
    await withSolver(solver, async () => {
      const first = await renewIfDue({ client, domains: ['renew.enseal.test'], solver, files });
      expect(first.renewed).toBe(true);
      expect(first.decision.reason).toBe('missing');
      expect(statSync(files.key).mode & 0o777).toBe(0o600);

      // Not due: a responder given as a factory is never opened.
      const notYet = await renewIfDue({
        client,
        domains: ['renew.enseal.test'],
        solver: () => Promise.reject(new Error('the responder must not be opened when nothing is due')),
        files,
      });
      expect(notYet.renewed).toBe(false);
      expect(notYet.decision.reason).toBe('lifetime');
      const { notBefore, notAfter } = first.info;
      const twoThirds = notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3;
      expect(Math.abs(notYet.decision.at.getTime() - twoThirds)).toBeLessThan(1000);

      const later = new Date(twoThirds + 60_000);
      const due = await renewIfDue({ client, domains: ['renew.enseal.test'], solver, files, now: later });
      expect(due.renewed).toBe(true);
      expect(due.info.serialNumber).not.toBe(first.info.serialNumber);

      const forced = await renewIfDue({ client, domains: ['renew.enseal.test'], solver, files, force: true });
      expect(forced.renewed).toBe(true);
      expect(forced.decision.reason).toBe('forced');
      expect(forced.info.serialNumber).not.toBe(due.info.serialNumber);
      // The files hold the newest pair, and nothing temporary is left beside them.
      expect(certificateInfo(readFileSync(files.cert, 'utf8')).serialNumber).toBe(forced.info.serialNumber);
      expect(
        new X509Certificate(readFileSync(files.cert)).checkPrivateKey(
          (await import('node:crypto')).createPrivateKey(readFileSync(files.key)),
        ),
      ).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(['cert.pem', 'key.pem']);

      // Asking for another name renews at once.
      const names = await renewIfDue({
        client,
        domains: ['renew.enseal.test', 'more.enseal.test'],
        solver,
        files,
      });
      expect(names.decision.reason).toBe('names');
      expect(names.info.dnsNames).toContain('more.enseal.test');
    });
  });
});

describe.skipIf(!available)('ACME badNonce handling', () => {
  it('re-signs with a fresh nonce when Pebble rejects nonces', async () => {
    const rejecting = await startPebble({ nonceReject: 40 });
    try {
      const c = await openAcmeAccount({
        dir: tempDir(),
        passphrase: 'p',
        params: LOW_COST,
        directoryUrl: rejecting.directoryUrl,
        ca: rejecting.listenerCa,
        termsOfServiceAgreed: true,
      });
      const solver = dns01Hook({ command: dnsHookCommand(rejecting) });
      const issued = await issueAcmeCertificate({ client: c, domains: ['nonce.enseal.test'], solver });
      expect(certificateInfo(issued.chainPem).dnsNames).toEqual(['nonce.enseal.test']);
      expect(c.stats.badNonceRetries).toBeGreaterThan(0);
    } finally {
      await rejecting.stop();
    }
  }, 30_000);
});

describe.skipIf(!available)('ACME external account binding', () => {
  it('binds a new account with HS256 under the CA-issued MAC key, and refuses without it', async () => {
    const hmacKey = globalThis.crypto.getRandomValues(new Uint8Array(48));
    const eabPebble = await startPebble({
      eab: { kid: 'kid-enseal', hmacKeyB64u: Buffer.from(hmacKey).toString('base64url') },
    });
    try {
      const base = {
        passphrase: 'p',
        params: LOW_COST,
        directoryUrl: eabPebble.directoryUrl,
        ca: eabPebble.listenerCa,
        termsOfServiceAgreed: true,
      };
      await expect(openAcmeAccount({ ...base, dir: tempDir() })).rejects.toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
        message: expect.stringContaining('external account binding'),
      });
      const wrong = globalThis.crypto.getRandomValues(new Uint8Array(48));
      await expect(
        openAcmeAccount({
          ...base,
          dir: tempDir(),
          externalAccountBinding: { kid: 'kid-enseal', hmacKey: wrong },
        }),
      ).rejects.toMatchObject({ code: 'ERR_ACME_FAILED' });
      const c = await openAcmeAccount({
        ...base,
        dir: tempDir(),
        externalAccountBinding: { kid: 'kid-enseal', hmacKey },
      });
      const solver = dns01Hook({ command: dnsHookCommand(eabPebble) });
      const issued = await issueAcmeCertificate({ client: c, domains: ['eab.enseal.test'], solver });
      expect(certificateInfo(issued.chainPem).dnsNames).toEqual(['eab.enseal.test']);
    } finally {
      await eabPebble.stop();
    }
  }, 30_000);
});
