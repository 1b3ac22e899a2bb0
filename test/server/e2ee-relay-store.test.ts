/**
 * The relay never holds plaintext or group secrets. Three devices form a real MLS group through the routes,
 * exchange application messages carrying a random marker (several sizes, one just past a bucket boundary),
 * commit once more, and share a small blob encrypted under a key exported from the group. Then everything the
 * store holds is searched for the marker (as UTF-8, hex and base64) and for the group's secrets (the key
 * schedule of each epoch, exporter outputs, the blob key): the SQLite file and its WAL as bytes, and every
 * table of the PostgreSQL schema dumped both as values and as row text. Stored frames must be bucket sizes.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64Encode, base64UrlEncode, randomBytes } from '../../src/crypto/index.js';
import {
  MlsClient,
  mlsIdentityOf,
  type MlsGroup,
  type MlsKeyPackage,
  type PendingCommit,
} from '../../src/e2ee/index.js';
import { checkFrame, encodeFrame, isFrameBucket } from '../../src/server/e2ee/index.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../kms/helpers.js';
import { devServer } from './helpers.js';
import { TestUser, requester, type Request } from './e2ee-helpers.js';

const origin = 'store.example/enseal-e2ee';
/** The message length whose frame (length + 4 bytes) is one byte past the 1 KiB bucket: framed in 2 KiB. */
const BOUNDARY_MESSAGE_BYTES = 1024 - 4 + 1;

interface Member {
  readonly user: TestUser;
  readonly device: string;
  readonly token: string;
  kp?: MlsKeyPackage;
  group?: MlsGroup;
  after: number;
  buffered: { seq: number; kind: string; epoch: number; frame: string }[];
}

interface Needle {
  readonly label: string;
  readonly bytes: Buffer;
}

/** Every form in which `bytes` could sit in a store: raw, hex, and base64 / base64url at each 3-byte shift. */
function forms(label: string, bytes: Uint8Array): Needle[] {
  const b = Buffer.from(bytes);
  const out: Needle[] = [
    { label: `${label} (raw)`, bytes: b },
    { label: `${label} (hex)`, bytes: Buffer.from(b.toString('hex')) },
  ];
  for (let k = 0; k < 3; k++) {
    const run = b.subarray(k, k + Math.floor((b.length - k) / 3) * 3);
    out.push({ label: `${label} (base64, shift ${k})`, bytes: Buffer.from(run.toString('base64')) });
    out.push({ label: `${label} (base64url, shift ${k})`, bytes: Buffer.from(run.toString('base64url')) });
  }
  return out;
}

const found = (haystack: Buffer, needles: readonly Needle[]) =>
  needles.filter((n) => haystack.includes(n.bytes)).map((n) => n.label);

const unframe = (frame: Uint8Array) => frame.subarray(4, 4 + checkFrame(frame));

/** What one run through the routes left for the checks. */
interface Exchanged {
  readonly marker: Needle[];
  readonly secrets: Needle[];
  /** The frames of the application messages, as sent. */
  readonly applicationFrames: Uint8Array[];
}

/**
 * alice, bob and carol enrol, log in, publish key packages; alice forms the group; messages of several sizes
 * go out and are decrypted by the others; bob commits; a blob goes up and comes back. Everything checked on
 * the way (each plaintext arrives intact), so the search afterwards looks at a store that did its job.
 */
