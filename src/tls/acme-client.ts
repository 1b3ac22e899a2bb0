/**
 * An ACME client (RFC 8555) written for enseal rather than taken from a package. The usual choice,
 * acme-client, brings axios, node-forge and a second major version of @peculiar/x509, trusts a private ACME
 * server only by changing a process-wide axios agent, and has no renewal scheduling, no renewal information
 * (ARI, RFC 9773) and no profiles. The protocol itself is small: signed JSON over HTTPS. So this module does
 * only that: node:https with an explicit trust store per client, JWS through `jose` (ES256 account keys, `jwk`
 * for newAccount and `kid` afterwards, with the `nonce` and `url` protected headers of §6.2), a fresh nonce
 * after a `badNonce` (§6.5), bounded polling that honours Retry-After, and problem documents turned into
 * typed errors. Order orchestration lives in acme-order.ts.
 */
import { request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { FlattenedSign, calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import {
  EnsealError,
  ErrorCode,
  base64UrlEncode,
  invalidArgument,
  malformed,
  sha256,
  utf8Encode,
} from '../crypto/index.js';
import {
  AcmeProblemError,
  parseAuthorization,
  parseDirectory,
  parseJson,
  parseOrder,
  parseProblem,
  parseRenewalInfo,
  parseRetryAfter,
  type AcmeAuthorization,
  type AcmeDirectory,
  type AcmeIdentifier,
  type AcmeOrder,
  type RenewalInfo,
} from './acme-messages.js';

/** Largest response body read from an ACME server (a certificate chain is a few kB). */
const MAX_RESPONSE_BYTES = 1 << 20;
/** How many times one request is re-signed with a fresh nonce after `badNonce` before giving up. */
const MAX_BAD_NONCE_RETRIES = 10;

export interface AcmeClientOptions {
  /** The directory URL, for example `https://acme-v02.api.letsencrypt.org/directory`. */
  readonly directoryUrl: string;
  /** The account key pair: ECDSA P-256 (ES256). */
  readonly accountKey: CryptoKeyPair;
  /** PEM of the CA(s) to trust for the ACME server's own TLS certificate; the system store when absent. */
  readonly ca?: string | Uint8Array;
  /** Per-request timeout (default 30 s). */
  readonly timeoutMs?: number;
  /** Longest any one poll loop (authorization, order) may wait (default 5 minutes). */
  readonly pollTimeoutMs?: number;
}

interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** External account binding credentials (RFC 8555 §7.3.4), as a CA hands them out. */
export interface ExternalAccountBinding {
  /** The key identifier the CA gave. */
  readonly kid: string;
  /** The MAC key (the CA shows it base64url-encoded; decode it first). */
  readonly hmacKey: Uint8Array;
}

/** Counters a caller (or a test) can read: how often the server rejected a nonce and we retried. */
export interface AcmeClientStats {
  badNonceRetries: number;
  requests: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Speaks RFC 8555 to one ACME server with one account key. */
export class AcmeClient {
  readonly directoryUrl: string;
  readonly stats: AcmeClientStats = { badNonceRetries: 0, requests: 0 };
  #directory: AcmeDirectory | undefined;
  #nonces: string[] = [];
  #accountUrl: string | undefined;
  #jwk: JWK | undefined;
  readonly #key: CryptoKeyPair;
  readonly #ca: string | Uint8Array | undefined;
  readonly #timeoutMs: number;
  readonly #pollTimeoutMs: number;

  constructor(options: AcmeClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.directoryUrl);
    } catch {
      throw invalidArgument('ACME directory', 'must be an absolute https URL');
    }
    if (parsed.protocol !== 'https:') throw invalidArgument('ACME directory', 'must be an https URL');
    this.directoryUrl = options.directoryUrl;
    this.#key = options.accountKey;
    this.#ca = options.ca;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#pollTimeoutMs = options.pollTimeoutMs ?? 300_000;
  }

  /** The account URL (the JWS `kid`), once {@link AcmeClient.register} has run or one was given. */
  get accountUrl(): string | undefined {
    return this.#accountUrl;
  }

  /** Uses an account registered earlier, skipping newAccount. */
  useAccount(accountUrl: string): void {
    this.#accountUrl = accountUrl;
  }

  /** One HTTPS exchange, with a size cap and a timeout; network and trust failures become ERR_ACME_UNREACHABLE. */
  #http(method: string, target: string, body?: string, accept?: string): Promise<HttpResponse> {
    this.stats.requests++;
    const u = new URL(target);
    if (u.protocol !== 'https:') return Promise.reject(malformed('ACME URL', 'must use https'));
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        u,
        {
          method,
          ...(this.#ca !== undefined ? { ca: Buffer.from(this.#ca) } : {}),
          headers: {
            'user-agent': 'enseal-acme/0.1',
            ...(accept ? { accept } : {}),
            ...(body !== undefined
              ? { 'content-type': 'application/jose+json', 'content-length': Buffer.byteLength(body) }
              : {}),
          },
          timeout: this.#timeoutMs,
        },
        (res) => {
          const parts: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            size += d.length;
            if (size > MAX_RESPONSE_BYTES) {
              req.destroy();
              reject(malformed('ACME response', `is larger than ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            parts.push(d);
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
          );
          res.on('error', (err) => reject(unreachable(target, err)));
        },
      );
      const timedOut = () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
      // `timeout` only notices an idle socket; the deadline also ends a server that drips bytes forever.
      const deadline = setTimeout(timedOut, this.#timeoutMs).unref();
      req.on('timeout', timedOut);
      req.on('close', () => clearTimeout(deadline));
      req.on('error', (err) => reject(unreachable(target, err)));
      req.end(body);
    });
  }

  #keepNonce(res: HttpResponse): void {
    const nonce = header(res.headers, 'replay-nonce');
    // §6.5.1: a nonce is base64url; anything else is ignored rather than echoed back.
    if (nonce && /^[A-Za-z0-9_-]{1,256}$/.test(nonce)) this.#nonces.push(nonce);
  }

  /** The directory, fetched once. */
  async directory(): Promise<AcmeDirectory> {
    if (this.#directory) return this.#directory;
    const res = await this.#http('GET', this.directoryUrl);
    if (res.status !== 200) throw failedResponse('ACME directory', res);
    this.#directory = parseDirectory(parseJson('ACME directory', res.body.toString('utf8')));
    return this.#directory;
  }

  async #nonce(): Promise<string> {
    const cached = this.#nonces.pop();
    if (cached) return cached;
    const res = await this.#http('HEAD', (await this.directory()).newNonce);
    this.#keepNonce(res);
    const nonce = this.#nonces.pop();
    if (!nonce) throw malformed('ACME newNonce', 'the server sent no Replay-Nonce');
    return nonce;
  }

  async #publicJwk(): Promise<JWK> {
    if (!this.#jwk) {
      const { kty, crv, x, y } = await exportJWK(this.#key.publicKey);
      this.#jwk = { kty, crv, x, y } as JWK;
    }
    return this.#jwk;
  }

  /** RFC 8555 §8.1: the key authorization for a challenge token. */
  async keyAuthorization(token: string): Promise<string> {
    return `${token}.${await calculateJwkThumbprint(await this.#publicJwk(), 'sha256')}`;
  }

  /**
   * A signed POST (§6.2). `payload` undefined means POST-as-GET (§6.3). A `badNonce` problem is retried with
   * the nonce that came with it; other problems throw {@link AcmeProblemError}.
   */
  async post(
    target: string,
    payload: unknown,
    options: { useJwk?: boolean; accept?: string } = {},
  ): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      const nonce = await this.#nonce();
      const protectedHeader: Record<string, unknown> = { alg: 'ES256', nonce, url: target };
      if (options.useJwk) protectedHeader.jwk = await this.#publicJwk();
      else if (this.#accountUrl) protectedHeader.kid = this.#accountUrl;
      else throw new EnsealError(ErrorCode.INVALID_STATE, 'ACME: no account yet; register first');
      const bytes = payload === undefined ? new Uint8Array(0) : utf8Encode(JSON.stringify(payload));
      const jws = await new FlattenedSign(bytes)
        .setProtectedHeader(protectedHeader)
        .sign(this.#key.privateKey);
      const res = await this.#http('POST', target, JSON.stringify(jws), options.accept);
      this.#keepNonce(res);
      if (res.status < 400) return res;
      const problem = problemOf(res);
      if (problem.acmeType === 'badNonce' && attempt < MAX_BAD_NONCE_RETRIES) {
        this.stats.badNonceRetries++;
        continue;
      }
      throw problem;
    }
  }

  async #postJson(target: string, payload: unknown, options: { useJwk?: boolean } = {}) {
    const res = await this.post(target, payload, options);
    return { res, json: parseJson('ACME response', res.body.toString('utf8')) };
  }

  /**
   * newAccount (§7.3): creates the account, or finds the existing one for this key (the server answers 200
   * with its URL). Agreeing to the terms of service is the caller's decision. Some CAs require the new account
   * to be bound to an account with them (§7.3.4): the account's public key, signed with HS256 under the MAC
   * key the CA handed out.
   */
  async register(options: {
    termsOfServiceAgreed: boolean;
    contact?: readonly string[];
    externalAccountBinding?: ExternalAccountBinding;
  }): Promise<string> {
    const dir = await this.directory();
    const eab = options.externalAccountBinding;
    if (dir.externalAccountRequired && !eab)
      throw invalidArgument(
        'external account binding',
        'is required by this ACME server (--eab-kid and --eab-hmac-key-file, from your CA account)',
      );
    const binding = eab
      ? await new FlattenedSign(utf8Encode(JSON.stringify(await this.#publicJwk())))
          .setProtectedHeader({ alg: 'HS256', kid: eab.kid, url: dir.newAccount })
          .sign(eab.hmacKey)
      : undefined;
    const { res } = await this.#postJson(
      dir.newAccount,
      {
        termsOfServiceAgreed: options.termsOfServiceAgreed,
        ...(options.contact ? { contact: options.contact } : {}),
        ...(binding ? { externalAccountBinding: binding } : {}),
      },
      { useJwk: true },
    );
    const location = header(res.headers, 'location');
    if (!location) throw malformed('ACME newAccount', 'the server sent no account URL (Location)');
    this.#accountUrl = location;
    return location;
  }

  /** newOrder (§7.4), with `replaces` (RFC 9773 §5) and `profile` when given. */
  async newOrder(options: {
    identifiers: readonly AcmeIdentifier[];
    replaces?: string;
    profile?: string;
  }): Promise<{ url: string; order: AcmeOrder }> {
    const dir = await this.directory();
    const { res, json } = await this.#postJson(dir.newOrder, {
      identifiers: options.identifiers,
      ...(options.replaces ? { replaces: options.replaces } : {}),
      ...(options.profile ? { profile: options.profile } : {}),
    });
    const location = header(res.headers, 'location');
    if (!location) throw malformed('ACME newOrder', 'the server sent no order URL (Location)');
    return { url: location, order: parseOrder(json) };
  }

  async getOrder(orderUrl: string): Promise<{ order: AcmeOrder; retryAfterMs?: number }> {
    const { res, json } = await this.#postJson(orderUrl, undefined);
    const retryAfterMs = parseRetryAfter(header(res.headers, 'retry-after'));
    return { order: parseOrder(json), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }

  async getAuthorization(authzUrl: string): Promise<{ authz: AcmeAuthorization; retryAfterMs?: number }> {
    const { res, json } = await this.#postJson(authzUrl, undefined);
    const retryAfterMs = parseRetryAfter(header(res.headers, 'retry-after'));
    return { authz: parseAuthorization(json), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }

  /** Tells the server the challenge response is in place (§7.5.1: an empty JSON object). */
  async respondToChallenge(challengeUrl: string): Promise<void> {
    await this.post(challengeUrl, {});
  }

  /** finalize (§7.4) with a DER CSR. */
  async finalize(finalizeUrl: string, csrDer: Uint8Array): Promise<AcmeOrder> {
    const { json } = await this.#postJson(finalizeUrl, { csr: base64UrlEncode(csrDer) });
    return parseOrder(json);
  }

  /** Downloads the certificate chain as PEM (§7.4.2). */
  async downloadCertificate(certificateUrl: string): Promise<string> {
    const res = await this.post(certificateUrl, undefined, { accept: 'application/pem-certificate-chain' });
    const pem = res.body.toString('utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----'))
      throw malformed('ACME certificate', 'is not a PEM chain');
    return pem;
  }

  /**
   * revokeCert (§7.6), signed with the account key: the certificate (DER) and an optional RFC 5280 reason
   * code (0 unspecified, 1 keyCompromise, 4 superseded, 5 cessationOfOperation).
   */
  async revokeCertificate(certDer: Uint8Array, reason?: number): Promise<void> {
    const dir = await this.directory();
    if (!dir.revokeCert)
      throw new EnsealError(ErrorCode.UNSUPPORTED, 'this ACME server offers no revocation');
    if (reason !== undefined && (!Number.isInteger(reason) || reason < 0 || reason > 10 || reason === 7))
      throw invalidArgument('revocation reason', 'must be an RFC 5280 reason code (0-10, not 7)');
    await this.post(dir.revokeCert, {
      certificate: base64UrlEncode(certDer),
      ...(reason !== undefined ? { reason } : {}),
    });
  }

  /**
   * Renewal information (RFC 9773 §4.1): a plain GET of `renewalInfo/<certID>`, or undefined when the
   * directory does not offer it.
   */
  async renewalInfo(certId: string): Promise<(RenewalInfo & { retryAfterMs?: number }) | undefined> {
    const dir = await this.directory();
    if (!dir.renewalInfo) return undefined;
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(certId))
      throw invalidArgument('ARI certificate ID', 'is malformed');
    const res = await this.#http('GET', `${dir.renewalInfo.replace(/\/$/, '')}/${certId}`);
    if (res.status !== 200) throw failedResponse('ACME renewalInfo', res);
    const info = parseRenewalInfo(parseJson('ACME renewal info', res.body.toString('utf8')));
    const retryAfterMs = parseRetryAfter(header(res.headers, 'retry-after'));
    return { ...info, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }

  /**
   * Polls `fetch` until `done` says so, sleeping as Retry-After asks (clamped to 0.2–10 s, doubling from
   * 0.25 s when absent), for at most the poll timeout.
   */
  async poll<T>(
    what: string,
    fetch: () => Promise<{ value: T; retryAfterMs?: number }>,
    done: (value: T) => boolean,
  ): Promise<T> {
    const deadline = Date.now() + this.#pollTimeoutMs;
    let backoff = 250;
    for (;;) {
      const { value, retryAfterMs } = await fetch();
      if (done(value)) return value;
      const wait = Math.min(10_000, Math.max(200, retryAfterMs ?? backoff));
      backoff = Math.min(backoff * 2, 5_000);
      if (Date.now() + wait > deadline)
        throw new EnsealError(
          ErrorCode.ACME_FAILED,
          `ACME: ${what} did not complete within ${this.#pollTimeoutMs / 1000} s`,
        );
      await sleep(wait);
    }
  }
}

/** The problem a failed response carries, or a generic one built from its status. */
function problemOf(res: HttpResponse): AcmeProblemError {
  const type = header(res.headers, 'content-type') ?? '';
  if (type.startsWith('application/problem+json')) {
    try {
      return parseProblem(parseJson('ACME problem document', res.body.toString('utf8')), res.status);
    } catch {
      // A malformed problem document still means the request failed; report the status.
    }
  }
  return new AcmeProblemError('serverInternal', `HTTP ${res.status} without a problem document`, res.status);
}

function failedResponse(what: string, res: HttpResponse): EnsealError {
  const p = problemOf(res);
  return new AcmeProblemError(p.acmeType, `${what}: ${p.detail}`, res.status);
}

/** Network and trust failures, named so the user knows whether to fix the URL or the trust store. */
function unreachable(target: string, err: Error): EnsealError {
  const code = (err as { code?: string }).code ?? 'unknown';
  const host = (() => {
    try {
      return new URL(target).host;
    } catch {
      return '?';
    }
  })();
  const trust = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|HOSTNAME|ALTNAME/.test(code);
  const hint = trust
    ? 'the server certificate is not trusted; pass the ACME server CA with --ca-file'
    : 'check the directory URL and that the server is running';
  return new EnsealError(ErrorCode.ACME_UNREACHABLE, `ACME server ${host} unreachable (${code}): ${hint}`, {
    cause: err,
  });
}

/** RFC 8555 §8.4: the TXT record value for dns-01, base64url(SHA-256(key authorization)). */
export function dns01TxtValue(keyAuthorization: string): string {
  return base64UrlEncode(sha256(utf8Encode(keyAuthorization)));
}
