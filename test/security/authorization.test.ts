/**
 * The attacker's suite: the real HTTPS server, a raw client that sends request targets as written, no token
 * and a token whose policy allows one key. Every request-target trick is refused, or authorised exactly as
 * its decoded path would be; every registered route is walked.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, registeredRoutes, type RegisteredRoute } from '../../src/server/index.js';
import { devServer } from '../server/helpers.js';
import { rawRequest } from './raw-http.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
let ctx: Awaited<ReturnType<typeof devServer>>;
let ca: Buffer | undefined;
let oneKey: string;
let allButSecret: string;
let secretCiphertext: string;
const raw = (method: string, target: string, options: { token?: string; body?: string } = {}) =>
  rawRequest(ctx.server.url, ca, method, target, options);

/** Concrete values for a route's parameters. */
const PARAMS: Record<string, string> = {
  name: 'secret',
  kind: 'plaintext',
  type: 'encryption-key',
  bytes: '16',
  alg: 'sha2-256',
  gid: 'q83vEjRWeJq83vEjRWeJqw',
  id: '9f86d081884c7d659a2feaa0c55ad015',
  n: '0',
};
const concrete = (url: string) => url.replace(/:([a-z]+)/g, (_, p: string) => PARAMS[p] ?? 'x');
const isPublic = (r: RegisteredRoute) => r.access.public === true;
/**
 * Routes every token reaches: those the built-in default policy grants (looking itself up, revoking itself),
 * and the e2ee log's entries and proofs, which any valid token may read (docs/e2ee-service.md).
 */
const isSelf = (r: RegisteredRoute) =>
  /\/auth\/token\/[a-z-]+-self$/.test(r.url) || r.access.e2ee?.tokens === 'any';
const withList = (r: RegisteredRoute, path: string) => (r.access.list ? `${path}?list=true` : path);
const bodyFor = (method: string) =>
  method === 'GET' || method === 'HEAD' || method === 'DELETE'
    ? undefined
    : JSON.stringify({ plaintext: b64('x'), ciphertext: secretCiphertext, input: b64('x'), policy: 'x' });

beforeAll(async () => {
  ctx = await devServer({ authFailuresPerMinute: 1_000_000 });
  ca = ctx.server.caFile ? readFileSync(ctx.server.caFile) : undefined;
  const { call } = ctx;
  for (const k of ['secret', 'allowed']) await call('POST', `/v1/transit/keys/${k}`, { body: {} });
  secretCiphertext = (await call('POST', '/v1/transit/encrypt/secret', { body: { plaintext: b64('pan') } }))
    .body.data.ciphertext;
  await call('PUT', '/v1/sys/policies/acl/one-key', {
    body: {
      policy:
        'path "transit/encrypt/allowed" { capabilities = ["update"] }\n' +
        'path "transit/decrypt/allowed" { capabilities = ["update"] }',
    },
  });
  await call('PUT', '/v1/sys/policies/acl/all-but-secret', {
    body: {
      policy:
        'path "transit/encrypt/*" { capabilities = ["update"] }\n' +
        'path "transit/encrypt/secret" { capabilities = ["deny"] }',
    },
  });
  const token = async (policy: string) =>
    (await call('POST', '/v1/auth/token/create', { body: { policies: [policy], ttl: '1h' } })).body.auth
      .client_token as string;
  oneKey = await token('one-key');
  allButSecret = await token('all-but-secret');
});
afterAll(async () => ctx.server.close());

