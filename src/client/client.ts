/**
 * A typed client for `enseal serve` (and, for the transit calls, for Vault itself). It keeps connections
 * alive, trusts a given CA, retries only calls that are safe to repeat, and turns the server's
 * `{"errors": ["ERR_CODE: message"]}` back into an {@link EnsealError} with the same code.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  base64Decode,
  base64Encode,
  EnsealError,
  ErrorCode,
  serviceAddress,
  type ErrorCode as Code,
} from '../crypto/index.js';

export interface ClientOptions {
  /** `https://host:8200`. */
  address: string;
  token?: string;
  /** PEM of the CA that signed the server certificate (the dev CA in --dev). */
  caCert?: string | Uint8Array;
  /** Retries of idempotent calls on connection errors, 429 and 502-504 (default 2). */
  retries?: number;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

export interface BatchItemResult {
  ciphertext?: string;
  plaintext?: Uint8Array;
  keyVersion?: number;
  error?: string;
  reference?: string;
}

interface RawResponse {
  status: number;
  text: string;
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));
const MAX_BATCH = 1000;

function codeFor(status: number, message: string): Code {
  const m = /^(ERR_[A-Z_]+):/.exec(message);
  if (m && KNOWN_CODES.has(m[1]!)) return m[1] as Code;
  if (status === 503) return ErrorCode.SEALED;
  if (status === 403) return ErrorCode.PERMISSION_DENIED;
  if (status === 404) return ErrorCode.KEY_NOT_FOUND;
  return status >= 500 ? ErrorCode.STORE : ErrorCode.INVALID_ARGUMENT;
}

/** The server's `{"errors": ["ERR_CODE: message"]}` as an EnsealError with that code (else one for the status). */
function errorFrom(res: RawResponse): EnsealError {
  let message = `HTTP ${res.status}`;
  try {
    const errors = (JSON.parse(res.text) as { errors?: string[] }).errors;
    if (errors?.length) message = errors.join('; ');
  } catch {
    // not JSON: keep the status line
  }
  return new EnsealError(codeFor(res.status, message), message.replace(/^ERR_[A-Z_]+: /, ''));
}

/**
 * @example
 * ```ts no-run
 * const client = EnsealClient.fromEnv(); // ENSEAL_ADDR, ENSEAL_TOKEN, ENSEAL_CACERT
 * await client.createKey('orders');
 * const ct = await client.encrypt('orders', utf8Encode('4111 1111 1111 1111'));
 * utf8Decode(await client.decrypt('orders', ct));
 * ```
 */
/** An audit checkpoint as the server returns it. */
export interface AuditCheckpointJson {
  readonly seq: number;
  readonly hash: string;
  readonly time: string;
  readonly mac: string;
}

/** One audit entry as the server returns it. */
export interface AuditEntryJson {
  readonly seq: number;
  readonly time: string;
  readonly prev: string;
  readonly op: string;
  readonly caller: string;
  readonly outcome: 'ok' | 'denied' | 'error';
  readonly key?: string;
  readonly version?: number;
  readonly code?: string;
  readonly detail?: Record<string, string | number | boolean>;
  readonly hashed?: Record<string, string>;
}

export class EnsealClient {
  readonly #url: URL;
  readonly #token: string | undefined;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #retries: number;
  readonly #timeout: number;

  constructor(options: ClientOptions) {
    const url = serviceAddress(options.address);
    this.#url = url;
    this.#token = options.token;
    this.#retries = options.retries ?? 2;
    this.#timeout = options.timeoutMs ?? 30_000;
    this.#agent =
      url.protocol === 'https:'
        ? new HttpsAgent({
            keepAlive: true,
            ...(options.caCert
              ? { ca: typeof options.caCert === 'string' ? options.caCert : Buffer.from(options.caCert) }
              : {}),
          })
        : new HttpAgent({ keepAlive: true });
  }

