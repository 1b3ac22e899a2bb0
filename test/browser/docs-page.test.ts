/**
 * The API reference at `/docs` in a real Chromium against a real `enseal serve --dev`: it renders every route,
 * runs under the strict Content Security Policy with no violation, refuses a script injected inline, and its
 * try-it-out calls the server with the token pasted into "Authorize", which no storage keeps.
 *
 * Chromium trusts the server by the SHA-256 of its certificate's public key (`--ignore-certificate-errors-spki-
 * list`), and that key is first checked here to chain to the dev CA the server printed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/cli.js';
import { executable } from '../helpers/peers.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';
import { tempDir } from '../kms/helpers.js';

const browserPeer = executable(['chromium', 'chromium-browser'], 'apt-get install chromium');
const SHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));

interface Violation {
  directive: string;
  blocked: string;
  sample: string;
}
declare global {
  interface Window {
    __violations: Violation[];
    __injected?: boolean;
  }
}

/** The server certificate's SPKI hash, after checking the certificate chains to the dev CA. */
function pinnedKey(url: string, ca: Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      if (!socket.authorized)
        reject(new Error(`dev CA does not verify the server: ${socket.authorizationError}`));
      const spki = socket.getPeerX509Certificate()!.publicKey.export({ type: 'spki', format: 'der' });
      socket.end();
      resolve(createHash('sha256').update(spki).digest('base64'));
    });
    socket.on('error', reject);
  });
}

describe.skipIf(!browserPeer.available)('the /docs API reference in Chromium', () => {
  let server: ServeProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const consoleCsp: string[] = [];
  const tokenHeaders: (string | undefined)[] = [];

  beforeAll(async () => {
    buildOnce();
    server = await startServe(['--dev', '--data-dir', tempDir()]);
    const spki = await pinnedKey(server.url, server.ca!);
    browser = await chromium.launch({
      executablePath: browserPeer.command,
      args: [`--ignore-certificate-errors-spki-list=${spki}`],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.addInitScript(() => {
      window.__violations = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        window.__violations.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample }),
      );
    });
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) consoleCsp.push(m.text());
    });
    page.on('request', (r) => {
      if (r.url().includes('/v1/auth/token/lookup-self')) tokenHeaders.push(r.headers()['x-vault-token']);
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stopServe(server);
  });

  it('renders every route from the package-served assets, with no CSP violation', async () => {
    const loaded: string[] = [];
    page.on('response', (r) => loaded.push(r.url()));
    const res = await page.goto(`${server!.url}/docs`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval/);
    await page.waitForSelector('.opblock', { timeout: 30_000 });
    const paths = await page.$$eval('.opblock-summary-path', (els) => els.map((e) => e.textContent ?? ''));
    expect(paths.length).toBeGreaterThan(40);
    expect(paths.join(' ')).toMatch(/\/v1\/transit\/encrypt\/\{name\}/);
    // Everything came from this server: no CDN, no validator badge.
    const origin = new URL(server!.url).origin;
    expect(loaded.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'))).toEqual([]);
    await page.waitForTimeout(500);
    expect(await page.evaluate(() => window.__violations)).toEqual([]);
    expect(consoleCsp).toEqual([]);
  });

  it('an inline script injected into the page does not run', async () => {
    await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'window.__injected = true';
      document.body.appendChild(script);
    });
    await page.waitForTimeout(200);
    expect(await page.evaluate(() => window.__injected)).toBeUndefined();
    const violations = await page.evaluate(() => window.__violations);
    expect(violations.map((v) => v.directive)).toEqual(['script-src-elem']);
    await page.evaluate(() => (window.__violations = []));
    consoleCsp.length = 0;
  });

  it('try-it-out calls the server with the pasted token, kept in memory only', async () => {
    await page.click('.btn.authorize');
    await page.fill('.auth-container input', server!.token!);
    await page.click('.auth-btn-wrapper .btn.modal-btn.authorize');
    await page.click('.btn-done');
    const op = page.locator('#operations-auth-get_v1_auth_token_lookup_self');
    await op.locator('.opblock-summary').click();
    await op.locator('.execute').click();
    const status = op.locator('.live-responses-table tr.response .response-col_status').first();
    await expect
      .poll(async () => (await status.textContent())?.trim().slice(0, 3), { timeout: 15_000 })
      .toBe('200');
    const body = await op.locator('.live-responses-table tr.response').first().textContent();
    expect(body).toContain('"root"');
    expect(tokenHeaders).toEqual([server!.token]);

    mkdirSync(SHOTS, { recursive: true });
    const shot = `${SHOTS}docs-try-it-out.png`;
    await op.scrollIntoViewIfNeeded();
    // The picture may be published: the token shown in the curl line is masked first.
    await page.evaluate((token) => {
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode())
        if (n.nodeValue?.includes(token)) n.nodeValue = n.nodeValue.replaceAll(token, 'ens.…');
    }, server!.token!);
    await page.screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);

    const stored = await page.evaluate(() =>
      JSON.stringify([{ ...localStorage }, { ...sessionStorage }, document.cookie]),
    );
    expect(stored).not.toContain(server!.token!);
    expect((await page.context().cookies()).length).toBe(0);
    expect(await page.evaluate(() => window.__violations)).toEqual([]);
    expect(consoleCsp).toEqual([]);

    // A reload forgets the token: the same call is now refused.
    await page.reload();
    await page.waitForSelector('.opblock');
    const again = page.locator('#operations-auth-get_v1_auth_token_lookup_self');
    // Deep linking reopens the operation that was open before the reload.
    if (!(await again.locator('.execute').isVisible())) await again.locator('.opblock-summary').click();
    await again.locator('.execute').click();
    const refused = again.locator('.live-responses-table tr.response .response-col_status').first();
    await expect
      .poll(async () => (await refused.textContent())?.trim().slice(0, 3), { timeout: 15_000 })
      .toBe('403');
    expect(tokenHeaders.at(-1)).toBeUndefined();
  });
});
