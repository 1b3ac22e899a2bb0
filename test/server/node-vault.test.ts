/**
 * node-vault, the most used Node Vault client, against a real `enseal serve --dev` over HTTPS, unchanged: its
 * named methods where it has them (status, health, tokenLookupSelf, transit keys, encrypt, decrypt, rewrap,
 * `transitListKeys`, which sends the LIST method over HTTP/1.1) and its generic `write`/`read`/`list` for the
 * rest of Transit, as a new user would call them.
 */
import nodeVault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/cli.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';
import { tempDir } from '../kms/helpers.js';

type Client = ReturnType<typeof nodeVault>;
const b64 = (text: string) => Buffer.from(text).toString('base64');
const text = (value: string) => Buffer.from(value, 'base64').toString();

let server: ServeProcess | undefined;
let vault: Client;
const clientFor = (token: string) =>
  nodeVault({ endpoint: server!.url, token, requestOptions: { ca: server!.ca! } });

beforeAll(async () => {
  buildOnce();
  server = await startServe(['--dev', '--data-dir', tempDir()]);
  vault = clientFor(server.token!);
}, 120_000);
afterAll(async () => {
  await stopServe(server);
});

describe('node-vault against enseal serve', () => {
  it('status, health and tokenLookupSelf', async () => {
    const status = await vault.status();
    expect(status).toMatchObject({ initialized: true, sealed: false });
    expect(await vault.health()).toMatchObject({ initialized: true, sealed: false });
    const self = await vault.tokenLookupSelf();
    expect(self.data.policies).toEqual(['root']);
  });

  it('creates, reads and lists keys (LIST over HTTP/1.1), by named method and by generic list', async () => {
    await vault.transitCreateKey({ name: 'nv-orders' });
    await vault.write('transit/keys/nv-other', { type: 'aes256-gcm96' });
    const key = await vault.transitReadKey({ name: 'nv-orders' });
    expect(key.data).toMatchObject({ name: 'nv-orders', type: 'aes256-gcm96', latest_version: 1 });
    const listed = await vault.transitListKeys();
    expect(listed.data.keys).toEqual(expect.arrayContaining(['nv-orders', 'nv-other']));
    expect((await vault.list('transit/keys')).data.keys).toEqual(listed.data.keys);
    expect((await vault.list('sys/policies/acl')).data.keys).toContain('root');
  });

  it('encrypts, decrypts, batches, rotates and rewraps', async () => {
    const { data } = await vault.encryptData({ name: 'nv-orders', plaintext: b64('4111 1111') });
    expect(data.ciphertext).toMatch(/^vault:v1:/);
    const plain = await vault.decryptData({ name: 'nv-orders', ciphertext: data.ciphertext });
    expect(text(plain.data.plaintext)).toBe('4111 1111');

    const batch = await vault.encryptData({
      name: 'nv-orders',
      batch_input: [{ plaintext: b64('a') }, { plaintext: b64('b'), reference: 'second' }],
    });
    expect(batch.data.batch_results).toHaveLength(2);
    expect(batch.data.batch_results[1].reference).toBe('second');
    const opened = await vault.decryptData({
      name: 'nv-orders',
      batch_input: batch.data.batch_results.map((r: { ciphertext: string }) => ({
        ciphertext: r.ciphertext,
      })),
    });
    expect(opened.data.batch_results.map((r: { plaintext: string }) => text(r.plaintext))).toEqual([
      'a',
      'b',
    ]);

    const rotated = await vault.write('transit/keys/nv-orders/rotate', {});
    expect(rotated.data.latest_version).toBe(2);
    const rewrapped = await vault.rewrapData({ name: 'nv-orders', ciphertext: data.ciphertext });
    expect(rewrapped.data.ciphertext).toMatch(/^vault:v2:/);
    const again = await vault.decryptData({ name: 'nv-orders', ciphertext: rewrapped.data.ciphertext });
    expect(text(again.data.plaintext)).toBe('4111 1111');
  });

  it('signs and verifies, HMACs, makes data keys', async () => {
    await vault.transitCreateKey({ name: 'nv-signer', type: 'ed25519' });
    const signed = await vault.write('transit/sign/nv-signer', { input: b64('contract') });
    expect(signed.data.signature).toMatch(/^vault:v1:/);
    const good = await vault.write('transit/verify/nv-signer', {
      input: b64('contract'),
      signature: signed.data.signature,
    });
    expect(good.data.valid).toBe(true);
    const bad = await vault.write('transit/verify/nv-signer', {
      input: b64('forged'),
      signature: signed.data.signature,
    });
    expect(bad.data.valid).toBe(false);

    await vault.transitCreateKey({ name: 'nv-mac', type: 'hmac' });
    const mac = await vault.write('transit/hmac/nv-mac', { input: b64('row 7') });
    expect(mac.data.hmac).toMatch(/^vault:v1:/);
    const checked = await vault.write('transit/verify/nv-mac', { input: b64('row 7'), hmac: mac.data.hmac });
    expect(checked.data.valid).toBe(true);

    const dk = await vault.write('transit/datakey/plaintext/nv-orders', { bits: 256 });
    expect(Buffer.from(dk.data.plaintext, 'base64')).toHaveLength(32);
    const unwrapped = await vault.decryptData({ name: 'nv-orders', ciphertext: dk.data.ciphertext });
    expect(unwrapped.data.plaintext).toBe(dk.data.plaintext);
    const wrapped = await vault.write('transit/datakey/wrapped/nv-orders', {});
    expect(wrapped.data.plaintext).toBeUndefined();
  });

  it('exports a key only where the key allows it', async () => {
    await vault.transitCreateKey({ name: 'nv-export', exportable: true });
    const exported = await vault.read('transit/export/encryption-key/nv-export');
    expect(Buffer.from(exported.data.keys['1'], 'base64')).toHaveLength(32);
    const pub = await vault.read('transit/export/public-key/nv-signer');
    expect(typeof pub.data.keys['1']).toBe('string');
    await expect(vault.read('transit/export/encryption-key/nv-orders')).rejects.toMatchObject({
      response: { statusCode: 400 },
    });
  });

  it('a token without the capability is refused, LIST included', async () => {
    await vault.write('sys/policies/acl/nv-encrypt-only', {
      policy: 'path "transit/encrypt/nv-orders" { capabilities = ["update"] }',
    });
    const created = await vault.write('auth/token/create', { policies: ['nv-encrypt-only'] });
    const limited = clientFor(created.auth.client_token as string);
    const ct = await limited.encryptData({ name: 'nv-orders', plaintext: b64('x') });
    expect(ct.data.ciphertext).toMatch(/^vault:v2:/);
    await expect(
      limited.decryptData({ name: 'nv-orders', ciphertext: ct.data.ciphertext }),
    ).rejects.toMatchObject({
      response: { statusCode: 403 },
    });
    await expect(limited.transitListKeys()).rejects.toMatchObject({ response: { statusCode: 403 } });
    const anonymous = clientFor('');
    await expect(anonymous.transitListKeys()).rejects.toMatchObject({ response: { statusCode: 403 } });
  });
});
