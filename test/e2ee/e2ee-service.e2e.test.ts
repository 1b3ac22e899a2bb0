/**
 * End to end through a real `enseal serve --dev`: three users with five devices, each device its own state
 * directory and every step its own `enseal e2ee …` process (one step of bob's phone runs the library in this
 * process, to feed it messages out of order). Registration, a second device approved by the first, a group of all
 * five, messages, removal of a member, a shared file that the removed member cannot open, application messages
 * processed out of order and a replay refused, an offline device catching up, safety numbers and epoch
 * authenticators, and finally the server's store and every device's state searched for plaintexts and keys.
 *
 * Runs against the server half of docs/e2ee-service.md; on a server without the /v1/e2ee routes the first
 * request fails with a message that says so.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeTransport, SqliteStateBackend } from '../../src/client/index.js';
import { base64Decode, hexEncode, randomBytes, utf8Decode } from '../../src/crypto/index.js';
import { E2eeClient, EncryptedState, type PinnedLogPolicy } from '../../src/e2ee/index.js';
import { CLI, buildOnce } from '../helpers/cli.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';

const DEVICES = [
  'alice/laptop',
  'alice/tablet',
  'bob/phone',
  'bob/desktop',
  'carol/laptop',
  'alice/spare',
] as const;
type Device = (typeof DEVICES)[number];

let dir: string;
let server: ServeProcess;
let caFile: string;
let policyFile: string;
const keys = new Map<Device, string>(DEVICES.map((d) => [d, hexEncode(randomBytes(32))]));
const stateOf = (d: Device) => join(dir, 'devices', d.replace('/', '-'));

function get(path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(path, server.url), { ca: server.ca }, (res) => {
      let text = '';
      res.on('data', (d) => (text += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Runs `enseal e2ee …` as `device`, in its own process; resolves to the parsed --json output (or, with
 * `expectOk` false, to the exit status and stderr). Steps of different devices may run at once.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function run(device: Device, args: readonly string[], expectOk = true): Promise<any> {
  const child = spawn(process.execPath, [CLI, 'e2ee', ...args, '--state', stateOf(device), '--json'], {
    env: {
      ...process.env,
      ENSEAL_ADDR: server.url,
      ENSEAL_CACERT: caFile,
      ENSEAL_TOKEN: server.token!,
      ENSEAL_E2EE_STATE_KEY: keys.get(device)!,
      ENSEAL_E2EE_RECOVERY_PASSPHRASE: 'a long recovery passphrase for tests',
    },
    timeout: 120_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => {
      if (!expectOk) return resolve({ status, stderr });
      if (status !== 0)
        return reject(new Error(`${device}: e2ee ${args.join(' ')} failed (${status}): ${stderr}`));
      try {
        resolve(stdout.trim() === '' ? {} : JSON.parse(stdout));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** The same step on several devices at once, answers in the order of `devices`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function onEach(devices: readonly Device[], args: readonly string[]): Promise<any[]> {
  return Promise.all(devices.map((d) => run(d, args)));
}

function texts(events: { kind: string; text?: string }[]): string[] {
  return events.filter((e) => e.kind === 'message').map((e) => e.text!);
}

/** Opens a device's state in this process (the test reads its keys to search the stores for them). */
async function openDevice(
  device: Device,
): Promise<{ client: E2eeClient; state: EncryptedState; transport: NodeTransport }> {
  const state = await EncryptedState.open(
    new SqliteStateBackend({ path: join(stateOf(device), 'state.db') }),
    {
      key: Buffer.from(keys.get(device)!, 'hex'),
    },
  );
  const transport = new NodeTransport({ address: server.url, caCert: server.ca! });
  return { client: await E2eeClient.open({ transport, state }), state, transport };
}

