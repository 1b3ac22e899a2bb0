/**
 * The batch send route (`POST /v1/e2ee/messages`) over the real app (HTTPS, dev mode, SQLite): several messages
 * for several groups in one request, each answered on its own; a device cannot slip a message into a group it is
 * not in among messages for its own; rate limits count messages, not requests; size limits; one audit entry
 * per batch; and random or mutated bodies get a 4xx, never a 5xx.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64Encode, base64UrlDecode, ErrorCode } from '../../src/crypto/index.js';
import { E2eeApi, type E2eeTransport } from '../../src/e2ee/index.js';
import { encodeFrame } from '../../src/server/e2ee/index.js';
import { devServer } from './helpers.js';
import { TestUser, newGroupId, requester, type Request } from './e2ee-helpers.js';

const origin = 'batch.example/enseal-e2ee';
let ctx: Awaited<ReturnType<typeof devServer>>;
let call: Request;
const alice = new TestUser('alice');
const bob = new TestUser('bob');
const mallory = new TestUser('mallory');
const frame = (text: string) => base64Encode(encodeFrame(new TextEncoder().encode(text)));
const text = (b64: string) => {
  const f = Buffer.from(b64, 'base64');
  return f.subarray(4, 4 + f.readUInt32BE(0)).toString();
};
/** Alice and Bob's group, Bob's own group, and Mallory's group with Alice. */
const ab = newGroupId();
const bobOnly = newGroupId();
const ma = newGroupId();
const AP = { user: 'alice', device: 'phone' };
const BL = { user: 'bob', device: 'laptop' };
const MX = { user: 'mallory', device: 'x' };
let at: string;
let bt: string;
let mt: string;

async function inbox(token: string, after = 0) {
  const r = await call('GET', `/v1/e2ee/inbox?after=${after}&wait=0`, { token });
  expect(r.status, r.text).toBe(200);
  return r.body.messages as { seq: number; group_id: string; kind: string; frame: string }[];
}

beforeAll(async () => {
  ctx = await devServer({ e2ee: { origin } });
  call = requester(ctx.server);
  for (const [u, d] of [
    [alice, 'phone'],
    [bob, 'laptop'],
    [mallory, 'x'],
  ] as const) {
    expect((await u.enrol(call, ctx.token, d)).status).toBe(200);
    expect((await u.login(call, origin, d)).status).toBe(200);
  }
  at = alice.device('phone').token!;
  bt = bob.device('laptop').token!;
  mt = mallory.device('x').token!;
  for (const [token, gid, roster] of [
    [at, ab, [AP, BL]],
    [bt, bobOnly, [BL, AP]],
    [mt, ma, [MX, AP]],
  ] as const) {
    const r = await call('POST', '/v1/e2ee/groups', { token, body: { group_id: gid, roster } });
    expect(r.status, r.text).toBe(200);
  }
  // Bob's group leaves Alice at epoch 1 (the roster is Bob alone): she is no longer in it.
  const c = await call('POST', `/v1/e2ee/groups/${bobOnly}/commits`, {
    token: bt,
    body: { epoch: 0, commit: frame('drop alice'), roster: [BL] },
  });
  expect(c.status, c.text).toBe(200);
  // Clear the inboxes of the commit fan-out.
  for (const t of [at, bt, mt]) {
    const got = await inbox(t);
    if (got.length > 0)
      await call('POST', '/v1/e2ee/inbox/ack', { token: t, body: { up_to: got.at(-1)!.seq } });
  }
});
afterAll(async () => ctx.server.close());

