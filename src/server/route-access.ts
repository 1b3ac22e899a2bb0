/**
 * What each route needs before its handler runs, decided on what the router resolved: the matched route's
 * template and its decoded parameters, never a prefix of the raw request target. Every route declares its
 * access in `config.access`; a route registered without one makes the application refuse to start, and a
 * request that reaches a route without one is refused, so a route added later cannot be reachable by accident.
 *
 * The raw request target is also checked before anything else: only plain origin-form paths whose fixed
 * segments are spelled exactly as the route spells them pass, so the ACL path, the audit entry and the handler
 * all see the same path and the same key name.
 */
import type { Capability } from './policies.js';

/** A route's access rule, given as `config: { access }` when the route is registered. */
export interface RouteAccess {
  /** Answers without a token and while sealed (health, seal status, init, unseal, the API documents). */
  readonly public?: true;
  /**
   * The ACL path checked (no leading slash, no `v1/`). By default the route's template after `/v1/` with
   * each `:param` replaced by its decoded value.
   */
  readonly path?: (params: Readonly<Record<string, string>>) => string;
  /** Vault's root-protected paths: the token needs `sudo` as well as the operation's capability. */
  readonly sudo?: true;
  /** A list route: it needs `list` and answers only `?list=true` (or the `LIST` method). */
  readonly list?: true;
  /** The capability needed, when not the method's (`read` for GET, `delete` for DELETE, else `update`). */
  readonly capability?: Capability;
  /**
   * Patterns for path parameters that are not names (an e2ee group id is base64url, which may start with `-`
   * or `_`); every other parameter must be a name.
   */
  readonly params?: Readonly<Record<string, RegExp>>;
  /**
   * An e2ee route, and which tokens reach it (a device token reaches nothing else): `device`, device tokens
   * only; `app`, ordinary tokens only (checked by ACL on the path); `device-or-app`, either; `any`, any valid
   * token without an ACL check. With `self`, a device token must be bound to the `:user` (and `:device`) the
   * path names.
   */
  readonly e2ee?: { readonly tokens: 'device' | 'app' | 'device-or-app' | 'any'; readonly self?: true };
}

/** The `{user, device}` a device token is bound to. */
export interface DeviceBinding {
  readonly user: string;
  readonly device: string;
}

/**
 * How the e2ee rules treat a request that passed token authentication: `ok` (allowed, no ACL check), `acl`
 * (check the ACL as for any route), or a reason to refuse it. Decided on the router's resolved parameters.
 */
export function e2eeVerdict(
  access: RouteAccess,
  device: DeviceBinding | undefined,
  params: Readonly<Record<string, string>>,
): 'ok' | 'acl' | { denied: string } {
  const rule = access.e2ee;
  if (device !== undefined) {
    if (rule === undefined) return { denied: 'a device token is valid only for the e2ee routes' };
    if (rule.tokens === 'app') return { denied: 'this route needs an application token, not a device token' };
    if (
      rule.self &&
      (params.user !== device.user || (params.device !== undefined && params.device !== device.device))
    )
      return { denied: 'a device token acts only for its own user and device' };
    return 'ok';
  }
  if (rule === undefined) return 'acl';
  if (rule.tokens === 'device')
    return { denied: 'this route needs a device token (POST /v1/e2ee/auth/login)' };
  return rule.tokens === 'any' ? 'ok' : 'acl';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** A registered route and its access rule. */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly access: RouteAccess;
}

const tables = new WeakMap<object, RegisteredRoute[]>();

/** Every route registered on `app` with its access rule, in registration order. */
export function registeredRoutes(app: object): readonly RegisteredRoute[] {
  return tables.get(app) ?? [];
}

/** Records a route of `app` (called from its onRoute hook, after {@link checkRouteAccess}). */
export function recordRoute(app: object, route: RegisteredRoute): void {
  let table = tables.get(app);
  if (table === undefined) tables.set(app, (table = []));
  table.push(route);
}

