/**
 * A malicious relay, from where the client sees it: the real `enseal serve` behind a transport that rewrites
 * what the service answers (the position of a relay operator, or of anyone who took the service). It
 * substitutes a key package, adds a device the user never signed to the directory, drops commits (from the
 * inbox and from the catch-up route), drops application messages, names another member as a message's sender,
 * and replays and reorders application messages. The client detects each with a typed error and keeps its
 * group state.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeTransport } from '../../src/client/index.js';
import { ErrorCode, base64Encode, randomBytes, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import {
  E2eeClient,
  EncryptedState,
  INBOX_MEDIA_TYPE,
  MemoryStateBackend,
  decodeInboxAnswer,
  encodeDirectoryEntry,
  encodeInboxAnswer,
  generateIdentityKey,
  signDeviceRecord,
  type E2eeEvent,
  type E2eeRequest,
  type E2eeResponse,
  type E2eeTransport,
  type PinnedLogPolicy,
} from '../../src/e2ee/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
import { devServer } from '../server/helpers.js';

/** What the relay does to one exchange: rewrite the request, the answer, or both. */
interface Tamper {
  request?: (r: E2eeRequest) => E2eeRequest;
  response?: (r: E2eeRequest, res: E2eeResponse) => E2eeResponse;
}

/** The real transport with a relay in the middle that does whatever `tamper` says (nothing by default). */
class TamperingTransport implements E2eeTransport {
  tamper: Tamper = {};
  /** Exchanges the relay actually changed, so a test knows its attack took place. */
  rewrites = 0;
  constructor(readonly inner: NodeTransport) {}
  async request(request: E2eeRequest): Promise<E2eeResponse> {
    const sent = this.tamper.request?.(request) ?? request;
    const res = await this.inner.request(sent);
    const got = this.tamper.response?.(sent, res) ?? res;
    if (sent !== request || got !== res) this.rewrites++;
    return got;
  }
}

/** The inbox's binary answer (what the client asks for) read and rewritten in the JSON answer's shape. */
const binary = (res: E2eeResponse) => res.contentType.startsWith(INBOX_MEDIA_TYPE);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (res: E2eeResponse): any =>
  binary(res)
    ? {
        messages: decodeInboxAnswer(res.body).map((m) => ({
          seq: m.seq,
          group_id: m.groupId,
          epoch: m.epoch,
          kind: m.kind,
          sender: m.sender,
          frame: m.frame,
          received_at: m.receivedAt,
        })),
      }
    : JSON.parse(utf8Decode(res.body));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const withJson = (res: E2eeResponse, body: any): E2eeResponse => ({
  ...res,
  body: binary(res)
    ? encodeInboxAnswer(
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        body.messages.map((m: any) => ({
          seq: m.seq,
          groupId: m.group_id,
          epoch: m.epoch,
          kind: m.kind,
          sender: m.sender,
          frame: m.frame,
          receivedAt: m.received_at,
        })),
      )
    : utf8Encode(JSON.stringify(body)),
});
const texts = (events: readonly E2eeEvent[]) =>
  events.flatMap((e) => (e.kind === 'message' ? [utf8Decode(e.data)] : []));

let ctx: Awaited<ReturnType<typeof devServer>>;
let policy: PinnedLogPolicy;
const transports: TamperingTransport[] = [];

async function user(name: string): Promise<{ client: E2eeClient; relay: TamperingTransport }> {
  const relay = new TamperingTransport(
    new NodeTransport({ address: ctx.server.url, caCert: readFileSync(ctx.server.caFile!) }),
  );
  transports.push(relay);
  const state = await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) });
  const client = await E2eeClient.register({
    transport: relay,
    state,
    user: name,
    device: 'd1',
    applicationToken: ctx.token,
    policy,
  });
  return { client, relay };
}

beforeAll(async () => {
  ctx = await devServer({ e2ee: { origin: 'malicious-relay.test/e2ee' } });
  const key = (await ctx.call('GET', '/v1/e2ee/log/key')).body;
  policy = { origin: key.origin, logKey: key.verifier_key, witnesses: [], quorum: 0 };
});
afterAll(async () => {
  for (const t of transports) t.inner.close();
  await ctx.server.close();
});

