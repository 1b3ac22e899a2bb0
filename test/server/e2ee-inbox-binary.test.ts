/**
 * The binary inbox answer over the real app (HTTPS, dev mode, SQLite): the same messages as the JSON answer
 * (JSON stays the default), negotiated by `format=binary` or the Accept header; the same device token, roster
 * fan-out and audit entry; a bad format is a 400; and the library's E2eeApi reads it.
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64Encode } from '../../src/crypto/index.js';
import { NodeTransport } from '../../src/client/index.js';
import { E2eeApi, INBOX_MEDIA_TYPE, decodeInboxAnswer } from '../../src/e2ee/index.js';
import { encodeFrame } from '../../src/server/e2ee/index.js';
import { devServer } from './helpers.js';
import { TestUser, newGroupId, requester, type Request } from './e2ee-helpers.js';

const origin = 'inbox-binary.example/enseal-e2ee';
let ctx: Awaited<ReturnType<typeof devServer>>;
let call: Request;
const alice = new TestUser('alice');
const bob = new TestUser('bob');
const carol = new TestUser('carol');
const gid = newGroupId();
const frameBytes = (text: string) => encodeFrame(new TextEncoder().encode(text));
let at: string;
let bt: string;
let ct: string;

/** A GET with an Accept header (the requester helper sends none). */
function getWithAccept(path: string, token: string, accept: string) {
  return new Promise<{ status: number; type: string; bytes: Buffer }>((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, ctx.server.url),
      { ca: readFileSync(ctx.server.caFile!), headers: { 'x-vault-token': token, accept } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type']),
            bytes: Buffer.concat(parts),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  ctx = await devServer({ e2ee: { origin } });
  call = requester(ctx.server);
  for (const [u, d] of [
    [alice, 'phone'],
    [bob, 'laptop'],
    [carol, 'tab'],
  ] as const) {
    expect((await u.enrol(call, ctx.token, d)).status).toBe(200);
    expect((await u.login(call, origin, d)).status).toBe(200);
  }
  at = alice.device('phone').token!;
  bt = bob.device('laptop').token!;
  ct = carol.device('tab').token!;
  const roster = [
    { user: 'alice', device: 'phone' },
    { user: 'bob', device: 'laptop' },
  ];
  const r = await call('POST', '/v1/e2ee/groups', { token: at, body: { group_id: gid, roster } });
  expect(r.status, r.text).toBe(200);
});
afterAll(async () => ctx.server.close());

describe('GET /v1/e2ee/inbox, binary answer', () => {
  it('carries exactly what the JSON answer carries; JSON stays the default', async () => {
    const texts = ['one', 'two', 'x'.repeat(3000)];
    const sent = await call('POST', '/v1/e2ee/messages', {
      token: at,
      body: { messages: texts.map((t) => ({ group_id: gid, epoch: 0, frame: base64Encode(frameBytes(t)) })) },
    });
    expect(sent.status, sent.text).toBe(200);
    const seqs = sent.body.results.map((x: { seq: number }) => x.seq);

    const json = await call('GET', '/v1/e2ee/inbox?after=0&wait=0', { token: bt });
    expect(json.status).toBe(200);
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    const bin = await call('GET', '/v1/e2ee/inbox?after=0&wait=0&format=binary', { token: bt });
    expect(bin.status, bin.text).toBe(200);
    expect(bin.headers['content-type']).toBe(INBOX_MEDIA_TYPE);
    const decoded = decodeInboxAnswer(bin.bytes);
    expect(decoded.map((m) => m.seq)).toEqual(seqs);
    expect(
      decoded.map((m) => ({
        seq: m.seq,
        group_id: m.groupId,
        epoch: m.epoch,
        kind: m.kind,
        sender: m.sender,
        frame: base64Encode(m.frame),
        received_at: new Date(m.receivedAt).toISOString(),
      })),
    ).toEqual(json.body.messages);
    // Smaller: the frames are raw bytes, not base64 in JSON.
    expect(bin.bytes.length).toBeLessThan(json.bytes.length * 0.8);
    // `format=json` and the Accept header.
    const j2 = await call('GET', '/v1/e2ee/inbox?after=0&format=json', { token: bt });
    expect(j2.body).toEqual(json.body);
    const acc = await getWithAccept('/v1/e2ee/inbox?after=0', bt, INBOX_MEDIA_TYPE);
    expect(acc.status).toBe(200);
    expect(acc.type).toBe(INBOX_MEDIA_TYPE);
    expect(acc.bytes.equals(bin.bytes)).toBe(true);
    // The cursor works as for JSON, and an empty answer is a header with no messages.
    expect(
      decodeInboxAnswer(
        (await call('GET', `/v1/e2ee/inbox?after=${seqs[1]}&format=binary`, { token: bt })).bytes,
      ),
    ).toHaveLength(1);
    expect(
      decodeInboxAnswer(
        (await call('GET', `/v1/e2ee/inbox?after=${seqs[2]}&format=binary`, { token: bt })).bytes,
      ),
    ).toEqual([]);
  });

  it('per-device queues and tokens: the sender, a non-member and no token get nothing of it', async () => {
    for (const t of [at, ct])
      expect(
        decodeInboxAnswer((await call('GET', '/v1/e2ee/inbox?after=0&format=binary', { token: t })).bytes),
      ).toEqual([]);
    expect((await call('GET', '/v1/e2ee/inbox?after=0&format=binary')).status).toBe(403);
    expect((await call('GET', '/v1/e2ee/inbox?after=0&format=binary', { token: ctx.token })).status).toBe(
      403,
    );
  });

  it('refuses an unknown format with 400', async () => {
    for (const f of ['xml', 'BINARY', ''])
      expect((await call('GET', `/v1/e2ee/inbox?after=0&format=${f}`, { token: bt })).status).toBe(400);
  });

  it('audits each answer with its format', async () => {
    const audit = await call('GET', '/v1/sys/audit/export', { token: ctx.token });
    expect(audit.text).toMatch(/"op":"e2ee\.inbox".*"format":"binary"/);
    expect(audit.text).toMatch(/"op":"e2ee\.inbox".*"format":"json"/);
  });

  it('E2eeApi asks for it and reads it, and still reads a JSON answer', async () => {
    const transport = new NodeTransport({
      address: ctx.server.url,
      caCert: readFileSync(ctx.server.caFile!),
    });
    const paths: string[] = [];
    const api = new E2eeApi({
      request: (r) => {
        paths.push(r.path);
        return transport.request(r);
      },
    });
    const got = await api.inbox(bt, 0, 0);
    expect(paths.at(-1)).toContain('format=binary');
    expect(
      got.map((m) =>
        new TextDecoder().decode(
          m.frame.subarray(4, 4 + new DataView(m.frame.buffer, m.frame.byteOffset).getUint32(0)),
        ),
      ),
    ).toEqual(['one', 'two', 'x'.repeat(3000)]);
    // A relay that only answers JSON (it ignores the format).
    const old = new E2eeApi({
      request: (r) => transport.request({ ...r, path: r.path.replace('&format=binary', '') }),
    });
    expect(await old.inbox(bt, 0, 0)).toEqual(got);
  });
});
