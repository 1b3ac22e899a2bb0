/**
 * The passkey-sealed client state (src/web/passkey.ts) in real Chromium against a real `enseal serve --dev`,
 * with a CDP virtual authenticator that implements the WebAuthn PRF extension. A browser device whose state key
 * is derived from the passkey's PRF output registers and chats with a Node client; the page restarts (a new
 * realm, nothing in memory) and unlocks with the same passkey; a copy of the whole profile directory, taken
 * after the state was written, opens in another browser where the passkey is absent: the unlock fails with a
 * typed error, the default stored-key path refuses the state instead of falling back, no key at all is in the
 * profile (the device key is derived from the same PRF output), and the sealed records taken out of the copy
 * open under the PRF-derived key only — which, with the PRF output and the device key's seed, is found nowhere
 * in the copy's files. A browser or authenticator without PRF fails with
 * ERR_UNSUPPORTED and writes nothing. Without a browser, the derivation is checked in Node: a wrong PRF output
 * fails closed with ERR_DECRYPT_FAILED (and gives another device key).
 *
 * The virtual authenticator lives in one browser session: the credentials it exports do not carry their PRF
 * secret, so a restart of the original device is modelled by reloading the page (a new page realm, the state
 * reopened from IndexedDB), and the profile is copied while that browser runs, as a program running as the
 * user could copy it.
 *
 * WebAuthn needs a domain as relying party id, so the page is served under https://localhost:<port> (the dev
 * certificate covers localhost), by request interception; the browser trusts the server by the public key of
 * its certificate (Chromium's SPKI list), not by turning certificate checks off.
 */
import { createHash, hkdfSync } from 'node:crypto';
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeTransport } from '../../src/client/index.js';
import {
  base64Decode,
  randomBytes,
  signingPublicKey,
  utf8Decode,
  utf8Encode,
  verify,
} from '../../src/crypto/index.js';
import {
  E2eeClient,
  EncryptedState,
  MemoryStateBackend,
  type E2eeEvent,
  type PinnedLogPolicy,
} from '../../src/e2ee/index.js';
import { passkeyStateCipher } from '../../src/web/passkey.js';
import { buildOnce } from '../helpers/cli.js';
import {
  LIBRARY_PAGE_SCRIPT,
  browserPeer,
  pageReceive,
  pageSend,
  serveGet,
  serverSpki,
  addVirtualAuthenticator,
} from '../helpers/browser.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';

const BUNDLE = fileURLToPath(new URL('../../dist/web/enseal-e2ee.js', import.meta.url));
const DB = 'enseal-test-alice';
/** The HKDF info of the state key, pinned here: a change of it is a change of the stored format. */
const INFO = 'enseal e2ee client state key from a passkey PRF v1';
const DEVICE_INFO = 'enseal e2ee device key from a passkey PRF v1';

let dir = '';
let server: ServeProcess | undefined;
let origin = '';
let policy: PinnedLogPolicy;
let spki = '';
let context: BrowserContext | undefined;
let bob: E2eeClient;
let bobTransport: NodeTransport;

/** Serves the test page and the module under https://localhost:<port>/__weblib/ on `page`, then opens it. */
async function openPage(page: Page): Promise<void> {
  await page.route(`${origin}/__weblib/**`, async (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/__weblib/enseal-e2ee.js')
      return route.fulfill({ contentType: 'text/javascript', body: readFileSync(BUNDLE) });
    if (path === '/__weblib/page.js')
      return route.fulfill({ contentType: 'text/javascript', body: LIBRARY_PAGE_SCRIPT });
    return route.fulfill({
      contentType: 'text/html',
      body: '<!doctype html><title>enseal e2ee passkey</title><script type="module" src="/__weblib/page.js"></script>',
    });
  });
  await page.goto(`${origin}/__weblib/index.html`);
  await page.waitForFunction(() => 'E' in window);
}

