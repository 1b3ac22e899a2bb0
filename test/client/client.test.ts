import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnsealClient } from '../../src/client/index.js';
import { utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
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

  it('an unreachable server is an IO error after bounded retries', async () => {
    const dead = new EnsealClient({ address: 'https://127.0.0.1:9', retries: 1 });
    expect(await asyncCodeOf(dead.encrypt('k', utf8Encode('x')))).toBe('ERR_IO');
    dead.close();
  });
});
