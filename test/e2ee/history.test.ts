/**
 * History for members who join later, through a real `enseal serve`: in a group created with shared history,
 * the member that adds someone sends its kept messages and file keys to the new epoch, so the newcomer reads
 * the group's past (files included) and no one else is sent anything new; in a group without it, a newcomer
 * reads only what comes after it joined, and nobody keeps anything.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeTransport } from '../../src/client/index.js';
import { ErrorCode, randomBytes, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { checkHistoryJson } from '../../src/e2ee/client.js';
import {
  E2eeClient,
  EncryptedState,
  MemoryStateBackend,
  type E2eeEvent,
  type E2eeTransport,
  type E2eeWarning,
  type PinnedLogPolicy,
} from '../../src/e2ee/index.js';
import { codeOf } from '../helpers/errors.js';
import { devServer } from '../server/helpers.js';

let ctx: Awaited<ReturnType<typeof devServer>>;
let policy: PinnedLogPolicy;
const transports: NodeTransport[] = [];

async function user(name: string): Promise<E2eeClient> {
  const transport = new NodeTransport({ address: ctx.server.url, caCert: readFileSync(ctx.server.caFile!) });
  transports.push(transport);
  const state = await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) });
  return E2eeClient.register({
    transport,
    state,
    user: name,
    device: 'd1',
    applicationToken: ctx.token,
    policy,
  });
}

const texts = (events: readonly E2eeEvent[]) =>
  events.flatMap((e) => (e.kind === 'message' ? [utf8Decode(e.data)] : []));

async function collect(gen: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of gen) parts.push(p);
  return Buffer.concat(parts);
}

beforeAll(async () => {
  ctx = await devServer({ e2ee: { origin: 'history.test/e2ee' } });
  const key = (await ctx.call('GET', '/v1/e2ee/log/key')).body;
  policy = { origin: key.origin, logKey: key.verifier_key, witnesses: [], quorum: 0 };
});
afterAll(async () => {
  for (const t of transports) t.close();
  await ctx.server.close();
});

describe('history for members who join later', () => {
  it('shared history: the newcomer reads the past, files included; members already there get nothing new', async () => {
    const alice = await user('alice-h');
    const bob = await user('bob-h');
    const carol = await user('carol-h');
    const gid = await alice.createGroup({ history: 'shared' });
    await alice.addMembers(gid, ['bob-h']);
    await bob.sync();
    await alice.send(gid, utf8Encode('hello bob'));
    await bob.sync();
    await bob.send(gid, utf8Encode('hello alice'));
    const file = randomBytes(200_000);
    const shared = await bob.shareFile(gid, [file], 'notes.bin');
    await alice.sync();
    expect((await alice.history(gid)).map((h) => (h.data ? utf8Decode(h.data) : h.file?.name))).toEqual([
      'hello bob',
      'hello alice',
      'notes.bin',
    ]);

    await alice.addMembers(gid, ['carol-h']);
    const events = await carol.sync();
    const history = events.find((e) => e.kind === 'history');
    expect(history).toMatchObject({ kind: 'history', sender: { user: 'alice-h', device: 'd1' } });
    const entries = history!.kind === 'history' ? history!.entries : [];
    expect(entries.map((h) => [h.sender.user, h.data ? utf8Decode(h.data) : h.file?.name])).toEqual([
      ['alice-h', 'hello bob'],
      ['bob-h', 'hello alice'],
      ['bob-h', 'notes.bin'],
    ]);
    expect(entries.every((h) => h.sharedBy?.user === 'alice-h')).toBe(true);
    // The file shared before carol joined opens with the key that came in the bundle.
    const got = await collect(carol.fetchFile(shared.blobId));
    expect(createHash('sha256').update(got).digest('hex')).toBe(
      createHash('sha256').update(file).digest('hex'),
    );
    expect((await carol.history(gid)).length).toBe(3);

    // Bob was there before: the bundle is not for him.
    const bobEvents = await bob.sync();
    expect(bobEvents.filter((e) => e.kind === 'history')).toEqual([]);
    expect(bobEvents.filter((e) => e.kind === 'rejected')).toEqual([]);

    await bob.send(gid, utf8Encode('welcome carol'));
    expect(texts(await carol.sync())).toEqual(['welcome carol']);
    expect((await carol.history(gid)).map((h) => h.sharedBy === undefined)).toEqual([
      false,
      false,
      false,
      true,
    ]);
  });

  it('no shared history (the default): the newcomer reads only what comes after, and nothing is kept', async () => {
    const alice = await user('alice-n');
    const bob = await user('bob-n');
    const dave = await user('dave-n');
    const gid = await alice.createGroup();
    await alice.addMembers(gid, ['bob-n']);
    await bob.sync();
    await alice.send(gid, utf8Encode('before dave'));
    expect(texts(await bob.sync())).toEqual(['before dave']);
    expect(await alice.history(gid)).toEqual([]);
    expect(await bob.history(gid)).toEqual([]);

    await alice.addMembers(gid, ['dave-n']);
    await alice.send(gid, utf8Encode('after dave'));
    const events = await dave.sync();
    expect(events.filter((e) => e.kind === 'history')).toEqual([]);
    expect(texts(events)).toEqual(['after dave']);
    expect(await dave.history(gid)).toEqual([]);
  });

  it('a failure to send the past is a warning, and the members are still added', async () => {
    const inner = new NodeTransport({ address: ctx.server.url, caCert: readFileSync(ctx.server.caFile!) });
    transports.push(inner);
    let failBlobs = false;
    const transport: E2eeTransport = {
      request: (r) =>
        failBlobs && r.method === 'POST' && r.path.endsWith('/blobs')
          ? Promise.resolve({
              status: 503,
              contentType: 'application/json',
              body: utf8Encode('{"errors":["unavailable"]}'),
            })
          : inner.request(r),
    };
    const warnings: E2eeWarning[] = [];
    const state = await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) });
    const alice = await E2eeClient.register({
      transport,
      state,
      user: 'alice-f',
      device: 'd1',
      applicationToken: ctx.token,
      policy,
      onWarning: (w) => warnings.push(w),
    });
    const bob = await user('bob-f');
    const gid = await alice.createGroup({ history: 'shared' });
    await alice.send(gid, utf8Encode('kept'));
    failBlobs = true;
    expect(await alice.addMembers(gid, ['bob-f'])).toBe(1);
    failBlobs = false;
    expect(warnings).toEqual([{ kind: 'history-not-shared', groupId: gid, code: expect.any(String) }]);
    expect((await alice.members(gid)).map((m) => m.user).sort()).toEqual(['alice-f', 'bob-f']);
    await alice.send(gid, utf8Encode('after'));
    const events = await bob.sync();
    expect(events.filter((e) => e.kind === 'history')).toEqual([]);
    expect(texts(events)).toEqual(['after']);
  });

  it('a bundle entry written by another member is checked field by field', () => {
    const good = { u: 'a', d: 'b', e: 1, at: 2, m: 'aGk=' };
    expect(checkHistoryJson(good)).toEqual(good);
    fc.assert(
      fc.property(fc.anything(), (value) => {
        expect(['no error', ErrorCode.MALFORMED]).toContain(codeOf(() => checkHistoryJson(value)));
      }),
    );
    for (const bad of [
      { ...good, m: undefined },
      { ...good, f: { b: 'x', e: 1, s: 1, n: '' } },
      { ...good, u: '' },
      { ...good, e: -1 },
      { ...good, f: { b: 'x', e: 1, s: 1.5, n: '' }, m: undefined },
    ])
      expect(codeOf(() => checkHistoryJson(bad))).toBe(ErrorCode.MALFORMED);
  });
});