async function launch(profile: string): Promise<Page> {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: browserPeer.command,
    args: [`--ignore-certificate-errors-spki-list=${spki}`, '--host-resolver-rules=MAP localhost 127.0.0.1'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await openPage(page);
  return page;
}

const authenticator = (page: Page, prf: boolean) => addVirtualAuthenticator(context!, page, prf);

/** Opens alice's passkey-sealed browser device on `page` (window.alice), registering it the first time. */
function openAlice(page: Page, register: boolean): Promise<string> {
  return page.evaluate(
    async ([db, register, token, policy]) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const opened = await w.E.openBrowserClientState(db, undefined, {
        unlock: 'passkey',
        passkey: { userName: 'alice', rpId: 'localhost' },
      });
      const { state, deviceSigner, transport } = opened;
      w.aliceState = state;
      w.alice = register
        ? await w.E.E2eeClient.register({
            state,
            transport,
            deviceSigner,
            user: 'alice',
            device: 'browser',
            applicationToken: token,
            policy,
          })
        : await w.E.E2eeClient.open({ state, transport, deviceSigner });
      return w.b64(deviceSigner.publicKey) as string;
    },
    [DB, register, server!.token!, policy] as const,
  );
}

/** Closes alice's state (its database connection) and reloads the page: nothing of it is left in memory. */
async function restartPage(page: Page): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  await page.evaluate(async () => (window as any).aliceState.close());
  await page.reload();
  await page.waitForFunction(() => 'E' in window);
}

function texts(events: E2eeEvent[]): string[] {
  return events.flatMap((e) => (e.kind === 'message' ? [utf8Decode(e.data)] : []));
}

