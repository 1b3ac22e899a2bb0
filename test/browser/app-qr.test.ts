/**
 * The safety number's QR code in the web client's Contacts pane, in real Chromium against a real
 * `enseal serve --dev`: alice registers in the browser and carol as a Node client; alice looks carol up,
 * the pane draws the QR code, and a screenshot of that element (test-artifacts/screenshots/app-qr.png; the
 * whole safety-number box is app-qr-pane.png) is decoded in Node. The decoded bytes are the payload carol
 * computes for the same pair, carol's client accepts them as a scan, a payload with one bit changed is
 * refused, and alice's page marks carol verified when the decoded payload is pasted in. No CSP violation
 * fires on the way.
 *
 * The browser trusts the server by its certificate's public key (Chromium's SPKI pin list), not by turning
 * certificate checks off; Node trusts the development CA.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsqr from 'jsqr';
import { PNG } from 'pngjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeTransport } from '../../src/client/index.js';
import { base64Encode, randomBytes } from '../../src/crypto/index.js';
import {
  E2eeClient,
  EncryptedState,
  MemoryStateBackend,
  type PinnedLogPolicy,
} from '../../src/e2ee/index.js';
import { buildOnce } from '../helpers/cli.js';
import { browserPeer, serveGet, serverSpki } from '../helpers/browser.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';

const SHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));

let dir = '';
let server: ServeProcess | undefined;
const get = async (path: string) => (await serveGet(server!, path)).text;
let spki = '';
let carol: E2eeClient;
let browser: Browser | undefined;
let page: Page;

// jsqr is CommonJS with its function on `exports.default`; a default import is the whole `module.exports`.
const jsQR = jsqr.default;
const cspViolations = () => page.evaluate(() => (globalThis as unknown as { __csp: string[] }).__csp);

/** The bytes of the QR code in a PNG, or null when none is found. */
function decodeQr(png: Buffer): Uint8Array | null {
  const image = PNG.sync.read(png);
  const found = jsQR(new Uint8ClampedArray(image.data), image.width, image.height);
  return found === null ? null : Uint8Array.from(found.binaryData);
}

beforeAll(async () => {
  if (!browserPeer.available) return;
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'enseal-app-qr-'));
  server = await startServe(['--dev', '--data-dir', join(dir, 'server')]);
  spki = await serverSpki(server);
  const k = JSON.parse(await get('/v1/e2ee/log/key')) as {
    origin: string;
    verifier_key: string;
    witnesses?: string[];
    quorum?: number;
  };
  const policy: PinnedLogPolicy = {
    origin: k.origin,
    logKey: k.verifier_key,
    witnesses: k.witnesses ?? [],
    quorum: k.quorum ?? 0,
  };
  carol = await E2eeClient.register({
    transport: new NodeTransport({ address: server.url, caCert: server.ca! }),
    state: await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) }),
    user: 'carol',
    device: 'laptop',
    applicationToken: server.token!,
    policy,
  });
  browser = await chromium.launch({
    executablePath: browserPeer.command,
    args: [`--ignore-certificate-errors-spki-list=${spki}`],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(() => {
    const seen: string[] = [];
    (globalThis as unknown as { __csp: string[] }).__csp = seen;
    document.addEventListener('securitypolicyviolation', (e) =>
      seen.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  page = await context.newPage();
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stopServe(server);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!browserPeer.available)("the safety number's QR code in the web client", () => {
  it('draws a QR code that decodes to the payload both sides compute, and verifies with it', async () => {
    expect((await page.goto(`${server!.url}/app`))?.status()).toBe(200);
    const form = page.locator('#register-form');
    await form.getByLabel('User name').fill('alice');
    await form.getByLabel('Device name').fill('laptop');
    await form.getByLabel('Application token').fill(server!.token!);
    await form.getByRole('button', { name: 'Register' }).click();
    await expect.poll(() => page.textContent('#whoami'), { timeout: 60_000 }).toBe('alice · laptop');

    await page.getByRole('tab', { name: 'Contacts' }).click();
    await page.getByLabel('Look up a user').fill('carol');
    await page.getByRole('button', { name: 'Look up' }).click();
    const qr = page.getByRole('img', { name: 'QR code of the safety number with carol' });
    await qr.waitFor({ timeout: 30_000 });

    const expected = await carol.safetyNumber('alice');
    const png = await qr.screenshot({ path: join(SHOTS, 'app-qr.png') });
    await page.locator('#safety').screenshot({ path: join(SHOTS, 'app-qr-pane.png') });
    const decoded = decodeQr(png);
    expect(decoded).not.toBeNull();
    expect(Buffer.from(decoded!).toString('hex')).toBe(Buffer.from(expected.qrPayload).toString('hex'));
    // The same bytes as the base64 text under the code, and the same digits above it.
    expect(await page.getByLabel('QR payload (base64)').inputValue()).toBe(base64Encode(decoded!));
    expect((await page.getByLabel('Safety number', { exact: true }).innerText()).replace(/\s+/g, '')).toBe(
      expected.digits,
    );
    // Scanned by carol's side: one changed bit is refused, the decoded payload is accepted.
    const tampered = Uint8Array.from(decoded!);
    tampered[40]! ^= 1;
    expect(await carol.markVerified('alice', tampered)).toBe(false);
    expect(await carol.markVerified('alice', decoded!)).toBe(true);
    expect((await carol.contacts()).find((c) => c.user === 'alice')?.verified).toBe(true);

    // Scanned by alice's side: the decoded payload pasted in marks carol verified.
    await page.getByLabel('Payload scanned from their screen').fill(base64Encode(decoded!));
    await page.getByRole('button', { name: 'Mark as verified' }).click();
    await expect
      .poll(() => page.locator('#contacts-table').innerText(), { timeout: 20_000 })
      .toMatch(/carol[^\n]*\n?[^\n]*\bverified/);
    expect(await cspViolations()).toEqual([]);
  });
});
