/** Random and mutated input to every key-manager input: a clear error, never a crash, hang or data loss. */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnsealError, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { AgeX25519Identity } from '../../src/formats/index.js';
import { checkKeyName, parseVersioned, restoreBackup, type KeyManager } from '../../src/kms/index.js';
import { parseShare } from '../../src/keys/index.js';
import { devManager } from './helpers.js';

const codes = new Set([
  'ERR_NOT_ALLOWED',
  'ERR_INVALID_ARGUMENT',
  'ERR_MALFORMED',
  'ERR_DECRYPT_FAILED',
  'ERR_KEY_NOT_FOUND',
  'ERR_NO_IDENTITY_MATCH',
]);

async function settle(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof EnsealError && codes.has(err.code)) return err.code;
    throw err;
  }
}

let km: KeyManager;
let ct: string;
beforeAll(async () => {
  ({ km } = await devManager());
  await km.createKey('p', { derived: true });
  ct = await km.encrypt('p', utf8Encode('keep me'), { context: utf8Encode('ctx') });
});
afterAll(async () => km.close());

describe('property: inputs', () => {
  it('key names: accepted names never contain separators or dot segments', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 140 }), (name) => {
        let ok = true;
        try {
          checkKeyName(name);
        } catch (err) {
          expect((err as EnsealError).code).toBe('ERR_INVALID_ARGUMENT');
          ok = false;
        }
        if (ok) expect(/[/\\\0]|\.\.|^\./.test(name) || name.length > 128).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('ciphertext text: random and mutated values fail with a clear code and the key keeps working', async () => {
    const mutated = fc
      .tuple(fc.nat(ct.length - 1), fc.integer({ min: 32, max: 126 }))
      .map(([i, c]) => ct.slice(0, i) + String.fromCharCode(c) + ct.slice(i + 1));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          mutated,
          fc.constantFrom('vault:v1:', 'vault:v01:AA==', 'vault:v-1:AA==', 'vault:v1:===='),
        ),
        async (text) => {
          fc.pre(text !== ct);
          expect(await settle(km.decrypt('p', text, { context: utf8Encode('ctx') }))).not.toBe('ok');
        },
      ),
      { numRuns: 300 },
    );
    expect(utf8Decode(await km.decrypt('p', ct, { context: utf8Encode('ctx') }))).toBe('keep me');
  });

  it('versions and contexts: random values are refused cleanly', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.integer(), fc.double(), fc.constant(Number.NaN)),
        fc.oneof(fc.string({ maxLength: 50 }), fc.uint8Array({ maxLength: 1100 })),
        async (version, context) => {
          const r = await settle(km.encrypt('p', utf8Encode('x'), { keyVersion: version, context }));
          expect(['ok', ...codes]).toContain(r);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('parseVersioned and parseShare never throw anything but MALFORMED', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        for (const fn of [
          () => parseVersioned('x', text),
          () => parseShare(text, 32),
          () => parseShare(`enseal-share1:${text}`, 32),
        ]) {
          try {
            fn();
          } catch (err) {
            expect((err as EnsealError).code).toBe('ERR_MALFORMED');
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('restore: random bytes are refused and nothing is restored', async () => {
    const identity = AgeX25519Identity.generate();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const r = await restoreBackup(km, bytes, { identities: [identity] }).then(
          () => 'ok',
          (err: unknown) => (err instanceof EnsealError ? err.code : 'crash'),
        );
        expect(r).not.toBe('ok');
        expect(r).not.toBe('crash');
      }),
      { numRuns: 200 },
    );
    expect(await km.listKeys()).toEqual(['p']);
  });
});
