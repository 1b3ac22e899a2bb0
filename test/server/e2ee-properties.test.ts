/**
 * Property tests for the e2ee decoders and routes: random and mutated frames, request bodies, query strings
 * and chunk bodies yield a typed 4xx (or a 2xx), never a 5xx, a crash or a hang.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64Encode, EnsealError, ErrorCode } from '../../src/crypto/index.js';
import { checkFrame, encodeFrame, frameBucketFor, isFrameBucket } from '../../src/server/e2ee/index.js';
import { devServer } from './helpers.js';
import { TestUser, newGroupId, requester, type Request } from './e2ee-helpers.js';

describe('frames', () => {
  it('round-trip every length, and random or mutated frames are refused with ERR_MALFORMED only', () => {
    for (const n of [1, 252, 253, 1000, 4 * 1024 * 1024 - 4]) {
      const f = encodeFrame(new Uint8Array(n).fill(1));
      expect(isFrameBucket(f.length)).toBe(true);
      expect(checkFrame(f)).toBe(n);
      expect(f.length).toBe(frameBucketFor(n));
    }
    expect(frameBucketFor(4 * 1024 * 1024 - 3)).toBeUndefined();
    const code = (f: Uint8Array) => {
      try {
        checkFrame(f);
        return 'ok';
      } catch (err) {
        if (err instanceof EnsealError) return err.code;
        throw err;
      }
    };
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (msg, at, v) => {
          expect(['ok', ErrorCode.MALFORMED]).toContain(code(msg));
          const f = encodeFrame(msg);
          expect(checkFrame(f)).toBe(msg.length);
          const m = f.slice();
          const i = at % m.length;
          m[i] = m[i]! ^ v;
          // A flipped bit in the message is the client's business, and a length that still fits over zero
          // bytes frames another (valid) message; a flipped bit in the padding is refused.
          if (i >= 4 + msg.length) expect(code(m)).toBe(ErrorCode.MALFORMED);
          else expect(['ok', ErrorCode.MALFORMED]).toContain(code(m));
          expect(code(f.subarray(0, f.length - 1))).toBe(ErrorCode.MALFORMED);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('e2ee routes under random input', () => {
  let ctx: Awaited<ReturnType<typeof devServer>>;
  let call: Request;
  const alice = new TestUser('alice');
  const gid = newGroupId();
  let device: string;
  beforeAll(async () => {
    ctx = await devServer({ e2ee: { origin: 'prop.example/log' } });
    call = requester(ctx.server);
    await alice.enrol(call, ctx.token, 'phone');
    await alice.login(call, 'prop.example/log', 'phone');
    device = alice.device('phone').token!;
    await call('POST', '/v1/e2ee/groups', {
      token: device,
      body: { group_id: gid, roster: [{ user: 'alice', device: 'phone' }] },
    });
  });
  afterAll(async () => ctx.server.close());

  const value = fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.base64String({ maxLength: 60 }),
    fc.constantFrom(
      '',
      'AAAA',
      '====',
      '-1',
      'alice',
      'phone',
      base64Encode(encodeFrame(new Uint8Array([1]))),
    ),
    fc.array(
      fc.oneof(
        fc.string({ maxLength: 10 }),
        fc.record({ user: fc.string({ maxLength: 8 }), device: fc.string({ maxLength: 8 }) }),
      ),
      { maxLength: 3 },
    ),
    fc.record({ frame: fc.base64String({ maxLength: 20 }), recipients: fc.constant([]) }),
  );
  const body = fc.dictionary(
    fc.constantFrom(
      'identity',
      'device_record',
      'mls_binding',
      'revocation',
      'recovery_set',
      'key_packages',
      'last_resort',
      'user',
      'device',
      'challenge',
      'signature',
      'group_id',
      'roster',
      'epoch',
      'commit',
      'welcome',
      'frame',
      'up_to',
      'chunks',
      'junk',
    ),
    value,
    { maxKeys: 6 },
  );
  const routes = [
    '/v1/e2ee/users/bob',
    '/v1/e2ee/users/alice/devices',
    '/v1/e2ee/users/alice/revocations',
    '/v1/e2ee/users/alice/recovery-set',
    '/v1/e2ee/users/alice/devices/phone/key-packages',
    '/v1/e2ee/users/alice/key-packages/claim',
    '/v1/e2ee/auth/challenge',
    '/v1/e2ee/auth/login',
    '/v1/e2ee/groups',
    `/v1/e2ee/groups/${gid}/commits`,
    `/v1/e2ee/groups/${gid}/messages`,
    `/v1/e2ee/groups/${gid}/blobs`,
    '/v1/e2ee/inbox/ack',
  ];

  it('POST bodies: a 2xx or a 4xx, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), body, fc.boolean(), async (path, b, app) => {
        const r = await call('POST', path, { token: app ? ctx.token : device, body: b });
        expect(r.status, `${path} ${JSON.stringify(b)} → ${r.text}`).toBeLessThan(500);
        if (r.status >= 400) expect(Array.isArray(r.body?.errors)).toBe(true);
      }),
      { numRuns: 250 },
    );
  });

  it('mutated valid bodies (a flipped byte in a record, a binding, a key package, a frame): 4xx, never 5xx', async () => {
    const mutate = (b64: string, at: number, v: number) => {
      const bytes = Buffer.from(b64, 'base64');
      const i = at % bytes.length;
      bytes[i] = bytes[i]! ^ v;
      return bytes.toString('base64');
    };
    const kp = await alice.keyPackage('phone');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat(4), async (at, v, which) => {
        const u = new TestUser(`m${n++}`);
        const enrol = {
          identity: u.identityBody(),
          device_record: u.recordBody('d'),
          mls_binding: u.bindingBody('d'),
        };
        const field = (['identity', 'device_record', 'mls_binding'] as const)[which % 3]!;
        const requests: [string, string, unknown, string][] = [
          [
            `/v1/e2ee/users/${u.name}`,
            ctx.token,
            { ...enrol, [field]: mutate(enrol[field], at, v) },
            'enrol',
          ],
          [
            '/v1/e2ee/users/alice/devices/phone/key-packages',
            device,
            { key_packages: [mutate(kp, at, v)] },
            'key package',
          ],
          [
            `/v1/e2ee/groups/${gid}/messages`,
            device,
            { epoch: 0, frame: mutate(base64Encode(encodeFrame(new Uint8Array([1, 2, 3]))), at, v) },
            'frame',
          ],
        ];
        for (const [path, token, b, what] of requests) {
          const r = await call('POST', path, { token, body: b });
          expect(r.status, `${what}: ${r.text}`).toBeLessThan(500);
          // A flipped byte in a signed record never enrols anyone.
          if (what === 'enrol') expect(r.status).toBeGreaterThanOrEqual(400);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('raw bodies that are not JSON, or not objects, are refused', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.string({ maxLength: 60 }), async (path, raw) => {
        const r = await call('POST', path, { token: device, bytes: new TextEncoder().encode(raw) });
        expect(r.status).toBeLessThan(500);
      }),
      { numRuns: 100 },
    );
  });

  it('query strings and path parameters: a 2xx or a 4xx', async () => {
    const q = fc.oneof(
      fc.nat().map(String),
      fc.string({ maxLength: 12 }),
      fc.constantFrom('-1', '1e3', '99999999999999999', ''),
    );
    await fc.assert(
      fc.asyncProperty(q, q, fc.string({ maxLength: 30 }), async (x, y, seg) => {
        const e = encodeURIComponent;
        for (const path of [
          `/v1/e2ee/log/entries?start=${e(x)}&end=${e(y)}`,
          `/v1/e2ee/log/proof/inclusion?index=${e(x)}&size=${e(y)}`,
          `/v1/e2ee/log/proof/consistency?from=${e(x)}&to=${e(y)}`,
          `/v1/e2ee/inbox?after=${e(x)}&wait=${y === '1' ? '1' : 'x'}`,
          `/v1/e2ee/groups/${e(seg || 'x')}/commits?after_epoch=${e(x)}`,
          `/v1/e2ee/users/${e(seg || 'x')}`,
          `/v1/e2ee/blobs/${e(seg || 'x')}/chunks/${e(x)}`,
        ]) {
          const r = await call('GET', path, { token: device });
          expect(r.status, `${path} → ${r.text}`).toBeLessThan(500);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('chunk uploads of random bytes and content types: a 2xx or a 4xx', async () => {
    const blob = (await call('POST', `/v1/e2ee/groups/${gid}/blobs`, { token: device })).body
      .blob_id as string;
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(
          'application/octet-stream',
          'application/json',
          'text/plain',
          'application/octet-stream; charset=x',
        ),
        fc.oneof(fc.nat(20_000).map(String), fc.constantFrom('-1', 'x', '1.5')),
        async (bytes, type, n) => {
          const r = await call('PUT', `/v1/e2ee/blobs/${blob}/chunks/${n}`, {
            token: device,
            bytes,
            contentType: type,
          });
          expect(r.status, r.text).toBeLessThan(500);
        },
      ),
      { numRuns: 100 },
    );
  });
});
