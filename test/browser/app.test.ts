/**
 * The web client at /app in real Chromium (Debian's chromium through playwright-core) against a real
 * `enseal serve --dev`: alice and bob each in their own persistent browser profile and carol as a Node client,
 * all in one group through the real relay. Messages go both ways between every pair; a 50 MiB file goes from
 * a browser to Node and another from Node to a browser (SHA-256 compared); alice removes bob in her browser
 * and bob can read no later message nor open a later file; alice's browser restarts on the same profile and
 * keeps its device; the device's keys refuse exportKey; the profile's IndexedDB holds no plaintext; the CSP
 * stops an injected inline script; alice recovers her account from a passphrase and from shares in fresh
 * browsers and enrolls another one as a second device; `enseal tls audit` grades /app A+. Screenshots of the main screens
 * are written to test-artifacts/screenshots/app-*.png (the test prints the folder).
 *
 * The browsers trust the server by its certificate's public key (Chromium's SPKI pin list), not by turning
 * certificate checks off; Node trusts the development CA.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
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
import { APP_CSP } from '../../src/server/app-routes.js';
import { CLI, buildOnce } from '../helpers/cli.js';
import { browserPeer, serveGet, serverSpki } from '../helpers/browser.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';

const SHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));
const BIG = 50 * 1024 * 1024;
const run = promisify(execFile);

let dir = '';
let server: ServeProcess | undefined;
const get = (path: string) => serveGet(server!, path);
let caFile = '';
let spki = '';
let policy: PinnedLogPolicy;
let carol: E2eeClient;
let carolBackend: MemoryStateBackend;
let group = '';
const carolEvents: E2eeEvent[] = [];
const contexts = new Map<'alice' | 'bob', BrowserContext>();
const pages = new Map<'alice' | 'bob', Page>();
let spare: Browser | undefined;
/** Every plaintext message, to search the stored state for. */
const plaintexts: string[] = [];

const profile = (user: string) => join(dir, `profile-${user}`);

/** A persistent profile (one user's browser), recording CSP violations from before any script runs. */
async function launch(user: 'alice' | 'bob'): Promise<Page> {
  const context = await chromium.launchPersistentContext(profile(user), {
    executablePath: browserPeer.command,
    args: [`--ignore-certificate-errors-spki-list=${spki}`],
    viewport: { width: 1280, height: 860 },
    acceptDownloads: true,
  });
  await instrument(context);
  contexts.set(user, context);
  const page = context.pages()[0] ?? (await context.newPage());
  pages.set(user, page);
  return page;
}

async function instrument(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const seen: string[] = [];
    (globalThis as unknown as { __csp: string[] }).__csp = seen;
    document.addEventListener('securitypolicyviolation', (e) =>
      seen.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
}

const cspViolations = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { __csp: string[] }).__csp);
const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `app-${name}.png`) });
const sha256File = (path: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });

/** Registers `user` in the page through the sign-in form. */
async function register(page: Page, user: string, device: string): Promise<void> {
  const form = page.locator('#register-form');
  await form.getByLabel('User name').fill(user);
  await form.getByLabel('Device name').fill(device);
  await form.getByLabel('Application token').fill(server!.token!);
  await form.getByRole('button', { name: 'Register' }).click();
  await expect.poll(() => page.textContent('#whoami'), { timeout: 60_000 }).toBe(`${user} · ${device}`);
}

async function send(page: Page, text: string): Promise<void> {
  plaintexts.push(text);
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
  await expect.poll(() => page.locator('#messages').innerText(), { timeout: 20_000 }).toContain(text);
}

const shows = (page: Page, text: string) =>
  expect.poll(() => page.locator('#messages').innerText(), { timeout: 30_000 }).toContain(text);

/** Syncs carol until `match` finds an event (30 s at most). */
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