/** Route parameters: the key-name alphabet, never a separator, a dot segment or an encoded slash. */
const PARAM = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Throws unless `access` is a usable rule; called for every route as it is registered. */
export function checkRouteAccess(method: string, url: string, access: RouteAccess | undefined): void {
  if (access === undefined) {
    throw new Error(
      `route ${method} ${url} has no access rule (config.access); every route must declare one`,
    );
  }
  // A public route needs no ACL path, so only it may be a wildcard (the API reference's static files).
  if (url.includes('*') && access.public !== true)
    throw new Error(`route ${method} ${url}: wildcard routes cannot be authorised`);
  if (access.public === undefined && access.path === undefined && !url.startsWith('/v1/')) {
    throw new Error(`route ${method} ${url} is outside /v1/ and needs an explicit ACL path`);
  }
}

function hasSeparatorOrControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x2f || c === 0x5c) return true;
  }
  return false;
}

/** Why a raw request target is refused before routing, or undefined when it is a plain path. */
export function targetProblem(rawUrl: string): string | undefined {
  if (!rawUrl.startsWith('/')) return 'the request target must be a path (origin form), not an absolute URL';
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  for (let i = 0; i < rawUrl.length; i++) {
    const c = rawUrl.charCodeAt(i);
    if (c < 0x21 || c === 0x7f || c === 0x5c)
      return 'the request target has a control character, a space or a backslash';
  }
  if (path === '/') return undefined;
  const segments = path.slice(1).split('/');
  for (const raw of segments) {
    if (raw === '') return 'the request path has an empty segment';
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      return 'the request path has an invalid percent-encoding';
    }
    if (decoded === '.' || decoded === '..') return 'the request path has a dot segment';
    if (hasSeparatorOrControl(decoded))
      return 'the request path has an encoded separator or control character';
  }
  return undefined;
}

/**
 * The ACL path of a matched request, or a reason to refuse it: the raw path must have the route's shape,
 * its fixed segments spelled exactly as in the route (no percent-encoding of the engine or the operation),
 * and every parameter must be a valid name once decoded.
 */
export function resolveAclPath(
  template: string,
  rawUrl: string,
  params: Readonly<Record<string, string>>,
  access: RouteAccess,
): { path: string } | { problem: string } {
  const q = rawUrl.indexOf('?');
  const raw = (q === -1 ? rawUrl : rawUrl.slice(0, q)).split('/');
  const shape = template.split('/');
  if (raw.length !== shape.length) return { problem: 'the request path does not have the route’s shape' };
  for (let i = 0; i < shape.length; i++) {
    const s = shape[i]!;
    if (s.startsWith(':')) {
      const value = params[s.slice(1)];
      const pattern = access.params?.[s.slice(1)];
      if (value !== undefined && pattern !== undefined) {
        if (!pattern.test(value) || value.includes('..') || hasSeparatorOrControl(value))
          return { problem: `the path parameter ${s.slice(1)} is not valid` };
      } else if (value === undefined || !PARAM.test(value) || value.includes('..'))
        return { problem: `the path parameter ${s.slice(1)} is not a valid name` };
    } else if (raw[i] !== s) {
      return { problem: 'the request path spells a fixed segment differently from the route' };
    }
  }
  if (access.path) return { path: access.path(params) };
  const path = shape
    .slice(2)
    .map((s) => (s.startsWith(':') ? params[s.slice(1)]! : s))
    .join('/');
  // Vault checks a list on the path with a trailing slash, so `transit/keys/*` grants listing keys.
  return { path: access.list ? `${path}/` : path };
}

/** Whether the query string asks for a list (`list=true`), refuses (`list` with another value) or neither. */
export function listFlag(rawUrl: string): 'list' | 'absent' | 'invalid' {
  const q = rawUrl.indexOf('?');
  if (q === -1) return 'absent';
  let seen: 'list' | 'absent' | 'invalid' = 'absent';
  for (const pair of new URLSearchParams(rawUrl.slice(q + 1))) {
    if (pair[0] !== 'list') continue;
    if (seen !== 'absent' || pair[1] !== 'true') return 'invalid';
    seen = 'list';
  }
  return seen;
}

/** The capability a request needs on its ACL path, Vault style. */
export function capabilityNeeded(method: string, access: RouteAccess, list: boolean): Capability {
  if (list) return 'list';
  if (access.capability) return access.capability;
  switch (method) {
    case 'GET':
    case 'HEAD':
      return 'read';
    case 'DELETE':
      return 'delete';
    default:
      return 'update';
  }
}