describe('POST /v1/e2ee/messages', () => {
  it('queues messages for several groups in order, each with its own seq', async () => {
    const r = await call('POST', '/v1/e2ee/messages', {
      token: at,
      body: {
        messages: [
          { group_id: ab, epoch: 0, frame: frame('one') },
          { group_id: ma, epoch: 0, frame: frame('to mallory') },
          { group_id: ab, epoch: 0, frame: frame('two') },
        ],
      },
    });
    expect(r.status, r.text).toBe(200);
    const seqs = r.body.results.map((x: { seq: number }) => x.seq);
    expect(seqs).toHaveLength(3);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    const bobs = await inbox(bt);
    expect(bobs.map((m) => [m.seq, m.group_id, m.kind, text(m.frame)])).toEqual([
      [seqs[0], ab, 'application', 'one'],
      [seqs[2], ab, 'application', 'two'],
    ]);
    expect((await inbox(mt)).map((m) => text(m.frame))).toEqual(['to mallory']);
    // The sender is not queued its own messages.
    expect(await inbox(at)).toEqual([]);
    for (const [t, m] of [
      [bt, bobs],
      [mt, await inbox(mt)],
    ] as const)
      await call('POST', '/v1/e2ee/inbox/ack', { token: t, body: { up_to: m.at(-1)!.seq } });
  });

  it('attack: a message for a group the device is not in, among its own, is refused alone and queued nowhere', async () => {
    // Mallory is in `ma` only. She tries Alice and Bob's group, and Bob's group, between two of her own.
    const before = await inbox(bt);
    const r = await call('POST', '/v1/e2ee/messages', {
      token: mt,
      body: {
        messages: [
          { group_id: ma, epoch: 0, frame: frame('hers 1') },
          { group_id: ab, epoch: 0, frame: frame('forged into ab') },
          { group_id: bobOnly, epoch: 1, frame: frame('forged into bob') },
          { group_id: ma, epoch: 0, frame: frame('hers 2') },
          { group_id: newGroupId(), epoch: 0, frame: frame('no such group') },
        ],
      },
    });
    expect(r.status, r.text).toBe(200);
    const [ok1, ab1, bob1, ok2, none] = r.body.results;
    expect(ok1.seq).toBeTypeOf('number');
    expect(ok2.seq).toBeTypeOf('number');
    for (const refused of [ab1, bob1, none]) {
      expect(refused.seq).toBeUndefined();
      expect(refused.status).toBe(404);
      expect(refused.error).toMatch(/^ERR_E2EE_NOT_FOUND: /);
    }
    // The same 404 for a group that exists and one that does not: no membership oracle.
    expect(ab1.error).toBe(none.error);
    expect(await inbox(bt)).toEqual(before);
    const alices = await inbox(at);
    expect(alices.map((m) => [m.group_id, text(m.frame)])).toEqual([
      [ma, 'hers 1'],
      [ma, 'hers 2'],
    ]);
    await call('POST', '/v1/e2ee/inbox/ack', { token: at, body: { up_to: alices.at(-1)!.seq } });
    // Alice was in Bob's group at epoch 0 and is not any more: her old membership does not count either.
    const late = await call('POST', '/v1/e2ee/messages', {
      token: at,
      body: { messages: [{ group_id: bobOnly, epoch: 0, frame: frame('after removal') }] },
    });
    expect(late.body.results[0].status).toBe(404);
    expect(await inbox(bt)).toEqual(before);
  });

  it('an epoch ahead of the group is refused for that item alone', async () => {
    const r = await call('POST', '/v1/e2ee/messages', {
      token: bt,
      body: {
        messages: [
          { group_id: ab, epoch: 5, frame: frame('future') },
          { group_id: ab, epoch: 0, frame: frame('now') },
        ],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.results[0]).toMatchObject({ status: 400 });
    expect(r.body.results[0].error).toMatch(/^ERR_INVALID_ARGUMENT: epoch 5 is ahead/);
    const got = await inbox(at);
    expect(got.map((m) => text(m.frame))).toEqual(['now']);
    await call('POST', '/v1/e2ee/inbox/ack', { token: at, body: { up_to: got.at(-1)!.seq } });
  });

  it('refuses malformed batches whole: nothing is queued', async () => {
    const bad = [
      {},
      { messages: [] },
      { messages: Array.from({ length: 65 }, () => ({ group_id: ab, epoch: 0, frame: frame('x') })) },
      {
        messages: [
          { group_id: ab, epoch: 0, frame: frame('ok') },
          { group_id: ab, epoch: 0 },
        ],
      },
      // A frame whose padding is not zero, after a good one.
      {
        messages: [
          { group_id: ab, epoch: 0, frame: frame('ok') },
          { group_id: ab, epoch: 0, frame: base64Encode(new Uint8Array(256).fill(1)) },
        ],
      },
      { messages: [{ group_id: 'short', epoch: 0, frame: frame('ok') }] },
      { messages: [{ group_id: ab, epoch: -1, frame: frame('ok') }] },
      { messages: [{ group_id: ab, epoch: 0, frame: frame('ok'), extra: 1 }] },
    ];
    for (const body of bad) {
      const r = await call('POST', '/v1/e2ee/messages', { token: at, body });
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
    }
    // Frames over 8 MiB in total: three of 4 MiB.
    const big = base64Encode(encodeFrame(new Uint8Array(3 * 1024 * 1024)));
    const r = await call('POST', '/v1/e2ee/messages', {
      token: at,
      body: { messages: [0, 1, 2].map(() => ({ group_id: ab, epoch: 0, frame: big })) },
    });
    expect([400, 413]).toContain(r.status);
    expect(await inbox(bt)).toEqual([]);
  });

  it('needs a device token', async () => {
    const body = { messages: [{ group_id: ab, epoch: 0, frame: frame('x') }] };
    expect((await call('POST', '/v1/e2ee/messages', { body })).status).toBe(403);
    expect((await call('POST', '/v1/e2ee/messages', { token: ctx.token, body })).status).toBe(403);
  });

  it('writes one audit entry per batch naming the count and groups, and one denial per refused item', async () => {
    const audit = await call('GET', '/v1/sys/audit/export', { token: ctx.token });
    expect(audit.status).toBe(200);
    const entries = audit.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { op: string; outcome: string; detail?: Record<string, unknown> });
    const batches = entries.filter((e) => e.op === 'e2ee.messages');
    expect(batches[0]!.detail).toMatchObject({ messages: 3, refused: 0 });
    expect(String(batches[0]!.detail!.groups).split(',').sort()).toEqual([ab, ma].sort());
    expect(batches[1]!.detail).toMatchObject({ messages: 2, refused: 3, groups: ma });
    expect(entries.filter((e) => e.op === 'e2ee.message' && e.outcome === 'denied').length).toBe(3 + 1 + 1);
    expect(audit.text).not.toContain(frame('hers 1').slice(0, 40));
  });

  it('E2eeApi.postMessages answers a seq or a typed error per message', async () => {
    const transport: E2eeTransport = {
      request: async (req) => {
        const r = await call(req.method, req.path, {
          ...(req.token === undefined ? {} : { token: req.token }),
          ...(req.json === undefined ? {} : { body: req.json }),
        });
        return { status: r.status, contentType: String(r.headers['content-type'] ?? ''), body: r.bytes };
      },
    };
    const api = new E2eeApi(transport);
    const enc = (s: string) => encodeFrame(new TextEncoder().encode(s));
    const out = await api.postMessages(at, [
      { groupId: base64UrlDecode(ab, 'gid'), epoch: 0, frame: enc('api 1') },
      { groupId: base64UrlDecode(bobOnly, 'gid'), epoch: 0, frame: enc('api 2') },
    ]);
    expect('seq' in out[0]!).toBe(true);
    expect('error' in out[1]! && out[1].error.code).toBe(ErrorCode.E2EE_NOT_FOUND);
    const got = await inbox(bt);
    expect(got.map((m) => text(m.frame))).toEqual(['api 1']);
    await call('POST', '/v1/e2ee/inbox/ack', { token: bt, body: { up_to: got.at(-1)!.seq } });
  });

  it('random and mutated bodies: a 2xx or a 4xx, never a 5xx', async () => {
    const good = { messages: [{ group_id: ab, epoch: 0, frame: frame('p') }] };
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.constant(ab),
      fc.constant(frame('q')),
      fc.array(fc.anything(), { maxLength: 3 }),
    );
    const item = fc.record(
      { group_id: value, epoch: value, frame: value, extra: value },
      { requiredKeys: [] },
    );
    const body = fc.oneof(
      fc.anything(),
      fc.record({ messages: fc.oneof(value, fc.array(item, { maxLength: 70 })) }, { requiredKeys: [] }),
      // A valid body with one field of one item replaced.
      fc
        .tuple(fc.constantFrom('group_id', 'epoch', 'frame'), value)
        .map(([k, v]) => ({ messages: [{ ...good.messages[0], [k]: v }] })),
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const r = await call('POST', '/v1/e2ee/messages', { token: bt, body: b });
        expect(r.status, r.text).toBeLessThan(500);
        if (r.status === 200) expect(Array.isArray(r.body.results)).toBe(true);
        else expect(r.body.errors).toBeInstanceOf(Array);
      }),
      { numRuns: 150 },
    );
    // A valid body with bytes flipped in its JSON text: still never a 5xx.
    const raw = JSON.stringify(good);
    await fc.assert(
      fc.asyncProperty(fc.nat(raw.length - 1), fc.integer({ min: 1, max: 127 }), async (at2, v) => {
        const mutated = Buffer.from(raw);
        mutated[at2] = mutated[at2]! ^ v;
        const r = await call('POST', '/v1/e2ee/messages', {
          token: bt,
          bytes: mutated,
          contentType: 'application/json',
        });
        expect(r.status, r.text).toBeLessThan(500);
      }),
      { numRuns: 100 },
    );
  });
});

