/**
 * The operator console in a real browser (Debian's chromium through playwright-core) against a real
 * `enseal serve` process that starts sealed: unseal with shares, sign in, create and rotate a key, watch the
 * usage chart change after traffic, verify the audit log, create a limited token and see it refused.
 * The whole run must raise no CSP violation and log no error. Screenshots of the main screens are written to
 * test-artifacts/screenshots/ (the test prints the folder).
 *
 * The browser trusts the server by its certificate's public key (Chromium's SPKI pin list), not by turning
 * certificate checks off; Node's calls trust the test CA.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/cli.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';
import { tlsFixtures, type CertFixture } from '../helpers/tls-certs.js';
import { tempDir } from '../kms/helpers.js';
import { executable } from '../helpers/peers.js';

const browserPeer = executable(['chromium', 'chromium-browser'], 'apt-get install chromium');

const SHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));

/** base64(SHA-256(SubjectPublicKeyInfo)), the form of Chromium's --ignore-certificate-errors-spki-list. */
function spkiHash(pemFile: string): string {
  const der = new X509Certificate(readFileSync(pemFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

let tls: CertFixture;
let dataDir = '';
let server: ServeProcess | undefined;
let browser: Browser | undefined;
let shares: string[] = [];
let rootToken = '';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** A JSON call from Node, trusting the test CA. */
function call(
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(path, server!.url),
      {
        method,
        ca: readFileSync(tls.caFile),
        headers: {
          ...(token ? { 'x-vault-token': token } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += String(d)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const serveArgs = () => ['--data-dir', dataDir, '--tls-cert', tls.cert, '--tls-key', tls.key];

beforeAll(async () => {
  if (!browserPeer.available) return;
  buildOnce();
  tls = (await tlsFixtures()).goodEcdsa;
  dataDir = tempDir();
  // Initialise once, then restart: the console meets a node that starts sealed, as after any reboot.
  server = await startServe(serveArgs());
  const init = await call('PUT', '/v1/sys/init', { secret_shares: 3, secret_threshold: 2 });
  expect(init.status).toBe(200);
  shares = init.body.keys as string[];
  rootToken = init.body.root_token as string;
  await stopServe(server);
  server = await startServe(serveArgs());
  expect((await call('GET', '/v1/sys/seal-status')).body.sealed).toBe(true);
  mkdirSync(SHOTS, { recursive: true });
  console.log(`console screenshots: ${SHOTS}`);
  browser = await chromium.launch({
    executablePath: browserPeer.command,
    args: [`--ignore-certificate-errors-spki-list=${spkiHash(tls.cert)},${spkiHash(tls.caFile)}`],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stopServe(server);
});

/** A page that records CSP violations (from before any script runs), console errors and page errors. */
async function instrumentedPage(): Promise<{ page: Page; problems: () => string[] }> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.addInitScript(() => {
    const seen: string[] = [];
    (globalThis as unknown as { __csp: string[] }).__csp = seen;
    document.addEventListener('securitypolicyviolation', (e) =>
      seen.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A refused API call is part of the test (403) and an empty list is Vault's 404; Chromium logs both.
    if (m.type() === 'error' && !/the server responded with a status of (403|404)/.test(m.text()))
      errors.push(`console: ${m.text()}`);
  });
  return {
    page,
    problems: () => errors,
  };
}

const cspViolations = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { __csp: string[] }).__csp);
/** A screenshot of the viewport; a freshly shown token is masked so no credential lands in an image. */
const shot = (page: Page, name: string) =>
  page.screenshot({
    path: join(SHOTS, `${name}.png`),
    mask: [page.locator('#token-created-value')],
    maskColor: '#dde1e6',
  });

describe.skipIf(!browserPeer.available)('operator console in chromium', () => {
  it('unseals, manages keys, charts usage, verifies the audit log and refuses a limited token', async () => {
    const { page, problems } = await instrumentedPage();
    const response = await page.goto(`${server!.url}/ui`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("style-src 'self';");
    expect(response?.headers()['content-security-policy']).not.toContain('unsafe-inline');

    // Sealed start: shares one at a time, progress shown, each input cleared at once.
    await expect.poll(() => page.locator('#view-unseal').isVisible()).toBe(true);
    await expect.poll(() => page.textContent('#unseal-progress-text')).toBe('0 of 2 shares');
    await page.fill('#unseal-share', shares[0]!);
    await page.click('#unseal-form button[type=submit]');
    await expect.poll(() => page.textContent('#unseal-progress-text')).toBe('1 of 2 shares');
    expect(await page.inputValue('#unseal-share')).toBe('');
    expect(await page.textContent('#seal-badge')).toBe('sealed');
    await shot(page, 'unseal');
    await page.fill('#unseal-share', shares[1]!);
    await page.click('#unseal-form button[type=submit]');
    await expect.poll(() => page.locator('#view-signin').isVisible()).toBe(true);
    expect(await page.textContent('#seal-badge')).toBe('unsealed');
    await shot(page, 'signin');
    // Nothing of a share or a token is kept by the browser.
    const stored = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
    expect(stored).toEqual([0, 0, '']);

    // Sign in with the root token.
    await page.fill('#signin-token', rootToken);
    await page.click('#signin-form button[type=submit]');
    await expect.poll(() => page.locator('#view-keys').isVisible()).toBe(true);
    expect(await page.inputValue('#signin-token')).toBe('');
    expect(await page.textContent('#whoami')).toContain('root');

    // Create a key, then rotate it: the versions change in the list and in the detail.
    await page.fill('#key-create input[name=name]', 'orders');
    await page.click('#key-create button[type=submit]');
    const row = page.locator('#keys-table tr[data-key=orders]');
    await expect.poll(() => row.locator('[data-field=versions]').textContent()).toMatch(/^v1 /);
    await row.locator('button[data-action=rotate]').click();
    await expect.poll(() => row.locator('[data-field=versions]').textContent()).toMatch(/^v2 /);
    await expect.poll(() => page.locator('#key-versions tbody tr').count()).toBe(2);
    expect(await page.textContent('#notice')).toContain('rotated to version 2');
    // Traffic through the API (as an application would), so the usage column and chart have something.
    for (let i = 0; i < 40; i++) {
      const r = await call('POST', '/v1/transit/encrypt/orders', { plaintext: 'aGVsbG8=' }, rootToken);
      expect(r.status).toBe(200);
    }
    await page.click('#nav button[data-view=keys]');
    await expect.poll(() => row.locator('meter').getAttribute('value')).not.toBe('0');
    await row.locator('button[data-action=details]').click();
    // Configuration: a 30-day rotation period moves the next rotation a year closer.
    await expect.poll(() => page.inputValue('#key-config input[name=auto_rotate_period]')).toBe('365d');
    const nextBefore = await row.locator('td').nth(3).textContent();
    await page.fill('#key-config input[name=auto_rotate_period]', '30d');
    await page.click('#key-config button[type=submit]');
    await expect.poll(() => page.textContent('#notice')).toBe('Configuration of orders saved.');
    await expect.poll(() => row.locator('td').nth(3).textContent()).not.toBe(nextBefore);
    await expect.poll(() => page.inputValue('#key-config input[name=auto_rotate_period]')).toBe('30d');
    const configured = await call('GET', '/v1/transit/keys/orders', undefined, rootToken);
    expect(configured.body.data.auto_rotate_period).toBe(30 * 86_400);
    await shot(page, 'keys');

    // Usage: the chart of requests by key grows after more traffic.
    await page.click('#nav button[data-view=usage]');
    const total = () => page.locator('#chart-keys svg').getAttribute('data-total').then(Number);
    await expect.poll(total).toBeGreaterThan(0);
    const before = await total();
    for (let i = 0; i < 25; i++)
      await call('POST', '/v1/transit/encrypt/orders', { plaintext: 'aGVsbG8=' }, rootToken);
    await page.click('#usage-refresh');
    await expect.poll(total).toBeGreaterThanOrEqual(before + 25);
    expect(await page.textContent('#chart-keys .legend')).toContain('orders');
    expect(await page.textContent('#chart-callers .legend')).toContain('token:root:');
    expect(await page.textContent('#warning-counts')).toContain('0 rate spikes');
    await shot(page, 'usage');

    // Audit: verify the chain and show the result.
    await page.click('#nav button[data-view=audit]');
    await page.click('#audit-verify');
    await expect
      .poll(() => page.textContent('#audit-result'))
      .toMatch(/The audit chain verifies: \d+ entries/);
    await expect.poll(() => page.locator('#audit-table tbody tr').count()).toBeGreaterThan(5);
    await shot(page, 'audit');

    // A policy that may read and list keys but not rotate them, and a token holding only it.
    await page.click('#nav button[data-view=policies]');
    await page.fill('#policy-form input[name=name]', 'key-reader');
    await page.fill(
      '#policy-form textarea',
      'path "transit/keys/*" { capabilities = ["read", "list"] }\n' +
        'path "auth/token/lookup-self" { capabilities = ["read"] }\n',
    );
    await page.click('#policy-form button[type=submit]');
    await expect.poll(() => page.locator('#policies-table tr[data-policy=key-reader]').count()).toBe(1);
    await page.click('#nav button[data-view=tokens]');
    await page.fill('#token-create input[name=display_name]', 'reader');
    await page.fill('#token-create input[name=policies]', 'key-reader');
    await page.fill('#token-create input[name=ttl]', '1h');
    await page.click('#token-create button[type=submit]');
    await expect.poll(() => page.locator('#token-created').isVisible()).toBe(true);
    const limited = (await page.textContent('#token-created-value'))!;
    expect(limited).toMatch(/^ens\./);
    await expect.poll(() => page.textContent('#tokens-table')).toContain('reader');
    await shot(page, 'tokens');

    // Sign in as the limited token: keys are visible, rotate is refused with the server's reason.
    await page.click('#sign-out');
    await expect.poll(() => page.locator('#view-signin').isVisible()).toBe(true);
    expect(await page.textContent('#token-created-value')).toBe(''); // signing out forgets it too
    await page.fill('#signin-token', limited);
    await page.click('#signin-form button[type=submit]');
    await expect.poll(() => row.locator('[data-field=versions]').textContent()).toMatch(/^v2 /);
    await row.locator('button[data-action=rotate]').click();
    await expect
      .poll(() => page.textContent('#notice'))
      .toBe(
        "Rotate of orders refused: ERR_PERMISSION_DENIED: this token's policies do not allow update on transit/keys/orders/rotate",
      );
    await expect.poll(() => row.locator('[data-field=versions]').textContent()).toMatch(/^v2 /);
    await shot(page, 'refused');
    const key = await call('GET', '/v1/transit/keys/orders', undefined, rootToken);
    expect(key.body.data.latest_version).toBe(2);

    // The same token keeps trying (as a stolen or broken client would): the usage screen shows the warning.
    // 45 refusals put at least 20 in one window even if a minute boundary falls in between.
    for (let i = 0; i < 45; i++)
      expect((await call('POST', '/v1/transit/keys/orders/rotate', {}, limited)).status).toBe(403);
    await page.click('#sign-out');
    await page.fill('#signin-token', rootToken);
    await page.click('#signin-form button[type=submit]');
    await expect.poll(() => page.locator('#view-keys').isVisible()).toBe(true);
    await page.click('#nav button[data-view=usage]');
    await expect.poll(() => page.textContent('#warnings-table tbody')).toContain('denied burst');
    expect(await page.textContent('#warnings-table tbody')).toContain('token:reader:');
    expect(await page.textContent('#warning-counts')).toMatch(/[1-9]\d* bursts? of denied requests/);
    await shot(page, 'usage-warnings');

    // Sealing from the console (root has sudo on sys/seal) brings back the unseal screen, from zero.
    await page.click('#nav button[data-view=seal]');
    await expect.poll(() => page.textContent('#seal-table')).toContain('2 of 3 shares');
    await page.click('#seal-now');
    await expect.poll(() => page.locator('#view-unseal').isVisible()).toBe(true);
    expect(await page.textContent('#seal-badge')).toBe('sealed');
    expect(await page.textContent('#unseal-progress-text')).toBe('0 of 2 shares');
    expect((await call('GET', '/v1/sys/seal-status')).body.sealed).toBe(true);

    expect(await cspViolations(page)).toEqual([]);
    expect(problems()).toEqual([]);
    await page.context().close();
  }, 120_000);
});