  /** From `ENSEAL_ADDR`, `ENSEAL_TOKEN` and `ENSEAL_CACERT` (a file path), as the `vault` CLI does. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): EnsealClient {
    const address = env.ENSEAL_ADDR ?? 'https://127.0.0.1:8200';
    const ca = env.ENSEAL_CACERT;
    let caCert: Buffer | undefined;
    if (ca) {
      try {
        caCert = readFileSync(ca);
      } catch (cause) {
        throw new EnsealError(ErrorCode.IO, `ENSEAL_CACERT file ${ca} cannot be read`, { cause });
      }
    }
    return new EnsealClient({
      address,
      ...(env.ENSEAL_TOKEN ? { token: env.ENSEAL_TOKEN } : {}),
      ...(caCert ? { caCert } : {}),
    });
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }

  #once(method: string, path: string, body: unknown): Promise<RawResponse> {
    const url = new URL(path, this.#url);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.#agent,
          timeout: this.#timeout,
          headers: {
            ...(this.#token ? { 'x-vault-token': this.#token } : {}),
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /**
   * One call with retries (only when `idempotent`). Statuses for which `accept` returns true come back as
   * they are (health's 503, a batch's all-failed 400); other statuses of 400 and above throw.
   */
  async #call(
    method: string,
    path: string,
    body?: unknown,
    idempotent = false,
    accept: (status: number) => boolean = () => false,
  ): Promise<RawResponse> {
    for (let attempt = 0; ; attempt++) {
      let res: RawResponse | undefined;
      let failure: unknown;
      try {
        res = await this.#once(method, path, body);
      } catch (err) {
        failure = err;
      }
      if (res !== undefined && accept(res.status)) return res;
      const retryable = res === undefined || res.status === 429 || (res.status >= 502 && res.status <= 504);
      if (idempotent && retryable && attempt < this.#retries) {
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt * (0.5 + Math.random())));
        continue;
      }
      if (res === undefined) {
        throw new EnsealError(
          ErrorCode.IO,
          `cannot reach ${this.#url.origin}: ${(failure as Error).message}`,
          { cause: failure },
        );
      }
      if (res.status >= 400) throw errorFrom(res);
      return res;
    }
  }

  async #json<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    idempotent = false,
  ): Promise<T> {
    const res = await this.#call(method, path, body, idempotent);
    return (res.text ? JSON.parse(res.text) : {}) as T;
  }

  async #data<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    idempotent = false,
  ): Promise<T> {
    return (await this.#json<{ data: T }>(method, path, body, idempotent)).data;
  }

  // ------------------------------------------------------------------ sys

  /** `{initialized, sealed, version, …}`; a sealed (503) or uninitialised (501) server answers, not throws. */
  async health(): Promise<{ initialized: boolean; sealed: boolean; version: string }> {
    const res = await this.#call('GET', '/v1/sys/health', undefined, true, (s) => s === 501 || s === 503);
    return JSON.parse(res.text) as { initialized: boolean; sealed: boolean; version: string };
  }

  /** `type` is the seal: `shamir`, `passphrase` or `dev`. */
  sealStatus(): Promise<{
    sealed: boolean;
    initialized: boolean;
    type: string;
    t: number;
    n: number;
    progress: number;
  }> {
    return this.#json('GET', '/v1/sys/seal-status', undefined, true);
  }

  init(
    options: { shares?: number; threshold?: number } = {},
  ): Promise<{ keys: string[]; root_token: string }> {
    return this.#json('PUT', '/v1/sys/init', {
      secret_shares: options.shares ?? 5,
      secret_threshold: options.threshold ?? 3,
    });
  }

  unseal(share: string): Promise<{ sealed: boolean; progress: number; t: number }> {
    return this.#json('PUT', '/v1/sys/unseal', { key: share });
  }

  async seal(): Promise<void> {
    await this.#call('PUT', '/v1/sys/seal');
  }

  rekey(options: { keys: string[]; shares?: number; threshold?: number }): Promise<{ keys: string[] }> {
    return this.#data('POST', '/v1/sys/rekey', {
      keys: options.keys,
      secret_shares: options.shares ?? 5,
      secret_threshold: options.threshold ?? 3,
    });
  }

  /** Verifies the audit log; with a checkpoint exported earlier, also that the log still contains it. */
  auditVerify(checkpoint?: AuditCheckpointJson): Promise<{
    ok: boolean;
    entries: number;
    problems: { kind: string; seq: number; message: string }[];
  }> {
    return checkpoint === undefined
      ? this.#data('GET', '/v1/sys/audit/verify', undefined, true)
      : this.#data('POST', '/v1/sys/audit/verify', { checkpoint }, true);
  }

  /** Audit entries matching every filter given (the newest `limit`, at most 1000; default 100). */
  async auditQuery(
    filter: { key?: string; op?: string; caller?: string; outcome?: string; limit?: number } = {},
  ): Promise<AuditEntryJson[]> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) query.set(k, String(v));
    const qs = query.toString();
    return (
      await this.#data<{ entries: AuditEntryJson[] }>(
        'GET',
        `/v1/sys/audit/query${qs ? `?${qs}` : ''}`,
        undefined,
        true,
      )
    ).entries;
  }

  /** A MACed checkpoint of the audit head; store it outside the service. */
  auditCheckpoint(): Promise<AuditCheckpointJson> {
    return this.#data('GET', '/v1/sys/audit/checkpoint', undefined, true);
  }

  async auditExport(): Promise<string> {
    return (await this.#call('GET', '/v1/sys/audit/export', undefined, true)).text;
  }

  async backup(target: { recipients?: string[]; passphrase?: string }): Promise<Uint8Array> {
    return base64Decode((await this.#data<{ backup: string }>('POST', '/v1/sys/backup', target)).backup);
  }

  async restore(
    file: Uint8Array,
    source: { identity?: string; passphrase?: string; force?: boolean },
  ): Promise<string[]> {
    return (
      await this.#data<{ restored: string[] }>('POST', '/v1/sys/restore', {
        backup: base64Encode(file),
        ...source,
      })
    ).restored;
  }

  async writePolicy(name: string, text: string): Promise<void> {
    await this.#call('PUT', `/v1/sys/policies/acl/${encodeURIComponent(name)}`, { policy: text });
  }

  async createToken(options: { policies: string[]; ttl?: string; displayName?: string }): Promise<string> {
    const res = await this.#json<{ auth: { client_token: string } }>('POST', '/v1/auth/token/create', {
      policies: options.policies,
      ...(options.ttl ? { ttl: options.ttl } : {}),
      ...(options.displayName ? { display_name: options.displayName } : {}),
    });
    return res.auth.client_token;
  }

  lookupSelf(): Promise<{ policies: string[]; ttl: number; display_name: string; accessor: string }> {
    return this.#data('GET', '/v1/auth/token/lookup-self', undefined, true);
  }

  // ------------------------------------------------------------------ keys

  createKey(name: string, options: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#data('POST', `/v1/transit/keys/${encodeURIComponent(name)}`, options);
  }

  readKey(name: string): Promise<Record<string, unknown>> {
    return this.#data('GET', `/v1/transit/keys/${encodeURIComponent(name)}`, undefined, true);
  }

  async listKeys(): Promise<string[]> {
    try {
      return (await this.#data<{ keys: string[] }>('GET', '/v1/transit/keys?list=true', undefined, true))
        .keys;
    } catch (err) {
      if (err instanceof EnsealError && err.code === ErrorCode.KEY_NOT_FOUND) return [];
      throw err;
    }
  }

  rotateKey(name: string): Promise<Record<string, unknown>> {
    return this.#data('POST', `/v1/transit/keys/${encodeURIComponent(name)}/rotate`, {});
  }

  configureKey(name: string, config: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#data('POST', `/v1/transit/keys/${encodeURIComponent(name)}/config`, config);
  }

  async deleteKey(name: string): Promise<void> {
    await this.#call('DELETE', `/v1/transit/keys/${encodeURIComponent(name)}`);
  }

  // ------------------------------------------------------------------ data

  async encrypt(
    name: string,
    plaintext: Uint8Array,
    options: { context?: Uint8Array; associatedData?: Uint8Array } = {},
  ): Promise<string> {
    const d = await this.#data<{ ciphertext: string }>(
      'POST',
      `/v1/transit/encrypt/${encodeURIComponent(name)}`,
      { plaintext: base64Encode(plaintext), ...wire(options) },
      true,
    );
    return d.ciphertext;
  }

  async decrypt(
    name: string,
    ciphertext: string,
    options: { context?: Uint8Array; associatedData?: Uint8Array } = {},
  ): Promise<Uint8Array> {
    const d = await this.#data<{ plaintext: string }>(
      'POST',
      `/v1/transit/decrypt/${encodeURIComponent(name)}`,
      { ciphertext, ...wire(options) },
      true,
    );
    return base64Decode(d.plaintext);
  }

  async rewrap(
    name: string,
    ciphertext: string,
    options: { context?: Uint8Array; associatedData?: Uint8Array } = {},
  ): Promise<string> {
    return (
      await this.#data<{ ciphertext: string }>(
        'POST',
        `/v1/transit/rewrap/${encodeURIComponent(name)}`,
        { ciphertext, ...wire(options) },
        true,
      )
    ).ciphertext;
  }

  async dataKey(
    name: string,
    options: { bits?: 128 | 256 | 512; plaintext?: boolean } = {},
  ): Promise<{ ciphertext: string; plaintext?: Uint8Array }> {
    const kind = options.plaintext === false ? 'wrapped' : 'plaintext';
    const d = await this.#data<{ ciphertext: string; plaintext?: string }>(
      'POST',
      `/v1/transit/datakey/${kind}/${encodeURIComponent(name)}`,
      { bits: options.bits ?? 256 },
      true,
    );
    return { ciphertext: d.ciphertext, ...(d.plaintext ? { plaintext: base64Decode(d.plaintext) } : {}) };
  }

  async sign(
    name: string,
    message: Uint8Array,
    options: { signatureAlgorithm?: 'pss' | 'pkcs1v15' } = {},
  ): Promise<string> {
    return (
      await this.#data<{ signature: string }>(
        'POST',
        `/v1/transit/sign/${encodeURIComponent(name)}`,
        {
          input: base64Encode(message),
          ...(options.signatureAlgorithm ? { signature_algorithm: options.signatureAlgorithm } : {}),
        },
        true,
      )
    ).signature;
  }

  async verify(name: string, message: Uint8Array, signature: string): Promise<boolean> {
    return (
      await this.#data<{ valid: boolean }>(
        'POST',
        `/v1/transit/verify/${encodeURIComponent(name)}`,
        { input: base64Encode(message), signature },
        true,
      )
    ).valid;
  }

  async hmac(name: string, message: Uint8Array): Promise<string> {
    return (
      await this.#data<{ hmac: string }>(
        'POST',
        `/v1/transit/hmac/${encodeURIComponent(name)}`,
        { input: base64Encode(message) },
        true,
      )
    ).hmac;
  }

  /** Encrypts many values; batches over 1,000 go as several requests. One bad item never fails the rest. */
  async encryptBatch(
    name: string,
    items: readonly {
      plaintext: Uint8Array;
      context?: Uint8Array;
      associatedData?: Uint8Array;
      reference?: string;
    }[],
  ): Promise<BatchItemResult[]> {
    return this.#batch(`/v1/transit/encrypt/${encodeURIComponent(name)}`, items, (i) => ({
      plaintext: base64Encode(i.plaintext),
      ...wire(i),
      ...(i.reference ? { reference: i.reference } : {}),
    }));
  }

  async decryptBatch(
    name: string,
    items: readonly {
      ciphertext: string;
      context?: Uint8Array;
      associatedData?: Uint8Array;
      reference?: string;
    }[],
  ): Promise<BatchItemResult[]> {
    return this.#batch(`/v1/transit/decrypt/${encodeURIComponent(name)}`, items, (i) => ({
      ciphertext: i.ciphertext,
      ...wire(i),
      ...(i.reference ? { reference: i.reference } : {}),
    }));
  }

  async #batch<T>(
    path: string,
    items: readonly T[],
    toWire: (item: T) => Record<string, unknown>,
  ): Promise<BatchItemResult[]> {
    const out: BatchItemResult[] = [];
    for (let start = 0; start < items.length; start += MAX_BATCH) {
      const chunk = items.slice(start, start + MAX_BATCH).map(toWire);
      // When every item fails the server answers 400 with the per-item errors; that is not an exception.
      const res = await this.#call(
        'POST',
        path,
        { batch_input: chunk, partial_failure_response_code: 207 },
        true,
        (status) => status === 400,
      );
      const results = batchResults(res);
      for (const r of results) {
        out.push({
          ...(typeof r.ciphertext === 'string' ? { ciphertext: r.ciphertext } : {}),
          ...(typeof r.plaintext === 'string' ? { plaintext: base64Decode(r.plaintext) } : {}),
          ...(typeof r.key_version === 'number' ? { keyVersion: r.key_version } : {}),
          ...(typeof r.error === 'string' ? { error: r.error } : {}),
          ...(typeof r.reference === 'string' ? { reference: r.reference } : {}),
        });
      }
    }
    return out;
  }
}

/** The `batch_results` of a batch response; a 400 without them (a bad request as a whole) throws. */
function batchResults(res: RawResponse): Record<string, unknown>[] {
  let results: unknown;
  try {
    results = (JSON.parse(res.text) as { data?: { batch_results?: unknown } }).data?.batch_results;
  } catch {
    // not JSON: an error below
  }
  if (res.status < 400 && !Array.isArray(results))
    throw new EnsealError(ErrorCode.MALFORMED, 'no batch_results');
  if (!Array.isArray(results)) throw errorFrom(res);
  return results as Record<string, unknown>[];
}

function wire(options: { context?: Uint8Array; associatedData?: Uint8Array }): Record<string, string> {
  return {
    ...(options.context ? { context: base64Encode(options.context) } : {}),
    ...(options.associatedData ? { associated_data: base64Encode(options.associatedData) } : {}),
  };
}
