/** Certificate hot reload: new handshakes get the new certificate, open connections keep working. */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDevCertificates, writeCertificateFiles } from '../../src/tls/index.js';
import { tlsFixtures } from '../helpers/tls-certs.js';
import { devServer } from './helpers.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { tempDir } from '../kms/helpers.js';

let server: RunningServer | undefined;
const others: RunningServer[] = [];
afterAll(async () => {
  await server?.close();
  for (const s of others) await s.close();
});

function handshake(url: string, ca: Buffer): Promise<TLSSocket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(
      { host: u.hostname, port: Number(u.port), ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] },
      () => resolve(s),
    );
    s.once('error', reject);
  });
}

function get(socket: TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const on = (d: Buffer) => {
      text += String(d);
      if (text.includes('\r\n\r\n') && text.includes('"initialized"')) {
        socket.off('data', on);
        resolve(text);
      }
    };
    socket.on('data', on);
    socket.write('GET /v1/sys/health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
  });
}

describe('TLS certificate hot reload', () => {
  it('serves the new certificate to new connections without dropping open ones', async () => {
    const first = await ensureDevCertificates(tempDir());
    const second = await ensureDevCertificates(tempDir());
    const live = tempDir();
    const cert = join(live, 'cert.pem');
    const key = join(live, 'key.pem');
    copyFileSync(first.cert, cert);
    copyFileSync(first.key, key);
    server = await startServer({
      dev: true,
      dataDir: tempDir(),
      port: 0,
      tlsCert: cert,
      tlsKey: key,
      logLevel: 'error',
    });
    const caA = readFileSync(first.caCert);
    const caB = readFileSync(second.caCert);
    const open = await handshake(server.url, caA);
    expect(await get(open)).toContain('HTTP/1.1 200');

    copyFileSync(second.key, key);
    copyFileSync(second.cert, cert);
    let reloaded = false;
    for (let i = 0; i < 40 && !reloaded; i++) {
      await new Promise((r) => setTimeout(r, 100));
      reloaded = await handshake(server.url, caB).then(
        (s) => (s.end(), true),
        () => false,
      );
    }
    expect(reloaded).toBe(true);
    await expect(handshake(server.url, caA)).rejects.toThrow();
    // The connection opened before the reload still works.
    expect(await get(open)).toContain('HTTP/1.1 200');
    open.end();
  });
});

/** Polls new handshakes until one trusts `ca` (the reload happened) or 4 s pass. */
async function servedBy(url: string, ca: Buffer): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    const ok = await handshake(url, ca).then(
      (s) => (s.end(), true),
      () => false,
    );
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('TLS certificate reload after atomic renames', () => {
  it('keeps reloading across several rename-based replacements (the watch is on the directory)', async () => {
    const cas = await Promise.all([1, 2, 3].map(() => ensureDevCertificates(tempDir())));
    const live = tempDir();
    const files = { cert: join(live, 'cert.pem'), key: join(live, 'key.pem') };
    await writeCertificateFiles(files, readFileSync(cas[0]!.cert, 'utf8'), readFileSync(cas[0]!.key, 'utf8'));
    const s = await startServer({
      dev: true,
      dataDir: tempDir(),
      port: 0,
      tlsCert: files.cert,
      tlsKey: files.key,
      logLevel: 'error',
    });
    others.push(s);
    expect(await servedBy(s.url, readFileSync(cas[0]!.caCert))).toBe(true);
    for (const next of [cas[1]!, cas[2]!, cas[0]!]) {
      // writeCertificateFiles renames temp files over the targets: each write is a new inode.
      await writeCertificateFiles(files, readFileSync(next.cert, 'utf8'), readFileSync(next.key, 'utf8'));
      expect(await servedBy(s.url, readFileSync(next.caCert))).toBe(true);
    }
  });

  it('exports certificate expiry as metrics and warns about an expired certificate at start and on reload', async () => {
    const f = await tlsFixtures();
    const live = tempDir();
    const files = { cert: join(live, 'cert.pem'), key: join(live, 'key.pem') };
    await writeCertificateFiles(
      files,
      readFileSync(f.expired.cert, 'utf8'),
      readFileSync(f.expired.key, 'utf8'),
    );
    const { server: s, logs } = await devServer({ tlsCert: files.cert, tlsKey: files.key });
    others.push(s);
    expect(s.warnings.join('\n')).toMatch(/TLS certificate expired/);
    expect(logs()).toMatch(/TLS certificate expired/);
    const gauge = (text: string, name: string) =>
      Number(new RegExp(`^${name} (-?\\d+)$`, 'm').exec(text)?.[1]);
    // The client trusts only the dev CA, which did not sign the fixture, so read metrics after the swap.
    await writeCertificateFiles(
      files,
      readFileSync(f.goodEcdsa.cert, 'utf8'),
      readFileSync(f.goodEcdsa.key, 'utf8'),
    );
    expect(await servedBy(s.url, readFileSync(f.goodEcdsa.caFile))).toBe(true);
    const { X509Certificate } = await import('node:crypto');
    const notAfter = Math.floor(
      Date.parse(new X509Certificate(readFileSync(f.goodEcdsa.cert)).validTo) / 1000,
    );
    const metrics = await new Promise<string>((resolve, reject) => {
      const u = new URL('/v1/sys/metrics', s.url);
      const req = connect(
        {
          host: u.hostname,
          port: Number(u.port),
          ca: readFileSync(f.goodEcdsa.caFile),
          servername: 'localhost',
          ALPNProtocols: ['http/1.1'],
        },
        () => {
          req.write(
            `GET /v1/sys/metrics HTTP/1.1\r\nHost: localhost\r\nX-Vault-Token: ${s.rootToken}\r\nConnection: close\r\n\r\n`,
          );
        },
      );
      let text = '';
      req.on('data', (d: Buffer) => (text += String(d)));
      req.on('end', () => resolve(text));
      req.on('error', reject);
    });
    expect(gauge(metrics, 'enseal_tls_certificate_not_after_seconds')).toBe(notAfter);
    expect(gauge(metrics, 'enseal_tls_certificate_expires_in_seconds')).toBeGreaterThan(80 * 86400);
    // Going back to the expired certificate warns again, on reload.
    await writeCertificateFiles(
      files,
      readFileSync(f.expired.cert, 'utf8'),
      readFileSync(f.expired.key, 'utf8'),
    );
    for (let i = 0; i < 40 && (logs().match(/TLS certificate expired/g) ?? []).length < 2; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect((logs().match(/TLS certificate expired/g) ?? []).length).toBeGreaterThanOrEqual(2);
  });
});