async function exchange(call: Request, appToken: string): Promise<Exchanged> {
  const markerText = `PLAINTEXT-MARKER-${base64UrlEncode(randomBytes(18))}`;
  const markerBytes = Buffer.from(markerText);
  const vouched = new Set<string>();
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const client = await MlsClient.create({
    authenticator: { authenticate: (m) => vouched.has(`${hex(m.identity)}/${hex(m.signaturePublicKey)}`) },
  });
  const members: Member[] = [];
  for (const [name, device] of [
    ['alice', 'phone'],
    ['bob', 'laptop'],
    ['carol', 'tablet'],
  ] as const) {
    const user = new TestUser(name);
    expect((await user.enrol(call, appToken, device)).status).toBe(200);
    const login = await user.login(call, origin, device);
    expect(login.status, login.text).toBe(200);
    vouched.add(`${hex(mlsIdentityOf(name, device))}/${hex(user.device(device).mlsKey.publicKey)}`);
    members.push({ user, device, token: login.body.token, after: 0, buffered: [] });
  }
  const [alice, bob, carol] = members as [Member, Member, Member];
  const roster = members.map((m) => ({ user: m.user.name, device: m.device }));

  // Key packages through the directory: bob and carol publish, alice claims.
  const claimed: Uint8Array[] = [];
  for (const m of [bob, carol]) {
    m.kp = await client.generateKeyPackage({
      identity: mlsIdentityOf(m.user.name, m.device),
      signaturePrivateKey: m.user.device(m.device).mlsKey.privateKey,
    });
    const up = await call('POST', `/v1/e2ee/users/${m.user.name}/devices/${m.device}/key-packages`, {
      token: m.token,
      body: { key_packages: [base64Encode(m.kp.message)] },
    });
    expect(up.status, up.text).toBe(200);
    const c = await call('POST', `/v1/e2ee/users/${m.user.name}/key-packages/claim`, { token: alice.token });
    claimed.push(new Uint8Array(Buffer.from(c.body.key_packages[0].key_package, 'base64')));
  }
  alice.kp = await client.generateKeyPackage({
    identity: mlsIdentityOf('alice', 'phone'),
    signaturePrivateKey: alice.user.device('phone').mlsKey.privateKey,
  });

  const gidBytes = randomBytes(16);
  const gid = base64UrlEncode(gidBytes);
  const created = await call('POST', '/v1/e2ee/groups', {
    token: alice.token,
    body: { group_id: gid, roster },
  });
  expect(created.status, created.text).toBe(200);

  /** The next message for `m` of `kind` (a commit from before `m` joined is skipped). */
  const take = async (m: Member, kind: string) => {
    for (;;) {
      if (m.buffered.length === 0) {
        const r = await call('GET', `/v1/e2ee/inbox?after=${m.after}&wait=5`, { token: m.token });
        expect(r.status, r.text).toBe(200);
        expect(r.body.messages.length, `${m.user.name} waited for a ${kind}`).toBeGreaterThan(0);
        m.buffered.push(...r.body.messages);
      }
      const msg = m.buffered.shift()!;
      m.after = msg.seq;
      if (msg.kind === 'commit' && (m.group === undefined || msg.epoch < Number(m.group.epoch))) continue;
      expect(msg.kind).toBe(kind);
      return unframe(new Uint8Array(Buffer.from(msg.frame, 'base64')));
    }
  };

  const commit = async (by: Member, pending: PendingCommit, welcomed = false) => {
    const r = await call('POST', `/v1/e2ee/groups/${gid}/commits`, {
      token: by.token,
      body: {
        epoch: by.group === undefined ? 0 : Number(by.group.epoch),
        commit: base64Encode(encodeFrame(pending.commit)),
        roster,
        ...(welcomed
          ? { welcome: { frame: base64Encode(encodeFrame(pending.welcome!)), recipients: roster.slice(1) } }
          : {}),
      },
    });
    expect(r.status, r.text).toBe(200);
    by.group = pending.confirm();
  };

  const founding = await (await client.createGroup(gidBytes, alice.kp)).addMembers(claimed);
  await commit(alice, founding, true);
  for (const m of [bob, carol]) m.group = await client.joinFromWelcome(await take(m, 'welcome'), m.kp!);

  const secrets: Needle[] = [];
  const keepSecrets = async (group: MlsGroup) => {
    const ks = group.state.keySchedule;
    for (const [name, value] of Object.entries(ks))
      secrets.push(...forms(`epoch ${group.epoch} ${name}`, value));
    const exported = await group.exportSecret('enseal relay store test', new Uint8Array(0), 32);
    secrets.push(...forms(`epoch ${group.epoch} exporter output`, exported));
  };
  await keepSecrets(alice.group!);

  const applicationFrames: Uint8Array[] = [];
  const send = async (from: Member, plaintext: Uint8Array, message?: Uint8Array) => {
    if (message === undefined) {
      const sent = await from.group!.encrypt(plaintext);
      from.group = sent.group;
      message = sent.message;
    }
    const frame = encodeFrame(message);
    applicationFrames.push(frame);
    const r = await call('POST', `/v1/e2ee/groups/${gid}/messages`, {
      token: from.token,
      body: { epoch: Number(from.group!.epoch), frame: base64Encode(frame) },
    });
    expect(r.status, r.text).toBe(200);
    for (const m of members) {
      if (m === from) continue;
      const got = await m.group!.process(await take(m, 'application'));
      m.group = got.group;
      expect(got.kind).toBe('application');
      expect(Buffer.from((got as { plaintext: Uint8Array }).plaintext).equals(Buffer.from(plaintext))).toBe(
        true,
      );
    }
    return frame;
  };
  /** `n` bytes of the marker, repeated (a marker split across storage pages still leaves whole copies). */
  const plaintext = (n: number) => {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i += markerBytes.length + 1) markerBytes.copy(out, i);
    return new Uint8Array(out);
  };

  for (const size of [markerBytes.length, 200, 3000]) await send(alice, plaintext(size));
  // One message just past the 1 KiB bucket: find the plaintext length whose MLS message is that long (the
  // message's overhead is fixed for a sender and epoch; probes that are not sent only skip generations).
  let size = 900;
  let boundary: { message: Uint8Array; plaintext: Uint8Array } | undefined;
  for (let attempt = 0; attempt < 6 && boundary === undefined; attempt++) {
    const p = plaintext(size);
    const sent = await alice.group!.encrypt(p);
    alice.group = sent.group;
    if (sent.message.length === BOUNDARY_MESSAGE_BYTES) boundary = { message: sent.message, plaintext: p };
    else size += BOUNDARY_MESSAGE_BYTES - sent.message.length;
  }
  expect(boundary, 'a plaintext length that lands one byte past the bucket').toBeDefined();
  expect((await send(alice, boundary!.plaintext, boundary!.message)).length).toBe(2048);
  await send(bob, plaintext(500));

  // A new epoch (bob's full-path update), and a message in it.
  await commit(bob, await bob.group!.update());
  for (const m of [alice, carol]) m.group = (await m.group!.process(await take(m, 'commit'))).group;
  await keepSecrets(alice.group!);
  await send(carol, plaintext(100));

  // A blob: two chunks under AES-256-GCM with a key exported from the group, bound to the blob's id.
  const blob = await call('POST', `/v1/e2ee/groups/${gid}/blobs`, { token: alice.token });
  expect(blob.status, blob.text).toBe(200);
  const blobId: string = blob.body.blob_id;
  const blobKey = (g: MlsGroup) => g.exportSecret('enseal relay store test blob', Buffer.from(blobId), 32);
  const key = await blobKey(alice.group!);
  secrets.push(...forms('blob key', key));
  const chunks = [plaintext(700), plaintext(300)];
  for (const [n, chunk] of chunks.entries()) {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(`${blobId}/${n}`));
    const sealed = Buffer.concat([nonce, cipher.update(chunk), cipher.final(), cipher.getAuthTag()]);
    const put = await call('PUT', `/v1/e2ee/blobs/${blobId}/chunks/${n}`, {
      token: alice.token,
      bytes: sealed,
      contentType: 'application/octet-stream',
    });
    expect(put.status, put.text).toBe(200);
  }
  expect(
    (await call('POST', `/v1/e2ee/blobs/${blobId}/complete`, { token: alice.token, body: { chunks: 2 } }))
      .status,
  ).toBe(200);
  const bobKey = await blobKey(bob.group!);
  for (const [n, chunk] of chunks.entries()) {
    const got = (await call('GET', `/v1/e2ee/blobs/${blobId}/chunks/${n}`, { token: bob.token })).bytes;
    const decipher = createDecipheriv('aes-256-gcm', bobKey, got.subarray(0, 12));
    decipher.setAAD(Buffer.from(`${blobId}/${n}`));
    decipher.setAuthTag(got.subarray(got.length - 16));
    const opened = Buffer.concat([decipher.update(got.subarray(12, got.length - 16)), decipher.final()]);
    expect(opened.equals(Buffer.from(chunk))).toBe(true);
  }

  return { marker: forms('marker', markerBytes), secrets, applicationFrames };
}

