/**
 * A user's recovery backup: one opaque blob per user, which the user's own device sealed (the identity key under
 * a passphrase, Argon2id and an AEAD) before sending it. The server cannot open it and never tries: it checks
 * only who may write and read it, and its size. Writing needs a device token of that user, so no other user and
 * no other device's owner can replace the backup; reading also takes an application token, because the device
 * that restores a user has no device token yet.
 */
import { EnsealError, ErrorCode, base64Encode } from '../../crypto/index.js';
import type { KeyManager } from '../../kms/index.js';
import type { FastifyInstance } from '../http.js';
import { b64, b64Schema, ctxOf, nameSchema, obj, routeSchema, type Body } from './requests.js';

/** Largest backup accepted: far above a sealed 32-byte key with its KDF parameters, far below abuse. */
export const RECOVERY_BLOB_MAX_BYTES = 16 * 1024;

export function registerRecoveryBlobRoutes(app: FastifyInstance, km: KeyManager): void {
  const path = (p: Readonly<Record<string, string>>) => `e2ee/users/${p.user}`;
  const params = obj({ user: nameSchema });
  const example = 'ZW5zZWFsIHJlY292ZXJ5…';

  app.put(
    '/v1/e2ee/users/:user/recovery-blob',
    {
      schema: routeSchema(
        "Store the user's recovery backup (ciphertext sealed on the device), replacing any earlier one",
        {
          params,
          body: obj({ blob: b64Schema(RECOVERY_BLOB_MAX_BYTES) }),
          response: obj({ size: { type: 'integer' } }),
        },
        { params: { user: 'alice' }, body: { blob: example }, response: { size: 412 } },
      ),
      bodyLimit: 64 * 1024,
      config: { access: { path, e2ee: { tokens: 'device', self: true } } },
    },
    async (request) => {
      const { user } = request.params as { user: string };
      const blob = b64('blob', ((request.body ?? {}) as Body).blob, RECOVERY_BLOB_MAX_BYTES);
      return km.changeRecords('e2ee.recovery-blob.put', ctxOf(request), async (tx) => {
        await tx.putE2eeRecoveryBlob(user, blob, Date.now());
        return { result: { size: blob.length }, detail: { user, size: blob.length } };
      });
    },
  );

  app.get(
    '/v1/e2ee/users/:user/recovery-blob',
    {
      schema: routeSchema(
        "The user's recovery backup",
        { params, response: obj({ blob: { type: 'string' } }) },
        { params: { user: 'alice' }, response: { blob: example } },
      ),
      config: { access: { path, e2ee: { tokens: 'device-or-app', self: true } } },
    },
    async (request) => {
      const { user } = request.params as { user: string };
      // Audited like a write: whoever fetches a backup can try passphrases against it offline.
      return km.changeRecords('e2ee.recovery-blob.get', ctxOf(request), async (tx) => {
        const blob = await tx.getE2eeRecoveryBlob(user);
        if (blob === undefined)
          throw new EnsealError(ErrorCode.E2EE_NOT_FOUND, `no recovery backup is stored for "${user}"`);
        return { result: { blob: base64Encode(blob) }, detail: { user } };
      });
    },
  );
}
