/**
 * Restores that cannot replace keys, and exports that honour their type: a backup is validated whole before
 * anything is written, carries its keyring's authenticator, and can never loosen a key's settings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgeX25519Identity, ageDecrypt, ageEncrypt } from '../../src/formats/index.js';
import { devServer } from '../server/helpers.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
let ctx: Awaited<ReturnType<typeof devServer>>;
const identity = AgeX25519Identity.generate();
const recipient = identity.recipient.toString();

beforeAll(async () => {
  ctx = await devServer();
});
afterAll(async () => ctx.server.close());

type Doc = {
  format: string;
  version: number;
  keyring?: string;
  mac?: string;
  body?: string;
  keys?: unknown[];
};
const open = (backup: string) =>
  JSON.parse(new TextDecoder().decode(ageDecrypt(Buffer.from(backup, 'base64'), [identity]))) as Doc;
const seal = (doc: unknown) =>
  Buffer.from(ageEncrypt(new TextEncoder().encode(JSON.stringify(doc)), [recipient])).toString('base64');
const backupOf = async (name: string) =>
  (await ctx.call('POST', `/v1/transit/backup/${name}`, { body: { recipients: [recipient] } })).body.data
    .backup as string;
const restore = (path: string, backup: string, force = false) =>
  ctx.call('POST', path, { body: { backup, identity: identity.toString(), force } });
const keyData = async (name: string) => (await ctx.call('GET', `/v1/transit/keys/${name}`)).body.data;

describe('restore', () => {
  it('refuses a backup of another key at a named route before writing anything', async () => {
    await ctx.call('POST', '/v1/transit/keys/other', { body: { allow_plaintext_backup: true } });
    const backup = await backupOf('other');
    await ctx.call('DELETE', '/v1/transit/keys/other'); // not allowed: stays
    const r = await restore('/v1/transit/restore/victim', backup);
    expect(r.status).toBe(400);
    expect((await ctx.call('GET', '/v1/transit/keys/victim')).status).toBe(404);
  });

  it('refuses an edited backup of this keyring: the authenticator fails, settings stay', async () => {
    await ctx.call('POST', '/v1/transit/keys/pan', { body: { allow_plaintext_backup: true } });
    await ctx.call('POST', '/v1/transit/keys/pan/rotate');
    await ctx.call('POST', '/v1/transit/keys/pan/config', { body: { min_decryption_version: 2 } });
    const doc = open(await backupOf('pan'));
    expect(doc).toMatchObject({ version: 2, keyring: expect.any(String), mac: expect.any(String) });
    const body = JSON.parse(doc.body!) as {
      keys: { policy: Record<string, unknown>; versions: { reserved: number }[] }[];
    };
    body.keys[0]!.policy = { ...body.keys[0]!.policy, exportable: true, minDecryptionVersion: 1 };
    const edited = seal({ ...doc, body: JSON.stringify(body) });
    const r = await restore('/v1/transit/restore/pan', edited, true);
    expect(r.status).toBe(500);
    expect(r.body.errors[0]).toMatch(/ERR_RECORD_TAMPERED/);
    // The same edit presented as a backup from elsewhere (no authenticator, format v1) may not touch it either.
    const foreign = seal({ format: 'enseal-key-backup', version: 1, ...body });
    const f = await restore('/v1/transit/restore/pan', foreign, true);
    expect(f.status).toBe(400);
    expect(f.body.errors[0]).toMatch(/ERR_NOT_ALLOWED.*made by this keyring/);
    expect(await keyData('pan')).toMatchObject({
      exportable: false,
      min_decryption_version: 2,
      latest_version: 2,
    });
  });

  it('merges an authentic backup without replacing material or loosening anything', async () => {
    const backup = await backupOf('pan'); // versions 1 and 2
    await ctx.call('POST', '/v1/transit/keys/pan/rotate');
    const ct = (await ctx.call('POST', '/v1/transit/encrypt/pan', { body: { plaintext: b64('4111') } })).body
      .data.ciphertext as string;
    await ctx.call('POST', '/v1/transit/keys/pan/config', { body: { min_decryption_version: 3 } });
    expect((await restore('/v1/transit/restore/pan', backup)).status).toBe(400); // exists, no force
    expect((await restore('/v1/transit/restore/pan', backup, true)).status).toBe(200);
    expect(await keyData('pan')).toMatchObject({
      latest_version: 3,
      min_decryption_version: 3,
      exportable: false,
    });
    const dec = await ctx.call('POST', '/v1/transit/decrypt/pan', { body: { ciphertext: ct } });
    expect(Buffer.from(dec.body.data.plaintext, 'base64').toString()).toBe('4111');
    // A backup whose version 1 carries other material cannot swap it in, even when authenticated elsewhere.
    const doc = open(backup);
    const body = JSON.parse(doc.body!) as { keys: { versions: { material: string }[] }[] };
    body.keys[0]!.versions[0]!.material = Buffer.alloc(32, 1).toString('base64');
    const r = await restore(
      '/v1/transit/restore/pan',
      seal({ format: 'enseal-key-backup', version: 1, ...body }),
      true,
    );
    expect(r.status).toBe(400);
  });

  it('validates every key of a backup before writing the first one', async () => {
    const good = JSON.parse(open(await backupOf('other')).body!) as {
      keys: { policy: Record<string, unknown> }[];
    };
    const fresh = (name: string, patch: Record<string, unknown> = {}, material?: string) => {
      const k = structuredClone(good.keys[0]!) as {
        policy: Record<string, unknown>;
        versions: { material: string }[];
      };
      k.policy = { ...k.policy, name, ...patch };
      if (material) k.versions[0]!.material = material;
      return k;
    };
    const cases = [
      fresh('bad-size', {}, Buffer.alloc(16).toString('base64')),
      fresh('bad-purpose', { purpose: 'sign' }),
      fresh('bad-type', { type: 'aes128' }),
      fresh('bad-versions', { latestVersion: 5 }),
      fresh('bad-name', { name: '../x' }),
    ];
    for (const bad of cases) {
      const file = seal({ format: 'enseal-key-backup', version: 1, keys: [fresh('first-ok'), bad] });
      const r = await restore('/v1/transit/restore', file);
      expect(r.status, JSON.stringify(bad.policy.name)).toBe(400);
      expect((await ctx.call('GET', '/v1/transit/keys/first-ok')).status).toBe(404);
    }
    const ok = await restore(
      '/v1/transit/restore',
      seal({ format: 'enseal-key-backup', version: 1, keys: [fresh('first-ok')] }),
    );
    expect(ok.status).toBe(200);
  });
});

describe('export', () => {
  it('honours its type; public-key never returns secret material', async () => {
    await ctx.call('POST', '/v1/transit/keys/signer', { body: { type: 'ed25519' } });
    const pub = await ctx.call('GET', '/v1/transit/export/public-key/signer');
    expect(pub.status).toBe(200);
    expect(pub.body.data.keys['1']).toBe((await keyData('signer')).keys['1'].public_key);
    expect((await ctx.call('GET', '/v1/transit/export/signing-key/signer')).status).toBe(400); // not exportable
    expect((await ctx.call('GET', '/v1/transit/export/encryption-key/signer')).body.errors[0]).toMatch(
      /ERR_KEY_USAGE/,
    );
    await ctx.call('POST', '/v1/transit/keys/exp', {
      body: { exportable: true, deletion_allowed: true, allow_plaintext_backup: true },
    });
    expect((await ctx.call('GET', '/v1/transit/export/public-key/exp')).status).toBe(400);
    expect((await ctx.call('GET', '/v1/transit/export/hmac-key/exp')).status).toBe(400);
    expect((await ctx.call('GET', '/v1/transit/export/bogus/exp')).status).toBe(400);
    const key = await ctx.call('GET', '/v1/transit/export/encryption-key/exp');
    expect(Buffer.from(key.body.data.keys['1'], 'base64')).toHaveLength(32);
  });

  it('a key pending deletion serves nothing: no export, no backup', async () => {
    await ctx.call('POST', '/v1/transit/keys/exp/config', { body: { deletion_allowed: true } });
    expect((await ctx.call('DELETE', '/v1/transit/keys/exp')).status).toBe(204);
    expect((await ctx.call('GET', '/v1/transit/export/encryption-key/exp')).body.errors[0]).toMatch(
      /PENDING_DELETION/,
    );
    const single = await ctx.call('POST', '/v1/transit/backup/exp', { body: { recipients: [recipient] } });
    expect(single.body.errors[0]).toMatch(/PENDING_DELETION/);
    const full = await ctx.call('POST', '/v1/sys/backup', { body: { recipients: [recipient] } });
    const names = (
      JSON.parse(open(full.body.data.backup).body!) as { keys: { policy: { name: string } }[] }
    ).keys.map((k) => k.policy.name);
    expect(names).toContain('pan');
    expect(names).not.toContain('exp');
  });
});
