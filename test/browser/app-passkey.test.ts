/**
 * The web client at /app with its keys kept out of the profile by a passkey, in real Chromium against a real
 * `enseal serve --dev`, with a CDP virtual authenticator that implements the WebAuthn PRF extension. Alice ticks
 * the passkey box on the sign-in screen, registers, and chats in a group with carol (a Node client); the page
 * reloads (a new realm, nothing in memory) and shows the Unlock screen, whose button brings back the chat view
 * with its history, and she still chats. The profile's IndexedDB keeps no key at all, and no CSP violation is
 * seen. An authenticator without PRF is refused at sign-in
 * with a clear message, the box left unticked and nothing written. The Unlock screen's screenshot is written to
 * test-artifacts/screenshots/app-unlock.png.
 *
 * WebAuthn needs a domain as relying party id, so the page is opened as https://localhost:<port>/app (the dev
 * certificate covers localhost); the browser trusts the server by the public key of its certificate
 * (Chromium's SPKI list), not by turning certificate checks off.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeTransport } from '../../src/client/index.js';
import { randomBytes, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import {
  E2eeClient,
  EncryptedState,
  MemoryStateBackend,
  type E2eeEvent,
  type PinnedLogPolicy,
} from '../../src/e2ee/index.js';
import { buildOnce } from '../helpers/cli.js';
import { addVirtualAuthenticator, browserPeer, serveGet, serverSpki } from '../helpers/browser.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';

const SHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));

let dir = '';
let server: ServeProcess | undefined;
let origin = '';
let spki = '';
let policy: PinnedLogPolicy;
let carol: E2eeClient;
let carolTransport: NodeTransport;
const carolEvents: E2eeEvent[] = [];
const contexts: BrowserContext[] = [];

/** A persistent profile on https://localhost, recording CSP violations from before any script runs. */
async function launch(name: string): Promise<{ page: Page; context: BrowserContext }> {
  const context = await chromium.launchPersistentContext(join(dir, `profile-${name}`), {
    executablePath: browserPeer.command,
    args: [`--ignore-certificate-errors-spki-list=${spki}`, '--host-resolver-rules=MAP localhost 127.0.0.1'],
    viewport: { width: 1280, height: 860 },
  });
  contexts.push(context);
  await context.addInitScript(() => {
    const seen: string[] = [];
    (globalThis as unknown as { __csp: string[] }).__csp = seen;
    document.addEventListener('securitypolicyviolation', (e) =>
      seen.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { page, context };
}

const authenticator = async (context: BrowserContext, page: Page, prf: boolean): Promise<void> => {
  await addVirtualAuthenticator(context, page, prf);
};

const cspViolations = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { __csp: string[] }).__csp);

/** What the app's database holds: the names in its keys store, its passkey metadata, how many records. */
const stored = (page: Page) =>
  page.evaluate(
    () =>
      new Promise<{ keys: string[]; passkey: boolean; records: number }>((resolve, reject) => {
        const open = indexedDB.open('enseal-app');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const tx = db.transaction(['keys', 'meta', 'records'], 'readonly');
          const keys = tx.objectStore('keys').getAllKeys();
          const meta = tx.objectStore('meta').get('passkey');
          const records = tx.objectStore('records').count();
          tx.oncomplete = () => {
            db.close();
            resolve({
              keys: keys.result.map(String),
              passkey: meta.result !== undefined,
              records: records.result,
            });
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
  );

async function carolAwaits(match: (e: E2eeEvent) => boolean): Promise<E2eeEvent> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = carolEvents.find(match);
    if (found) return found;
    if (Date.now() > deadline)
      throw new Error(`carol saw: ${JSON.stringify(carolEvents.map((e) => e.kind))}`);
    carolEvents.push(...(await carol.sync({ waitSeconds: 2 })));
  }
}
const carolText = (text: string) => carolAwaits((e) => e.kind === 'message' && utf8Decode(e.data) === text);

async function send(page: Page, text: string): Promise<void> {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
  await shows(page, text);
}
const shows = (page: Page, text: string) =>
  expect.poll(() => page.locator('#messages').innerText(), { timeout: 30_000 }).toContain(text);

async function fillRegister(page: Page, user: string): Promise<void> {
  const form = page.locator('#register-form');
  await form.getByLabel('User name').fill(user);
  await form.getByLabel('Device name').fill('laptop');
  await form.getByLabel('Application token').fill(server!.token!);
  await form.getByRole('button', { name: 'Register' }).click();
}

beforeAll(async () => {
  if (!browserPeer.available) return;
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'enseal-app-passkey-'));
  server = await startServe(['--dev', '--data-dir', join(dir, 'server')]);
  origin = server.url.replace('//127.0.0.1:', '//localhost:');
  spki = await serverSpki(server);
  const k = JSON.parse((await serveGet(server, '/v1/e2ee/log/key')).text) as {
    origin: string;
    verifier_key: string;
    witnesses?: string[];
    quorum?: number;
  };
  policy = { origin: k.origin, logKey: k.verifier_key, witnesses: k.witnesses ?? [], quorum: k.quorum ?? 0 };
  carolTransport = new NodeTransport({ address: server.url, caCert: server.ca! });
  carol = await E2eeClient.register({
    transport: carolTransport,
    state: await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) }),
    user: 'carol',
    device: 'node',
    applicationToken: server.token!,
    policy,
  });
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  carolTransport?.close();
  await stopServe(server);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!browserPeer.available)('the web client with a passkey in chromium', () => {
  it('registers with the passkey box ticked, chats, and unlocks with the passkey after a reload', async () => {
    const { page, context } = await launch('alice');
    await authenticator(context, page, true);
    expect((await page.goto(`${origin}/app`))?.status()).toBe(200);
    await expect.poll(() => page.locator('#view-signin').isVisible()).toBe(true);
    await expect.poll(() => page.locator('#passkey-choice').isVisible()).toBe(true);
    // Nothing is created before the user chose: no key, no record.
    expect(await stored(page)).toEqual({ keys: [], passkey: false, records: 0 });
    await page.getByLabel("Protect this browser's keys with a passkey").check();
    await fillRegister(page, 'alice');
    await expect.poll(() => page.textContent('#whoami'), { timeout: 60_000 }).toBe('alice · laptop');

    await page.getByRole('button', { name: 'New group' }).click();
    await page.getByLabel('Add member').fill('carol');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await expect
      .poll(() => page.locator('#member-list').innerText(), { timeout: 30_000 })
      .toContain('carol/');
    const group = (await carolAwaits((e) => e.kind === 'joined')).groupId;
    await send(page, 'alice, sealed under a passkey');
    await carolText('alice, sealed under a passkey');
    await carol.send(group, utf8Encode('carol answers from Node'));
    await shows(page, 'carol answers from Node');

    const before = await stored(page);
    expect(before.keys).toEqual([]); // neither the state key nor the device key is in the profile
    expect(before.passkey).toBe(true);
    expect(before.records).toBeGreaterThan(0);

    // A new realm: the Unlock screen, and no prompt until the button is pressed.
    await page.reload();
    await expect.poll(() => page.locator('#view-unlock').isVisible()).toBe(true);
    expect(await page.locator('#view-signin').isVisible()).toBe(false);
    await page.screenshot({ path: join(SHOTS, 'app-unlock.png') });

    await page.getByRole('button', { name: 'Unlock' }).click();
    await expect.poll(() => page.textContent('#whoami'), { timeout: 60_000 }).toBe('alice · laptop');
    await shows(page, 'alice, sealed under a passkey'); // the history, sealed in the state, is back
    await shows(page, 'carol answers from Node');
    await send(page, 'alice again, after the unlock');
    await carolText('alice again, after the unlock');

    expect((await stored(page)).keys).toEqual([]);
    expect(await cspViolations(page)).toEqual([]);
  });

  it('refuses a passkey without PRF at sign-in: a clear message, the box unticked, nothing written', async () => {
    const { page, context } = await launch('dave');
    await authenticator(context, page, false);
    await page.goto(`${origin}/app`);
    await expect.poll(() => page.locator('#passkey-choice').isVisible()).toBe(true);
    const box = page.getByLabel("Protect this browser's keys with a passkey");
    await box.check();
    await fillRegister(page, 'dave');
    await expect.poll(() => page.locator('#notice').innerText(), { timeout: 60_000 }).toContain('PRF');
    expect(await box.isChecked()).toBe(false);
    expect(await page.locator('#view-signin').isVisible()).toBe(true);
    expect(await stored(page)).toEqual({ keys: [], passkey: false, records: 0 });
    expect(await cspViolations(page)).toEqual([]);
  });
});
