import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnsealClient } from '../../src/client/index.js';
import { utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { startServer } from '../../src/server/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
import { tempDir } from '../kms/helpers.js';
import { devServer } from '../server/helpers.js';

let ctx: Awaited<ReturnType<typeof devServer>>;
let client: EnsealClient;
beforeAll(async () => {
  ctx = await devServer();
  client = new EnsealClient({
    address: ctx.server.url,
    token: ctx.token,
    caCert: readFileSync(ctx.server.caFile!),
  });
});
afterAll(async () => {
  client.close();
  await ctx.server.close();
});

describe('EnsealClient against a real HTTPS server', () => {
  it('keys and data: create, encrypt/decrypt with associated data, rotate, rewrap, datakey', async () => {
    await client.createKey('c-orders');
    expect(await client.listKeys()).toContain('c-orders');
    const aad = utf8Encode('row 9');
    const ct = await client.encrypt('c-orders', utf8Encode('4111'), { associatedData: aad });
    expect(utf8Decode(await client.decrypt('c-orders', ct, { associatedData: aad }))).toBe('4111');
    expect(await asyncCodeOf(client.decrypt('c-orders', ct))).toBe('ERR_DECRYPT_FAILED');
    expect((await client.rotateKey('c-orders')).latest_version).toBe(2);
    expect(await client.rewrap('c-orders', ct, { associatedData: aad })).toMatch(/^vault:v2:/);
    const dk = await client.dataKey('c-orders', { bits: 256 });
    expect(await client.decrypt('c-orders', dk.ciphertext)).toEqual(dk.plaintext);
    expect(await asyncCodeOf(client.encrypt('nope', utf8Encode('x')))).toBe('ERR_KEY_NOT_FOUND');
  });

  it('batches of 2,500 items split into requests, with a per-item error for one bad ciphertext', async () => {
    await client.createKey('c-batch');
    const items = Array.from({ length: 2500 }, (_, i) => ({
      plaintext: utf8Encode(`v${i}`),
      reference: `r${i}`,
    }));
    const enc = await client.encryptBatch('c-batch', items);
    expect(enc.every((r) => r.ciphertext?.startsWith('vault:v1:'))).toBe(true);
    const back = enc.map((r, i) => ({
      ciphertext: i === 1234 ? 'vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAA' : r.ciphertext!,
      reference: r.reference!,
    }));
    const dec = await client.decryptBatch('c-batch', back);
    expect(dec).toHaveLength(2500);
    expect(dec[1234]!.error).toMatch(/ERR_DECRYPT_FAILED/);
    expect(dec[1234]!.reference).toBe('r1234');
    expect(utf8Decode(dec[2499]!.plaintext!)).toBe('v2499');
    expect(dec.filter((r) => r.error).length).toBe(1);
  });

  it('sign/verify, hmac, tokens and policies, audit', async () => {
    await client.createKey('c-sign', { type: 'ed25519' });
    const sig = await client.sign('c-sign', utf8Encode('doc'));
    expect(await client.verify('c-sign', utf8Encode('doc'), sig)).toBe(true);
    expect(await client.verify('c-sign', utf8Encode('dog'), sig)).toBe(false);
    await client.createKey('c-mac', { type: 'hmac' });
    expect(await client.hmac('c-mac', utf8Encode('m'))).toMatch(/^vault:v1:/);

    await client.writePolicy('c-enc-only', 'path "transit/encrypt/c-orders" { capabilities = ["update"] }');
    const token = await client.createToken({ policies: ['c-enc-only'], ttl: '10m', displayName: 'svc' });
    const limited = new EnsealClient({
      address: ctx.server.url,
      token,
      caCert: readFileSync(ctx.server.caFile!),
    });
    expect(await limited.encrypt('c-orders', utf8Encode('x'))).toMatch(/^vault:v2:/);
    expect(await asyncCodeOf(limited.decrypt('c-orders', 'vault:v1:AAAA'))).toBe('ERR_PERMISSION_DENIED');
    expect((await limited.lookupSelf()).policies).toEqual(['c-enc-only']);
    limited.close();
    expect((await client.auditVerify()).ok).toBe(true);
    expect((await client.sealStatus()).sealed).toBe(false);
  });

  it('key administration, all-failed batches, audit export, backup and restore', async () => {
    expect(await client.health()).toMatchObject({ initialized: true, sealed: false });
    await client.createKey('c-admin');
    expect((await client.readKey('c-admin')).latest_version).toBe(1);
    await client.rotateKey('c-admin');
    const cfg = await client.configureKey('c-admin', { min_decryption_version: 2, deletion_allowed: true });
    expect(cfg.min_decryption_version).toBe(2);

    // Every item bad: a 400 from the server, still one result per item with its own error and reference.
    const dec = await client.decryptBatch('c-admin', [
      { ciphertext: 'vault:v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAA', reference: 'a' },
      { ciphertext: 'vault:v2:BBBBBBBBBBBBBBBBBBBBBBBBBBBB', reference: 'b' },
    ]);
    expect(dec.map((r) => r.reference)).toEqual(['a', 'b']);
    expect(dec.map((r) => r.error)).toEqual([
      expect.stringMatching(/^ERR_DECRYPT_FAILED: /),
      expect.stringMatching(/^ERR_DECRYPT_FAILED: /),
    ]);

    const ct = await client.encrypt('c-admin', utf8Encode('kept'));
    const backup = await client.backup({ passphrase: 'correct horse battery staple' });
    expect(await asyncCodeOf(client.restore(backup, { passphrase: 'wrong horse' }))).not.toBe('no error');
    const restored = await client.restore(backup, {
      passphrase: 'correct horse battery staple',
      force: true,
    });
    expect(restored).toContain('c-admin');
    expect(utf8Decode(await client.decrypt('c-admin', ct))).toBe('kept');

    await client.deleteKey('c-admin');
    expect(await asyncCodeOf(client.encrypt('c-admin', utf8Encode('x')))).not.toBe('no error');
    const lines = (await client.auditExport()).trim().split('\n');
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.some((l) => (JSON.parse(l) as { key?: string }).key === 'c-admin')).toBe(true);
  });

  it('an unreachable server is an IO error after bounded retries', async () => {
    const dead = new EnsealClient({ address: 'https://127.0.0.1:9', retries: 1 });
    expect(await asyncCodeOf(dead.encrypt('k', utf8Encode('x')))).toBe('ERR_IO');
    dead.close();
  });
});

