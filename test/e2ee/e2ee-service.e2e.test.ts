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
import { spawnSync } from 'node:child_process';
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

const DEVICES = ['alice/laptop', 'alice/tablet', 'bob/phone', 'bob/desktop', 'carol/laptop'] as const;
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

/** Runs `enseal e2ee …` as `device`, in its own process; returns the parsed --json output. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function run(device: Device, args: readonly string[], expectOk = true): any {
  const r = spawnSync(process.execPath, [CLI, 'e2ee', ...args, '--state', stateOf(device), '--json'], {
    encoding: 'utf8',
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
  if (expectOk && r.status !== 0)
    throw new Error(`${device}: e2ee ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  if (!expectOk) return { status: r.status, stderr: r.stderr };
  return r.stdout.trim() === '' ? {} : JSON.parse(r.stdout);
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
    for (const d of ['alice/laptop', 'bob/phone', 'carol/laptop'] as const)
      run(d, ['register', ...d.split('/'), '--policy', policyFile]);
    for (const [second, first] of [
      ['alice/tablet', 'alice/laptop'],
      ['bob/desktop', 'bob/phone'],
    ] as const) {
      const { request } = run(second, ['devices', 'request', ...second.split('/'), '--policy', policyFile]);
      run(first, ['devices', 'approve', request]);
      run(second, ['devices', 'complete']);
    }
    expect(
      run('alice/laptop', ['devices'])
        .devices.map((d: { device: string }) => d.device)
        .sort(),
    ).toEqual(['laptop', 'tablet']);
    expect(run('alice/laptop', ['devices']).warnings).toEqual([]);

    // One group of all five devices.
    const { group } = run('alice/laptop', ['group', 'create']);
    expect(run('alice/laptop', ['group', 'add', group, 'bob', 'carol', 'alice']).added).toBe(4);
    for (const d of ['alice/tablet', 'bob/phone', 'bob/desktop', 'carol/laptop'] as const)
      expect(run(d, ['recv']).events.map((e: { kind: string }) => e.kind)).toEqual(['joined']);
    run('alice/laptop', ['send', group, 'm1 from alice']);
    for (const d of ['alice/tablet', 'bob/phone', 'bob/desktop', 'carol/laptop'] as const)
      expect(texts(run(d, ['recv']).events)).toEqual(['m1 from alice']);
    // bob's desktop goes offline here.

    run('carol/laptop', ['send', group, 'm2 from carol']);
    expect(texts(run('alice/laptop', ['recv']).events)).toEqual(['m2 from carol']);

    // Carol is removed; what is shared afterwards is out of her reach.
    expect(run('alice/laptop', ['group', 'remove', group, 'carol']).removed).toBe(1);
    const carolEvents = run('carol/laptop', ['recv']).events;
    expect(
      carolEvents.some((e: { kind: string; removed?: boolean }) => e.kind === 'commit' && e.removed),
    ).toBe(true);
    const content = randomBytes(5 * 1024 * 1024 + 123);
    const input = join(dir, 'report.bin');
    writeFileSync(input, content);
    const shared = run('alice/laptop', ['share', group, input]);
    const bobPhone = run('bob/phone', ['recv']).events;
    expect(bobPhone.map((e: { kind: string }) => e.kind)).toEqual(['message', 'commit', 'file']);
    expect(texts(bobPhone)).toEqual(['m2 from carol']);
    const out = join(dir, 'fetched.bin');
    run('bob/phone', ['fetch', shared.blobId, '-o', out]);
    expect(Buffer.compare(readFileSync(out), content)).toBe(0);
    expect(
      run('carol/laptop', ['fetch', shared.blobId, '-o', join(dir, 'carol.bin')], false).status,
    ).not.toBe(0);
    expect(run('carol/laptop', ['send', group, 'still here?'], false).status).not.toBe(0);

    // Application messages processed out of order, and a replay refused.
    run('alice/tablet', ['recv']);
    for (const m of ['o1', 'o2', 'o3']) run('alice/tablet', ['send', group, m]);
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
    const desk = run('bob/desktop', ['recv']).events;
    expect(texts(desk)).toEqual(['m2 from carol', 'o1', 'o2', 'o3']);
    expect(desk.filter((e: { kind: string }) => e.kind === 'commit')).toHaveLength(1);
    expect(desk.filter((e: { kind: string }) => e.kind === 'file')).toHaveLength(1);
    const auth = run('alice/laptop', ['verify', '--group', group]).group;
    for (const d of ['alice/tablet', 'bob/phone', 'bob/desktop'] as const) {
      run(d, ['recv']);
      expect(run(d, ['verify', '--group', group]).group).toEqual(auth);
    }
    expect(run('alice/laptop', ['group', 'members', group]).members).toHaveLength(4);

    // Safety numbers agree; a scanned QR payload verifies the contact.
    const aliceSide = run('alice/laptop', ['verify', 'bob']);
    const bobSide = run('bob/desktop', ['verify', 'alice']);
    expect(aliceSide.safety_number).toBe(bobSide.safety_number);
    expect(run('alice/laptop', ['verify', 'bob', '--qr', bobSide.qr_payload]).verified).toBe(true);

    // Recovery: a passphrase backup (ciphertext) on the service restores alice on a new device.
    run('alice/laptop', ['recover', 'backup']);

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