function filesUnder(root: string): string[] {
  return readdirSync(root).flatMap((name) => {
    const p = join(root, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

beforeAll(async () => {
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'e2ee-e2e-'));
  server = await startServe(['--dev', '--data-dir', join(dir, 'server')]);
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, server.ca!);
  const key = await get('/v1/e2ee/log/key');
  if (key.status !== 200)
    throw new Error(
      `GET /v1/e2ee/log/key answered ${key.status}: this server lacks the e2ee routes (docs/e2ee-service.md)`,
    );
  const k = JSON.parse(key.text) as {
    origin: string;
    verifier_key: string;
    witnesses: string[];
    quorum: number;
  };
  const policy: PinnedLogPolicy = {
    origin: k.origin,
    logKey: k.verifier_key,
    witnesses: k.witnesses ?? [],
    quorum: k.quorum ?? 0,
  };
  policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(policy));
});

afterAll(async () => {
  await stopServe(server);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('e2ee through enseal serve: three users, five devices, separate processes', () => {
  it('groups, removal, files, out-of-order and replayed messages, an offline device, verification, stores', async () => {
    // Users and their first devices; the second devices are approved by the first.
    await Promise.all(
      (['alice/laptop', 'bob/phone', 'carol/laptop'] as const).map((d) =>
        run(d, ['register', ...d.split('/'), '--policy', policyFile]),
      ),
    );
    await Promise.all(
      (
        [
          ['alice/tablet', 'alice/laptop'],
          ['bob/desktop', 'bob/phone'],
        ] as const
      ).map(async ([second, first]) => {
        const { request } = await run(second, [
          'devices',
          'request',
          ...second.split('/'),
          '--policy',
          policyFile,
        ]);
        await run(first, ['devices', 'approve', request]);
        await run(second, ['devices', 'complete']);
      }),
    );
    const aliceDevices = await run('alice/laptop', ['devices']);
    expect(aliceDevices.devices.map((d: { device: string }) => d.device).sort()).toEqual([
      'laptop',
      'tablet',
    ]);
    expect(aliceDevices.warnings).toEqual([]);

    // One group of all five devices; the first message follows the welcome in the same inbox.
    const { group } = await run('alice/laptop', ['group', 'create']);
    expect((await run('alice/laptop', ['group', 'add', group, 'bob', 'carol', 'alice'])).added).toBe(4);
    await run('alice/laptop', ['send', group, 'm1 from alice']);
    for (const r of await onEach(['alice/tablet', 'bob/phone', 'bob/desktop', 'carol/laptop'], ['recv'])) {
      expect(r.events.map((e: { kind: string }) => e.kind)).toEqual(['joined', 'message']);
      expect(texts(r.events)).toEqual(['m1 from alice']);
    }
    // bob's desktop goes offline here.

    await run('carol/laptop', ['send', group, 'm2 from carol']);
    expect(texts((await run('alice/laptop', ['recv'])).events)).toEqual(['m2 from carol']);

    // Carol is removed; what is shared afterwards is out of her reach.
    expect((await run('alice/laptop', ['group', 'remove', group, 'carol'])).removed).toBe(1);
    const carolEvents = (await run('carol/laptop', ['recv'])).events;
    expect(
      carolEvents.some((e: { kind: string; removed?: boolean }) => e.kind === 'commit' && e.removed),
    ).toBe(true);
    const content = randomBytes(5 * 1024 * 1024 + 123);
    const input = join(dir, 'report.bin');
    writeFileSync(input, content);
    const shared = await run('alice/laptop', ['share', group, input]);
    const [bobPhone] = await onEach(['bob/phone', 'alice/tablet'], ['recv']);
    expect(bobPhone.events.map((e: { kind: string }) => e.kind)).toEqual(['message', 'commit', 'file']);
    expect(texts(bobPhone.events)).toEqual(['m2 from carol']);
    const out = join(dir, 'fetched.bin');
    const [, carolFetch, carolSend] = await Promise.all([
      run('bob/phone', ['fetch', shared.blobId, '-o', out]),
      run('carol/laptop', ['fetch', shared.blobId, '-o', join(dir, 'carol.bin')], false),
      run('carol/laptop', ['send', group, 'still here?'], false),
    ]);
    expect(Buffer.compare(readFileSync(out), content)).toBe(0);
    expect(carolFetch.status).not.toBe(0);
    expect(carolSend.status).not.toBe(0);

    // Application messages processed out of order, and a replay refused.
    for (const m of ['o1', 'o2', 'o3']) await run('alice/tablet', ['send', group, m]);
    {
      const { client, state, transport } = await openDevice('bob/phone');
      try {
        const inbox = await client.fetchInbox();
        const apps = inbox.filter((m) => m.kind === 'application');
        expect(apps).toHaveLength(3);
        const events = await client.process([...apps].reverse());
        expect(events.map((e) => (e.kind === 'message' ? utf8Decode(e.data) : e.kind))).toEqual([
          'o3',
          'o2',
          'o1',
        ]);
        const replay = await client.process([apps[0]!]);
        expect(replay).toEqual([
          expect.objectContaining({ kind: 'rejected', code: 'ERR_E2EE_MLS_REJECTED' }),
        ]);
      } finally {
        transport.close();
        await state.close();
      }
    }

    // The offline desktop catches up on everything at once.
    const desk = (await run('bob/desktop', ['recv'])).events;
    expect(texts(desk)).toEqual(['m2 from carol', 'o1', 'o2', 'o3']);
    expect(desk.filter((e: { kind: string }) => e.kind === 'commit')).toHaveLength(1);
    expect(desk.filter((e: { kind: string }) => e.kind === 'file')).toHaveLength(1);
    // Every remaining device is at the same epoch with the same authenticator (no commit since the removal).
    const auths = await onEach(
      ['alice/laptop', 'alice/tablet', 'bob/phone', 'bob/desktop'],
      ['verify', '--group', group],
    );
    for (const a of auths) expect(a.group).toEqual(auths[0].group);
    expect((await run('alice/laptop', ['group', 'members', group])).members).toHaveLength(4);

    // Safety numbers agree; a scanned QR payload verifies the contact.
    const [aliceSide, bobSide] = await Promise.all([
      run('alice/laptop', ['verify', 'bob']),
      run('bob/desktop', ['verify', 'alice']),
    ]);
    expect(aliceSide.safety_number).toBe(bobSide.safety_number);
    expect((await run('alice/laptop', ['verify', 'bob', '--qr', bobSide.qr_payload])).verified).toBe(true);

    // Recovery: a passphrase backup (ciphertext) on the service restores alice on a new device, which the
    // directory then proves alongside her other two.
    await run('alice/laptop', ['recover', 'backup']);
    await run('alice/spare', ['recover', 'restore', 'alice', 'spare', '--policy', policyFile]);
    expect(
      (await run('alice/spare', ['devices'])).devices.map((d: { device: string }) => d.device).sort(),
    ).toEqual(['laptop', 'spare', 'tablet']);

    // Nothing on the server, and nothing in any device's state file, holds a plaintext or a private key.
    const secrets: Buffer[] = [
      Buffer.from('m1 from alice'),
      Buffer.from('m2 from carol'),
      Buffer.from(content.subarray(1_000_000, 1_000_064)),
      Buffer.from('a long recovery passphrase'),
    ];
    for (const d of DEVICES) {
      const { client, state, transport } = await openDevice(d);
      const rec = (await state.getJson<{ deviceKey: string; mlsKey: string; identityKey?: string }>(
        'device',
      ))!;
      for (const k of [rec.deviceKey, rec.mlsKey, rec.identityKey]) {
        if (k === undefined) continue;
        secrets.push(Buffer.from(base64Decode(k)), Buffer.from(k));
      }
      void client;
      transport.close();
      await state.close();
    }
    const stores = [...filesUnder(join(dir, 'server')), ...DEVICES.flatMap((d) => filesUnder(stateOf(d)))];
    for (const file of stores) {
      const bytes = readFileSync(file);
      for (const s of secrets) expect(bytes.includes(s), `${file} holds a secret`).toBe(false);
    }
  }, 600_000);
});