function filesUnder(root: string): string[] {
  return readdirSync(root).flatMap((name) => {
    const p = join(root, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/**
 * Copies a profile directory file by file, as a program reading a running browser's profile would: the
 * browser's single-instance lock links are left out (they would hand the copy to the running browser), and a
 * file removed by the browser during the copy is skipped.
 */
function copyProfile(from: string, to: string): number {
  mkdirSync(to, { recursive: true });
  let copied = 0;
  for (const name of readdirSync(from)) {
    if (name.startsWith('Singleton')) continue;
    const src = join(from, name);
    const dst = join(to, name);
    let st;
    try {
      st = lstatSync(src);
    } catch {
      continue;
    }
    if (st.isDirectory()) copied += copyProfile(src, dst);
    else if (st.isFile())
      try {
        copyFileSync(src, dst);
        copied++;
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOENT') throw e;
      }
  }
  return copied;
}

function encodings(secret: Uint8Array): Buffer[] {
  const b = Buffer.from(secret);
  return [
    b,
    Buffer.from(b.toString('hex')),
    Buffer.from(b.toString('hex').toUpperCase()),
    Buffer.from(b.toString('base64')),
    Buffer.from(b.toString('base64url')),
  ];
}

/** The state key Node derives from a PRF output, the way the library does. */
function stateKey(prf: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', prf, new Uint8Array(0), utf8Encode(INFO), 32));
}

/** The device key's Ed25519 seed Node derives from a PRF output, the way the library does. */
function deviceSeed(prf: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', prf, new Uint8Array(0), utf8Encode(DEVICE_INFO), 32));
}

/** A Node state holding the sealed records `records` (name and base64), as taken out of a profile. */
async function backendOf(records: { name: string; value: string }[]): Promise<MemoryStateBackend> {
  const backend = new MemoryStateBackend();
  await backend.commit(new Map(records.map((r) => [r.name, base64Decode(r.value)])), []);
  return backend;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'opened',
    (e: { code?: string }) => e.code ?? String(e),
  );
}

describe('the passkey state key, without a browser', () => {
  it('derives the key with HKDF-SHA-256, zeroes the PRF output, and fails closed on a wrong output', async () => {
    const prf = randomBytes(32);
    const given = prf.slice();
    const backend = new MemoryStateBackend();
    const cipher = await passkeyStateCipher.fromPrfOutput(given);
    expect(given).toEqual(new Uint8Array(32)); // zeroed once imported
    expect(cipher.key.extractable).toBe(false);
    // The device key comes from the same output: non-extractable, the seed Node derives, a valid signer.
    expect(cipher.deviceSigner.privateKey.extractable).toBe(false);
    expect(cipher.deviceSigner.publicKey).toEqual(signingPublicKey('ed25519', deviceSeed(prf)));
    const message = utf8Encode('login challenge');
    expect(
      verify('ed25519', cipher.deviceSigner.publicKey, message, await cipher.deviceSigner.sign(message)),
    ).toBe(true);
    const state = await EncryptedState.open(backend, { cipher });
    await state.transaction().putJson('cursor', { seq: 7 }).commit();

    // The same output opens it, through the cipher and as a raw key derived in Node.
    const again = await EncryptedState.open(backend, {
      cipher: await passkeyStateCipher.fromPrfOutput(prf.slice()),
    });
    expect((await again.getJson<{ seq: number }>('cursor'))?.seq).toBe(7);
    const raw = await EncryptedState.open(backend, { key: stateKey(prf) });
    expect((await raw.getJson<{ seq: number }>('cursor'))?.seq).toBe(7);

    // A wrong output (one bit off, or another passkey's) fails closed, and writes nothing.
    const flipped = prf.slice();
    flipped[0]! ^= 1;
    for (const wrong of [flipped, randomBytes(32)]) {
      const before = backend.dump();
      const c = await passkeyStateCipher.fromPrfOutput(wrong);
      expect(c.deviceSigner.publicKey).not.toEqual(cipher.deviceSigner.publicKey);
      expect(await codeOf(EncryptedState.open(backend, { cipher: c }))).toBe('ERR_DECRYPT_FAILED');
      expect(backend.dump()).toEqual(before);
    }
    expect(await codeOf(passkeyStateCipher.fromPrfOutput(new Uint8Array(16)))).toBe('ERR_INVALID_ARGUMENT');
  });
});

beforeAll(async () => {
  if (!browserPeer.available) return;
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'e2ee-passkey-'));
  server = await startServe(['--dev', '--data-dir', join(dir, 'server')]);
  origin = server.url.replace('//127.0.0.1:', '//localhost:');
  const k = JSON.parse((await serveGet(server, '/v1/e2ee/log/key')).text) as {
    origin: string;
    verifier_key: string;
    witnesses?: string[];
    quorum?: number;
  };
  policy = { origin: k.origin, logKey: k.verifier_key, witnesses: k.witnesses ?? [], quorum: k.quorum ?? 0 };
  spki = await serverSpki(server);
  bobTransport = new NodeTransport({ address: server.url, caCert: server.ca! });
  bob = await E2eeClient.register({
    transport: bobTransport,
    state: await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) }),
    user: 'bob',
    device: 'node',
    applicationToken: server.token!,
    policy,
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
  bobTransport?.close();
  await stopServe(server);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!browserPeer.available)('the passkey-sealed state in chromium', () => {
  it('chats, unlocks at each start with the passkey, and a copy of the profile opens nothing without it', async () => {
    const profile = join(dir, 'profile');
    const copy = join(dir, 'profile-copy');
    let page = await launch(profile);
    expect(await page.evaluate(() => [isSecureContext, location.hostname])).toEqual([true, 'localhost']);
    await authenticator(page, true);

    // First start: the passkey is created, the device registered, one group with bob, messages both ways.
    const publicKey = await openAlice(page, true);
    const group = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const alice = (window as any).alice;
      const g = (await alice.createGroup()) as string;
      await alice.addMembers(g, ['bob']);
      return g;
    });
    await pageSend(page, group, 'p1 from the browser');
    const bobFirst = await bob.sync();
    expect(bobFirst.map((e) => e.kind)).toEqual(['joined', 'message']);
    expect(texts(bobFirst)).toEqual(['p1 from the browser']);
    await bob.send(group, utf8Encode('p2 from node'));
    expect(await pageReceive(page)).toEqual(['p2 from node']);

    // What the database keeps: the credential id and the salt as metadata; no key at all (the state key and the
    // device key both come from the passkey).
    const kept = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const meta = JSON.parse((await w.aliceState.backend.getMeta('passkey')) as string) as Record<
        string,
        unknown
      >;
      const db = w.aliceState.backend.db as IDBDatabase;
      const keys = await new Promise<IDBValidKey[]>((resolve, reject) => {
        const req = db.transaction('keys', 'readonly').objectStore('keys').getAllKeys();
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      return { meta, keys: keys.map(String) };
    });
    expect(Object.keys(kept.meta).sort()).toEqual(['credentialId', 'rpId', 'salt', 'v']);
    expect(base64Decode(kept.meta.salt as string)).toHaveLength(32);
    expect(kept.keys).toEqual([]);

    // The test, not the library, asks the authenticator for the PRF output once, to search the copy for it
    // and for the key derived from it.
    const prf = base64Decode(
      await page.evaluate(async (meta) => {
        const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
        const cred = (await navigator.credentials.get({
          publicKey: {
            challenge: crypto.getRandomValues(new Uint8Array(32)),
            rpId: 'localhost',
            allowCredentials: [{ type: 'public-key', id: unb64(meta.credentialId as string) }],
            userVerification: 'required',
            extensions: { prf: { eval: { first: unb64(meta.salt as string) } } },
          },
        })) as PublicKeyCredential;
        const ext = cred.getClientExtensionResults() as { prf?: { results?: { first?: ArrayBuffer } } };
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        return (window as any).b64(new Uint8Array(ext.prf!.results!.first!)) as string;
      }, kept.meta),
    );
    expect(prf).toHaveLength(32);
    const key = stateKey(prf);
    expect(signingPublicKey('ed25519', deviceSeed(prf))).toEqual(base64Decode(publicKey));

    // A restart of the page: the state is locked until the passkey is presented again, then works.
    await restartPage(page);
    expect(await openAlice(page, false)).toBe(publicKey);
    await pageSend(page, group, 'p3 after a restart');
    expect(texts(await bob.sync())).toEqual(['p3 after a restart']);
    await bob.send(group, utf8Encode('p4 from node'));
    expect(await pageReceive(page)).toEqual(['p4 from node']);

    // Copy the whole profile, then keep using the original: it still unlocks and chats.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    await page.evaluate(async () => (window as any).aliceState.close());
    const copied = copyProfile(profile, copy);
    await page.reload();
    await page.waitForFunction(() => 'E' in window);
    await openAlice(page, false);
    await pageSend(page, group, 'p5 after the copy');
    expect(texts(await bob.sync())).toEqual(['p5 after the copy']);
    await context!.close();
    context = undefined;

    // The copy, in another browser with an authenticator that does not hold the passkey.
    page = await launch(copy);
    await authenticator(page, true);
    const attempt = await page.evaluate(async (db) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'opened',
          (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
        );
      const passkey = await code(
        w.E.openBrowserClientState(db, undefined, { unlock: 'passkey', timeoutMs: 3000 }),
      );
      const stored = await code(w.E.openBrowserClientState(db));
      const backend = await w.E.IndexedDbStateBackend.open(db);
      const records = (await backend.dump()) as { name: string; value: Uint8Array }[];
      const meta = (await backend.getMeta('passkey')) as string;
      const keys = await new Promise<IDBValidKey[]>((resolve, reject) => {
        const req = (backend.db as IDBDatabase)
          .transaction('keys', 'readonly')
          .objectStore('keys')
          .getAllKeys();
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const check = await backend.get('check');
      await backend.close();
      return {
        passkey,
        stored,
        meta,
        keys: keys.map(String),
        check: check === undefined ? '' : (w.b64(check) as string),
        records: records.map((r) => ({ name: r.name, value: w.b64(r.value) as string })),
      };
    }, DB);
    expect(attempt.passkey).toMatch(/^ERR_KEK_MISSING: .*passkey was not presented/);
    expect(attempt.stored).toMatch(/^ERR_INVALID_STATE: .*sealed under a passkey/);
    expect(JSON.parse(attempt.meta)).toEqual(kept.meta);
    expect(attempt.keys).toEqual([]); // the refused stored-key open created no key either
    expect(attempt.check).not.toBe('');
    expect(attempt.records.map((r) => r.name)).toEqual(expect.arrayContaining(['check', 'device', 'policy']));

    // Node, holding every record and the metadata of the copy: no guess from what is stored opens them ...
    const meta = JSON.parse(attempt.meta) as { credentialId: string; salt: string };
    const guesses = [
      base64Decode(meta.salt),
      base64Decode(meta.credentialId),
      new Uint8Array(32),
      createHash('sha256').update(base64Decode(meta.salt)).digest(),
    ];
    for (const g of guesses) {
      expect(await codeOf(EncryptedState.open(await backendOf(attempt.records), { key: stateKey(g) }))).toBe(
        'ERR_DECRYPT_FAILED',
      );
      expect(
        await codeOf(
          EncryptedState.open(await backendOf(attempt.records), {
            cipher: await passkeyStateCipher.fromPrfOutput(Uint8Array.from(g)),
          }),
        ),
      ).toBe('ERR_DECRYPT_FAILED');
    }
    // ... the PRF-derived key does (so these are the records, sealed by that key) ...
    const opened = await EncryptedState.open(await backendOf(attempt.records), { key });
    const device = await opened.getJson<{
      identityKey: string;
      mlsKey: string;
      deviceKey: string;
      deviceKeyHeld: string;
    }>('device');
    expect(device?.identityKey).toBeTruthy();
    expect([device?.deviceKey, device?.deviceKeyHeld]).toEqual(['', 'signer']);
    // ... and neither that key nor the PRF output, nor a message or a private key, is in any file of the copy.
    await context!.close();
    context = undefined;
    const files = filesUnder(copy);
    const all = Buffer.concat(files.map((f) => readFileSync(f)));
    expect(all.includes(Buffer.from(base64Decode(attempt.check)))).toBe(true); // the search sees the records
    const needles = [
      ...encodings(key),
      ...encodings(prf),
      ...encodings(deviceSeed(prf)),
      ...['p1 from the browser', 'p2 from node', 'p3 after a restart', 'p4 from node'].map((t) =>
        Buffer.from(t),
      ),
      ...encodings(base64Decode(device!.identityKey)),
      ...encodings(base64Decode(device!.mlsKey)),
    ];
    for (const n of needles) expect(all.includes(n)).toBe(false);

    // A browser whose authenticator has no PRF: ERR_UNSUPPORTED, and nothing written (no fallback key).
    page = await launch(join(dir, 'profile-noprf'));
    await authenticator(page, false);
    const noPrf = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const outcome = await w.E.openBrowserClientState('enseal-test-noprf', undefined, {
        unlock: 'passkey',
        passkey: { userName: 'carol', rpId: 'localhost' },
      }).then(
        () => 'opened',
        (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
      );
      const backend = await w.E.IndexedDbStateBackend.open('enseal-test-noprf');
      const count = (store: string) =>
        new Promise<number>((resolve, reject) => {
          const req = (backend.db as IDBDatabase).transaction(store, 'readonly').objectStore(store).count();
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        });
      const out = {
        outcome,
        records: await count('records'),
        meta: await count('meta'),
        keys: await count('keys'),
      };
      await backend.close();
      return out;
    });
    expect(noPrf.outcome).toMatch(/^ERR_UNSUPPORTED: .*PRF/);
    expect([noPrf.records, noPrf.meta, noPrf.keys]).toEqual([0, 0, 0]);
    console.log(
      `e2ee-passkey: ${copied} profile files copied, ${files.length} files (${all.length} bytes) of the copy searched; ${attempt.records.length} records taken out`,
    );
  }, 300_000);
});
