/**
 * The browser library (dist/web/enseal-e2ee.js) in real Chromium (Debian's chromium through playwright-core,
 * a persistent profile) against a real `enseal serve --dev`: a device registered in the browser and a Node
 * client exchange messages in one group both ways; the browser restarts on the same profile and its device
 * opens with the same keys; `exportKey` rejects on the device key and on the state key; no IndexedDB record and
 * no byte of the profile's IndexedDB files holds a plaintext or a raw identity or MLS private key; an aborted
 * commit and a page closed during a commit leave a client that opens and works. It also pins the limit
 * docs/e2ee.md states: Chromium keeps a non-extractable CryptoKey's bytes in those files, unencrypted.
 *
 * The page and the module are served under the server's own origin by request interception, so the library
 * talks to `enseal serve` same-origin with the FetchTransport. The browser trusts the server by the public key
 * of its certificate (Chromium's SPKI list), not by turning certificate checks off.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeTransport } from '../../src/client/index.js';
import { base64Decode, base64Encode, randomBytes, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import {
  E2eeClient,
  EncryptedState,
  MemoryStateBackend,
  type E2eeEvent,
  type PinnedLogPolicy,
} from '../../src/e2ee/index.js';
import { buildOnce } from '../helpers/cli.js';
import {
  LIBRARY_PAGE_SCRIPT,
  browserPeer,
  pageReceive,
  pageSend,
  serveGet,
  serverSpki,
} from '../helpers/browser.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';

const BUNDLE = fileURLToPath(new URL('../../dist/web/enseal-e2ee.js', import.meta.url));
const DB = 'enseal-test-alice';

let dir = '';
let profile = '';
let server: ServeProcess | undefined;
const get = async (path: string) => (await serveGet(server!, path)).text;
let policy: PinnedLogPolicy;
let spki = '';
let context: BrowserContext | undefined;
let bob: E2eeClient;
let bobTransport: NodeTransport;

/** Launches Chromium on the test's profile and opens the test page (served under the server's origin). */
async function launch(): Promise<Page> {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: browserPeer.command,
    args: [`--ignore-certificate-errors-spki-list=${spki}`],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.route(`${server!.url}/__weblib/**`, async (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/__weblib/enseal-e2ee.js')
      return route.fulfill({ contentType: 'text/javascript', body: readFileSync(BUNDLE) });
    if (path === '/__weblib/page.js')
      return route.fulfill({ contentType: 'text/javascript', body: LIBRARY_PAGE_SCRIPT });
    return route.fulfill({
      contentType: 'text/html',
      body: '<!doctype html><title>enseal e2ee</title><script type="module" src="/__weblib/page.js"></script>',
    });
  });
  await page.goto(`${server!.url}/__weblib/index.html`);
  await page.waitForFunction(() => 'E' in window);
  return page;
}

