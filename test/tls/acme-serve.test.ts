/**
 * The whole loop: a certificate issued by a real ACME server (Pebble) is served by `enseal serve`; renewing it
 * (twice, each an atomic replacement of both files) makes new connections get the new certificate, without a
 * restart, while a connection opened before keeps working.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { http01Responder, openAcmeAccount, renewIfDue, type AcmeClient } from '../../src/tls/index.js';
import { tempDir } from '../kms/helpers.js';
import { pebbleAvailable, startPebble, type Pebble } from './pebble.js';

const available = pebbleAvailable();
const NAME = 'serve.enseal.test';
let pebble: Pebble;
let client: AcmeClient;
let server: RunningServer | undefined;

beforeAll(async () => {
  if (!available) return;
  pebble = await startPebble();
  client = await openAcmeAccount({
    dir: tempDir(),
    passphrase: 'serve test',
    params: { memoryKiB: 1024, iterations: 1, parallelism: 1 },
    directoryUrl: pebble.directoryUrl,
    ca: pebble.listenerCa,
    termsOfServiceAgreed: true,
  });
}, 30_000);

afterAll(async () => {
  await server?.close();
  await pebble?.stop();
});

/** A new TLS connection as a client of `NAME` trusting only Pebble's root; resolves with the served serial. */
function handshake(url: string, root: string): Promise<{ socket: TLSSocket; serial: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: u.hostname, port: Number(u.port), ca: root, servername: NAME, ALPNProtocols: ['http/1.1'] },
      () => resolve({ socket, serial: socket.getPeerCertificate().serialNumber.toLowerCase() }),
    );
    socket.once('error', reject);
  });
}

function health(socket: TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const on = (d: Buffer) => {
      text += String(d);
      if (text.includes('"initialized"')) {
        socket.off('data', on);
        resolve(text);
      }
    };
    socket.on('data', on);
    socket.write(`GET /v1/sys/health HTTP/1.1\r\nHost: ${NAME}\r\nConnection: keep-alive\r\n\r\n`);
  });
}

/** Serial as Node prints it, for comparison with @peculiar/x509's hex (which drops a leading zero byte). */
const norm = (hex: string) => hex.replace(/^(00)+/, '').toLowerCase();

describe.skipIf(!available)('ACME renewal served by enseal serve without a restart', () => {
  it('serves each renewed certificate to new connections', async () => {
    const dir = tempDir();
    const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    const solver = await http01Responder({ port: pebble.httpPort, host: '127.0.0.1' });
    try {
      const first = await renewIfDue({ client, domains: [NAME], solver, files });
      server = await startServer({
        dev: true,
        dataDir: tempDir(),
        port: 0,
        tlsCert: files.cert,
        tlsKey: files.key,
        logLevel: 'error',
      });
      const root = await pebble.issuingRoot();
      const open = await handshake(server.url, root);
      expect(norm(open.serial)).toBe(norm(first.info.serialNumber));
      expect(await health(open.socket)).toContain('HTTP/1.1 200');

      let previous = first.info.serialNumber;
      for (let round = 0; round < 2; round++) {
        const renewed = await renewIfDue({ client, domains: [NAME], solver, files, force: true });
        expect(renewed.renewed).toBe(true);
        expect(norm(renewed.info.serialNumber)).not.toBe(norm(previous));
        let served = '';
        for (let i = 0; i < 50 && norm(served) !== norm(renewed.info.serialNumber); i++) {
          await new Promise((r) => setTimeout(r, 100));
          const c = await handshake(server.url, root);
          served = c.serial;
          c.socket.end();
        }
        expect(norm(served)).toBe(norm(renewed.info.serialNumber));
        previous = renewed.info.serialNumber;
      }
      // The connection from before both renewals still answers.
      expect(await health(open.socket)).toContain('HTTP/1.1 200');
      open.socket.end();
      expect(readFileSync(files.key, 'utf8')).toContain('PRIVATE KEY');
    } finally {
      await solver.close();
    }
  });
});
