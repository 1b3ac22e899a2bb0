/**
 * The seeds' Flask endpoints, fixed: `POST /encrypt {"data"}` → `{"encrypted_data"}` and `POST /decrypt
 * {"encrypted_data"}` → `{"decrypted_data"}`, now authenticated (token with update on `transit/encrypt/<key>`
 * or `transit/decrypt/<key>`), audited, and backed by a named key instead of a key that dies with the process.
 * The values are Fernet tokens, as in the seeds, under a key derived from the named key's latest version.
 */
import { utf8Decode, utf8Encode, invalidArgument } from '../crypto/index.js';
import type { KeyManager } from '../kms/index.js';
import { callerOf, type FastifyInstance } from './http.js';

export function registerSeedRoutes(app: FastifyInstance, km: KeyManager, keyName: string): void {
  app.post(
    '/encrypt',
    {
      schema: { tags: ['seeds'], summary: "The seeds' /encrypt, authenticated and audited" },
      config: { access: { path: () => `transit/encrypt/${keyName}` } },
    },
    async (request) => {
      const b = (request.body ?? {}) as { data?: unknown };
      if (typeof b.data !== 'string') throw invalidArgument('data', 'must be a string');
      return {
        encrypted_data: await km.encryptFernet(keyName, utf8Encode(b.data), { caller: callerOf(request) }),
      };
    },
  );
  app.post(
    '/decrypt',
    {
      schema: { tags: ['seeds'], summary: "The seeds' /decrypt, authenticated and audited" },
      config: { access: { path: () => `transit/decrypt/${keyName}` } },
    },
    async (request) => {
      const b = (request.body ?? {}) as { encrypted_data?: unknown };
      if (typeof b.encrypted_data !== 'string') throw invalidArgument('encrypted_data', 'must be a string');
      return {
        decrypted_data: utf8Decode(
          await km.decryptFernet(keyName, b.encrypted_data, { caller: callerOf(request) }),
        ),
      };
    },
  );
}
