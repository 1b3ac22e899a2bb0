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
import type { FastifySchema } from 'fastify';
import type { TokenInfo } from './tokens.js';
import {
  body,
  documented,
  EMPTY_BODY,
  LIST_FLAG,
  NO_CONTENT,
  object,
  query,
  responses,
  strings,
  text,
  vault,
  type RouteSchema,
  type Schema,
} from './route-docs.js';

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

const TOKEN_INFO = object({
  accessor: text("the token's public handle (revoke and audit by it)"),
  policies: strings('its policies', ['billing']),
  display_name: text('a label'),
  creation_time: { type: 'integer', description: 'POSIX seconds' },
  expire_time: {
    type: 'string',
    nullable: true,
    description: 'ISO 8601; null for a token that never expires',
  },
  ttl: { type: 'integer', description: 'seconds left; 0 when it never expires' },
  renewable: { type: 'boolean', description: 'always false' },
});
const TOKEN_INFO_EXAMPLE = {
  accessor: '3f9a0c1d2e4b5a69',
  policies: ['billing'],
  display_name: 'billing',
  creation_time: 1796288400,
  expire_time: '2027-01-04T09:00:00.000Z',
  ttl: 2764800,
  renewable: false,
};
/** `LIST /v1/auth/token/accessors`: the accessors and what each token is. */
const ACCESSORS_ANSWER = responses({
  200: vault(
    object({
      keys: strings('the accessors', ['3f9a0c1d2e4b5a69']),
      key_info: { type: 'object', additionalProperties: TOKEN_INFO, description: 'by accessor' },
    }),
    { keys: ['3f9a0c1d2e4b5a69'], key_info: { '3f9a0c1d2e4b5a69': TOKEN_INFO_EXAMPLE } },
    'Live tokens',
  ),
});
const CREATE_BODY = body(
  {
    policies: strings("policies of the new token, a subset of the caller's (default: the same)", ['billing']),
    ttl: { description: 'lifetime: seconds or "24h", "30d" (default 32 days)', examples: ['24h'] },
    display_name: text('a label shown in audit and lookups (default "token")', 'billing-worker'),
  },
  { policies: ['billing'], ttl: '24h', display_name: 'billing-worker' },
);
/** The envelope of a create: the token is in `auth`, shown once; `data` is null. */
const CREATE_ANSWER: Schema = {
  ...vault({ type: 'object', nullable: true, description: 'null' }, null, 'The new token (in auth)'),
};
(CREATE_ANSWER.properties as Record<string, Schema>).auth = object({
  client_token: text('the token: shown once, never stored'),
  accessor: text('its public handle'),
  policies: strings('its policies', ['billing']),
  token_policies: strings('the same', ['billing']),
  lease_duration: { type: 'integer', description: 'seconds until it expires' },
  renewable: { type: 'boolean' },
});
(CREATE_ANSWER.examples as Record<string, unknown>[])[0]!.auth = {
  client_token: 'ens.EXAMPLE-not-a-real-token',
  accessor: '3f9a0c1d2e4b5a69',
  policies: ['billing'],
  token_policies: ['billing'],
  lease_duration: 86400,
  renewable: false,
};

export function registerAuthRoutes(app: FastifyInstance, options: AppOptions): void {
  const { tokens } = options;
  /** An auth route; `validate` is the one input schema Fastify checks (the list flag, as it always did). */
  const tag = (summary: string, doc: RouteSchema, access = {}, validate: FastifySchema = {}) => {
    const { schema, docs } = documented(['auth'], summary, doc);
    return { schema: { ...schema, ...validate }, config: { access, docs } };
  };
  const LIST_QUERY = query({ list: LIST_FLAG }, ['list']);

  app.get(
    '/v1/auth/token/lookup-self',
    tag('Look up the calling token', {
      response: responses({ 200: vault(TOKEN_INFO, TOKEN_INFO_EXAMPLE, 'The calling token') }),
    }),
    async (request) => vaultResponse(tokenData(request.token!, Date.now())),
  );

  app.post(
    '/v1/auth/token/create',
    tag('Create a child token with a subset of policies', {
      body: CREATE_BODY,
      response: responses({ 200: CREATE_ANSWER }),
    }),
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
    tag(
      'List live tokens by accessor, with their policies and expiry (?list=true)',
      {
        description:
          "Vault's LIST auth/token/accessors (root-protected: needs list and sudo). enseal adds key_info " +
          "with each token's display name, policies and expiry; tokens themselves are never stored or shown.",
        querystring: LIST_QUERY,
        response: ACCESSORS_ANSWER,
      },
      { list: true, sudo: true },
      { querystring: LIST_QUERY },
    ),
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
  app.post(
    '/v1/auth/token/revoke-self',
    tag('Revoke the calling token and its children', {
      body: EMPTY_BODY,
      response: responses({ 204: NO_CONTENT }),
    }),
    revokeSelf,
  );
  app.post(
    '/v1/auth/token/revoke',
    tag('Revoke a token and its children', {
      body: body({ token: text('the token to revoke') }, { token: 'ens.EXAMPLE-not-a-real-token' }),
      response: responses({ 204: NO_CONTENT }),
    }),
    async (request, reply) => {
      const b = (request.body ?? {}) as Record<string, unknown>;
      if (typeof b.token !== 'string') throw invalidArgument('token', 'is required');
      await tokens.revoke(b.token, { caller: callerOf(request) });
      return reply.code(204).send();
    },
  );
}
