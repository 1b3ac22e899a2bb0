/**
 * Device login: a device proves possession of its device key (the one in its valid record in the log) by
 * signing a fresh one-use challenge, and gets a device token: an ordinary enseal token (hashed at rest, one
 * hour) whose authenticated record binds `{user, device}`. The authorization hook lets such a token reach only
 * the e2ee routes, and only for its own user and device where a path names one.
 */
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64Encode,
  hexEncode,
  randomBytes,
  verify,
} from '../../crypto/index.js';
import { decodeDirectoryEntry, deviceLoginMessage, userDirectory } from '../../e2ee/index.js';
import type { KeyManager } from '../../kms/index.js';
import type { FastifyInstance } from '../http.js';
import type { TokenStore } from '../tokens.js';
import type { E2eeLog } from './log-service.js';
import { b64Schema, checkName, nameSchema, obj, routeSchema, type Body } from './requests.js';

const CHALLENGE_TTL_MS = 60_000;
const TOKEN_TTL_MS = 60 * 60 * 1000;
/** Challenges and logins per client address per minute. */
const AUTH_RATE = { max: 60, timeWindow: 60_000 };

const refused = () =>
  new EnsealError(
    ErrorCode.PERMISSION_DENIED,
    'device login refused: unknown or used challenge, unknown or revoked device, or a bad signature',
  );

export function registerDeviceAuthRoutes(
  app: FastifyInstance,
  km: KeyManager,
  tokens: TokenStore,
  log: E2eeLog,
): void {
  const device = obj({ user: nameSchema, device: nameSchema });
  app.post(
    '/v1/e2ee/auth/challenge',
    {
      schema: routeSchema(
        'A one-use login challenge for a device (valid 60 s)',
        { body: device, response: obj({ challenge: { type: 'string' }, expires_at: { type: 'string' } }) },
        {
          body: { user: 'alice', device: 'phone' },
          response: {
            challenge: 'q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8=',
            expires_at: '2026-01-01T00:01:00.000Z',
          },
        },
      ),
      config: { access: { public: true }, rateLimit: AUTH_RATE },
    },
    async (request) => {
      const b = (request.body ?? {}) as Body;
      const user = checkName('user', b.user);
      const dev = checkName('device', b.device);
      const challenge = randomBytes(32);
      const expiresAt = Date.now() + CHALLENGE_TTL_MS;
      await km.readRecords(async (tx) => {
        await tx.expireE2ee(Date.now());
        await tx.insertE2eeChallenge({ challenge: hexEncode(challenge), user, device: dev, expiresAt });
      });
      return { challenge: base64Encode(challenge), expires_at: new Date(expiresAt).toISOString() };
    },
  );

  app.post(
    '/v1/e2ee/auth/login',
    {
      schema: routeSchema(
        'Log a device in with its signature over the challenge; answers a device token (one hour)',
        {
          body: obj({
            user: nameSchema,
            device: nameSchema,
            challenge: b64Schema(32),
            signature: b64Schema(64),
          }),
          response: obj({ token: { type: 'string' }, expires_at: { type: 'string' } }),
        },
        {
          body: { user: 'alice', device: 'phone', challenge: 'q83vEjRWeJq8…=', signature: 'xNf3…==' },
          response: { token: 'ens.Zm9v…', expires_at: '2026-01-01T01:00:00.000Z' },
        },
      ),
      config: { access: { public: true }, rateLimit: AUTH_RATE },
    },
    async (request) => {
      const b = (request.body ?? {}) as Body;
      const user = checkName('user', b.user);
      const dev = checkName('device', b.device);
      let challenge: Uint8Array;
      let signature: Uint8Array;
      try {
        challenge = base64Decode(String(b.challenge), 'challenge');
        signature = base64Decode(String(b.signature), 'signature');
      } catch {
        throw refused();
      }
      const ctx = { caller: `device:${user}/${dev}:${request.ip}` };
      const deny = async () => {
        await km.recordDenied('e2ee.login', '', ErrorCode.PERMISSION_DENIED, ctx);
        return refused();
      };
      if (challenge.length !== 32 || signature.length !== 64) throw await deny();
      const now = Date.now();
      const key = await km.readRecords(async (tx) => {
        const row = await tx.takeE2eeChallenge(hexEncode(challenge));
        if (row === undefined || row.user !== user || row.device !== dev || row.expiresAt <= now)
          return undefined;
        const entries = (await tx.listE2eeUserLeaves(user)).map((r) => decodeDirectoryEntry(r.entry));
        if (entries.length === 0) return undefined;
        return userDirectory(user, entries).devices.get(dev)?.deviceKey;
      });
      if (
        key === undefined ||
        !verify('ed25519', key, deviceLoginMessage(log.origin, user, dev, challenge), signature)
      )
        throw await deny();
      const { token, info } = await tokens.create(
        {
          policies: [],
          ttlMs: TOKEN_TTL_MS,
          displayName: `device:${user}/${dev}`,
          device: { user, device: dev },
        },
        ctx,
      );
      return { token, expires_at: new Date(info.expiresAt).toISOString() };
    },
  );
}