describe('batch rate limit', () => {
  it('counts every message of a batch, not the request', async () => {
    const limited = await devServer({ e2ee: { origin }, rateLimitPerMinute: 10 });
    try {
      const c = requester(limited.server);
      const carol = new TestUser('carol');
      const dave = new TestUser('dave');
      // Enrolment and login are requests too: keep count (each user: enrol + challenge + login).
      expect((await carol.enrol(c, limited.token, 'a')).status).toBe(200);
      expect((await dave.enrol(c, limited.token, 'b')).status).toBe(200);
      expect((await carol.login(c, origin, 'a')).status).toBe(200);
      const ct = carol.device('a').token!;
      const gid = newGroupId();
      const roster = [
        { user: 'carol', device: 'a' },
        { user: 'dave', device: 'b' },
      ];
      expect(
        (await c('POST', '/v1/e2ee/groups', { token: ct, body: { group_id: gid, roster } })).status,
      ).toBe(200);
      // Carol's token has made 1 request; a batch of 8 makes 9, within 10.
      const eight = Array.from({ length: 8 }, (_, i) => ({ group_id: gid, epoch: 0, frame: frame(`m${i}`) }));
      const first = await c('POST', '/v1/e2ee/messages', { token: ct, body: { messages: eight } });
      expect(first.status, first.text).toBe(200);
      // Two more messages would make 11: refused whole, although it is only the third request.
      const two = eight.slice(0, 2);
      const second = await c('POST', '/v1/e2ee/messages', { token: ct, body: { messages: two } });
      expect(second.status).toBe(429);
      expect(second.body.errors[0]).toMatch(/rate limit/);
    } finally {
      await limited.server.close();
    }
  });
});