describe('a malicious relay is caught by the client', () => {
  it('substitutes another user’s key package when alice adds bob: ERR_E2EE_UNTRUSTED_IDENTITY', async () => {
    const alice = await user('alice-kp');
    await user('bob-kp');
    await user('mallory-kp');
    const gid = await alice.client.createGroup();
    alice.relay.tamper = {
      request: (r) =>
        r.path.endsWith('/users/bob-kp/key-packages/claim')
          ? { ...r, path: r.path.replace('/bob-kp/', '/mallory-kp/') }
          : r,
    };
    expect(await asyncCodeOf(alice.client.addMembers(gid, ['bob-kp']))).toBe(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
    );
    alice.relay.tamper = {};
    expect((await alice.client.members(gid)).map((m) => m.user)).toEqual(['alice-kp']);
    // Without the relay's interference the same call works.
    expect(await alice.client.addMembers(gid, ['bob-kp'])).toBe(1);
  });

  it('adds a device bob never signed to his directory answer: refused before it is used', async () => {
    const alice = await user('alice-dir');
    await user('bob-dir');
    const rogue = generateIdentityKey();
    const record = signDeviceRecord(
      {
        userId: 'bob-dir',
        deviceId: 'rogue',
        deviceKey: rogue.publicKey,
        createdAt: Math.floor(Date.now() / 1000),
      },
      { kind: 'identity', privateKey: generateIdentityKey().privateKey },
    );
    const forged = encodeDirectoryEntry({ kind: 'device-added', userId: 'bob-dir', time: 1, record });
    alice.relay.tamper = {
      response: (r, res) => {
        if (r.method !== 'GET' || !r.path.startsWith('/v1/e2ee/users/bob-dir') || res.status !== 200)
          return res;
        const body = json(res);
        if (!Array.isArray(body.entries)) return res;
        // The rogue entry borrows a real entry's index and proof: the log holds no such leaf.
        const last = body.entries[body.entries.length - 1];
        body.entries.push({ ...last, entry: base64Encode(forged) });
        return withJson(res, body);
      },
    };
    const code = await asyncCodeOf(alice.client.verifyUser('bob-dir'));
    expect(code).toBe(ErrorCode.E2EE_PROOF_INVALID);
    alice.relay.tamper = {};
    const verified = await alice.client.verifyUser('bob-dir');
    expect(JSON.stringify(verified)).not.toContain('rogue');
    expect(alice.relay.rewrites).toBeGreaterThan(0);
  });

  it('drops commits from bob’s inbox and from catch-up: ERR_E2EE_MISSING_COMMITS, state kept, recovered later', async () => {
    const alice = await user('alice-drop');
    const bob = await user('bob-drop');
    const gid = await alice.client.createGroup();
    await alice.client.addMembers(gid, ['bob-drop']);
    await bob.client.sync();
    await alice.client.send(gid, utf8Encode('before'));
    expect(texts(await bob.client.sync())).toEqual(['before']);
    const epochBefore = (await bob.client.epochAuthenticator(gid)).epoch;

    bob.relay.tamper = {
      response: (r, res) => {
        if (res.status !== 200) return res;
        if (r.path.startsWith('/v1/e2ee/inbox?')) {
          const body = json(res);
          return withJson(res, {
            ...body,
            messages: body.messages.filter((m: { kind: string }) => m.kind !== 'commit'),
          });
        }
        if (r.path.includes('/commits?after_epoch=')) return withJson(res, { ...json(res), commits: [] });
        return res;
      },
    };
    await alice.client.updateKeys(gid);
    await alice.client.send(gid, utf8Encode('after the update'));
    const events = await bob.client.sync();
    expect(events).toEqual([
      expect.objectContaining({ kind: 'rejected', code: ErrorCode.E2EE_MISSING_COMMITS }),
    ]);
    expect((await bob.client.epochAuthenticator(gid)).epoch).toBe(epochBefore);
    expect(bob.relay.rewrites).toBeGreaterThan(0);

    // Once the relay stops withholding, the next message brings bob up to date through catch-up.
    bob.relay.tamper = {};
    await alice.client.send(gid, utf8Encode('later'));
    expect(texts(await bob.client.sync())).toEqual(['later']);
    expect(await bob.client.epochAuthenticator(gid)).toEqual(await alice.client.epochAuthenticator(gid));
  });

  it('replays and reorders application messages: each is read once, the replay is refused', async () => {
    const alice = await user('alice-rep');
    const bob = await user('bob-rep');
    const gid = await alice.client.createGroup();
    await alice.client.addMembers(gid, ['bob-rep']);
    await bob.client.sync();
    for (const m of ['one', 'two', 'three']) await alice.client.send(gid, utf8Encode(m));
    bob.relay.tamper = {
      response: (r, res) => {
        if (!r.path.startsWith('/v1/e2ee/inbox?') || res.status !== 200) return res;
        const body = json(res);
        const apps = body.messages.filter((m: { kind: string }) => m.kind === 'application');
        // Delivered in reverse: the relay numbers its deliveries, so it renumbers them backwards.
        const seqs = apps.map((m: { seq: number }) => m.seq);
        const reordered = [...apps].reverse().map((m: object, i: number) => ({ ...m, seq: seqs[i] }));
        // The first one again, as a new delivery.
        const replay = { ...apps[0], seq: seqs[seqs.length - 1] + 1000 };
        return withJson(res, { ...body, messages: [...reordered, replay] });
      },
    };
    const events = await bob.client.sync();
    bob.relay.tamper = {};
    expect(bob.relay.rewrites).toBeGreaterThan(0);
    expect(texts(events)).toEqual(['three', 'two', 'one']);
    expect(events.filter((e) => e.kind === 'rejected')).toEqual([
      expect.objectContaining({ code: ErrorCode.E2EE_MLS_REJECTED }),
    ]);
  });

  /**
   * A tamper that removes from an inbox, for good, the application messages whose delivery order `drop` picks
   * (a relay that lost them: they never come again, whatever the cursor).
   */
  const dropApplication = (drop: (index: number) => boolean): Tamper => {
    let index = 0;
    const dropped = new Set<number>();
    return {
      response: (r, res) => {
        if (!r.path.startsWith('/v1/e2ee/inbox?') || res.status !== 200) return res;
        const body = json(res);
        const kept = body.messages.filter((m: { kind: string; seq: number }) => {
          if (m.kind !== 'application') return true;
          if (!dropped.has(m.seq) && drop(index++)) dropped.add(m.seq);
          return !dropped.has(m.seq);
        });
        return withJson(res, { ...body, messages: kept });
      },
    };
  };

  it('drops an application message: the rest are read, the hole is ERR_E2EE_MISSING_MESSAGES', async () => {
    const alice = await user('alice-gap');
    const bob = await user('bob-gap');
    const warnings: unknown[] = [];
    const bobWatched = await E2eeClient.open({
      transport: bob.relay,
      state: bob.client.state,
      onWarning: (w) => warnings.push(w),
    });
    const gid = await alice.client.createGroup();
    await alice.client.addMembers(gid, ['bob-gap']);
    await bobWatched.sync();
    const epoch = (await alice.client.epochAuthenticator(gid)).epoch;
    for (const m of ['one', 'two', 'three']) await alice.client.send(gid, utf8Encode(m));
    bob.relay.tamper = dropApplication((i) => i === 1);
    const events = await bobWatched.sync();
    bob.relay.tamper = {};
    expect(bob.relay.rewrites).toBeGreaterThan(0);
    expect(texts(events)).toEqual(['one', 'three']);
    const missing = {
      code: ErrorCode.E2EE_MISSING_MESSAGES,
      groupId: gid,
      sender: { user: 'alice-gap', device: 'd1' },
      epoch,
      from: 1,
      to: 1,
    };
    expect(events.filter((e) => e.kind === 'missing')).toEqual([{ kind: 'missing', ...missing }]);
    expect(warnings).toEqual([{ kind: 'messages-missing', ...missing }]);
    expect(await bobWatched.missingMessages(gid)).toEqual([
      { sender: missing.sender, epoch, from: 1, to: 1 },
    ]);
  });

  it('drops the last message of an epoch: caught at the sender’s first message of a later epoch', async () => {
    const alice = await user('alice-tail');
    const bob = await user('bob-tail');
    const gid = await alice.client.createGroup();
    await alice.client.addMembers(gid, ['bob-tail']);
    await bob.client.sync();
    const epoch = (await alice.client.epochAuthenticator(gid)).epoch;
    await alice.client.send(gid, utf8Encode('kept'));
    await alice.client.send(gid, utf8Encode('dropped'));
    bob.relay.tamper = dropApplication((i) => i === 1);
    const first = await bob.client.sync();
    expect(texts(first)).toEqual(['kept']);
    expect(first.filter((e) => e.kind === 'missing')).toEqual([]); // nothing to compare with yet

    await alice.client.updateKeys(gid);
    await alice.client.send(gid, utf8Encode('next epoch'));
    const later = await bob.client.sync();
    bob.relay.tamper = {};
    expect(bob.relay.rewrites).toBeGreaterThan(0);
    expect(texts(later)).toEqual(['next epoch']);
    expect(later.filter((e) => e.kind === 'missing')).toEqual([
      expect.objectContaining({ sender: { user: 'alice-tail', device: 'd1' }, epoch, from: 1, to: 1 }),
    ]);
  });

  it('names carol as the sender of alice’s message: the event names alice, and a warning says so', async () => {
    const alice = await user('alice-who');
    const bob = await user('bob-who');
    await user('carol-who');
    const gid = await alice.client.createGroup();
    await alice.client.addMembers(gid, ['bob-who', 'carol-who']);
    const warnings: { kind: string }[] = [];
    const bobWatched = await E2eeClient.open({
      transport: bob.relay,
      state: bob.client.state,
      onWarning: (w) => warnings.push(w),
    });
    await bobWatched.sync();
    await alice.client.send(gid, utf8Encode('from alice'));
    bob.relay.tamper = {
      response: (r, res) => {
        if (!r.path.startsWith('/v1/e2ee/inbox?') || res.status !== 200) return res;
        const body = json(res);
        const messages = body.messages.map((m: { kind: string }) =>
          m.kind === 'application' ? { ...m, sender: { user: 'carol-who', device: 'd1' } } : m,
        );
        return withJson(res, { ...body, messages });
      },
    };
    const events = await bobWatched.sync();
    bob.relay.tamper = {};
    expect(bob.relay.rewrites).toBeGreaterThan(0);
    const message = events.find((e) => e.kind === 'message');
    expect(message).toMatchObject({ sender: { user: 'alice-who', device: 'd1' } });
    expect(warnings).toEqual([
      expect.objectContaining({
        kind: 'sender-mismatch',
        claimed: { user: 'carol-who', device: 'd1' },
        sender: { user: 'alice-who', device: 'd1' },
      }),
    ]);
  });
});
