/** `/v1/auth/token/*`: create, look up and revoke tokens, in Vault's shapes. */
import { invalidArgument } from '../crypto/index.js';
import { durationMs } from './transit-routes.js';
import {
  callerOf,
  HttpError,
  tokenOf,
  vaultResponse,
  type AppOptions,
  type FastifyInstance,
  type FastifyRequest,
} from './http.js';
import type { TokenInfo } from './tokens.js';

const DEFAULT_TTL_MS = 32 * 24 * 60 * 60 * 1000;

function tokenData(info: TokenInfo, now: number): Record<string, unknown> {
  return {
    accessor: info.accessor,
    policies: info.policies,
    display_name: info.displayName,
    creation_time: Math.floor(info.createdAt / 1000),
    expire_time: info.expiresAt === 0 ? null : new Date(info.expiresAt).toISOString(),
    ttl: info.expiresAt === 0 ? 0 : Math.max(0, Math.floor((info.expiresAt - now) / 1000)),
    renewable: false,
  };
}

export function registerAuthRoutes(app: FastifyInstance, options: AppOptions): void {
  const { tokens } = options;
  const tag = (summary: string) => ({ schema: { tags: ['auth'], summary }, config: { access: {} } });

  app.get('/v1/auth/token/lookup-self', tag('Look up the calling token'), async (request) =>
    vaultResponse(tokenData(request.token!, Date.now())),
  );

  app.post(
    '/v1/auth/token/create',
    tag('Create a child token with a subset of policies'),
    async (request) => {
      const b = (request.body ?? {}) as Record<string, unknown>;
      const parent = request.token!;
      const wanted = b.policies === undefined ? parent.policies : b.policies;
      if (!Array.isArray(wanted) || wanted.some((p) => typeof p !== 'string'))
        throw invalidArgument('policies', 'must be a list of names');
      // A token can hand out only policies it holds itself (root may hand out any).
      if (!parent.policies.includes('root') && wanted.some((p) => !parent.policies.includes(p as string))) {
        throw new HttpError(
          403,
          'ERR_PERMISSION_DENIED: a child token cannot have policies its parent lacks',
        );
      }
      const ttlMs = durationMs('ttl', b.ttl) ?? DEFAULT_TTL_MS;
      if (ttlMs === 0) throw invalidArgument('ttl', 'must be positive');
      const parentToken = tokenOf(request);
      const { token, info } = await tokens.create(
        {
          policies: wanted as string[],
          ttlMs,
          displayName: typeof b.display_name === 'string' ? b.display_name : 'token',
          // A certificate identity has no token record: its children are orphans, capped by their own TTL.
          ...(parentToken !== undefined ? { parent: { token: parentToken, info: parent } } : {}),
        },
        { caller: callerOf(request) },
      );
      return vaultResponse(null, {
        auth: {
          client_token: token,
          accessor: info.accessor,
          policies: info.policies,
          token_policies: info.policies,
          lease_duration: Math.max(0, Math.floor((info.expiresAt - Date.now()) / 1000)),
          renewable: false,
        },
      });
    },
  );

  const revokeSelf = async (request: FastifyRequest, reply: { code(n: number): { send(): unknown } }) => {
    await tokens.revoke(tokenOf(request)!, { caller: callerOf(request) });
    return reply.code(204).send();
  };
  app.post('/v1/auth/token/revoke-self', tag('Revoke the calling token and its children'), revokeSelf);
  app.post('/v1/auth/token/revoke', tag('Revoke a token and its children'), async (request, reply) => {
    const b = (request.body ?? {}) as Record<string, unknown>;
    if (typeof b.token !== 'string') throw invalidArgument('token', 'is required');
    await tokens.revoke(b.token, { caller: callerOf(request) });
    return reply.code(204).send();
  });
}
