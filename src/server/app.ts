/**
 * The HTTP application: Vault-shaped routes over the key manager, with token authentication, ACL policies,
 * Vault-shaped errors (`{"errors": [...]}`) and security headers. It is built without a listener so tests
 * and `serve.ts` share it; `serve.ts` adds TLS, reload and shutdown.
 */
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { EnsealError, ErrorCode } from '../crypto/index.js';
import { DOCS_PREFIX, DOCS_UI, OPENAPI } from './docs-page.js';
import { withRouteDocs } from './route-docs.js';
import { ListVerb } from './list-verb.js';
import { HttpError, statusOf, tokenOf, type AppOptions, type FastifyRequest } from './http.js';
import type { TokenInfo } from './tokens.js';
import { capabilitiesFor } from './policies.js';
import { AuthThrottle } from './auth-throttle.js';
import {
  capabilityNeeded,
  checkRouteAccess,
  e2eeVerdict,
  listFlag,
  recordRoute,
  resolveAclPath,
  targetProblem,
  type RouteAccess,
} from './route-access.js';
import { registerAuthRoutes } from './auth-routes.js';
import { registerSysRoutes } from './sys-routes.js';
import { registerTransitRoutes } from './transit-routes.js';
import { registerSeedRoutes } from './seed-routes.js';
import { registerAppRoutes } from './app-routes.js';
import { registerConsoleRoutes } from './console-routes.js';
import { registerE2eeRoutes } from './e2ee/index.js';

/** Request bodies above this close the connection after the response (see the onSend hook). */
const LARGE_BODY_BYTES = 16 * 1024;

const HELMET_OPTIONS = {
  hsts: { maxAge: 63_072_000, includeSubDomains: true },
  frameguard: { action: 'deny' as const },
  // One strict policy for every response, the API reference included: scripts, styles and fonts only from
  // this origin, never inline (no 'unsafe-inline', no 'unsafe-eval'), no plugins, no framing, no <base>.
  // The reference page needs no exception: its HTML loads only files, its initializer is a file too.
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      scriptSrcAttr: ["'none'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      fontSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      manifestSrc: ["'self'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      objectSrc: ["'none'"],
    },
  },
};

/**
 * The security headers @fastify/helmet sets with {@link HELMET_OPTIONS}, taken once from a probe instance.
 * They are the same for every response (no CSP nonces), and helmet rebuilt them (the Content-Security-Policy
 * string included) on every request, 7 % of the CPU of a small encrypt request in a profile; the application
 * now sets the stored copy instead.
 */
async function securityHeaders(): Promise<Record<string, string>> {
  const probe = async (withHelmet: boolean) => {
    const app = Fastify({ logger: false });
    if (withHelmet) await app.register(fastifyHelmet, HELMET_OPTIONS);
    app.get('/', async () => 'ok');
    const response = await app.inject('/');
    await app.close();
    return response.headers;
  };
  const plain = await probe(false);
  const helmeted = await probe(true);
  const added: Record<string, string> = {};
  for (const [name, value] of Object.entries(helmeted))
    if (!(name in plain) && typeof value === 'string') added[name] = value;
  return added;
}

const denied = (message: string) => new HttpError(403, `ERR_PERMISSION_DENIED: ${message}`);

/**
 * The identity of a verified client certificate, as a token-like record: the TLS layer already checked
 * the chain against the client CA (`socket.authorized`), so only the policy mapping happens here.
 */
