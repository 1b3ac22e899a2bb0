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

/** The response of `LIST /v1/auth/token/accessors`, with an example. */
const ACCESSORS_RESPONSE = {
  type: 'object',
  properties: {
    request_id: { type: 'string' },
    data: {
      type: 'object',
      properties: {
        keys: { type: 'array', items: { type: 'string' } },
        key_info: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            properties: {
              accessor: { type: 'string' },
              policies: { type: 'array', items: { type: 'string' } },
              display_name: { type: 'string' },
              creation_time: { type: 'integer' },
              expire_time: { type: ['string', 'null'] },
              ttl: { type: 'integer' },
              renewable: { type: 'boolean' },
            },
          },
        },
      },
      required: ['keys', 'key_info'],
    },
  },
  examples: [
    {
      request_id: '0b8e3c54-7a61-4f2d-9c1e-5d3a2b1f0e47',
      data: {
        keys: ['3f9a0c1d2e4b5a69'],
        key_info: {
          '3f9a0c1d2e4b5a69': {
            accessor: '3f9a0c1d2e4b5a69',
            policies: ['billing'],
            display_name: 'billing',
            creation_time: 1796288400,
            expire_time: '2027-01-04T09:00:00.000Z',
            ttl: 2764800,
            renewable: false,
          },
        },
      },
    },
  ],
} as const;

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

  app.get(
    '/v1/auth/token/accessors',
    {
      schema: {
        tags: ['auth'],
        summary: 'List live tokens by accessor, with their policies and expiry (?list=true)',
        description:
          "Vault's LIST auth/token/accessors (root-protected: needs list and sudo). enseal adds key_info " +
          "with each token's display name, policies and expiry; tokens themselves are never stored or shown.",
        querystring: {
          type: 'object',
          properties: { list: { type: 'string', enum: ['true'] } },
          required: ['list'],
        },
        response: { 200: ACCESSORS_RESPONSE },
      },
      config: { access: { list: true, sudo: true } },
    },
    async () => {
      const now = Date.now();
      const all = await tokens.list();
      return vaultResponse({
        keys: all.map((t) => t.accessor),
        key_info: Object.fromEntries(all.map((t) => [t.accessor, tokenData(t, now)])),
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
