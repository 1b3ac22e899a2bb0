/** Certificate hot reload: new handshakes get the new certificate, open connections keep working. */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDevCertificates } from '../../src/tls/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { tempDir } from '../kms/helpers.js';

let server: RunningServer | undefined;
afterAll(async () => server?.close());

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