/** Opens alice's browser device on `page` (window.alice), registering it the first time. */
async function openAlice(page: Page, register: boolean): Promise<string> {
  return page.evaluate(
    async ([db, register, token, policy]) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const { state, deviceSigner, transport } = await w.E.openBrowserClientState(db);
      w.aliceState = state;
      w.aliceSigner = deviceSigner;
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

function texts(events: E2eeEvent[]): string[] {
  return events.flatMap((e) => (e.kind === 'message' ? [utf8Decode(e.data)] : []));
}

function filesUnder(root: string): string[] {
  return readdirSync(root).flatMap((name) => {
    const p = join(root, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Every way a secret could be written down: raw bytes, hex, base64 (standard and url-safe). */
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

beforeAll(async () => {
  if (!browserPeer.available) return;
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'e2ee-web-'));
  profile = join(dir, 'profile');
  server = await startServe(['--dev', '--data-dir', join(dir, 'server')]);
  const k = JSON.parse(await get('/v1/e2ee/log/key')) as {
    origin: string;
    verifier_key: string;
    witnesses?: string[];
    quorum?: number;
  };
  policy = { origin: k.origin, logKey: k.verifier_key, witnesses: k.witnesses ?? [], quorum: k.quorum ?? 0 };
  spki = await serverSpki(server!);
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

describe.skipIf(!browserPeer.available)('the e2ee library in chromium', () => {
  it('registers, chats with Node both ways, survives a restart, keeps keys non-extractable and stores no secret', async () => {
    let page = await launch();
    const publicKey = await openAlice(page, true);

    // One group of alice (browser) and bob (Node); messages both ways.
    const group = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const alice = (window as any).alice;
      const g = (await alice.createGroup()) as string;
      await alice.addMembers(g, ['bob']);
      return g;
    });
    await pageSend(page, group, 'm1 from the browser');
    const bobFirst = await bob.sync();
    expect(bobFirst.map((e) => e.kind)).toEqual(['joined', 'message']);
    expect(texts(bobFirst)).toEqual(['m1 from the browser']);
    await bob.send(group, utf8Encode('m2 from node'));
    expect(await pageReceive(page)).toEqual(['m2 from node']);

    // Neither the device key nor the state key can leave WebCrypto.
    const exported = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const backend = await w.E.IndexedDbStateBackend.open('enseal-test-alice');
      const cipher = await w.E.webStateCipher(backend);
      const tryExport = async (key: CryptoKey, format: 'raw' | 'pkcs8' | 'jwk') =>
        crypto.subtle.exportKey(format, key).then(
          () => 'exported',
          (e: Error) => e.name,
        );
      const out = {
        device: [
          await tryExport(w.aliceSigner.privateKey, 'pkcs8'),
          await tryExport(w.aliceSigner.privateKey, 'jwk'),
        ],
        state: [await tryExport(cipher.key, 'raw'), await tryExport(cipher.key, 'jwk')],
        extractable: [w.aliceSigner.privateKey.extractable, cipher.key.extractable],
      };
      await backend.close();
      return out;
    });
    expect(exported).toEqual({
      device: ['InvalidAccessError', 'InvalidAccessError'],
      state: ['InvalidAccessError', 'InvalidAccessError'],
      extractable: [false, false],
    });

    // Restart the browser on the same profile: the same device, the same keys, still chatting.
    const secrets = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const d = (await (window as any).aliceState.getJson('device')) as Record<string, string>;
      return {
        identityKey: d.identityKey!,
        mlsKey: d.mlsKey!,
        deviceKey: d.deviceKey!,
        held: d.deviceKeyHeld!,
      };
    });
    expect(secrets.deviceKey).toBe('');
    expect(secrets.held).toBe('signer');
    await context!.close();
    page = await launch();
    expect(await openAlice(page, false)).toBe(publicKey);
    await pageSend(page, group, 'm3 after the restart');
    expect(texts(await bob.sync())).toEqual(['m3 after the restart']);
    await bob.send(group, utf8Encode('m4 from node'));
    expect(await pageReceive(page)).toEqual(['m4 from node']);

    // Opening without the signer is refused with a message that says what to pass.
    const withoutSigner = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      return w.E.E2eeClient.open({
        state: w.aliceState,
        transport: new w.E.FetchTransport({ address: location.origin }),
      }).then(
        () => 'opened',
        (e: { code: string; message: string }) => `${e.code}: ${e.message}`,
      );
    });
    expect(withoutSigner).toMatch(/^ERR_INVALID_STATE: .*pass the same deviceSigner/);

    // No IndexedDB record holds a plaintext or a raw private key; neither do the profile's files on disk.
    const dump = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const records = (await w.aliceState.backend.dump()) as { name: string; value: Uint8Array }[];
      return records.map((r) => ({ name: r.name, value: w.b64(r.value) as string }));
    });
    expect(dump.map((r) => r.name)).toEqual(expect.arrayContaining(['check', 'device', 'policy']));
    // The documented limit: a non-extractable CryptoKey is stored with its key bytes in the profile's files.
    const probeKey = await page.evaluate(async () => {
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      const key = await crypto.subtle.importKey('raw', bytes, 'AES-GCM', false, ['encrypt']);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const backend = await (window as any).E.IndexedDbStateBackend.open('enseal-test-probe');
      await new Promise((resolve, reject) => {
        const tx = backend.db.transaction('keys', 'readwrite');
        tx.objectStore('keys').put(key, 'probe');
        tx.oncomplete = resolve;
        tx.onerror = reject;
      });
      await backend.close();
      return Array.from(bytes);
    });
    const plaintexts = ['m1 from the browser', 'm2 from node', 'm3 after the restart', 'm4 from node'];
    const needles = [
      ...plaintexts.map((p) => Buffer.from(p)),
      ...encodings(base64Decode(secrets.identityKey)),
      ...encodings(base64Decode(secrets.mlsKey)),
    ];
    for (const r of dump) {
      const bytes = Buffer.from(r.value, 'base64');
      for (const n of needles) expect(bytes.includes(n), `record ${r.name}`).toBe(false);
    }
    await context!.close();
    context = undefined;
    const idbFiles = filesUnder(join(profile, 'Default', 'IndexedDB'));
    const onDisk = Buffer.concat(idbFiles.map((f) => readFileSync(f)));
    // The search can see the records: a sealed record's bytes are there as they are.
    const device = Buffer.from(dump.find((r) => r.name === 'device')!.value, 'base64');
    expect(onDisk.includes(device.subarray(0, 64))).toBe(true);
    for (const n of needles) expect(onDisk.includes(n)).toBe(false);
    expect(onDisk.includes(Buffer.from(probeKey))).toBe(true);

    // An aborted commit (every write refused inside the transaction) changes nothing; the client then works.
    await bob.send(group, utf8Encode('m5 during a failing commit'));
    page = await launch();
    const failed = await page.evaluate(async (db) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const opened = await w.E.openBrowserClientState(db, undefined, {
        beforeWrite: () => {
          throw new Error('injected write failure');
        },
      });
      const client = await w.E.E2eeClient.open({
        state: opened.state,
        transport: opened.transport,
        deviceSigner: opened.deviceSigner,
      });
      const outcome = await client.sync().then(
        (events: { kind: string }[]) => events.map((e) => e.kind).join(','),
        (e: { code?: string }) => e.code ?? 'error',
      );
      await opened.backend.close();
      return outcome;
    }, DB);
    // A store failure is transient: the sync stops before the message, with nothing saved and nothing acked.
    expect(failed).toBe('');
    await openAlice(page, false);
    expect(await pageReceive(page)).toEqual(['m5 during a failing commit']);

    // A page closed while a large commit is in flight: the state opens, as it was or with the whole commit.
    await page.evaluate(() => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const tx = w.aliceState.transaction();
      for (let i = 0; i < 200; i++)
        tx.put(`junk/${String(i).padStart(3, '0')}`, new Uint8Array(64 * 1024).fill(i));
      void tx.commit();
    });
    await page.close();
    await context!.close();
    page = await launch();
    await openAlice(page, false);
    const junk = await page.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const w = window as any;
      const names = (await w.aliceState.list('junk/')) as string[];
      for (const n of names) await w.aliceState.get(n);
      return names.length;
    });
    expect([0, 200]).toContain(junk);
    await pageSend(page, group, 'm6 after an interrupted commit');
    expect(texts(await bob.sync())).toEqual(['m6 after an interrupted commit']);
    await bob.send(group, utf8Encode('m7 from node'));
    expect(await pageReceive(page)).toEqual(['m7 from node']);
    console.log(
      `e2ee-web: ${idbFiles.length} IndexedDB files (${onDisk.length} bytes) searched; interrupted commit left ${junk} of 200 records; device key ${base64Encode(base64Decode(publicKey)).slice(0, 8)}…`,
    );
  }, 300_000);
});
