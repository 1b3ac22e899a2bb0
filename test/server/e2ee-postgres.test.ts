/**
 * The e2ee service on PostgreSQL with two app instances sharing the store: the core flows, racing commits for
 * one epoch (exactly one wins, the others get 409, no fork), racing key-package claims (never the same package
 * twice), racing directory appends (one log, consistent checkpoints), and an inbox on one node woken by a
 * message queued on the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64Encode } from '../../src/crypto/index.js';
import { encodeFrame } from '../../src/server/e2ee/index.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { devServer } from './helpers.js';
import { TestUser, logView, newGroupId, requester, type Request } from './e2ee-helpers.js';

const origin = 'pg.example/enseal-e2ee';
let pg: TestPostgres | undefined;
let nodes: Awaited<ReturnType<typeof devServer>>[] = [];
let a: Request;
let b: Request;
let token: string;
const alice = new TestUser('alice');
const bob = new TestUser('bob');
const frame = (text: string) => base64Encode(encodeFrame(new TextEncoder().encode(text)));

beforeAll(async () => {
  pg = await startPostgres();
  if (!pg) return;
  const storage = await pg.database('e2ee_nodes');
  const first = await devServer({ storage, e2ee: { origin } });
  const second = await devServer({ storage, e2ee: { origin } });
  nodes = [first, second];
  a = requester(first.server);
  b = requester(second.server);
  token = first.token;
});
afterAll(async () => {
  for (const n of nodes) await n.server.close();
  await pg?.stop();
});

describe('e2ee on PostgreSQL, two nodes', () => {
  it('core flows: enrol, log in, group, commit, message, inbox, blob', async () => {
    if (!pg) return;
    expect((await alice.enrol(a, token, 'phone')).status).toBe(200);
    expect((await bob.enrol(b, token, 'laptop')).status).toBe(200);
    expect((await alice.login(a, origin, 'phone')).status).toBe(200);
    expect((await bob.login(b, origin, 'laptop')).status).toBe(200);
    const gid = newGroupId();
    const roster = [
      { user: 'alice', device: 'phone' },
      { user: 'bob', device: 'laptop' },
    ];
    const at = alice.device('phone').token!;
    const bt = bob.device('laptop').token!;
    expect((await a('POST', '/v1/e2ee/groups', { token: at, body: { group_id: gid, roster } })).status).toBe(
      200,
    );
    const c = await b('POST', `/v1/e2ee/groups/${gid}/commits`, {
      token: bt,
      body: { epoch: 0, commit: frame('c0'), roster },
    });
    expect(c.status, c.text).toBe(200);
    // A long poll on node A wakes for a message queued through node B.
    const waiting = a('GET', `/v1/e2ee/inbox?after=${c.body.seq}&wait=10`, { token: at });
    await new Promise((r) => setTimeout(r, 300));
    const sent = await b('POST', `/v1/e2ee/groups/${gid}/messages`, {
      token: bt,
      body: { epoch: 1, frame: frame('hi') },
    });
    expect(sent.status).toBe(200);
    const got = await waiting;
    expect(got.body.messages.map((m: { seq: number }) => m.seq)).toEqual([sent.body.seq]);
    const blob = await a('POST', `/v1/e2ee/groups/${gid}/blobs`, { token: at });
    const put = await b('PUT', `/v1/e2ee/blobs/${blob.body.blob_id}/chunks/0`, {
      token: bt,
      bytes: new Uint8Array([9, 9, 9]),
      contentType: 'application/octet-stream',
    });
    expect(put.status).toBe(200);
    expect(
      (await a('POST', `/v1/e2ee/blobs/${blob.body.blob_id}/complete`, { token: at, body: { chunks: 1 } }))
        .body.size,
    ).toBe(3);
    expect([
      ...(await b('GET', `/v1/e2ee/blobs/${blob.body.blob_id}/chunks/0`, { token: bt })).bytes,
    ]).toEqual([9, 9, 9]);
  });

  it('racing commits for one epoch: exactly one wins, every other gets 409 with the new epoch', async () => {
    if (!pg) return;
    const gid = newGroupId();
    const roster = [
      { user: 'alice', device: 'phone' },
      { user: 'bob', device: 'laptop' },
    ];
    const at = alice.device('phone').token!;
    const bt = bob.device('laptop').token!;
    expect((await a('POST', '/v1/e2ee/groups', { token: at, body: { group_id: gid, roster } })).status).toBe(
      200,
    );
    const attempts = Array.from({ length: 12 }, (_, i) =>
      (i % 2 ? a : b)('POST', `/v1/e2ee/groups/${gid}/commits`, {
        token: i % 3 ? at : bt,
        body: { epoch: 0, commit: frame(`commit ${i}`), roster },
      }),
    );
    const replies = await Promise.all(attempts);
    expect(replies.filter((r) => r.status === 200)).toHaveLength(1);
    const losers = replies.filter((r) => r.status !== 200);
    expect(losers.every((r) => r.status === 409 && r.body.epoch === 1)).toBe(true);
    const commits = await b('GET', `/v1/e2ee/groups/${gid}/commits?after_epoch=0`, { token: bt });
    expect(commits.body.epoch).toBe(1);
    expect(commits.body.commits).toHaveLength(1);
  });

  it("batch sends on both nodes: per-item roster checks, seqs in order, each node answers the other node's", async () => {
    if (!pg) return;
    const at = alice.device('phone').token!;
    const bt = bob.device('laptop').token!;
    const both = newGroupId();
    const bobs = newGroupId();
    const roster = [
      { user: 'alice', device: 'phone' },
      { user: 'bob', device: 'laptop' },
    ];
    for (const [gid, r] of [
      [both, roster],
      [bobs, roster.slice(1)],
    ] as const)
      expect(
        (await b('POST', '/v1/e2ee/groups', { token: bt, body: { group_id: gid, roster: r } })).status,
      ).toBe(200);
    const start = (await a('GET', '/v1/e2ee/inbox?after=0&wait=0', { token: at })).body.messages;
    const after = start.length > 0 ? start[start.length - 1].seq : 0;
    // Batches from both nodes at once; Alice's items for Bob's own group are refused on either node.
    const replies = await Promise.all(
      [a, b, a, b].map((node, k) =>
        node('POST', '/v1/e2ee/messages', {
          token: k % 2 ? bt : at,
          body: {
            messages: [
              { group_id: both, epoch: 0, frame: frame(`${k}.0`) },
              { group_id: bobs, epoch: 0, frame: frame(`${k}.x`) },
              { group_id: both, epoch: 0, frame: frame(`${k}.1`) },
            ],
          },
        }),
      ),
    );
    for (const [k, r] of replies.entries()) {
      expect(r.status, r.text).toBe(200);
      const [x, y, z] = r.body.results;
      expect(x.seq).toBeLessThan(z.seq);
      if (k % 2 === 0) expect(y).toMatchObject({ status: 404 });
      else expect(y.seq).toBeTypeOf('number');
    }
    const text = (m: { frame: string }) => {
      const f = Buffer.from(m.frame, 'base64');
      return f.subarray(4, 4 + f.readUInt32BE(0)).toString();
    };
    // Alice gets Bob's batches (both groups' items for her group only), on either node, in seq order.
    for (const node of [a, b]) {
      const got = (await node('GET', `/v1/e2ee/inbox?after=${after}&wait=0`, { token: at })).body.messages;
      expect(got.map(text)).toEqual(
        [replies[1]!, replies[3]!]
          .flatMap((r, i) => [
            { seq: r.body.results[0].seq, t: `${2 * i + 1}.0` },
            { seq: r.body.results[2].seq, t: `${2 * i + 1}.1` },
          ])
          .sort((x, y) => x.seq - y.seq)
          .map((x) => x.t),
      );
    }
  });

  it('racing key-package claims never hand out the same package twice', async () => {
    if (!pg) return;
    const at = alice.device('phone').token!;
    const bt = bob.device('laptop').token!;
    const packages = await Promise.all(Array.from({ length: 10 }, () => bob.keyPackage('laptop')));
    const up = await b('POST', '/v1/e2ee/users/bob/devices/laptop/key-packages', {
      token: bt,
      body: { key_packages: packages, last_resort: await bob.keyPackage('laptop', true) },
    });
    expect(up.status, up.text).toBe(200);
    const claims = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        (i % 2 ? a : b)('POST', '/v1/e2ee/users/bob/key-packages/claim', { token: at }),
      ),
    );
    const got = claims.map((c) => c.body.key_packages[0] as { key_package: string; last_resort: boolean });
    const oneTime = got.filter((k) => !k.last_resort).map((k) => k.key_package);
    expect(oneTime).toHaveLength(10);
    expect(new Set(oneTime).size).toBe(10);
    expect(got.filter((k) => k.last_resort)).toHaveLength(6);
  });

  it('racing enrolments on both nodes extend one log; checkpoints from both are consistent', async () => {
    if (!pg) return;
    const users = Array.from({ length: 8 }, (_, i) => new TestUser(`u${i}`));
    const replies = await Promise.all(users.map((u, i) => u.enrol(i % 2 ? a : b, token, 'd')));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const indexes = replies.flatMap((r) => r.body.indexes as number[]).sort((x, y) => x - y);
    expect(new Set(indexes).size).toBe(indexes.length);
    const view = await logView(a);
    const notes = [
      ...replies.map((r) => r.body.checkpoint as string),
      (await b('GET', '/v1/e2ee/log/checkpoint')).text,
    ];
    const size = (n: string) => Number(n.split('\n')[1]);
    notes.sort((x, y) => size(x) - size(y));
    for (const note of notes) {
      const from = view.latest?.checkpoint.size ?? 0;
      const proof =
        from === 0 || from === size(note)
          ? []
          : (
              await a('GET', `/v1/e2ee/log/proof/consistency?from=${from}&to=${size(note)}`, { token })
            ).body.proof.map((p: string) => new Uint8Array(Buffer.from(p, 'base64')));
      view.update(note, proof); // a fork would throw SplitViewError
    }
    expect(view.latest!.checkpoint.size).toBe(indexes[indexes.length - 1]! + 1);
  });
});
