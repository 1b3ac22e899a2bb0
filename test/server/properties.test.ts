/** Random and mutated requests to every transit endpoint: a 2xx or a Vault-shaped 4xx, never a 5xx or a crash. */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devServer } from './helpers.js';

let ctx: Awaited<ReturnType<typeof devServer>>;
beforeAll(async () => {
  ctx = await devServer();
  await ctx.call('POST', '/v1/transit/keys/prop', { body: {} });
  await ctx.call('POST', '/v1/transit/keys/prop-sign', { body: { type: 'ed25519' } });
});
afterAll(async () => ctx.server.close());

const paths = [
  '/v1/transit/encrypt/prop',
  '/v1/transit/decrypt/prop',
  '/v1/transit/rewrap/prop',
  '/v1/transit/datakey/plaintext/prop',
  '/v1/transit/sign/prop-sign',
  '/v1/transit/verify/prop-sign',
  '/v1/transit/keys/prop/config',
  '/v1/transit/keys/prop/trim',
  '/v1/transit/hash/sha2-256',
  '/v1/transit/random/16',
  '/v1/auth/token/create',
  '/v1/sys/policies/acl/prop',
];

const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.base64String({ maxLength: 40 }),
  fc.constantFrom('vault:v1:AAAA', 'vault:v99:', '', 'aGVsbG8=', '-1', '1e309'),
);
const body = fc.dictionary(
  fc.constantFrom(
    'plaintext',
    'ciphertext',
    'context',
    'associated_data',
    'key_version',
    'bits',
    'input',
    'signature',
    'hmac',
    'batch_input',
    'min_decryption_version',
    'min_available_version',
    'policies',
    'ttl',
    'policy',
    'deletion_allowed',
    'exportable',
    'partial_failure_response_code',
  ),
  fc.oneof(
    value,
    fc.array(fc.dictionary(fc.constantFrom('plaintext', 'ciphertext', 'reference', 'context'), value), {
      maxLength: 4,
    }),
  ),
);

describe('property: HTTP inputs', () => {
  it('every response is 2xx or a 4xx with {"errors": [...]}', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.oneof(
          body.map((b) => JSON.stringify(b)),
          fc.string({ maxLength: 60 }),
        ),
        async (path, raw) => {
          const r = await ctx.call(path.includes('policies') ? 'PUT' : 'POST', path, { raw });
          expect(r.status).toBeLessThan(500);
          if (r.status >= 400) expect(Array.isArray(r.body?.errors)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
    // The server is still healthy and its audit chain intact.
    expect((await ctx.call('GET', '/v1/sys/health', { token: null })).status).toBe(200);
    expect((await ctx.call('GET', '/v1/sys/audit/verify')).body.data.ok).toBe(true);
  });
});