describe('request targets the router decodes', () => {
  it('the reported exploits: no token, a percent-encoded engine, an absolute-form target', async () => {
    const port = new URL(ctx.server.url).port;
    const body = JSON.stringify({ ciphertext: secretCiphertext });
    for (const target of [
      '/%761/transit/decrypt/secret',
      `https://127.0.0.1:${port}/v1/transit/decrypt/secret`,
      '/v1/transit/%64ecrypt/secret',
      '/v1/./transit/decrypt/secret',
      '/v1//transit/decrypt/secret',
      '/v1/transit/decrypt/../decrypt/secret',
      '/v1\\transit/decrypt/secret',
    ]) {
      const r = await raw('POST', target, { body });
      expect([400, 403, 404], target).toContain(r.status);
      expect(r.body, target).not.toContain('plaintext');
    }
    const policy = await raw('PUT', '/%761/sys/policies/acl/evil', {
      body: JSON.stringify({ policy: 'path "*" { capabilities = ["sudo", "update", "read"] }' }),
    });
    expect([400, 403]).toContain(policy.status);
    expect((await ctx.call('GET', '/v1/sys/policies/acl/evil')).status).toBe(404);
    const backup = await raw('POST', '/%761/sys/backup', { body: JSON.stringify({ passphrase: 'x' }) });
    expect([400, 403]).toContain(backup.status);
    expect(backup.body).not.toContain('"backup"');
  });

  it('a key name reached through %73ecret is the key secret, and a deny on it holds', async () => {
    const body = JSON.stringify({ plaintext: b64('x') });
    expect((await raw('POST', '/v1/transit/encrypt/%73ecret', { token: allButSecret, body })).status).toBe(
      403,
    );
    expect((await raw('POST', '/v1/transit/encrypt/secret', { token: allButSecret, body })).status).toBe(403);
    expect((await raw('POST', '/v1/transit/encrypt/%61llowed', { token: allButSecret, body })).status).toBe(
      200,
    );
    // Encoded characters never smuggle a separator or a dot segment into a key name.
    expect((await raw('POST', '/v1/transit/encrypt/a%2Fb', { token: allButSecret, body })).status).toBe(400);
    expect((await raw('POST', '/v1/transit/encrypt/%2e%2e', { token: allButSecret, body })).status).toBe(400);
  });

  it('list is its own operation: only on list routes, and it never lowers what a route needs', async () => {
    const { call, token } = ctx;
    expect((await call('GET', '/v1/transit/keys?list=true')).status).toBe(200);
    expect((await call('GET', '/v1/transit/keys')).status).toBe(405);
    expect((await call('GET', '/v1/transit/keys/secret?list=true')).status).toBe(400);
    expect((await call('POST', '/v1/transit/encrypt/secret?list=true', { body: {} })).status).toBe(400);
    expect((await call('GET', '/v1/transit/keys?list=false')).status).toBe(400);
    await call('PUT', '/v1/sys/policies/acl/lister', {
      body: { policy: 'path "transit/keys/*" { capabilities = ["list"] }' },
    });
    const lister = (await call('POST', '/v1/auth/token/create', { body: { policies: ['lister'] } })).body.auth
      .client_token as string;
    expect((await call('GET', '/v1/transit/keys?list=true', { token: lister })).status).toBe(200);
    // list on transit/keys/* does not let the token read a key, with or without list=true.
    expect((await call('GET', '/v1/transit/keys/secret', { token: lister })).status).toBe(403);
    expect((await call('GET', '/v1/transit/keys/secret?list=true', { token: lister })).status).toBe(400);
    expect(token).toBeTruthy();
  });
});