function certificateIdentity(
  request: FastifyRequest,
  mapping: Readonly<Record<string, readonly string[]>>,
): TokenInfo | undefined {
  const socket = request.raw.socket as TLSSocket | undefined;
  if (!socket || socket.authorized !== true || typeof socket.getPeerCertificate !== 'function')
    return undefined;
  const cert = socket.getPeerCertificate();
  const cn = typeof cert?.subject?.CN === 'string' ? cert.subject.CN : '';
  const policies = mapping[cn] ?? mapping['*'];
  if (!cn || !policies || !cert.fingerprint256) return undefined;
  return {
    accessor: `cert-${cert.fingerprint256.replace(/:/g, '').slice(0, 16).toLowerCase()}`,
    policies: [...policies],
    displayName: `cert:${cn}`,
    createdAt: 0,
    expiresAt: 0,
  };
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  // With --http2 the server is HTTP/2 with HTTP/1.1 fallback (ALPN). Handlers use only what both request
  // types share, so the instance is typed as the default server to keep one set of route types.
  const config: Record<string, unknown> = {
    ...(options.https
      ? options.http2
        ? { http2: true as const, https: { allowHTTP1: true, ...options.https } }
        : { https: options.https }
      : {}),
    bodyLimit: options.bodyLimit ?? 32 * 1024 * 1024,
    logger:
      options.logger === undefined || options.logger === false
        ? false
        : {
            ...(typeof options.logger === 'object' ? options.logger : { level: 'info' }),
            // Never log headers or bodies: they carry tokens and plaintexts.
            redact: {
              paths: ['req.headers.authorization', 'req.headers["x-vault-token"]'],
              censor: '[redacted]',
            },
            serializers: {
              req: (req: FastifyRequest) => ({
                method: req.method,
                url: req.url.split('?')[0],
                remoteAddress: req.ip,
              }),
            },
          },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    return503OnClosing: true,
  };
  // Vault clients list with the LIST method; see list-verb.ts for how HTTP/1.1 gets past Node's parser.
  const listVerb = new ListVerb();
  config.clientErrorHandler = (err: Error, socket: Duplex) => listVerb.onClientError(err, socket);
  const app = Fastify(config) as unknown as FastifyInstance;
  listVerb.attach(app.server);
  app.addHook('preClose', async () => listVerb.close());

  const headers = await securityHeaders();
  app.addHook('onRequest', (_request, reply, done) => {
    void reply.headers(headers);
    done();
  });
  await app.register(fastifyRateLimit, {
    max: options.rateLimitPerMinute ?? 60_000,
    timeWindow: 60_000,
    keyGenerator: (request) => request.token?.accessor ?? request.ip,
    hook: 'preHandler',
    errorResponseBuilder: () => new HttpError(429, 'rate limit exceeded; slow down'),
  });
  await app.register(fastifySwagger, { openapi: OPENAPI, transform: withRouteDocs });

  // Vault clients send JSON with any content type (and sometimes none): parse everything as JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0) return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HttpError(400, 'request body is not valid JSON'), undefined);
    }
  });

  app.setErrorHandler((error: unknown, request, reply) => {
    let status = 500;
    let message = 'internal error';
    let extra: Readonly<Record<string, string | number>> = {};
    if (error instanceof EnsealError) {
      status = statusOf(error.code);
      message = `${error.code}: ${error.message}`;
    } else if (error instanceof HttpError) {
      status = error.statusCode;
      message = error.message;
      extra = error.extra ?? {};
    } else if (typeof error === 'object' && error !== null && 'statusCode' in error) {
      const e = error as { statusCode?: number; message?: string; validation?: unknown; code?: string };
      status = typeof e.statusCode === 'number' && e.statusCode >= 400 ? e.statusCode : 400;
      message =
        e.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? 'request body is too large'
          : String(e.message ?? 'bad request');
    }
    if (status >= 500) request.log.error({ code: (error as { code?: string }).code }, 'request failed');
    void reply.code(status).send({ ...extra, errors: [message] });
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send({ errors: ['no handler for this path'] });
  });

  const seedsKey = options.seedsKey ?? 'seeds';
  const throttle = new AuthThrottle(options.authThrottle);
  // Refusals of a token are audited and counted like any other denied operation, so a probing client shows
  // up. Requests with no valid token are only counted, under one series per route: auditing them would let
  // anyone on the network fill the audit log, and naming their keys would let them grow the metrics.
  const deny = (request: FastifyRequest, key: string) =>
    options.km.recordDenied(
      `http.${request.method.toLowerCase()}`,
      request.token ? key : '',
      ErrorCode.PERMISSION_DENIED,
      {
        caller: request.token ? `token:${request.token.displayName}:${request.token.accessor}` : 'anonymous',
      },
      request.token !== undefined,
    );

  // Deny by default: a route without an access rule cannot be registered.
  app.addHook('onRoute', (route) => {
    // The API reference's own routes (page, initializer, assets, document) are registered by its plugin
    // under DOCS_PREFIX and are public like the page they make up.
    if (route.prefix === DOCS_PREFIX) route.config = { ...route.config, access: { public: true } };
    const access = route.config?.access;
    checkRouteAccess(String(route.method), route.url, access);
    for (const method of [route.method].flat()) recordRoute(app, { method, url: route.url, access: access! });
  });

  app.addHook('onRequest', async (request) => {
    const raw = request.raw.url ?? '';
    const problem = targetProblem(raw);
    if (problem !== undefined) throw new HttpError(400, `ERR_INVALID_ARGUMENT: ${problem}`);
    const template = request.routeOptions.url;
    const access: RouteAccess | undefined = request.routeOptions.config?.access;
    if (access?.public) return;
    if (options.km.sealed) throw new HttpError(503, 'ERR_SEALED: the service is sealed; unseal it first');
    const params = (request.params ?? {}) as Record<string, string>;
    const resolved =
      template !== undefined && access !== undefined
        ? resolveAclPath(template, raw, params, access)
        : undefined;
    if (resolved !== undefined && 'problem' in resolved)
      throw new HttpError(400, `ERR_INVALID_ARGUMENT: ${resolved.problem}`);
    const list = listFlag(raw);
    if (list === 'invalid') throw new HttpError(400, 'ERR_INVALID_ARGUMENT: list must be list=true');
    if (access !== undefined && (list === 'list') !== (access.list === true)) {
      throw access.list
        ? new HttpError(405, 'ERR_INVALID_ARGUMENT: this is a list route; ask with ?list=true')
        : new HttpError(400, 'ERR_INVALID_ARGUMENT: list=true is only for list routes');
    }
    await authenticate(request);
    if (request.token === undefined) {
      throttle.fail(request.ip);
      await deny(request, '');
      throw denied('a valid token is required (X-Vault-Token or Authorization: Bearer)');
    }
    // Unknown paths answer 404 only to a caller with a token, as in Vault.
    if (resolved === undefined || access === undefined) return;
    const aclPath = resolved.path;
    // Device tokens reach only e2ee routes, and only for their own user and device where the path names one.
    const verdict = e2eeVerdict(access, request.token.device, params);
    if (typeof verdict === 'object') {
      await deny(request, '');
      throw denied(verdict.denied);
    }
    if (verdict === 'ok') {
      request.aclPath = aclPath;
      return;
    }
    const policies = await options.policies.resolve(request.token.policies);
    const caps = capabilitiesFor(policies, request.token.policies, aclPath);
    const need = capabilityNeeded(request.method, access, list === 'list');
    const ok = caps.has(need) || (need === 'update' && caps.has('create'));
    if (!ok || (access.sudo && !caps.has('sudo'))) {
      await deny(request, params.name ?? '');
      throw denied(
        `this token's policies do not allow ${need}${access.sudo ? ' with sudo' : ''} on ${aclPath}`,
      );
    }
    request.aclPath = aclPath;
  });

  /** Sets `request.token` from the token header or a verified client certificate, throttled per address. */
  const authenticate = async (request: FastifyRequest) => {
    if (throttle.blocked(request.ip)) {
      throw new HttpError(429, 'ERR_RATE_LIMITED: too many failed authentications from this address');
    }
    const token = tokenOf(request);
    if (token !== undefined) {
      const info = await options.tokens.lookup(token);
      if (info !== undefined) request.token = info;
    }
    if (request.token === undefined && options.clientCertPolicies) {
      const cert = certificateIdentity(request, options.clientCertPolicies);
      if (cert) request.token = cert;
    }
  };

  // Node 20's HTTPS server drops a keep-alive connection (llhttp HPE_PAUSED, "socket hang up" at the client)
  // when a large request body follows a response on the same TLS socket. Closing the connection after a
  // large request sidesteps it; one extra handshake per large (batch) request costs little.
  app.addHook('onSend', async (request, reply) => {
    const length = Number(request.headers['content-length'] ?? 0);
    if (request.raw.httpVersionMajor === 1 && length > LARGE_BODY_BYTES)
      void reply.header('connection', 'close');
  });

  app.addHook('onSend', async (request, reply) => {
    if (request.url.startsWith('/v1/') || request.url === '/encrypt' || request.url === '/decrypt') {
      void reply.header('cache-control', 'no-store');
    }
  });

  const publicPage = { schema: { hide: true }, config: { access: { public: true } } } as const;
  app.get('/', publicPage, async (_request, reply) => reply.redirect(DOCS_PREFIX));
  await app.register(fastifySwaggerUi, DOCS_UI);
  app.get('/v1/sys/openapi.json', publicPage, async () => app.swagger());

  registerTransitRoutes(app, options.km);
  registerSysRoutes(app, options);
  registerAuthRoutes(app, options);
  registerSeedRoutes(app, options.km, seedsKey);
  registerConsoleRoutes(app);
  registerAppRoutes(app);
  registerE2eeRoutes(app, options);
  options.extraRoutes?.(app);
  await app.ready();
  return app;
}
