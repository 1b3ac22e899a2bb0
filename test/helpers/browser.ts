/**
 * What the browser tests share: Debian's chromium as the peer, a GET from Node that trusts the server's
 * development CA, the server certificate's SPKI hash, which Chromium is told to trust
 * (`--ignore-certificate-errors-spki-list`) instead of turning certificate checks off, the library test page,
 * a virtual WebAuthn authenticator, and sending and receiving from a page's client.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:https';
import { connect } from 'node:tls';
import type { BrowserContext, CDPSession, Page } from 'playwright-core';
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

/** The module of a library test page: the browser build on `window.E`, and a base64 helper for moving bytes out. */
export const LIBRARY_PAGE_SCRIPT = `
import * as E from '/__weblib/enseal-e2ee.js';
window.b64 = (u) => {
  let s = '';
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
  return btoa(s);
};
window.E = E;
`;

/**
 * A virtual WebAuthn authenticator on `page`'s tab (it stays across reloads of the tab), with or without the
 * PRF extension; user presence and verification are given automatically.
 */
export async function addVirtualAuthenticator(
  context: BrowserContext,
  page: Page,
  prf: boolean,
): Promise<{ cdp: CDPSession; id: string }> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
      hasPrf: prf,
      hasHmacSecret: prf,
    },
  });
  return { cdp, id: authenticatorId };
}

/** Sends `text` to `group` from the page's `window.alice` client; the relay's sequence number. */
export const pageSend = (page: Page, group: string, text: string): Promise<number> =>
  page.evaluate(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    async ([g, t]) => (window as any).alice.send(g, new TextEncoder().encode(t)) as Promise<number>,
    [group, text] as const,
  );

/** The texts one sync of the page's `window.alice` client delivered. */
export const pageReceive = (page: Page): Promise<string[]> =>
  page.evaluate(async () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const events = (await (window as any).alice.sync()) as { kind: string; data?: Uint8Array }[];
    return events.filter((e) => e.kind === 'message').map((e) => new TextDecoder().decode(e.data));
  });
