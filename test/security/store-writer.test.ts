/**
 * Someone with write access to the store (the SQLite file here) but no unseal shares: every record that
 * confers a right is authenticated, so forging, editing or moving one grants nothing, and is reported.
 * Deleting records only denies service.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore, type Store } from '../../src/store/index.js';
import { tempDir } from '../kms/helpers.js';
import { devServer } from '../server/helpers.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const hash = (token: string) => createHash('sha256').update(token).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let ctx: Awaited<ReturnType<typeof devServer>>;
let writer: Store;
const tampered: string[] = [];

beforeAll(async () => {
  const dataDir = tempDir();
  ctx = await devServer({ dataDir });
  writer = SqliteStore.open({ path: join(dataDir, 'enseal.db') });
});
afterAll(async () => {
  await writer.close();
  await ctx.server.close();
});

const put = (key: string, value: string) =>
  writer.transaction((tx) => tx.putMeta(key, new TextEncoder().encode(value)));
const get = async (key: string) =>
  new TextDecoder().decode(await writer.transaction((tx) => tx.getMeta(key)));

describe('a store writer without unseal shares', () => {
  it('cannot mint a token: a forged record, in the old or the new format, is refused and audited', async () => {
    const mine = 'ens.' + Buffer.alloc(32, 7).toString('base64url');
    const info = {
      accessor: hash(mine).slice(0, 16),
      policies: ['root'],
      displayName: 'x',
      createdAt: 0,
      expiresAt: 0,
    };
    await put(`token/${hash(mine)}`, JSON.stringify(info));
    expect((await ctx.call('GET', '/v1/auth/token/lookup-self', { token: mine })).status).toBe(403);
    const other = 'ens.' + Buffer.alloc(32, 8).toString('base64url');
    await put(
      `token/${hash(other)}`,
      JSON.stringify({
        v: 1,
        body: JSON.stringify({ ...info, accessor: hash(other).slice(0, 16) }),
        mac: '00'.repeat(32),
      }),
    );
    expect(
      (await ctx.call('POST', '/v1/transit/encrypt/seeds', { token: other, body: { plaintext: b64('x') } }))
        .status,
    ).toBe(403);
    await sleep(50);
    const audit = await ctx.call('GET', '/v1/sys/audit/query?op=store.tampered');
    expect(audit.body.data.entries.length).toBeGreaterThanOrEqual(2);
    expect(audit.body.data.entries[0]).toMatchObject({ outcome: 'error', code: 'ERR_RECORD_TAMPERED' });
    tampered.push('token');
  });

  it('cannot raise a token’s policies, nor move the root token’s record under his own token', async () => {
    const child = (
      await ctx.call('POST', '/v1/auth/token/create', { body: { policies: ['default'], ttl: '1h' } })
    ).body.auth.client_token as string;
    const key = `token/${hash(child)}`;
    const sealed = JSON.parse(await get(key)) as { body: string };
    const body = JSON.parse(sealed.body) as { policies: string[] };
    await put(key, JSON.stringify({ ...sealed, body: JSON.stringify({ ...body, policies: ['root'] }) }));
    await sleep(1100); // past the one-second lookup cache
    expect((await ctx.call('GET', '/v1/auth/token/lookup-self', { token: child })).status).toBe(403);
    // The root token's record is authentic, but bound to the root token's hash: under another name it fails.
    const root = await get(`token/${hash(ctx.token)}`);
    const thief = 'ens.' + Buffer.alloc(32, 9).toString('base64url');
    await put(`token/${hash(thief)}`, root);
    expect((await ctx.call('GET', '/v1/sys/policies/acl?list=true', { token: thief })).status).toBe(403);
  });

  it('cannot grant a policy more: an edited policy grants nothing', async () => {
    await ctx.call('PUT', '/v1/sys/policies/acl/app', {
      body: { policy: 'path "transit/encrypt/seeds" { capabilities = ["update"] }' },
    });
    const app = (await ctx.call('POST', '/v1/auth/token/create', { body: { policies: ['app'], ttl: '1h' } }))
      .body.auth.client_token as string;
    const stored = JSON.parse(await get('policy/app')) as { body: string };
    await put(
      'policy/app',
      JSON.stringify({ ...stored, body: 'path "*" { capabilities = ["read", "update", "sudo"] }' }),
    );
    await sleep(1100);
    expect((await ctx.call('POST', '/v1/sys/backup', { token: app, body: { passphrase: 'x' } })).status).toBe(
      403,
    );
    // Not even the rights the policy had before: the record is refused whole.
    expect(
      (await ctx.call('POST', '/v1/transit/encrypt/seeds', { token: app, body: { plaintext: b64('x') } }))
        .status,
    ).toBe(403);
    expect((await ctx.call('GET', '/v1/sys/policies/acl/app')).status).toBe(500);
  });

  it('cannot make a key exportable or lower its minimum decryption version', async () => {
    await ctx.call('POST', '/v1/transit/keys/vault', { body: {} });
    await ctx.call('POST', '/v1/transit/keys/vault/rotate');
    await ctx.call('POST', '/v1/transit/keys/vault/config', { body: { min_decryption_version: 2 } });
    const row = await writer.transaction(async (tx) => (await tx.getKey('vault'))!);
    const sealed = JSON.parse(row.doc) as { body: string };
    const policy = JSON.parse(sealed.body) as Record<string, unknown>;
    const edited = { ...policy, exportable: true, allowPlaintextBackup: true, minDecryptionVersion: 1 };
    await writer.transaction((tx) =>
      tx.updateKey({ ...row, doc: JSON.stringify({ ...sealed, body: JSON.stringify(edited) }) }),
    );
    // A plain-JSON document (the format before authentication) is refused too.
    await sleep(1100);
    const exported = await ctx.call('GET', '/v1/transit/export/encryption-key/vault');
    expect(exported.status).toBe(500);
    expect(exported.text).not.toMatch(/"keys"/);
    expect(exported.body.errors[0]).toMatch(/ERR_RECORD_TAMPERED/);
    await writer.transaction((tx) => tx.updateKey({ ...row, doc: JSON.stringify(edited) }));
    await sleep(1100);
    expect((await ctx.call('GET', '/v1/transit/export/encryption-key/vault')).status).toBe(500);
    expect(tampered).toEqual(['token']);
  });

  it('can only deny service by deleting: a deleted token or key is gone, never another one', async () => {
    const t = (
      await ctx.call('POST', '/v1/auth/token/create', { body: { policies: ['default'], ttl: '1h' } })
    ).body.auth.client_token as string;
    await writer.transaction((tx) => tx.deleteMeta(`token/${hash(t)}`));
    await sleep(1100);
    expect((await ctx.call('GET', '/v1/auth/token/lookup-self', { token: t })).status).toBe(403);
    expect((await ctx.call('GET', '/v1/sys/health', { token: null })).status).toBe(200);
  });
});
