/**
 * How the e2ee client talks to the service: one small interface, {@link E2eeTransport}, so the same client runs
 * over `fetch` in browsers (and Node), over node:https with a private CA (the Node-only transport lives outside
 * this layer), or over an in-process stand-in in tests. A transport moves bytes and reports the status; it never
 * interprets bodies or retries, and it throws ERR_IO only when no answer arrived at all.
 */
import { EnsealError, ErrorCode, serviceAddress, utf8Encode } from '../crypto/index.js';

/** One HTTP request of the e2ee API. */
export interface E2eeRequest {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** Path and query, e.g. `/v1/e2ee/inbox?after=4`. */
  readonly path: string;
  /** A JSON body (sent as application/json). */
  readonly json?: unknown;
  /** A binary body (sent as application/octet-stream). */
  readonly bytes?: Uint8Array;
  /** The token to present (`X-Vault-Token`), if any. */
  readonly token?: string;
  /** Per-request timeout in milliseconds (long polls ask for more). */
  readonly timeoutMs?: number;
}

/** What came back: the status and the raw body. */
export interface E2eeResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Uint8Array;
}

/** Moves requests to the service. Throws ERR_IO when the service could not be reached or did not answer. */
export interface E2eeTransport {
  request(request: E2eeRequest): Promise<E2eeResponse>;
}

/** Options of {@link FetchTransport}. */
export interface FetchTransportOptions {
  /** `https://host:8200`. */
  readonly address: string;
  /** A fetch implementation (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Default timeout (30 s). */
  readonly timeoutMs?: number;
}

/** The body bytes and content type of a request. */
export function requestBody(request: E2eeRequest): { body?: Uint8Array; contentType?: string } {
  if (request.bytes !== undefined) return { body: request.bytes, contentType: 'application/octet-stream' };
  if (request.json !== undefined)
    return { body: utf8Encode(JSON.stringify(request.json)), contentType: 'application/json' };
  return {};
}

/**
 * The transport of browsers (and of Node when the server's certificate chains to a public CA): `fetch`.
 *
 * @example
 * ```ts no-run
 * const transport = new FetchTransport({ address: 'https://chat.example.com' });
 * ```
 */
export class FetchTransport implements E2eeTransport {
  readonly #base: URL;
  readonly #fetch: typeof fetch;
  readonly #timeout: number;

  constructor(options: FetchTransportOptions) {
    const url = serviceAddress(options.address);
    this.#base = url;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#timeout = options.timeoutMs ?? 30_000;
  }

  async request(request: E2eeRequest): Promise<E2eeResponse> {
    const { body, contentType } = requestBody(request);
    const headers: Record<string, string> = {};
    if (contentType !== undefined) headers['content-type'] = contentType;
    if (request.token !== undefined) headers['x-vault-token'] = request.token;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), request.timeoutMs ?? this.#timeout);
    try {
      const res = await this.#fetch(new URL(request.path, this.#base), {
        method: request.method,
        headers,
        ...(body === undefined ? {} : { body: body as BodyInit }),
        signal: controller.signal,
      });
      return {
        status: res.status,
        contentType: res.headers.get('content-type') ?? '',
        body: new Uint8Array(await res.arrayBuffer()),
      };
    } catch (cause) {
      throw new EnsealError(ErrorCode.IO, `cannot reach ${this.#base.origin}`, { cause });
    } finally {
      clearTimeout(timer);
    }
  }
}