describe('every registered route', () => {
  it('has an access rule, and a route without one cannot be registered', async () => {
    const routes = registeredRoutes(ctx.server.app);
    expect(routes.length).toBeGreaterThan(40);
    for (const r of routes) expect(r.access, `${r.method} ${r.url}`).toBeDefined();
    // The operator console's and the web client's static files are public too (they carry no data: both sign
    // in against the API from the page), and only readable.
    const consoleFile = (r: RegisteredRoute) =>
      r.url === '/ui' || r.url.startsWith('/ui/') || r.url === '/app' || r.url.startsWith('/app/');
    const consoleRoutes = routes.filter(consoleFile);
    expect(consoleRoutes.map((r) => `${r.method} ${r.url}`)).toContain('GET /ui');
    expect(consoleRoutes.map((r) => `${r.method} ${r.url}`)).toContain('GET /app');
    for (const r of consoleRoutes) {
      expect(isPublic(r), r.url).toBe(true);
      expect(['GET', 'HEAD'], `${r.method} ${r.url}`).toContain(r.method);
    }
    const publicOnes = routes
      .filter((r) => isPublic(r) && !consoleFile(r))
      .map((r) => `${r.method} ${r.url}`);
    expect(publicOnes.sort()).toEqual(
      [
        'GET /',
        'HEAD /',
        'GET /docs',
        'HEAD /docs',
        'HEAD /docs/', // Fastify's HEAD twin of the prefixed index; the path itself is refused (empty segment)
        'GET /docs/static/index.html',
        'HEAD /docs/static/index.html',
        'GET /docs/static/swagger-initializer.js',
        'HEAD /docs/static/swagger-initializer.js',
        'GET /docs/static/*',
        'HEAD /docs/static/*',
        'GET /docs/json',
        'HEAD /docs/json',
        'GET /docs/yaml',
        'HEAD /docs/yaml',
        'GET /v1/sys/openapi.json',
        'HEAD /v1/sys/openapi.json',
        'GET /v1/sys/health',
        'HEAD /v1/sys/health',
        'GET /v1/sys/seal-status',
        'HEAD /v1/sys/seal-status',
        'PUT /v1/sys/init',
        'POST /v1/sys/init',
        'PUT /v1/sys/unseal',
        'POST /v1/sys/unseal',
        // e2ee: the log's checkpoint and keys, and device login (a signature over a one-use challenge).
        'GET /v1/e2ee/log/checkpoint',
        'HEAD /v1/e2ee/log/checkpoint',
        'GET /v1/e2ee/log/key',
        'HEAD /v1/e2ee/log/key',
        'POST /v1/e2ee/auth/challenge',
        'POST /v1/e2ee/auth/login',
      ].sort(),
    );
    await expect(
      buildApp({
        km: ctx.server.km,
        tokens: undefined as never,
        policies: undefined as never,
        extraRoutes: (app) => app.get('/v1/new/thing', async () => ({ open: true })),
      }),
    ).rejects.toThrow(/no access rule/);
  });

  it('refuses every non-public route without a token, and beyond a one-key policy', async () => {
    for (const r of registeredRoutes(ctx.server.app).filter((x) => !isPublic(x))) {
      const target = withList(r, concrete(r.url));
      const body = bodyFor(r.method);
      const anonymous = await raw(r.method, target, body ? { body } : {});
      expect(anonymous.status, `${r.method} ${target}`).toBe(403);
      if (isSelf(r)) continue;
      const limited = await raw(r.method, target, { token: oneKey, ...(body ? { body } : {}) });
      expect(limited.status, `${r.method} ${target} with one-key`).toBe(403);
    }
  });

  it('generated tricks on every route are refused or authorised as their decoded path', async () => {
    const routes = registeredRoutes(ctx.server.app).filter(
      (x) => !isPublic(x) && !isSelf(x) && x.method !== 'HEAD',
    );
    const targets = [
      ...routes.map((r) => ({ method: r.method, path: withList(r, concrete(r.url)) })),
      { method: 'POST', path: '/v1/transit/encrypt/allowed' },
      { method: 'POST', path: '/v1/transit/decrypt/allowed' },
    ];
    const allowed = new Set(['POST /v1/transit/encrypt/allowed', 'POST /v1/transit/decrypt/allowed']);
    const trick = fc.record({
      target: fc.constantFrom(...targets),
      encode: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
      upperHex: fc.boolean(),
      flipCase: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
      insert: fc.option(fc.record({ at: fc.nat(8), seg: fc.constantFrom('', '.', '..', '%2e', '%2E%2e') })),
      absolute: fc.boolean(),
      withToken: fc.boolean(),
    });
    const port = new URL(ctx.server.url).port;
    await fc.assert(
      fc.asyncProperty(trick, async (t) => {
        const [pathOnly, query] = t.target.path.split('?');
        let segments = pathOnly!.split('/').map((seg) =>
          [...seg]
            .map((ch, i) => {
              const c = t.flipCase[i % 64] && /[a-z]/.test(ch) && i % 7 === 0 ? ch.toUpperCase() : ch;
              if (!t.encode[i % 64]) return c;
              const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
              return `%${t.upperHex ? hex.toUpperCase() : hex}`;
            })
            .join(''),
        );
        if (t.insert) {
          const at = 1 + (t.insert.at % (segments.length - 1));
          segments = [...segments.slice(0, at), t.insert.seg, ...segments.slice(at)];
        }
        let target = segments.join('/') + (query ? `?${query}` : '');
        if (t.absolute) target = `https://127.0.0.1:${port}${target}`;
        const body = bodyFor(t.target.method);
        const r = await raw(t.target.method, target, {
          ...(t.withToken ? { token: oneKey } : {}),
          ...(body ? { body } : {}),
        });
        const decoded = decodedPath(segments);
        if (r.status >= 200 && r.status < 300) {
          // Success only for a token, only where the decoded path is allowed, and only for the exact path.
          expect(t.withToken).toBe(true);
          expect(allowed.has(`${t.target.method} ${decoded}`)).toBe(true);
        } else {
          expect([400, 403, 404, 405]).toContain(r.status);
        }
      }),
      { numRuns: 400 },
    );
  });
});

/** The path a target names once percent-decoded and with dot and empty segments resolved. */
function decodedPath(segments: string[]): string {
  const out: string[] = [];
  for (const seg of segments.slice(1)) {
    let d: string;
    try {
      d = decodeURIComponent(seg);
    } catch {
      return '<invalid>';
    }
    if (d === '' || d === '.') continue;
    if (d === '..') out.pop();
    else out.push(d);
  }
  return '/' + out.join('/');
}
