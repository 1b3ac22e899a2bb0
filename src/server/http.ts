/**
 * What the HTTP routes share: options, Vault's response envelope, errors with a status, and how a request's
 * token and audit caller are found.
 */
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '../crypto/index.js';
import type { KeyManager } from '../kms/index.js';
import type { AuthThrottleOptions } from './auth-throttle.js';
import type { E2eeOptions } from './e2ee/config.js';
import type { PolicyStore } from './policy-store.js';
import type { TokenInfo, TokenStore } from './tokens.js';

export interface AppOptions {
  /** TLS settings; omitted only for tests that inject requests and for an explicit --insecure-http. */
  https?: HttpsServerOptions;
  /**
   * mTLS: policies for a verified client certificate, by certificate common name, `*` for any other name.
   * Used when a request carries no token and its TLS connection presented a certificate the server's
   * client CA verified. Unset: client certificates grant nothing.
   */
  clientCertPolicies?: Readonly<Record<string, readonly string[]>>;
  /** Offer HTTP/2 by ALPN next to HTTP/1.1 (serve.ts turns it on unless asked not to). */
  http2?: boolean;
  km: KeyManager;
  tokens: TokenStore;
  policies: PolicyStore;
  /** A pino logger configuration, or false. Secrets are redacted either way. */
  logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
  /** Largest request body (default 32 MiB, as Vault). */
  bodyLimit?: number;
  /** Requests per minute per token (default 60,000). */
  rateLimitPerMinute?: number;
  /** Failed authentications allowed per client address before 429 (default 100 a minute). */
  authThrottle?: AuthThrottleOptions;
  /**
   * More routes, registered after the built-in ones under the same rules: each needs `config.access`, or the
   * application refuses to start.
   */
  extraRoutes?: (app: FastifyInstance) => void;
  /** The key behind the seeds' `/encrypt` and `/decrypt` routes (default `seeds`). */
  seedsKey?: string;
  /** The e2ee service's settings (origin, witnesses, quorum, queue TTL); see docs/e2ee-service.md. */
  e2ee?: E2eeOptions;
}

declare module 'fastify' {
  interface FastifyRequest {
    token?: TokenInfo;
    /** The ACL path the request was authorised on (set by the authorization hook). */
    aclPath?: string;
  }
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    /** Fields sent next to `errors` (for example the current `epoch` of a 409 commit). */
    readonly extra?: Readonly<Record<string, string | number>>,
  ) {
    super(message);
  }
}

/** The HTTP status for an error code; decryption failures and bad input are 400, as in Vault. */
export function statusOf(code: string): number {
  switch (code) {
    case ErrorCode.SEALED:
      return 503;
    case ErrorCode.KEY_NOT_FOUND:
    case ErrorCode.E2EE_NOT_FOUND:
      return 404;
    case ErrorCode.E2EE_CONFLICT:
      return 409;
    case ErrorCode.PERMISSION_DENIED:
    case ErrorCode.KEY_RESERVED:
      return 403;
    case ErrorCode.STORE:
    case ErrorCode.AUDIT_FAILED:
    case ErrorCode.RECORD_TAMPERED:
      return 500;
    case ErrorCode.RATE_LIMITED:
      return 429;
    default:
      return 400;
  }
}

export function tokenOf(request: FastifyRequest): string | undefined {
  const vault = request.headers['x-vault-token'];
  if (typeof vault === 'string' && vault.length > 0) return vault;
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim();
  return undefined;
}

/** The audit caller for a request: the token's display name and accessor, never the token. */
export function callerOf(request: FastifyRequest): string {
  const t = request.token;
  return t ? `token:${t.displayName}:${t.accessor}` : `anonymous:${request.ip}`;
}

/** Vault's response envelope. */
export function vaultResponse(data: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    request_id: globalThis.crypto.randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: null,
    auth: null,
    ...extra,
  };
}

export type { FastifyInstance, FastifyReply, FastifyRequest };