/** Stored frames: every one a bucket, and the application messages exactly the frames sent. */
function checkSizes(
  rows: { kind: string; n: number }[],
  commits: number[],
  sent: readonly Uint8Array[],
): void {
  expect(rows.length).toBeGreaterThan(0);
  for (const r of [...rows.map((x) => x.n), ...commits])
    expect(isFrameBucket(r), `${r} is a bucket`).toBe(true);
  const application = rows.filter((r) => r.kind === 'application').map((r) => r.n);
  expect(application.sort((a, b) => a - b)).toEqual(sent.map((f) => f.length).sort((a, b) => a - b));
  expect(application).toContain(2048);
}

describe('the relay holds no plaintext and no group secret', () => {
  it('the search finds a marker however it was encoded, at any offset', () => {
    const marker = Buffer.from(`PLAINTEXT-MARKER-${base64UrlEncode(randomBytes(18))}`);
    for (let pad = 0; pad < 3; pad++) {
      const stored = Buffer.concat([Buffer.alloc(pad, 1), marker, Buffer.alloc(5, 2)]);
      for (const encoding of ['hex', 'base64', 'base64url'] as const)
        expect(
          found(Buffer.from(JSON.stringify({ v: stored.toString(encoding) })), forms('m', marker)),
        ).not.toEqual([]);
    }
  });

  describe('on SQLite', () => {
    const dataDir = tempDir();
    let ctx: Awaited<ReturnType<typeof devServer>>;
    beforeAll(async () => {
      ctx = await devServer({ dataDir, e2ee: { origin } });
    });
    let closed = false;
    afterAll(async () => {
      if (!closed) await ctx?.server.close();
    });

    it('the database file and its WAL hold neither the marker nor the secrets; frames are buckets', async () => {
      const call = requester(ctx.server);
      const { marker, secrets, applicationFrames } = await exchange(call, ctx.token);
      const file = join(dataDir, 'enseal.db');
      const read = () =>
        Buffer.concat(
          [file, `${file}-wal`, `${file}-shm`].filter((f) => existsSync(f)).map((f) => readFileSync(f)),
        );
      const db = new Database(file, { readonly: true });
      try {
        const rows = db.prepare('SELECT kind, length(frame) AS n FROM e2ee_messages').all() as {
          kind: string;
          n: number;
        }[];
        const commits = (
          db.prepare('SELECT length(frame) AS n FROM e2ee_commits').all() as { n: number }[]
        ).map((r) => r.n);
        checkSizes(rows, commits, applicationFrames);
      } finally {
        db.close();
      }
      const bytes = read();
      // The search sees the store: a frame the relay holds is there, as sent.
      expect(bytes.includes(Buffer.from(applicationFrames[0]!))).toBe(true);
      expect(found(bytes, marker)).toEqual([]);
      expect(found(bytes, secrets)).toEqual([]);
      expect(found(Buffer.from(ctx.logs()), [...marker, ...secrets])).toEqual([]);
      // And after a clean shutdown (the WAL checkpointed into the file).
      await ctx.server.close();
      closed = true;
      const after = read();
      expect(found(after, marker)).toEqual([]);
      expect(found(after, secrets)).toEqual([]);
    });
  });

  describe('on PostgreSQL', () => {
    let pgServer: TestPostgres | undefined;
    let ctx: Awaited<ReturnType<typeof devServer>> | undefined;
    let storage: string;
    beforeAll(async () => {
      pgServer = await startPostgres();
      if (!pgServer) return;
      storage = await pgServer.database('e2ee_store');
      ctx = await devServer({ storage, e2ee: { origin } });
    });
    afterAll(async () => {
      await ctx?.server.close();
      await pgServer?.stop();
    });

    it('no table of the schema holds the marker or the secrets; frames are buckets', async () => {
      if (!pgServer || !ctx) return;
      const { marker, secrets, applicationFrames } = await exchange(requester(ctx.server), ctx.token);
      const db = new pg.Client({ connectionString: storage });
      await db.connect();
      try {
        const tables = (
          await db.query<{ name: string }>(
            `SELECT table_name AS name FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`,
          )
        ).rows.map((r) => r.name);
        expect(tables).toContain('e2ee_messages');
        expect(tables).toContain('e2ee_blob_chunks');
        const dump: Buffer[] = [];
        for (const table of tables) {
          const quoted = `"${table.replace(/"/g, '""')}"`;
          // Each row as PostgreSQL prints it (bytea as hex), and each value as the driver returns it.
          for (const r of (await db.query<{ row: string }>(`SELECT t::text AS row FROM ${quoted} t`)).rows)
            dump.push(Buffer.from(r.row));
          for (const r of (await db.query<Record<string, unknown>>(`SELECT * FROM ${quoted}`)).rows)
            for (const v of Object.values(r)) dump.push(Buffer.isBuffer(v) ? v : Buffer.from(String(v)));
        }
        const bytes = Buffer.concat(dump);
        expect(bytes.includes(Buffer.from(applicationFrames[0]!))).toBe(true);
        expect(bytes.includes(Buffer.from(Buffer.from(applicationFrames[0]!).toString('hex')))).toBe(true);
        expect(found(bytes, marker)).toEqual([]);
        expect(found(bytes, secrets)).toEqual([]);
        expect(found(Buffer.from(ctx.logs()), [...marker, ...secrets])).toEqual([]);
        const rows = (
          await db.query<{ kind: string; n: number }>(
            'SELECT kind, octet_length(frame) AS n FROM e2ee_messages',
          )
        ).rows;
        const commits = (
          await db.query<{ n: number }>('SELECT octet_length(frame) AS n FROM e2ee_commits')
        ).rows.map((r) => r.n);
        checkSizes(rows, commits, applicationFrames);
      } finally {
        await db.end();
      }
    });
  });
});
