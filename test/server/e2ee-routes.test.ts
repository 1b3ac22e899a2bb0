/**
 * The e2ee routes end to end over the real app (HTTPS, dev mode, SQLite): enrolment, device login, the log and
 * its proofs, key packages, groups and commits, the inbox, blobs, revocation, and what device tokens may not do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64Encode } from '../../src/crypto/index.js';
import { decodeDirectoryEntry } from '../../src/e2ee/index.js';
import { encodeFrame } from '../../src/server/e2ee/index.js';
import { devServer } from './helpers.js';
import { TestUser, logView, newGroupId, requester, type Request } from './e2ee-helpers.js';

let ctx: Awaited<ReturnType<typeof devServer>>;
let call: Request;
let origin: string;
const alice = new TestUser('alice');
const bob = new TestUser('bob');
const frame = (text: string) => base64Encode(encodeFrame(new TextEncoder().encode(text)));

beforeAll(async () => {
  ctx = await devServer({ e2ee: { origin: 'test.example/enseal-e2ee' } });
  call = requester(ctx.server);
  origin = 'test.example/enseal-e2ee';
});
afterAll(async () => ctx.server.close());

describe('e2ee directory and log', () => {
  it('publishes its key and an empty checkpoint, publicly', async () => {
    const key = await call('GET', '/v1/e2ee/log/key');
    expect(key.status).toBe(200);
    expect(key.body).toMatchObject({ origin, witnesses: [], quorum: 0 });
    expect(key.body.verifier_key).toMatch(/^test\.example\/enseal-e2ee\+[0-9a-f]{8}\+/);
    const cp = await call('GET', '/v1/e2ee/log/checkpoint');
    expect(cp.status).toBe(200);
    expect(cp.headers['content-type']).toMatch(/^text\/plain/);
    expect(cp.text.split('\n').slice(0, 2)).toEqual([origin, '0']);
    (await logView(call)).update(cp.text);
  });

  it('enrols users with an application token, once; entries prove their inclusion', async () => {
    const r = await alice.enrol(call, ctx.token, 'phone');
    expect(r.status, r.text).toBe(200);
    expect(r.body.indexes).toEqual([0, 1, 2]);
    const view = await logView(call);
    view.update(r.body.checkpoint);
    expect((await alice.enrol(call, ctx.token, 'phone')).status).toBe(409);
    expect((await bob.enrol(call, ctx.token, 'laptop')).body.indexes).toEqual([3, 4, 5]);
    // No token, or a bad one: refused.
    expect((await new TestUser('carol').enrol(call, 'ens.nope', 'x')).status).toBe(403);

    const got = await call('GET', '/v1/e2ee/users/alice', { token: ctx.token });
    expect(got.status).toBe(200);
    const cons = await call('GET', `/v1/e2ee/log/proof/consistency?from=3&to=6`, { token: ctx.token });
    view.update(
      got.body.checkpoint,
      cons.body.proof.map((p: string) => Buffer.from(p, 'base64')),
    );
    const kinds = got.body.entries.map(
      (e: { index: number; entry: string; proof: string[] }) =>
        view.verifyEntry(
          new Uint8Array(Buffer.from(e.entry, 'base64')),
          e.index,
          e.proof.map((p) => new Uint8Array(Buffer.from(p, 'base64'))),
        ).kind,
    );
    expect(kinds).toEqual(['user-identity', 'device-added', 'mls-signature-key']);
    const entries = await call('GET', '/v1/e2ee/log/entries?start=0&end=6', { token: ctx.token });
    expect(
      entries.body.entries.map((e: string) => decodeDirectoryEntry(Buffer.from(e, 'base64')).userId),
    ).toEqual(['alice', 'alice', 'alice', 'bob', 'bob', 'bob']);
    expect((await call('GET', '/v1/e2ee/log/entries?start=0&end=7', { token: ctx.token })).status).toBe(400);
    const inc = await call('GET', '/v1/e2ee/log/proof/inclusion?index=4&size=6', { token: ctx.token });
    expect(inc.body.proof.length).toBeGreaterThan(0);
    expect((await call('GET', '/v1/e2ee/users/nobody', { token: ctx.token })).status).toBe(404);
  });

  it('refuses bodies that do not verify, before anything is appended', async () => {
    const before = (await call('GET', '/v1/e2ee/log/checkpoint')).text.split('\n')[1];
    const mallory = new TestUser('mallory');
    // A record signed by someone else's identity key.
    const forged = await call('POST', '/v1/e2ee/users/mallory', {
      token: ctx.token,
      body: {
        identity: mallory.identityBody(),
        device_record: mallory.recordBody('x', { kind: 'identity', privateKey: alice.identity.privateKey }),
        mls_binding: mallory.bindingBody('x'),
      },
    });
    expect(forged.status).toBe(400);
    expect(forged.body.errors[0]).toMatch(/ERR_E2EE_UNTRUSTED_IDENTITY/);
    // alice's identity entry filed for mallory.
    const stolen = await call('POST', '/v1/e2ee/users/mallory', {
      token: ctx.token,
      body: {
        identity: alice.identityBody(),
        device_record: mallory.recordBody('x'),
        mls_binding: mallory.bindingBody('x'),
      },
    });
    expect(stolen.status).toBe(400);
    const junk = await call('POST', '/v1/e2ee/users/mallory', {
      token: ctx.token,
      body: { identity: 'AAAA', device_record: 'AAAA', mls_binding: 'AAAA' },
    });
    expect(junk.status).toBe(400);
    const extra = await call('POST', '/v1/e2ee/users/mallory', {
      token: ctx.token,
      body: { identity: 'AAAA', x: 1 },
    });
    expect(extra.status).toBe(400);
    expect((await call('GET', '/v1/e2ee/log/checkpoint')).text.split('\n')[1]).toBe(before);
  });
});

describe('device login and device tokens', () => {
  it('logs a device in with its signature over a one-use challenge', async () => {
    const r = await alice.login(call, origin, 'phone');
    expect(r.status, r.text).toBe(200);
    expect(r.body.token).toMatch(/^ens\./);
    expect((await bob.login(call, origin, 'laptop')).status).toBe(200);
    // A wrong key, a wrong origin, an unknown device: refused.
    expect((await alice.login(call, origin, 'phone', bob.device('laptop').key)).status).toBe(403);
    expect((await alice.login(call, 'other.example/log', 'phone')).status).toBe(403);
    expect((await alice.login(call, origin, 'ghost')).status).toBe(403);
    // A challenge is used once.
    const c = await call('POST', '/v1/e2ee/auth/challenge', { body: { user: 'alice', device: 'phone' } });
    const { sign } = await import('../../src/crypto/index.js');
    const { deviceLoginMessage } = await import('../../src/e2ee/index.js');
    const sig = base64Encode(
      sign(
        'ed25519',
        alice.device('phone').key.privateKey,
        deviceLoginMessage(origin, 'alice', 'phone', Buffer.from(c.body.challenge, 'base64')),
      ),
    );
    const body = { user: 'alice', device: 'phone', challenge: c.body.challenge, signature: sig };
    expect((await call('POST', '/v1/e2ee/auth/login', { body })).status).toBe(200);
    expect((await call('POST', '/v1/e2ee/auth/login', { body })).status).toBe(403);
  });

  it('a device token reaches only e2ee routes, and only for its own user and device', async () => {
    const token = alice.device('phone').token!;
    expect((await call('GET', '/v1/e2ee/users/bob', { token })).status).toBe(200);
    expect((await call('GET', '/v1/transit/keys?list=true', { token })).status).toBe(403);
    expect((await call('GET', '/v1/auth/token/lookup-self', { token })).status).toBe(403);
    expect((await call('POST', '/v1/transit/keys/stolen', { token, body: {} })).status).toBe(403);
    // Enrolment needs an application token.
    expect((await new TestUser('carol').enrol(call, token, 'x')).status).toBe(403);
    // Another user's devices, another device's key packages: refused on what the router resolved.
    const evil = await call('POST', '/v1/e2ee/users/bob/devices', {
      token,
      body: { device_record: bob.recordBody('evil'), mls_binding: bob.bindingBody('evil') },
    });
    expect(evil.status).toBe(403);
    const other = await call('POST', '/v1/e2ee/users/alice/devices/tablet/key-packages', {
      token,
      body: { key_packages: [] },
    });
    expect(other.status).toBe(403);
    const bobs = await call('POST', '/v1/e2ee/users/bob/devices/laptop/key-packages', {
      token,
      body: { key_packages: [] },
    });
    expect(bobs.status).toBe(403);
    // Percent-encoded names resolve to the same checks.
    const enc = await call('POST', '/v1/e2ee/users/%62ob/devices/laptop/key-packages', {
      token,
      body: { key_packages: [] },
    });
    expect(enc.status).toBe(403);
  });

  it('key packages: checked on upload, handed out once, then the last-resort one', async () => {
    const token = alice.device('phone').token!;
    const upload = await call('POST', '/v1/e2ee/users/alice/devices/phone/key-packages', {
      token,
      body: {
        key_packages: [await alice.keyPackage('phone'), await alice.keyPackage('phone')],
        last_resort: await alice.keyPackage('phone', true),
      },
    });
    expect(upload.status, upload.text).toBe(200);
    expect(upload.body.stored).toBe(3);
    // A package signed by another key, or for another identity, is refused.
    const wrong = await call('POST', '/v1/e2ee/users/alice/devices/phone/key-packages', {
      token,
      body: { key_packages: [await bob.keyPackage('laptop')] },
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errors[0]).toMatch(/ERR_E2EE_UNTRUSTED_IDENTITY/);
    const notLast = await call('POST', '/v1/e2ee/users/alice/devices/phone/key-packages', {
      token,
      body: { key_packages: [await alice.keyPackage('phone', true)] },
    });
    expect(notLast.status).toBe(400);
    const claims = [];
    for (let i = 0; i < 3; i++) {
      const c = await call('POST', '/v1/e2ee/users/alice/key-packages/claim', {
        token: bob.device('laptop').token!,
      });
      expect(c.status, c.text).toBe(200);
      claims.push(c.body.key_packages[0]);
    }
    expect(claims.map((c) => [c.device, c.last_resort])).toEqual([
      ['phone', false],
      ['phone', false],
      ['phone', true],
    ]);
    expect(new Set(claims.map((c) => c.key_package)).size).toBe(3);
    // An application token cannot claim (claims need a device).
    expect((await call('POST', '/v1/e2ee/users/alice/key-packages/claim', { token: ctx.token })).status).toBe(
      403,
    );
  });
});

describe('recovery backups', () => {
  it("stores one opaque blob per user, written only by that user's devices, size-limited", async () => {
    const path = '/v1/e2ee/users/alice/recovery-blob';
    const token = alice.device('phone').token!;
    expect((await call('GET', path, { token })).status).toBe(404);
    const blob = base64Encode(new Uint8Array(2000).fill(7));
    const put = await call('PUT', path, { token, body: { blob } });
    expect(put.status, put.text).toBe(200);
    expect(put.body.size).toBe(2000);
    expect((await call('GET', path, { token })).body.blob).toBe(blob);
    // The device that restores a user has no device token yet: an application token reads it.
    expect((await call('GET', path, { token: ctx.token })).body.blob).toBe(blob);
    // Another user's device can neither read nor replace it; an application token cannot replace it either.
    const bobs = bob.device('laptop').token!;
    expect((await call('GET', path, { token: bobs })).status).toBe(403);
    expect((await call('PUT', path, { token: bobs, body: { blob: 'AAAA' } })).status).toBe(403);
    expect((await call('PUT', path, { token: ctx.token, body: { blob: 'AAAA' } })).status).toBe(403);
    expect((await call('GET', path)).status).toBe(403);
    // Too large, empty or not base64: refused, and the stored one stays.
    const big = base64Encode(new Uint8Array(16 * 1024 + 1));
    expect((await call('PUT', path, { token, body: { blob: big } })).status).toBe(400);
    expect((await call('PUT', path, { token, body: { blob: '' } })).status).toBe(400);
    expect((await call('PUT', path, { token, body: { blob: 'no!' } })).status).toBe(400);
    expect((await call('PUT', path, { token, body: { blob, extra: 1 } })).status).toBe(400);
    expect((await call('GET', path, { token })).body.blob).toBe(blob);
    // A later backup replaces the earlier one.
    const next = base64Encode(new Uint8Array(10).fill(8));
    expect((await call('PUT', path, { token, body: { blob: next } })).status).toBe(200);
    expect((await call('GET', path, { token })).body.blob).toBe(next);
  });
});

describe('relay', () => {
  const gid = newGroupId();
  const members = [
    { user: 'alice', device: 'phone' },
    { user: 'bob', device: 'laptop' },
  ];

  it('creates a group, orders commits (409 with the epoch for the loser), fans out', async () => {
    const a = alice.device('phone').token!;
    const b = bob.device('laptop').token!;
    expect(
      (await call('POST', '/v1/e2ee/groups', { token: a, body: { group_id: gid, roster: members } })).body,
    ).toEqual({
      epoch: 0,
    });
    expect(
      (await call('POST', '/v1/e2ee/groups', { token: a, body: { group_id: gid, roster: members } })).status,
    ).toBe(409);
    const notMine = await call('POST', '/v1/e2ee/groups', {
      token: a,
      body: { group_id: newGroupId(), roster: [members[1]] },
    });
    expect(notMine.status).toBe(400);
    const first = await call('POST', `/v1/e2ee/groups/${gid}/commits`, {
      token: a,
      body: { epoch: 0, commit: frame('commit by alice'), roster: members },
    });
    expect(first.status, first.text).toBe(200);
    expect(first.body.epoch).toBe(1);
    const lost = await call('POST', `/v1/e2ee/groups/${gid}/commits`, {
      token: b,
      body: { epoch: 0, commit: frame('commit by bob'), roster: members },
    });
    expect(lost.status).toBe(409);
    expect(lost.body.epoch).toBe(1);
    expect(lost.body.errors[0]).toMatch(/ERR_E2EE_CONFLICT/);
    const inbox = await call('GET', '/v1/e2ee/inbox?after=0', { token: b });
    expect(inbox.body.messages).toHaveLength(1);
    expect(inbox.body.messages[0]).toMatchObject({
      group_id: gid,
      epoch: 0,
      kind: 'commit',
      sender: members[0],
      seq: first.body.seq,
    });
    expect(Buffer.from(inbox.body.messages[0].frame, 'base64')).toEqual(
      Buffer.from(encodeFrame(new TextEncoder().encode('commit by alice'))),
    );
    // The sender does not get its own commit.
    expect((await call('GET', '/v1/e2ee/inbox', { token: a })).body.messages).toEqual([]);
    const commits = await call('GET', `/v1/e2ee/groups/${gid}/commits?after_epoch=0`, { token: b });
    expect(commits.body.epoch).toBe(1);
    expect(commits.body.commits.map((c: { epoch: number }) => c.epoch)).toEqual([0]);
  });

  it('long-polls the inbox until a message arrives, then acks', async () => {
    const a = alice.device('phone').token!;
    const b = bob.device('laptop').token!;
    const start = Date.now();
    const waiting = call('GET', '/v1/e2ee/inbox?after=0&wait=10', { token: a });
    await new Promise((r) => setTimeout(r, 300));
    const sent = await call('POST', `/v1/e2ee/groups/${gid}/messages`, {
      token: b,
      body: { epoch: 1, frame: frame('hello') },
    });
    expect(sent.status, sent.text).toBe(200);
    const got = await waiting;
    expect(Date.now() - start).toBeLessThan(5000);
    expect(got.body.messages.map((m: { seq: number; kind: string }) => [m.seq, m.kind])).toEqual([
      [sent.body.seq, 'application'],
    ]);
    const empty = Date.now();
    expect(
      (await call('GET', `/v1/e2ee/inbox?after=${sent.body.seq}&wait=1`, { token: a })).body.messages,
    ).toEqual([]);
    expect(Date.now() - empty).toBeGreaterThanOrEqual(900);
    expect(
      (await call('POST', '/v1/e2ee/inbox/ack', { token: a, body: { up_to: sent.body.seq } })).body.deleted,
    ).toBe(1);
    expect((await call('GET', '/v1/e2ee/inbox?after=0', { token: a })).body.messages).toEqual([]);
    expect((await call('GET', '/v1/e2ee/inbox?wait=31', { token: a })).status).toBe(400);
  });

  it('refuses frames with bad sizes, lengths or padding, and non-members', async () => {
    const a = alice.device('phone').token!;
    const good = encodeFrame(new TextEncoder().encode('x'));
    const bad = [
      new Uint8Array(255),
      new Uint8Array(300),
      (() => {
        const f = good.slice();
        f[200] = 1;
        return f;
      })(),
      (() => {
        const f = good.slice();
        new DataView(f.buffer).setUint32(0, 253);
        return f;
      })(),
      new Uint8Array(256),
    ];
    for (const f of bad) {
      const r = await call('POST', `/v1/e2ee/groups/${gid}/messages`, {
        token: a,
        body: { epoch: 1, frame: base64Encode(f) },
      });
      expect(r.status).toBe(400);
      expect(r.body.errors[0]).toMatch(/ERR_MALFORMED|ERR_INVALID_ARGUMENT/);
    }
    const carol = new TestUser('carol');
    await carol.enrol(call, ctx.token, 'pc');
    await carol.login(call, origin, 'pc');
    const c = carol.device('pc').token!;
    expect(
      (
        await call('POST', `/v1/e2ee/groups/${gid}/messages`, {
          token: c,
          body: { epoch: 1, frame: base64Encode(good) },
        })
      ).status,
    ).toBe(404);
    expect((await call('GET', `/v1/e2ee/groups/${gid}/commits?after_epoch=0`, { token: c })).status).toBe(
      404,
    );
    expect(
      (
        await call('POST', `/v1/e2ee/groups/${gid}/commits`, {
          token: c,
          body: { epoch: 1, commit: base64Encode(good), roster: members },
        })
      ).status,
    ).toBe(404);
    // An application token cannot post to the relay.
    expect(
      (
        await call('POST', `/v1/e2ee/groups/${gid}/messages`, {
          token: ctx.token,
          body: { epoch: 1, frame: base64Encode(good) },
        })
      ).status,
    ).toBe(403);
  });

  it('blobs: chunks in, complete, chunks out, for roster members only', async () => {
    const a = alice.device('phone').token!;
    const b = bob.device('laptop').token!;
    const created = await call('POST', `/v1/e2ee/groups/${gid}/blobs`, { token: a });
    expect(created.status, created.text).toBe(200);
    const id = created.body.blob_id;
    const chunk0 = new Uint8Array(100_000).fill(7);
    const chunk1 = new Uint8Array([1, 2, 3]);
    for (const [n, bytes] of [chunk0, chunk1].entries()) {
      const put = await call('PUT', `/v1/e2ee/blobs/${id}/chunks/${n}`, {
        token: a,
        bytes,
        contentType: 'application/octet-stream',
      });
      expect(put.status, put.text).toBe(200);
    }
    // JSON is not a chunk.
    expect((await call('PUT', `/v1/e2ee/blobs/${id}/chunks/2`, { token: a, body: { x: 1 } })).status).toBe(
      415,
    );
    expect((await call('GET', `/v1/e2ee/blobs/${id}`, { token: b })).status).toBe(409);
    expect(
      (await call('POST', `/v1/e2ee/blobs/${id}/complete`, { token: a, body: { chunks: 3 } })).status,
    ).toBe(409);
    expect(
      (await call('POST', `/v1/e2ee/blobs/${id}/complete`, { token: a, body: { chunks: 2 } })).body,
    ).toEqual({ chunks: 2, size: 100_003 });
    expect((await call('GET', `/v1/e2ee/blobs/${id}`, { token: b })).body).toEqual({
      chunks: 2,
      size: 100_003,
    });
    const got = await call('GET', `/v1/e2ee/blobs/${id}/chunks/0`, { token: b });
    expect(got.headers['content-type']).toBe('application/octet-stream');
    expect(new Uint8Array(got.bytes)).toEqual(chunk0);
    expect(
      (
        await call('PUT', `/v1/e2ee/blobs/${id}/chunks/2`, {
          token: a,
          bytes: chunk1,
          contentType: 'application/octet-stream',
        })
      ).status,
    ).toBe(409);
    expect((await call('GET', `/v1/e2ee/blobs/${id}/chunks/5`, { token: b })).status).toBe(404);
    expect((await call('GET', `/v1/e2ee/blobs/0123456789abcdef0123456789abcdef`, { token: b })).status).toBe(
      404,
    );
  });
});

describe('revocation', () => {
  it('ends the device tokens and its logins', async () => {
    const added = await call('POST', '/v1/e2ee/users/alice/devices', {
      token: alice.device('phone').token!,
      body: {
        device_record: alice.recordBody('tablet', {
          kind: 'device',
          deviceId: 'phone',
          privateKey: alice.device('phone').key.privateKey,
        }),
        mls_binding: alice.bindingBody('tablet'),
      },
    });
    expect(added.status, added.text).toBe(200);
    expect((await alice.login(call, origin, 'tablet')).status).toBe(200);
    const tablet = alice.device('tablet').token!;
    expect((await call('GET', '/v1/e2ee/inbox', { token: tablet })).status).toBe(200);
    const revoked = await call('POST', '/v1/e2ee/users/alice/revocations', {
      token: alice.device('phone').token!,
      body: {
        revocation: alice.revocationBody('tablet', {
          kind: 'recovery',
          privateKey: alice.recovery.privateKey,
        }),
      },
    });
    expect(revoked.status, revoked.text).toBe(200);
    await new Promise((r) => setTimeout(r, 1100)); // other nodes' token caches; this node cleared its own
    expect((await call('GET', '/v1/e2ee/inbox', { token: tablet })).status).toBe(403);
    expect((await alice.login(call, origin, 'tablet')).status).toBe(403);
    // Revoking twice is refused.
    const again = await call('POST', '/v1/e2ee/users/alice/revocations', {
      token: alice.device('phone').token!,
      body: { revocation: alice.revocationBody('tablet') },
    });
    expect(again.status).toBe(400);
  });

  it('audits e2ee operations without frames, keys or key packages', async () => {
    const audit = await call('GET', '/v1/sys/audit/export', { token: ctx.token });
    expect(audit.status).toBe(200);
    for (const op of [
      'e2ee.user.create',
      'e2ee.commit',
      'e2ee.message',
      'e2ee.key-packages.claim',
      'e2ee.device.revoke',
      'e2ee.blob.chunk',
      'e2ee.recovery-blob.put',
      'e2ee.recovery-blob.get',
    ])
      expect(audit.text).toContain(`"op":"${op}"`);
    expect(audit.text).not.toContain(frame('hello').slice(0, 40));
    expect(ctx.logs()).not.toContain(frame('hello').slice(0, 40));
    expect(audit.text).not.toContain(alice.identityBody().slice(0, 40));
  });
});

describe('queue TTL', () => {
  it('drops undelivered messages once they expire', async () => {
    const short = await devServer({ e2ee: { origin, queue_ttl: 1 } });
    try {
      const c = requester(short.server);
      const u = new TestUser('ttl');
      const v = new TestUser('ttl2');
      await u.enrol(c, short.token, 'a');
      await v.enrol(c, short.token, 'b');
      await u.login(c, origin, 'a');
      await v.login(c, origin, 'b');
      const g = newGroupId();
      const roster = [
        { user: 'ttl', device: 'a' },
        { user: 'ttl2', device: 'b' },
      ];
      await c('POST', '/v1/e2ee/groups', { token: u.device('a').token!, body: { group_id: g, roster } });
      const sent = await c('POST', `/v1/e2ee/groups/${g}/messages`, {
        token: u.device('a').token!,
        body: { epoch: 0, frame: frame('soon gone') },
      });
      expect(sent.status).toBe(200);
      expect((await c('GET', '/v1/e2ee/inbox', { token: v.device('b').token! })).body.messages).toHaveLength(
        1,
      );
      await new Promise((r) => setTimeout(r, 1100));
      expect((await c('GET', '/v1/e2ee/inbox', { token: v.device('b').token! })).body.messages).toEqual([]);
      // A long poll does not hold up a shutdown.
      const polling = c('GET', '/v1/e2ee/inbox?wait=30', { token: v.device('b').token! });
      await new Promise((r) => setTimeout(r, 300));
      const start = Date.now();
      await short.server.close();
      expect(Date.now() - start).toBeLessThan(5000);
      expect((await polling).status).toBe(200);
    } finally {
      await short.server.close();
    }
  });
});

describe('the log key', () => {
  it('cannot be created beforehand through transit, so the log makes its own', async () => {
    const other = await devServer({ e2ee: { origin } });
    try {
      const c = requester(other.server);
      const made = await c('POST', '/v1/transit/keys/enseal-e2ee-log', {
        token: other.token,
        body: { type: 'ed25519', exportable: true },
      });
      expect(made.status).toBe(403);
      expect(made.body.errors[0]).toMatch(/^ERR_KEY_RESERVED: /);
      const r = await new TestUser('x').enrol(c, other.token, 'd');
      expect(r.status, r.text).toBe(200);
      expect((await c('GET', '/v1/e2ee/log/checkpoint')).status).toBe(200);
    } finally {
      await other.server.close();
    }
  });
});
