/**
 * The web client's server side: the page with an integrity value on every script and style, its own strict
 * CSP, and a clear 404 when the bundles were not built.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_CSP, registerAppRoutes } from '../../src/server/app-routes.js';
import type { FastifyInstance } from '../../src/server/http.js';

const root = join(import.meta.dirname, '..', '..');
let unbuilt = '';
beforeAll(() => {
  // A package root with the page and style sheet but no dist/web bundles.
  unbuilt = mkdtempSync(join(tmpdir(), 'enseal-app-routes-'));
  cpSync(join(root, 'app'), join(unbuilt, 'app'), { recursive: true });
});
afterAll(() => rmSync(unbuilt, { recursive: true, force: true }));

async function appAt(dir: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: false }) as unknown as FastifyInstance;
  registerAppRoutes(app, dir);
  await app.ready();
  return app;
}

describe('web client routes', () => {
  it('serves the page with sha384 integrity on every script and style, and its CSP', async () => {
    const app = await appAt(root);
    const page = await app.inject('/app');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toBe(APP_CSP);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).not.toMatch(/\{\{|style=|<style|<script>/);
    const refs = [...page.body.matchAll(/(?:src|href)="\/app\/([a-z.-]+)" integrity="(sha384-[^"]+)"/g)];
    expect(refs.map((r) => r[1]).sort()).toEqual(['app.css', 'app.js']);
    for (const [, name, integrity] of refs) {
      const file = await app.inject(`/app/${name}`);
      expect(file.statusCode).toBe(200);
      expect(file.headers['content-security-policy']).toBe(APP_CSP);
      expect(`sha384-${createHash('sha384').update(file.rawPayload).digest('base64')}`).toBe(integrity);
    }
    expect((await app.inject('/app/enseal-e2ee.js')).headers['content-type']).toMatch(/^text\/javascript/);
    expect((await app.inject('/app/')).statusCode).toBe(404);
    await app.close();
  });

  it('answers 404 with a clear text when the bundles are not built', async () => {
    const app = await appAt(unbuilt);
    for (const path of ['/app', '/app/app.js', '/app/enseal-e2ee.js']) {
      const r = await app.inject(path);
      expect(r.statusCode).toBe(404);
      expect(r.body).toMatch(/not built: run `npm run build`/);
    }
    expect((await app.inject('/app/app.css')).statusCode).toBe(200);
    await app.close();
  });
});