beforeAll(async () => {
  if (!browserPeer.available) return;
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'enseal-app-'));
  server = await startServe(['--dev', '--data-dir', join(dir, 'server')]);
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, server.ca!);
  spki = await serverSpki(server);
  const k = JSON.parse((await get('/v1/e2ee/log/key')).text) as {
    origin: string;
    verifier_key: string;
    witnesses?: string[];
    quorum?: number;
  };
  policy = { origin: k.origin, logKey: k.verifier_key, witnesses: k.witnesses ?? [], quorum: k.quorum ?? 0 };
  carolBackend = new MemoryStateBackend();
  carol = await E2eeClient.register({
    transport: new NodeTransport({ address: server.url, caCert: server.ca! }),
    state: await EncryptedState.open(carolBackend, { key: randomBytes(32) }),
    user: 'carol',
    device: 'laptop',
    applicationToken: server.token!,
    policy,
  });
  mkdirSync(SHOTS, { recursive: true });
  console.log(`web client screenshots: ${SHOTS}`);
}, 120_000);

afterAll(async () => {
  for (const c of contexts.values()) await c.close().catch(() => undefined);
  await spare?.close();
  await stopServe(server);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!browserPeer.available)('the web client in chromium', () => {
  it('serves /app with SRI on every script and style, a strict CSP, HSTS and no-store', async () => {
    const r = await get('/app');
    expect(r.status).toBe(200);
    expect(r.headers['content-security-policy']).toBe(APP_CSP);
    expect(APP_CSP).not.toMatch(/unsafe-inline|'unsafe-eval'/);
    expect(r.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['cache-control']).toBe('no-store');
    const refs = [...r.text.matchAll(/<(script|link)\b[^>]*>/g)]
      .map((m) => m[0])
      .filter((t) => /src=|stylesheet/.test(t));
    expect(refs.length).toBeGreaterThanOrEqual(2);
    for (const tag of refs) expect(tag).toMatch(/integrity="sha384-[A-Za-z0-9+/]+=*"/);
    expect((await get('/app/enseal-e2ee.js')).status).toBe(200);
  });

  it('registers alice and bob in their browsers and puts them and carol (Node) in one group', async () => {
    const alice = await launch('alice');
    const bob = await launch('bob');
    expect((await alice.goto(`${server!.url}/app`))?.status()).toBe(200);
    await bob.goto(`${server!.url}/app`);
    await expect.poll(() => alice.locator('#view-signin').isVisible()).toBe(true);
    await shot(alice, 'signin');
    await Promise.all([register(alice, 'alice', 'laptop'), register(bob, 'bob', 'desktop')]);

    await alice.getByRole('button', { name: 'New group' }).click();
    for (const user of ['bob', 'carol']) {
      await alice.getByLabel('Add member').fill(user);
      await alice.getByRole('button', { name: 'Add', exact: true }).click();
      await expect
        .poll(() => alice.locator('#member-list').innerText(), { timeout: 30_000 })
        .toContain(`${user}/`);
    }
    const joined = await carolAwaits((e) => e.kind === 'joined');
    group = joined.groupId;
    await expect.poll(() => bob.locator('#group-title').innerText(), { timeout: 30_000 }).toContain('alice');
  });

  it('delivers messages both ways between every pair', async () => {
    const alice = pages.get('alice')!;
    const bob = pages.get('bob')!;
    await send(alice, 'hello from alice in a browser');
    await shows(bob, 'hello from alice in a browser');
    await carolText('hello from alice in a browser');
    await send(bob, 'bob here, also in a browser');
    await shows(alice, 'bob here, also in a browser');
    await carolText('bob here, also in a browser');
    plaintexts.push('carol answers from Node');
    await carol.send(group, utf8Encode('carol answers from Node'));
    await shows(alice, 'carol answers from Node');
    await shows(bob, 'carol answers from Node');
  });

  it('shares a 50 MiB file from the browser to Node and another from Node to the browser', async () => {
    const alice = pages.get('alice')!;
    const up = join(dir, 'from-alice.bin');
    writeFileSync(up, randomBytes(BIG));
    await alice.setInputFiles('#file-input', up);
    await expect
      .poll(() => alice.textContent('#transfer-label'), { timeout: 90_000 })
      .toBe('Shared from-alice.bin');
    const announced = await carolAwaits((e) => e.kind === 'file' && e.file.name === 'from-alice.bin');
    const h = createHash('sha256');
    let size = 0;
    for await (const part of carol.fetchFile(
      (announced as Extract<E2eeEvent, { kind: 'file' }>).file.blobId,
    )) {
      h.update(part);
      size += part.length;
    }
    expect(size).toBe(BIG);
    expect(h.digest('hex')).toBe(await sha256File(up));

    const down = join(dir, 'from-carol.bin');
    writeFileSync(down, randomBytes(BIG));
    await carol.shareFile(group, createReadStream(down), 'from-carol.bin');
    const button = alice.getByRole('button', { name: 'Download from-carol.bin' });
    await button.waitFor({ timeout: 30_000 });
    await shot(alice, 'chat');
    const [download] = await Promise.all([
      alice.waitForEvent('download', { timeout: 90_000 }),
      button.click(),
    ]);
    const saved = await download.path();
    expect(statSync(saved).size).toBe(BIG);
    expect(await sha256File(saved)).toBe(await sha256File(down));
  });

  it('alice removes bob in her browser: he reads no later message and opens no later file', async () => {
    const alice = pages.get('alice')!;
    const bob = pages.get('bob')!;
    await alice.getByRole('button', { name: 'Remove bob' }).click();
    await expect
      .poll(() => alice.locator('#member-list').innerText(), { timeout: 30_000 })
      .not.toContain('bob/');
    await shows(bob, 'You were removed from this group');
    await send(alice, 'for carol only, after bob left');
    await carolText('for carol only, after bob left');
    // A file dropped on the drop zone (a DataTransfer made in the page), after the removal.
    await alice.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['the later file, for carol only'], 'later.txt', { type: 'text/plain' }));
      document
        .getElementById('dropzone')!
        .dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    plaintexts.push('the later file, for carol only');
    const later = (await carolAwaits((e) => e.kind === 'file' && e.file.name === 'later.txt')) as Extract<
      E2eeEvent,
      { kind: 'file' }
    >;
    const parts: Uint8Array[] = [];
    for await (const p of carol.fetchFile(later.file.blobId)) parts.push(p);
    expect(Buffer.concat(parts).toString()).toBe('the later file, for carol only');
    await carol.send(group, utf8Encode('carol after the removal'));
    plaintexts.push('carol after the removal');
    await shows(alice, 'carol after the removal');
    // Bob's page has had every chance: nothing after the removal reached it, and his device cannot open the file.
    await new Promise((r) => setTimeout(r, 2000));
    const bobText = await bob.locator('#messages').innerText();
    expect(bobText).not.toContain('for carol only');
    expect(bobText).not.toContain('carol after the removal');
    // Through the library module the server offers, on bob's own stored state (a string, so that the test
    // runner does not rewrite its dynamic import).
    const refused = await bob.evaluate(`(async () => {
      const lib = await import('/app/enseal-e2ee.js');
      const { state, deviceSigner } = await lib.openBrowserClientState('enseal-app');
      const transport = new lib.FetchTransport({ address: location.origin });
      const client = await lib.E2eeClient.open({ transport, state, ...(deviceSigner ? { deviceSigner } : {}) });
      try {
        for await (const _ of client.fetchFile(${JSON.stringify(later.file.blobId)})) return 'opened';
        return 'empty';
      } catch (err) {
        return err.code ?? String(err);
      }
    })()`);
    expect(refused).toBe('ERR_KEY_NOT_FOUND');
  });

  it('keeps alice’s device across a browser restart on the same profile, and she still chats', async () => {
    await contexts.get('alice')!.close();
    const alice = await launch('alice');
    await alice.goto(`${server!.url}/app`);
    await expect.poll(() => alice.textContent('#whoami'), { timeout: 30_000 }).toBe('alice · laptop');
    await shows(alice, 'carol after the removal'); // the history, sealed in the state, is back
    await send(alice, 'alice again, after a restart');
    await carolText('alice again, after a restart');
    await carol.send(group, utf8Encode('welcome back, alice'));
    plaintexts.push('welcome back, alice');
    await shows(alice, 'welcome back, alice');
  });

  it('the keys in IndexedDB are non-extractable CryptoKeys, and the records hold no plaintext', async () => {
    const alice = pages.get('alice')!;
    const dump = await alice.evaluate(async () => {
      const keys: { algorithm: string; type: string; extractable: boolean; exported: string }[] = [];
      const text: string[] = [];
      const seen = async (v: unknown): Promise<void> => {
        if (v instanceof CryptoKey && v.type === 'public') {
          keys.push({
            algorithm: v.algorithm.name,
            type: v.type,
            extractable: v.extractable,
            exported: 'public',
          });
        } else if (v instanceof CryptoKey) {
          let exported = 'refused';
          for (const format of ['raw', 'pkcs8', 'jwk'] as const) {
            try {
              await crypto.subtle.exportKey(format, v);
              exported = format;
            } catch {
              // refused, as it must be
            }
          }
          keys.push({ algorithm: v.algorithm.name, type: v.type, extractable: v.extractable, exported });
        } else if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
          const bytes =
            v instanceof ArrayBuffer
              ? new Uint8Array(v)
              : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
          text.push(new TextDecoder('latin1').decode(bytes));
        } else if (typeof v === 'string') text.push(v);
        else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) await seen(x);
      };
      for (const info of await indexedDB.databases()) {
        const db = await new Promise<IDBDatabase>((resolve, reject) => {
          const r = indexedDB.open(info.name!);
          r.onsuccess = () => resolve(r.result);
          r.onerror = () => reject(r.error);
        });
        for (const store of Array.from(db.objectStoreNames)) {
          const values = await new Promise<unknown[]>((resolve, reject) => {
            const r = db.transaction(store).objectStore(store).getAll();
            r.onsuccess = () => resolve(r.result);
            r.onerror = () => reject(r.error);
          });
          for (const v of values) await seen(v);
        }
        db.close();
      }
      return { keys, text: text.join('\n') };
    });
    // The state key (AES-GCM) and the device key (Ed25519): neither exports, in any format. (A public key is
    // public, and always exportable.)
    const secret = dump.keys.filter((k) => k.type !== 'public');
    expect(secret.map((k) => k.algorithm).sort()).toEqual(['AES-GCM', 'Ed25519']);
    for (const k of secret) expect(k).toMatchObject({ extractable: false, exported: 'refused' });
    expect(dump.text.length).toBeGreaterThan(1000);
    for (const p of plaintexts) expect(dump.text).not.toContain(p);
    // The same on disk: the profile's IndexedDB files.
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true }))
        if (e.isDirectory()) walk(join(d, e.name));
        else files.push(join(d, e.name));
    };
    walk(join(profile('alice'), 'Default', 'IndexedDB'));
    expect(files.length).toBeGreaterThan(0);
    const disk = Buffer.concat(files.map((f) => readFileSync(f)));
    for (const p of plaintexts) expect(disk.includes(Buffer.from(p))).toBe(false);
  });

  it('the CSP refuses an injected inline script, and the run raised no other violation', async () => {
    const alice = pages.get('alice')!;
    expect(await cspViolations(alice)).toEqual([]);
    const result = await alice.evaluate(async () => {
      const w = globalThis as unknown as { __ran?: boolean };
      w.__ran = false;
      const violated = new Promise<string>((resolve) =>
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), {
          once: true,
        }),
      );
      const s = document.createElement('script');
      s.textContent = 'globalThis.__ran = true';
      document.body.append(s);
      const directive = await Promise.race([
        violated,
        new Promise<string>((r) => setTimeout(() => r('none'), 2000)),
      ]);
      return { ran: w.__ran, directive };
    });
    expect(result).toEqual({ ran: false, directive: 'script-src-elem' });
    expect(await cspViolations(pages.get('bob')!)).toEqual([]);
  });

  it('shows contacts with safety numbers and the devices list', async () => {
    const alice = pages.get('alice')!;
    await alice.getByRole('tab', { name: 'Contacts' }).click();
    await alice.getByRole('button', { name: 'Safety number with carol' }).click();
    const expected = (await carol.safetyNumber('alice')).digits;
    await expect
      .poll(async () =>
        (await alice.getByLabel('Safety number', { exact: true }).innerText()).replace(/\s+/g, ''),
      )
      .toBe(expected);
    await expect
      .poll(() => alice.getByLabel('QR payload (base64)').inputValue())
      .toMatch(/^[A-Za-z0-9+/]{87}=$/);
    await shot(alice, 'contacts');
    await alice.getByRole('button', { name: 'Mark as verified' }).click();
    await expect
      .poll(() => alice.locator('#contacts-table').innerText())
      .toMatch(/carol[^\n]*\n?[^\n]*\bverified/);
  });

  it('recovers alice from a passphrase and from shares in fresh browsers, and enrolls another as her second device', async () => {
    const alice = pages.get('alice')!;
    await alice.getByRole('tab', { name: 'Recovery' }).click();
    const backup = alice.locator('#backup-form');
    await backup.getByLabel('Recovery passphrase').fill('correct horse battery staple, again');
    await backup.getByLabel('Repeat the passphrase').fill('correct horse battery staple, again');
    await backup.getByRole('button', { name: 'Store backup' }).click();
    await expect
      .poll(() => alice.textContent('#notice'), { timeout: 60_000 })
      .toContain('Recovery backup stored');

    spare = await chromium.launch({
      executablePath: browserPeer.command,
      args: [`--ignore-certificate-errors-spki-list=${spki}`],
    });
    const fresh = await spare.newContext({ viewport: { width: 1280, height: 860 } });
    await instrument(fresh);
    const rescued = await fresh.newPage();
    await rescued.goto(`${server!.url}/app`);
    const form = rescued.locator('#recover-form');
    await form.getByLabel('User name').fill('alice');
    await form.getByLabel('Device name').fill('rescued');
    await form.getByLabel('Application token').fill(server!.token!);
    await form.getByLabel('Recovery passphrase').fill('correct horse battery staple, again');
    await form.getByRole('button', { name: 'Recover' }).click();
    await expect.poll(() => rescued.textContent('#whoami'), { timeout: 60_000 }).toBe('alice · rescued');
    expect(await cspViolations(rescued)).toEqual([]);

    // Shares made in alice's browser bring her back in another fresh one.
    await alice.getByRole('tab', { name: 'Recovery' }).click();
    await alice.getByRole('button', { name: 'Make shares' }).click();
    const sharesOut = alice.getByLabel('Shares: give each to a different person');
    await expect.poll(() => sharesOut.inputValue(), { timeout: 20_000 }).toMatch(/\n/);
    const shares = (await sharesOut.inputValue()).split('\n');
    expect(shares).toHaveLength(3);
    const fromShares = await (await spare.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    await fromShares.goto(`${server!.url}/app`);
    const sharesForm = fromShares.locator('#recover-form');
    await sharesForm.getByLabel('User name').fill('alice');
    await sharesForm.getByLabel('Device name').fill('from-shares');
    await sharesForm.getByLabel('Application token').fill(server!.token!);
    await sharesForm.getByLabel('Or recovery shares, one per line').fill(`${shares[0]}\n${shares[2]}`);
    await sharesForm.getByRole('button', { name: 'Recover' }).click();
    await expect
      .poll(() => fromShares.textContent('#whoami'), { timeout: 60_000 })
      .toBe('alice · from-shares');

    const second = await (await spare.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    await second.goto(`${server!.url}/app`);
    const enroll = second.locator('#enroll-form');
    await enroll.getByLabel('User name').fill('alice');
    await enroll.getByLabel('Device name').fill('tablet');
    await enroll.getByRole('button', { name: 'Request enrollment' }).click();
    const code = second.getByLabel('Enrollment request');
    await expect.poll(() => code.inputValue(), { timeout: 30_000 }).toMatch(/^enseal-device1:/);
    await shot(second, 'enroll');
    await alice.getByRole('tab', { name: 'Devices' }).click();
    await alice.getByLabel('Device request').fill(await code.inputValue());
    await alice.getByRole('button', { name: 'Approve device' }).click();
    await expect.poll(() => second.textContent('#whoami'), { timeout: 30_000 }).toBe('alice · tablet');
    await alice.getByRole('tab', { name: 'Devices' }).click();
    await expect
      .poll(() => alice.locator('#devices-table').innerText(), { timeout: 20_000 })
      .toContain('tablet');
    await shot(alice, 'devices');
  });

  it('`enseal tls audit` grades https://…/app A+ with the page’s own headers', async () => {
    const { stdout } = await run(process.execPath, [
      CLI,
      'tls',
      'audit',
      `${server!.url}/app`,
      '--servername',
      'localhost',
      '--ca-file',
      caFile,
      '--http-port',
      '9',
      '--json',
    ]);
    const report = JSON.parse(stdout) as {
      rating: { grade: string; caps: unknown[] };
      http?: { https?: { headers: Record<string, string | null> } };
    };
    expect(report.rating.caps).toEqual([]);
    expect(report.rating.grade).toBe('A+');
    expect(JSON.stringify(report.http)).toContain('wasm-unsafe-eval'); // the headers of /app, not of /
  }, 120_000);
});
