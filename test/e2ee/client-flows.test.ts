/**
 * E2eeClient's flows against the in-process stand-in of the /v1/e2ee contract (test/helpers/e2ee-fake-service.ts):
 * registration, groups, messages, removal, files, a second device, monitoring, commit races and lost answers,
 * recovery. This checks the client's own logic; recovery also runs against the real service in this process, and
 * test/e2ee/e2ee-service.e2e.test.ts runs the flows through a real `enseal serve` in separate processes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NodeTransport } from '../../src/client/index.js';
import { ErrorCode, randomBytes, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import {
  E2eeClient,
  EncryptedState,
  MemoryStateBackend,
  encodeDirectoryEntry,
  generateIdentityKey,
  signDeviceRecord,
  type E2eeEvent,
} from '../../src/e2ee/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
import { APP_TOKEN, FakeE2eeService } from '../helpers/e2ee-fake-service.js';
import { devServer } from '../server/helpers.js';

async function newState() {
  const backend = new MemoryStateBackend();
  return { backend, state: await EncryptedState.open(backend, { key: randomBytes(32) }) };
}

async function register(fake: FakeE2eeService, user: string, device: string) {
  const { backend, state } = await newState();
  const client = await E2eeClient.register({
    transport: fake,
    state,
    user,
    device,
    applicationToken: APP_TOKEN,
    policy: fake.policy,
  });
  return { client, backend };
}

function texts(events: readonly E2eeEvent[]): string[] {
  return events.flatMap((e) => (e.kind === 'message' ? [utf8Decode(e.data)] : []));
}

async function collect(gen: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of gen) parts.push(p);
  return new Uint8Array(Buffer.concat(parts));
}

describe('E2eeClient against the contract', () => {
  it('groups, messages, removal, files, a second device, monitoring, recovery', async () => {
    const fake = new FakeE2eeService();
    const { client: alice, backend: aliceStore } = await register(fake, 'alice', 'laptop');
    const { client: bob } = await register(fake, 'bob', 'phone');
    const { client: carol } = await register(fake, 'carol', 'desk');

    const gid = await alice.createGroup();
    expect(await alice.addMembers(gid, ['bob', 'carol'])).toBe(2);
    expect((await bob.sync()).map((e) => e.kind)).toEqual(['joined']);
    expect((await carol.sync()).map((e) => e.kind)).toEqual(['joined']);

    await alice.send(gid, utf8Encode('hello from alice'));
    await alice.send(gid, utf8Encode('second'));
    expect(texts(await bob.sync())).toEqual(['hello from alice', 'second']);
    await bob.send(gid, utf8Encode('hi alice'));
    expect(texts(await alice.sync())).toEqual(['hi alice']);
    const auth = await alice.epochAuthenticator(gid);
    expect(await bob.epochAuthenticator(gid)).toEqual(auth);

    // Removal: carol's device is out of the next epoch and cannot open what is shared after it.
    expect(await alice.removeMembers(gid, ['carol'])).toBe(1);
    const carolEvents = await carol.sync();
    expect(carolEvents.some((e) => e.kind === 'commit' && e.removed)).toBe(true);
    expect(await carol.groups()).toEqual([]);
    await bob.sync();

    const content = randomBytes(3 * 1024 * 1024 + 17);
    const shared = await alice.shareFile(
      gid,
      [content.subarray(0, 1_000_000), content.subarray(1_000_000)],
      'report.pdf',
    );
    const bobFiles = (await bob.sync()).filter((e) => e.kind === 'file');
    expect(bobFiles).toHaveLength(1);
    expect(Buffer.compare(await collect(bob.fetchFile(shared.blobId)), content)).toBe(0);
    expect(await asyncCodeOf(collect(carol.fetchFile(shared.blobId)))).toBe(ErrorCode.KEY_NOT_FOUND);
    expect(await carol.sync()).toEqual([]); // nothing reaches a removed device

    // A second device of alice: it makes its key, the laptop signs its record, the laptop adds it to the group.
    const { state: tabletState } = await newState();
    const { client: tablet, request } = await E2eeClient.requestDevice({
      transport: fake,
      state: tabletState,
      user: 'alice',
      device: 'tablet',
      policy: fake.policy,
    });
    await alice.approveDevice(request);
    await tablet.completeEnrolment();
    expect(await alice.addMembers(gid, ['alice'])).toBe(1);
    expect((await tablet.sync()).map((e) => e.kind)).toEqual(['joined']);
    await bob.sync();
    await bob.send(gid, utf8Encode('welcome, tablet'));
    expect(texts(await tablet.sync())).toEqual(['welcome, tablet']);
    expect(texts(await alice.sync())).toEqual(['welcome, tablet']);
    expect((await alice.devices()).map((d) => d.device).sort()).toEqual(['laptop', 'tablet']);
    expect(await alice.monitor()).toEqual([]);

    // A device added behind the laptop's back (by the tablet here, as a thief holding it would) is reported.
    const rogue = generateIdentityKey();
    const { state: rogueState } = await newState();
    const r = await E2eeClient.requestDevice({
      transport: fake,
      state: rogueState,
      user: 'alice',
      device: 'rogue',
      policy: fake.policy,
    });
    await tablet.approveDevice({ ...r.request });
    const warnings = await alice.monitor();
    expect(warnings).toEqual([
      expect.objectContaining({ kind: 'unexpected-device', user: 'alice', device: 'rogue' }),
    ]);
    void rogue;

    // A forged device record (not signed by alice) makes her directory entries unusable: typed, not silent.
    const forged = signDeviceRecord(
      { userId: 'alice', deviceId: 'forged', deviceKey: generateIdentityKey().publicKey, createdAt: 1 },
      { kind: 'identity', privateKey: generateIdentityKey().privateKey },
    );
    await fake.injectLeaf(
      encodeDirectoryEntry({ kind: 'device-added', userId: 'alice', time: 1, record: forged }),
      'alice',
    );
    expect(await asyncCodeOf(bob.verifyUser('alice'))).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);

    // Safety numbers agree on both sides; the QR payload verifies.
    const sn = await bob.safetyNumber('carol');
    const back = await carol.safetyNumber('bob');
    expect(sn.digits).toBe(back.digits);
    expect(await bob.markVerified('carol', back.qrPayload)).toBe(true);
    expect(await bob.markVerified('carol', new Uint8Array(65).fill(1))).toBe(false);

    // Nothing the service or alice's store holds contains a plaintext or alice's identity key.
    const service = Buffer.from(fake.dump());
    const store = Buffer.concat(aliceStore.dump());
    for (const needle of [
      utf8Encode('hello from alice'),
      utf8Encode('welcome, tablet'),
      content.subarray(5000, 5064),
    ]) {
      expect(service.includes(Buffer.from(needle))).toBe(false);
      expect(store.includes(Buffer.from(needle))).toBe(false);
    }

    // Recovery: a passphrase backup stored on the service restores alice on a new device.
    const backup = await alice.backupIdentity('a long recovery passphrase', {
      memoryKiB: 1024,
      iterations: 1,
      parallelism: 1,
    });
    await alice.storeRecoveryBlob(backup);
    expect(service.includes(Buffer.from('a long recovery passphrase'))).toBe(false);
    const shares = await alice.splitIdentity({ shares: 3, threshold: 2 });
    expect(shares).toHaveLength(3);
  });

  it('recovers a user on a new device from the stored backup or from shares', async () => {
    const fake = new FakeE2eeService();
    const { client: dave } = await register(fake, 'dave', 'old');
    const params = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
    await dave.storeRecoveryBlob(await dave.backupIdentity('dave passphrase', params));
    const shares = await dave.splitIdentity({ shares: 3, threshold: 2 });
    const { state } = await newState();
    expect(
      await asyncCodeOf(
        E2eeClient.recover({
          transport: fake,
          state,
          user: 'dave',
          device: 'new',
          applicationToken: APP_TOKEN,
          policy: fake.policy,
          passphrase: 'wrong',
        }),
      ),
    ).toBe(ErrorCode.DECRYPT_FAILED);
    const restored = await E2eeClient.recover({
      transport: fake,
      state: (await newState()).state,
      user: 'dave',
      device: 'new',
      applicationToken: APP_TOKEN,
      policy: fake.policy,
      passphrase: 'dave passphrase',
    });
    expect((await restored.devices()).map((d) => d.device).sort()).toEqual(['new', 'old']);
    const fromShares = await E2eeClient.recover({
      transport: fake,
      state: (await newState()).state,
      user: 'dave',
      device: 'third',
      applicationToken: APP_TOKEN,
      policy: fake.policy,
      shares: [shares[2]!, shares[0]!],
    });
    expect((await fromShares.devices()).length).toBe(3);
  });

  it('recovers from the backup the real service stores (its recovery-blob route)', async () => {
    const ctx = await devServer();
    const transport = new NodeTransport({
      address: ctx.server.url,
      caCert: readFileSync(ctx.server.caFile!),
    });
    try {
      const key = (await ctx.call('GET', '/v1/e2ee/log/key')).body as {
        origin: string;
        verifier_key: string;
      };
      const policy = { origin: key.origin, logKey: key.verifier_key, witnesses: [], quorum: 0 };
      const options = { transport, applicationToken: ctx.token, policy };
      const erin = await E2eeClient.register({
        ...options,
        state: (await newState()).state,
        user: 'erin',
        device: 'old',
      });
      const params = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
      await erin.storeRecoveryBlob(await erin.backupIdentity('erin passphrase', params));
      const restore = async (passphrase: string) =>
        E2eeClient.recover({
          ...options,
          state: (await newState()).state,
          user: 'erin',
          device: 'new',
          passphrase,
        });
      expect(await asyncCodeOf(restore('wrong'))).toBe(ErrorCode.DECRYPT_FAILED);
      const restored = await restore('erin passphrase');
      expect((await restored.devices()).map((d) => d.device).sort()).toEqual(['new', 'old']);
      // A user with no backup stored: the service's 404, typed.
      await E2eeClient.register({ ...options, state: (await newState()).state, user: 'finn', device: 'a' });
      expect(
        await asyncCodeOf(
          E2eeClient.recover({
            ...options,
            state: (await newState()).state,
            user: 'finn',
            device: 'b',
            passphrase: 'x',
          }),
        ),
      ).toBe(ErrorCode.E2EE_NOT_FOUND);
    } finally {
      transport.close();
      await ctx.server.close();
    }
  });

  it('commit races: the loser processes the winning commit and retries; a lost answer is adopted', async () => {
    const fake = new FakeE2eeService();
    const { client: alice } = await register(fake, 'alice', 'laptop');
    const { client: bob } = await register(fake, 'bob', 'phone');
    const { client: carol } = await register(fake, 'carol', 'desk');
    const gid = await alice.createGroup();
    await alice.addMembers(gid, ['bob']);
    await bob.sync();

    // Both commit in the same epoch: one gets 409, catches up and commits again.
    await Promise.all([alice.updateKeys(gid), bob.addMembers(gid, ['carol'])]);
    expect(fake.conflicts).toBeGreaterThanOrEqual(1);
    await alice.sync();
    await bob.sync();
    await carol.sync();
    expect((await alice.members(gid)).length).toBe(3);
    expect(await alice.epochAuthenticator(gid)).toEqual(await bob.epochAuthenticator(gid));
    expect(await carol.epochAuthenticator(gid)).toEqual(await bob.epochAuthenticator(gid));

    // The relay accepts alice's commit but the answer is lost: the key material is kept, the commit adopted later.
    fake.failNext = { after: true, path: /\/commits$/ };
    expect(await asyncCodeOf(alice.updateKeys(gid))).toBe(ErrorCode.IO);
    await alice.send(gid, utf8Encode('after the lost answer'));
    expect(texts(await bob.sync())).toEqual(['after the lost answer']);
    expect(await alice.epochAuthenticator(gid)).toEqual(await bob.epochAuthenticator(gid));

    // The network drops a commit before the relay sees it: nothing changed, the next try works.
    fake.failNext = { after: false, path: /\/commits$/ };
    expect(await asyncCodeOf(alice.updateKeys(gid))).toBe(ErrorCode.IO);
    await alice.updateKeys(gid);
    await bob.sync();
    // An offline device catches up on several commits at once.
    await alice.updateKeys(gid);
    await bob.updateKeys(gid);
    await alice.sync();
    await alice.send(gid, utf8Encode('catch up'));
    expect(texts(await carol.sync())).toEqual(['after the lost answer', 'catch up']);
    expect(await carol.epochAuthenticator(gid)).toEqual(await alice.epochAuthenticator(gid));
  });
});