describe('EnsealClient operator calls on a fresh server (plain HTTP)', () => {
  it('init, unseal, seal, rekey; health answers while sealed', async () => {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const server = await startServer({
      dataDir: tempDir(),
      port: 0,
      insecureHttp: true,
      logLevel: 'warn',
      logStream: sink,
    });
    const anon = new EnsealClient({ address: server.url, retries: 0 });
    try {
      expect(await anon.health()).toMatchObject({ initialized: false });
      const { keys, root_token } = await anon.init({ shares: 3, threshold: 2 });
      expect(keys).toHaveLength(3);
      expect(await asyncCodeOf(anon.init({ shares: 3, threshold: 2 }))).not.toBe('no error');
      expect(await anon.health()).toMatchObject({ initialized: true, sealed: true });

      const root = new EnsealClient({ address: server.url, token: root_token, retries: 0 });
      expect(await asyncCodeOf(root.createKey('k'))).toBe('ERR_SEALED');
      expect((await anon.unseal(keys[0]!)).sealed).toBe(true);
      expect((await anon.unseal(keys[2]!)).sealed).toBe(false);
      await root.createKey('k');
      const ct = await root.encrypt('k', utf8Encode('x'));

      const rekeyed = await root.rekey({ keys: keys.slice(0, 2), shares: 2, threshold: 2 });
      expect(rekeyed.keys).toHaveLength(2);
      await root.seal();
      expect((await anon.sealStatus()).sealed).toBe(true);
      for (const share of rekeyed.keys) await anon.unseal(share);
      expect((await anon.sealStatus()).sealed).toBe(false);
      expect(utf8Decode(await root.decrypt('k', ct))).toBe('x');
      root.close();
    } finally {
      anon.close();
      await server.close();
    }
  });
});
