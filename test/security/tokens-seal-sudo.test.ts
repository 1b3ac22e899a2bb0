/**
 * Tokens, the seal and root-protected paths, as Vault users rely on them: a child never outlives its parent,
 * a sealed node serves nothing but its public routes, and sudo guards the operator's paths.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registeredRoutes } from '../../src/server/index.js';
import { devServer } from '../server/helpers.js';

let ctx: Awaited<ReturnType<typeof devServer>>;

beforeAll(async () => {
  ctx = await devServer({ authFailuresPerMinute: 1_000_000 });
});
afterAll(async () => ctx.server.close());

const child = async (token: string, body: Record<string, unknown>) => {
  const r = await ctx.call('POST', '/v1/auth/token/create', { token, body });
  expect(r.status).toBe(200);
  return r.body.auth.client_token as string;
};
const ttlOf = async (token: string) =>
  (await ctx.call('GET', '/v1/auth/token/lookup-self', { token })).body.data.ttl;

describe('child tokens', () => {
  it("are capped at the parent's remaining TTL", async () => {
    await ctx.call('PUT', '/v1/sys/policies/acl/maker', {
      body: { policy: 'path "auth/token/create" { capabilities = ["update"] }' },
    });
    const parent = await child(ctx.token, { policies: ['maker'], ttl: '60s' });
    const kid = await child(parent, { policies: ['maker'], ttl: '24h' });
    expect(await ttlOf(kid)).toBeLessThanOrEqual(60);
    const grandkid = await child(kid, { ttl: '1h' });
    expect(await ttlOf(grandkid)).toBeLessThanOrEqual(60);
  });

  it('die with their parent: revoking a parent ends every descendant at lookup', async () => {
    const parent = await child(ctx.token, { policies: ['maker'], ttl: '1h' });
    const kid = await child(parent, { policies: ['maker'], ttl: '1h' });
    const grandkid = await child(kid, { ttl: '1h' });
    expect(await ttlOf(grandkid)).toBeGreaterThan(0);
    expect((await ctx.call('POST', '/v1/auth/token/revoke-self', { token: parent })).status).toBe(204);
    for (const t of [parent, kid, grandkid])
      expect((await ctx.call('GET', '/v1/auth/token/lookup-self', { token: t })).status).toBe(403);
    const audit = await ctx.call('GET', '/v1/sys/audit/query?op=token.revoke');
    expect(audit.body.data.entries.at(-1).detail.revoked).toBe(3);
  });

  it('cannot be given policies the parent lacks', async () => {
    const parent = await child(ctx.token, { policies: ['maker'], ttl: '1h' });
    const r = await ctx.call('POST', '/v1/auth/token/create', {
      token: parent,
      body: { policies: ['root'] },
    });
    expect(r.status).toBe(403);
  });
});

describe('root-protected paths need sudo', () => {
  it('seal, keyring rotation, rekey, backup, restore and the audit endpoints', async () => {
    const policy = (caps: string) =>
      `path "sys/*" { capabilities = [${caps}] }\npath "sys/policies/acl/*" { capabilities = [${caps}] }`;
    await ctx.call('PUT', '/v1/sys/policies/acl/ops', { body: { policy: policy('"read", "update"') } });
    await ctx.call('PUT', '/v1/sys/policies/acl/ops-sudo', {
      body: { policy: policy('"read", "update", "sudo"') },
    });
    const ops = await child(ctx.token, { policies: ['ops'], ttl: '1h' });
    const sudo = await child(ctx.token, { policies: ['ops-sudo'], ttl: '1h' });
    const sudoRoutes = registeredRoutes(ctx.server.app).filter((r) => r.access.sudo && r.method !== 'HEAD');
    expect(sudoRoutes.map((r) => `${r.method} ${r.url}`).sort()).toEqual(
      [
        'POST /v1/sys/audit-hash',
        'GET /v1/sys/audit/export',
        'GET /v1/sys/audit/query',
        'GET /v1/sys/audit/verify',
        'POST /v1/sys/audit/verify',
        'GET /v1/sys/audit/checkpoint',
        'POST /v1/sys/backup',
        'POST /v1/sys/rekey',
        'POST /v1/sys/restore',
        'POST /v1/sys/rotate',
        'PUT /v1/sys/seal',
        'POST /v1/sys/seal',
        'GET /v1/auth/token/accessors',
      ].sort(),
    );
    for (const r of sudoRoutes) {
      const res = await ctx.call(r.method, r.url + (r.access.list ? '?list=true' : ''), {
        token: ops,
        ...(r.method === 'GET' ? {} : { body: {} }),
      });
      expect(res.status, `${r.method} ${r.url}`).toBe(403);
      expect(res.body.errors[0]).toMatch(/with sudo/);
    }
    expect((await ctx.call('GET', '/v1/sys/audit/verify', { token: sudo })).body.data.ok).toBe(true);
    expect((await ctx.call('POST', '/v1/sys/rotate', { token: sudo })).status).toBe(200);
    // Editing a policy so that it reaches a root-protected path is itself root-protected.
    const escalate = await ctx.call('PUT', '/v1/sys/policies/acl/ops', {
      token: ops,
      body: { policy: 'path "*" { capabilities = ["read", "update"] }' },
    });
    expect(escalate.status).toBe(403);
    expect(
      (
        await ctx.call('PUT', '/v1/sys/policies/acl/ops', {
          token: ops,
          body: {
            policy:
              'path "sys/policies/acl/*" { capabilities = ["update"] }\npath "transit/*" { capabilities = ["update"] }',
          },
        })
      ).status,
    ).toBe(204);
    expect(
      (
        await ctx.call('PUT', '/v1/sys/policies/acl/escalated', {
          token: sudo,
          body: { policy: 'path "*" { capabilities = ["sudo", "update"] }' },
        })
      ).status,
    ).toBe(204);
  });
});

describe('while sealed', () => {
  it('every non-public route answers 503 and nothing changes state', async () => {
    const routes = registeredRoutes(ctx.server.app).filter((r) => !r.access.public);
    await ctx.call('PUT', '/v1/sys/seal');
    try {
      for (const r of routes) {
        const path = r.url.replace(/:([a-z]+)/g, 'seeds') + (r.access.list ? '?list=true' : '');
        const res = await ctx.call(
          r.method,
          path,
          r.method === 'GET' || r.method === 'HEAD'
            ? {}
            : { body: { policy: 'path "*" { capabilities = ["sudo"] }' } },
        );
        expect(res.status, `${r.method} ${path}`).toBe(503);
      }
      expect((await ctx.call('GET', '/v1/sys/seal-status', { token: null })).body.sealed).toBe(true);
    } finally {
      await ctx.server.km.unsealDev();
    }
    expect((await ctx.call('GET', '/v1/sys/policies/acl/seeds')).status).toBe(404);
    expect((await ctx.call('GET', '/v1/auth/token/lookup-self')).status).toBe(200);
  });
});

describe('failed authentication', () => {
  it('is throttled per client address before any token lookup', async () => {
    const strict = await devServer({ authFailuresPerMinute: 20 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++)
        statuses.push(
          (await strict.call('GET', '/v1/auth/token/lookup-self', { token: `ens.guess${i}` })).status,
        );
      expect(statuses.slice(0, 20).every((s) => s === 403)).toBe(true);
      expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
      // Public routes still answer, so health checks from that address keep working.
      expect((await strict.call('GET', '/v1/sys/health', { token: null })).status).toBe(200);
    } finally {
      await strict.server.close();
    }
  });
});
