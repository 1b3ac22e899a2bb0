/**
 * The operator console's server side: static files with integrity values and a strict CSP, public but
 * data-free; and the two read-only routes it added, `GET /v1/sys/usage` and `LIST /v1/auth/token/accessors`,
 * under the ACLs every other route has.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP, consoleFiles } from '../../src/server/console-routes.js';
import { devServer } from './helpers.js';

let s: Awaited<ReturnType<typeof devServer>>;
beforeAll(async () => {
  s = await devServer();
});
afterAll(async () => {
  await s.server.close();
});

describe('console files', () => {
  it('serves the page without a token, every script and style with a matching sha384 integrity', async () => {
    const page = await s.call('GET', '/ui', { token: null });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).not.toMatch(/\{\{|style=|<style/);
    const refs = [...page.text.matchAll(/(?:src|href)="\/ui\/([a-z.-]+)" integrity="(sha384-[^"]+)"/g)];
    expect(refs.map((r) => r[1]).sort()).toEqual(
      ['api.js', 'chart.js', 'console.css', 'console.js', 'dom.js', 'views.js'].sort(),
    );
    for (const [, name, integrity] of refs) {
      const file = await s.call('GET', `/ui/${name}`, { token: null });
      expect(file.status).toBe(200);
      expect(file.headers['content-security-policy']).toBe(CONSOLE_CSP);
      const sum = createHash('sha384')
        .update(readFileSync(new URL(`../../ui/${name}`, import.meta.url)))
        .digest('base64');
      expect(integrity).toBe(`sha384-${sum}`);
      expect(createHash('sha384').update(file.text).digest('base64')).toBe(sum);
    }
    expect(consoleFiles().page).toBe(page.text);
    const openapi = await s.call('GET', '/v1/sys/openapi.json', { token: null });
    expect(openapi.status).toBe(200);
    expect(Object.keys(openapi.body.paths)).toEqual(
      expect.arrayContaining(['/ui', '/ui/console.js', '/v1/sys/usage', '/v1/auth/token/accessors']),
    );
  });

  it('has no inline script, no inline event handler and no storage of secrets in the browser code', () => {
    const { integrity } = consoleFiles();
    for (const name of Object.keys(integrity)) {
      const text = readFileSync(new URL(`../../ui/${name}`, import.meta.url), 'utf8');
      expect(text).not.toMatch(
        /localStorage|sessionStorage|document\.cookie|\beval\(|new Function|innerHTML/,
      );
    }
    const html = readFileSync(new URL('../../ui/index.html', import.meta.url), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)|\bon[a-z]+=/);
  });

  it('serves only the files it has: other paths under /ui are 404 (403 without a token, as elsewhere)', async () => {
    expect((await s.call('GET', '/ui/nothing.js', { token: null })).status).toBe(403);
    expect((await s.call('GET', '/ui/nothing.js')).status).toBe(404);
  });
});

describe('GET /v1/sys/usage', () => {
  it('gives requests per window by key and caller, and the warning counts', async () => {
    expect((await s.call('POST', '/v1/transit/keys/charted', { body: {} })).status).toBe(200);
    for (let i = 0; i < 3; i++)
      expect(
        (await s.call('POST', '/v1/transit/encrypt/charted', { body: { plaintext: 'aGk=' } })).status,
      ).toBe(200);
    const r = await s.call('GET', '/v1/sys/usage');
    expect(r.status).toBe(200);
    expect(r.body.data.window_ms).toBe(60_000);
    const last = r.body.data.windows.at(-1);
    expect(last.by_key.charted).toBeGreaterThanOrEqual(4);
    expect(Object.keys(last.by_caller).some((c) => c.startsWith('token:dev-root:'))).toBe(true);
    expect(r.body.data.warning_counts).toEqual({ rate_spike: 0, denied_burst: 0 });
    expect(r.body.data.warnings).toEqual([]);
  });

  it('needs read on sys/usage and answers 503 while sealed like every other route', async () => {
    expect((await s.call('GET', '/v1/sys/usage', { token: null })).status).toBe(403);
    expect(
      (
        await s.call('PUT', '/v1/sys/policies/acl/keys-only', {
          body: { policy: 'path "transit/*" { capabilities = ["read", "update"] }' },
        })
      ).status,
    ).toBe(204);
    const child = await s.call('POST', '/v1/auth/token/create', {
      body: { policies: ['keys-only'], ttl: '1h' },
    });
    const limited = child.body.auth.client_token as string;
    const refused = await s.call('GET', '/v1/sys/usage', { token: limited });
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0]).toMatch(/read on sys\/usage/);
  });
});

describe('LIST /v1/auth/token/accessors', () => {
  it('lists live tokens by accessor with their policies, never a token', async () => {
    const created = await s.call('POST', '/v1/auth/token/create', {
      body: { policies: ['default'], ttl: '1h', display_name: 'listed' },
    });
    const r = await s.call('GET', '/v1/auth/token/accessors?list=true');
    expect(r.status).toBe(200);
    expect(r.body.data.keys).toContain(created.body.auth.accessor);
    expect(r.body.data.key_info[created.body.auth.accessor]).toMatchObject({
      display_name: 'listed',
      policies: ['default'],
    });
    expect(r.text).not.toContain(created.body.auth.client_token);
    expect(r.text).not.toContain(s.token);
  });

  it('is a list route that needs sudo', async () => {
    expect((await s.call('GET', '/v1/auth/token/accessors')).status).toBe(405);
    await s.call('PUT', '/v1/sys/policies/acl/lister', {
      body: { policy: 'path "auth/token/*" { capabilities = ["list", "read", "update"] }' },
    });
    const child = await s.call('POST', '/v1/auth/token/create', {
      body: { policies: ['lister'], ttl: '1h' },
    });
    const refused = await s.call('GET', '/v1/auth/token/accessors?list=true', {
      token: child.body.auth.client_token as string,
    });
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0]).toMatch(/with sudo on auth\/token\/accessors\//);
  });
});

describe('transit key read', () => {
  it('shows encryptions reserved per version against the safe bound', async () => {
    const r = await s.call('GET', '/v1/transit/keys/charted');
    expect(r.body.data.max_encryptions_per_version).toBe(2 ** 31);
    expect(r.body.data.encryptions_reserved['1']).toBeGreaterThanOrEqual(3);
  });
});
