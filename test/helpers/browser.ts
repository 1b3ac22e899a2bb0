/**
 * What the browser tests share: Debian's chromium as the peer, a GET from Node that trusts the server's
 * development CA, and the server certificate's SPKI hash, which Chromium is told to trust
 * (`--ignore-certificate-errors-spki-list`) instead of turning certificate checks off.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { executable } from './peers.js';
import type { ServeProcess } from './serve-process.js';

export const browserPeer = executable(['chromium', 'chromium-browser'], 'apt-get install chromium');

/** A GET from Node to `server`, trusting its development CA. */
export function serveGet(
  server: ServeProcess,
  path: string,
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, server.url), { ca: server.ca }, (res) => {
      let text = '';
      res.on('data', (d) => (text += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** base64(SHA-256(SubjectPublicKeyInfo)) of the certificate `server` presents. */
export function serverSpki(server: ServeProcess): Promise<string> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: hostname, port: Number(port), ca: server.ca, servername: 'localhost' },
      () => {
        const der = socket.getPeerX509Certificate()!.publicKey.export({ type: 'spki', format: 'der' });
        socket.end();
        resolve(createHash('sha256').update(der).digest('base64'));
      },
    );
    socket.on('error', reject);
  });
}
