/**
 * The seeds' Flask endpoints, fixed: `POST /encrypt {"data"}` → `{"encrypted_data"}` and `POST /decrypt
 * {"encrypted_data"}` → `{"decrypted_data"}`, now authenticated (token with update on `transit/encrypt/<key>`
 * or `transit/decrypt/<key>`), audited, and backed by a named key instead of a key that dies with the process.
 * The values are Fernet tokens, as in the seeds, under a key derived from the named key's latest version.
 */
import { utf8Decode, utf8Encode, invalidArgument } from '../crypto/index.js';
import type { KeyManager } from '../kms/index.js';
import { callerOf, type FastifyInstance } from './http.js';
import { body, documented, object, responses, text } from './route-docs.js';

/** A Fernet token as the seeds' app returned them (this one is made up). */
const FERNET_EXAMPLE = 'gAAAAABpL0EXAMPLE-not-a-real-token-3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==';
const ENCRYPT = documented(['seeds'], "The seeds' /encrypt, authenticated and audited", {
  body: body({ data: text('the text to encrypt', 'patient 7: diabetic') }, { data: 'patient 7: diabetic' }),
  response: responses({
    200: object(
      { encrypted_data: text('a Fernet token') },
      { encrypted_data: FERNET_EXAMPLE },
      'The Fernet token',
    ),
  }),
});
const DECRYPT = documented(['seeds'], "The seeds' /decrypt, authenticated and audited", {
  body: body(
    { encrypted_data: text('a Fernet token from /encrypt', FERNET_EXAMPLE) },
    { encrypted_data: FERNET_EXAMPLE },
  ),
  response: responses({
    200: object({ decrypted_data: text('the text') }, { decrypted_data: 'patient 7: diabetic' }, 'The text'),
  }),
});

export function registerSeedRoutes(app: FastifyInstance, km: KeyManager, keyName: string): void {
  app.post(
    '/encrypt',
    {
      schema: ENCRYPT.schema,
      config: { access: { path: () => `transit/encrypt/${keyName}` }, docs: ENCRYPT.docs },
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
      schema: DECRYPT.schema,
      config: { access: { path: () => `transit/decrypt/${keyName}` }, docs: DECRYPT.docs },
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
