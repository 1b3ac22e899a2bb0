import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devServer } from './helpers.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
let ctx: Awaited<ReturnType<typeof devServer>>;

beforeAll(async () => {
  ctx = await devServer();
});
afterAll(async () => ctx.server.close());

describe('enseal serve: transit API', () => {
  it('creates keys, encrypts, decrypts, rotates, rewraps, with Vault shapes', async () => {
    const { call } = ctx;
    expect((await call('POST', '/v1/transit/keys/orders', { body: {} })).status).toBe(200);
    const enc = await call('POST', '/v1/transit/encrypt/orders', {
      body: { plaintext: b64('4111'), associated_data: b64('row 1') },
    });
    expect(enc.status).toBe(200);
    expect(enc.body.data.ciphertext).toMatch(/^vault:v1:/);
    const dec = await call('POST', '/v1/transit/decrypt/orders', {
      body: { ciphertext: enc.body.data.ciphertext, associated_data: b64('row 1') },
    });
    expect(Buffer.from(dec.body.data.plaintext, 'base64').toString()).toBe('4111');
    const bad = await call('POST', '/v1/transit/decrypt/orders', {
      body: { ciphertext: enc.body.data.ciphertext },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatch(/ERR_DECRYPT_FAILED/);
    expect((await call('POST', '/v1/transit/keys/orders/rotate')).body.data.latest_version).toBe(2);
    const rewrapped = await call('POST', '/v1/transit/rewrap/orders', {
      body: { ciphertext: enc.body.data.ciphertext, associated_data: b64('row 1') },
    });
    expect(rewrapped.body.errors).toBeUndefined();
    expect(rewrapped.body.data.ciphertext).toMatch(/^vault:v2:/);
    const read = await call('GET', '/v1/transit/keys/orders');
    expect(read.body.data).toMatchObject({
      name: 'orders',
      type: 'aes256-gcm96',
      latest_version: 2,
      supports_encryption: true,
    });
    expect(Object.keys(read.body.data.keys)).toEqual(['1', '2']);
  });

  it('batch_input: per-item results and errors, partial_failure_response_code', async () => {
    const { call } = ctx;
    await call('POST', '/v1/transit/keys/batch', { body: {} });
    const items = Array.from({ length: 50 }, (_, i) => ({ plaintext: b64(`v${i}`), reference: `r${i}` }));
    const enc = await call('POST', '/v1/transit/encrypt/batch', { body: { batch_input: items } });
    expect(enc.body.data.batch_results).toHaveLength(50);
    const mixed = [
      ...enc.body.data.batch_results
        .slice(0, 3)
        .map((r: { ciphertext: string }) => ({ ciphertext: r.ciphertext })),
      { ciphertext: 'vault:v1:AAAA' },
    ];
    const dec = await call('POST', '/v1/transit/decrypt/batch', {
      body: { batch_input: mixed, partial_failure_response_code: 207 },
    });
    expect(dec.status).toBe(207);
    expect(
      dec.body.data.batch_results
        .slice(0, 3)
        .map((r: { plaintext: string }) => Buffer.from(r.plaintext, 'base64').toString()),
    ).toEqual(['v0', 'v1', 'v2']);
    expect(dec.body.data.batch_results[3].error).toMatch(/ERR_DECRYPT_FAILED/);
  });

  it('datakey, sign/verify, hmac, random, hash', async () => {
    const { call } = ctx;
    await call('POST', '/v1/transit/keys/dk', { body: {} });
    const dk = await call('POST', '/v1/transit/datakey/plaintext/dk', { body: { bits: 256 } });
    expect(Buffer.from(dk.body.data.plaintext, 'base64')).toHaveLength(32);
    expect((await call('POST', '/v1/transit/datakey/wrapped/dk', {})).body.data.plaintext).toBeUndefined();
    await call('POST', '/v1/transit/keys/signer', { body: { type: 'ed25519' } });
    const sig = await call('POST', '/v1/transit/sign/signer', { body: { input: b64('doc') } });
    expect(
      (
        await call('POST', '/v1/transit/verify/signer', {
          body: { input: b64('doc'), signature: sig.body.data.signature },
        })
      ).body.data.valid,
    ).toBe(true);
    expect(
      (
        await call('POST', '/v1/transit/verify/signer', {
          body: { input: b64('dog'), signature: sig.body.data.signature },
        })
      ).body.data.valid,
    ).toBe(false);
    await call('POST', '/v1/transit/keys/mac', { body: { type: 'hmac' } });
    const mac = await call('POST', '/v1/transit/hmac/mac', { body: { input: b64('m') } });
    expect(
      (await call('POST', '/v1/transit/verify/mac', { body: { input: b64('m'), hmac: mac.body.data.hmac } }))
        .body.data.valid,
    ).toBe(true);
    expect(
      Buffer.from((await call('POST', '/v1/transit/random/48', {})).body.data.random_bytes, 'base64'),
    ).toHaveLength(48);
    expect(
      (await call('POST', '/v1/transit/hash/sha2-256', { body: { input: b64('abc') } })).body.data.sum,
    ).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('enseal serve: auth and policies', () => {
  it("denies without a token, with a wrong token, and beyond a token's policies; explicit deny wins", async () => {
    const { call } = ctx;
    expect(
      (await call('POST', '/v1/transit/encrypt/orders', { token: null, body: { plaintext: b64('x') } }))
        .status,
    ).toBe(403);
    expect(
      (
        await call('POST', '/v1/transit/encrypt/orders', {
          token: 'ens.wrong',
          body: { plaintext: b64('x') },
        })
      ).status,
    ).toBe(403);
    const policy = `
      path "transit/encrypt/*" { capabilities = ["update"] }
      path "transit/encrypt/secret-*" { capabilities = ["deny"] }
      path "transit/keys/+" { capabilities = ["read"] }`;
    expect((await call('PUT', '/v1/sys/policies/acl/writer', { body: { policy } })).status).toBe(204);
    await call('POST', '/v1/transit/keys/secret-hr', { body: {} });
    const created = await call('POST', '/v1/auth/token/create', {
      body: { policies: ['writer'], ttl: '1h', display_name: 'app' },
    });
    const app = created.body.auth.client_token as string;
    expect(
      (await call('POST', '/v1/transit/encrypt/orders', { token: app, body: { plaintext: b64('x') } }))
        .status,
    ).toBe(200);
    expect(
      (
        await call('POST', '/v1/transit/decrypt/orders', {
          token: app,
          body: { ciphertext: 'vault:v1:AAAA' },
        })
      ).status,
    ).toBe(403);
    expect(
      (await call('POST', '/v1/transit/encrypt/secret-hr', { token: app, body: { plaintext: b64('x') } }))
        .status,
    ).toBe(403);
    expect((await call('GET', '/v1/transit/keys/orders', { token: app })).status).toBe(200);
    const self = await call('GET', '/v1/auth/token/lookup-self', { token: app });
    expect(self.body.data).toMatchObject({ policies: ['writer'], display_name: 'app' });
    expect(self.body.data.ttl).toBeGreaterThan(3500);
    // A child cannot hold policies its parent lacks.
    expect(
      (await call('POST', '/v1/auth/token/create', { token: app, body: { policies: ['root'] } })).status,
    ).toBe(403);
    expect((await call('POST', '/v1/auth/token/revoke', { body: { token: app } })).status).toBe(204);
    await new Promise((r) => setTimeout(r, 1100)); // lookups are cached for one second
    expect(
      (await call('POST', '/v1/transit/encrypt/orders', { token: app, body: { plaintext: b64('x') } }))
        .status,
    ).toBe(403);
  });
});

describe('enseal serve: bad input gets Vault-shaped errors', () => {
  it.each([
    ['malformed JSON', 'POST', '/v1/transit/encrypt/orders', { raw: '{"plaintext":' }, 400],
    ['invalid base64', 'POST', '/v1/transit/encrypt/orders', { body: { plaintext: '***' } }, 400],
    ['unknown key', 'POST', '/v1/transit/encrypt/nope', { body: { plaintext: b64('x') } }, 404],
    ['hostile key name', 'POST', '/v1/transit/keys/..%2Fetc', { body: {} }, 400],
    ['body not an object', 'POST', '/v1/transit/encrypt/orders', { raw: '[1,2]' }, 400],
    ['unknown path', 'GET', '/v1/nope', {}, 404],
  ] as const)('%s', async (_label, method, path, options, status) => {
    const r = await ctx.call(method, path, options as { body?: unknown; raw?: string });
    expect(r.status).toBe(status);
    expect(Array.isArray(r.body.errors)).toBe(true);
  });

  it('an oversize body is refused with 413', async () => {
    const small = await devServer({});
    // 32 MiB limit: send 33 MiB.
    const r = await small.call('POST', '/v1/transit/encrypt/orders', {
      raw: `{"plaintext":"${'A'.repeat(33 * 1024 * 1024)}"}`,
    });
    expect(r.status).toBe(413);
    await small.server.close();
  });
});

describe('enseal serve: seal, health, headers, docs', () => {
  it('API responses carry no-store and HSTS; docs and OpenAPI are served', async () => {
    const r = await ctx.call('GET', '/v1/sys/health', { token: null });
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    const openapi = await ctx.call('GET', '/v1/sys/openapi.json', { token: null });
    expect(openapi.body.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.body.paths)).toContain('/v1/transit/encrypt/{name}');
    const docs = await ctx.call('GET', '/docs', { token: null });
    expect(docs.text).toContain('/docs/static/swagger-ui-bundle.js');
    expect(docs.headers['content-security-policy']).toContain("default-src 'none'");
    expect(docs.headers['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval/);
  });

  it("the seeds' /encrypt and /decrypt work with a token and are audited", async () => {
    const enc = await ctx.call('POST', '/encrypt', { body: { data: 'patient 7: diabetic' } });
    expect(enc.body.encrypted_data).toMatch(/^gAAAAA/); // a Fernet token, as the seeds' app returned
    const dec = await ctx.call('POST', '/decrypt', { body: { encrypted_data: enc.body.encrypted_data } });
    expect(dec.body.decrypted_data).toBe('patient 7: diabetic');
    expect((await ctx.call('POST', '/encrypt', { token: null, body: { data: 'x' } })).status).toBe(403);
  });

  it('TLS 1.3 only by default: a TLS 1.2 client is refused', async () => {
    const url = new URL(ctx.server.url);
    const ca = readFileSync(ctx.server.caFile!);
    const version = await new Promise<string>((resolve) => {
      const s = connect(
        { host: url.hostname, port: Number(url.port), ca, maxVersion: 'TLSv1.2', servername: 'localhost' },
        () => {
          resolve(s.getProtocol() ?? 'none');
          s.end();
        },
      );
      s.on('error', () => resolve('refused'));
    });
    expect(version).toBe('refused');
  });

  it('a sealed server answers 503 and serves nothing; unseal brings it back', async () => {
    const { call } = ctx;
    expect((await call('PUT', '/v1/sys/seal')).status).toBe(204);
    expect((await call('GET', '/v1/sys/health', { token: null })).status).toBe(503);
    const r = await call('POST', '/v1/transit/encrypt/orders', { body: { plaintext: b64('x') } });
    expect(r.status).toBe(503);
    expect(r.body.errors[0]).toMatch(/ERR_SEALED/);
    await ctx.server.km.unsealDev();
    expect((await call('GET', '/v1/sys/seal-status', { token: null })).body.sealed).toBe(false);
  });

  it('nothing secret reaches the logs, the audit log or the metrics', async () => {
    const { call } = ctx;
    const secret = 'SSN 078-05-1120';
    const enc = await call('POST', '/v1/transit/encrypt/orders', {
      body: { plaintext: b64(secret), context: undefined },
    });
    await call('POST', '/v1/transit/decrypt/orders', { body: { ciphertext: enc.body.data.ciphertext } });
    const audit = await call('GET', '/v1/sys/audit/export');
    const metrics = await call('GET', '/v1/sys/metrics');
    expect(metrics.text).toContain('enseal_requests_total');
    for (const text of [ctx.logs(), audit.text, metrics.text]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(b64(secret));
      expect(text).not.toContain(ctx.token);
    }
    expect((await call('GET', '/v1/sys/audit/verify')).body.data.ok).toBe(true);
  });
});

describe('enseal serve: large requests on keep-alive connections', () => {
  it('twenty 40 KiB batch requests in a row on one keep-alive agent all succeed', async () => {
    const { request, Agent } = await import('node:https');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ca = readFileSync(ctx.server.caFile!);
    const body = JSON.stringify({
      batch_input: Array.from({ length: 1000 }, (_, i) => ({
        plaintext: b64(`value ${i} 0123456789abcdef`),
      })),
    });
    const statuses: (number | string)[] = [];
    for (let i = 0; i < 20; i++) {
      statuses.push(
        await new Promise<number | string>((resolve) => {
          const req = request(
            new URL('/v1/transit/encrypt/orders', ctx.server.url),
            {
              method: 'POST',
              agent,
              ca,
              headers: { 'x-vault-token': ctx.token, 'content-length': Buffer.byteLength(body) },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', (e) => resolve(e.message));
          req.end(body);
        }),
      );
    }
    agent.destroy();
    expect(statuses).toEqual(Array(20).fill(200));
  });
});

describe('enseal serve: single-key backup and restore', () => {
  it('backs a key up to an age recipient and restores it into another server', async () => {
    const { AgeX25519Identity } = await import('../../src/formats/index.js');
    const identity = AgeX25519Identity.generate();
    const { call } = ctx;
    await call('POST', '/v1/transit/keys/portable', { body: { allow_plaintext_backup: true } });
    await call('POST', '/v1/transit/keys/stuck', { body: {} });
    const ct = (await call('POST', '/v1/transit/encrypt/portable', { body: { plaintext: b64('moving') } }))
      .body.data.ciphertext;
    const recipient = identity.recipient.toString();
    expect((await call('GET', '/v1/transit/backup/portable')).status).toBe(400);
    expect((await call('GET', `/v1/transit/backup/stuck?recipient=${recipient}`)).body.errors[0]).toMatch(
      /ERR_NOT_ALLOWED/,
    );
    const backup = (await call('GET', `/v1/transit/backup/portable?recipient=${recipient}`)).body.data
      .backup as string;
    expect(Buffer.from(backup, 'base64').subarray(0, 21).toString()).toBe('age-encryption.org/v1');

    const other = await devServer();
    const restored = await other.call('POST', '/v1/transit/restore/portable', {
      body: { backup, identity: identity.toString() },
    });
    expect(restored.body.data.restored).toEqual(['portable']);
    const dec = await other.call('POST', '/v1/transit/decrypt/portable', { body: { ciphertext: ct } });
    expect(Buffer.from(dec.body.data.plaintext, 'base64').toString()).toBe('moving');
    expect(
      (
        await other.call('POST', '/v1/transit/restore/portable', {
          body: { backup, identity: identity.toString() },
        })
      ).status,
    ).toBe(400);
    await other.server.close();
  });
});

describe('enseal serve: refused requests are audited and flagged', () => {
  it('a token probing keys it may not use shows up as denied audit entries and a denied_burst warning', async () => {
    const { call } = ctx;
    const created = await call('POST', '/v1/auth/token/create', {
      body: { policies: ['default'], ttl: '1h', display_name: 'prober' },
    });
    const probe = created.body.auth.client_token as string;
    for (let i = 0; i < 25; i++) {
      expect(
        (
          await call('POST', `/v1/transit/decrypt/orders`, {
            token: probe,
            body: { ciphertext: 'vault:v1:AAAA' },
          })
        ).status,
      ).toBe(403);
    }
    const accessor = created.body.auth.accessor as string;
    const denied = await call(
      'GET',
      `/v1/sys/audit/query?outcome=denied&caller=token:prober:${accessor}&limit=100`,
    );
    expect(denied.body.data.entries).toHaveLength(25);
    expect(denied.body.data.entries[0]).toMatchObject({ key: 'orders', code: 'ERR_PERMISSION_DENIED' });
    expect(ctx.logs()).toContain('"anomaly":"denied_burst"');
    expect((await call('GET', '/v1/sys/metrics')).text).toContain(
      'enseal_usage_warnings_total{kind="denied_burst"} 1',
    );
  });
});
