/**
 * The Node-only half of the e2ee client (package export `enseal/e2ee/node`): a transport over node:https that
 * trusts a given CA (the dev server's certificate) and keeps connections alive, and the client state in one
 * SQLite file (better-sqlite3, WAL, `synchronous=FULL`, created 0600) whose `commit` is one transaction. They
 * live in the client layer because src/e2ee must stay free of Node built-ins for browsers.
 */
import { mkdirSync, closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import Database from 'better-sqlite3';
import { EnsealError, ErrorCode, serviceAddress } from '../crypto/index.js';
import {
  requestBody,
  type E2eeRequest,
  type E2eeResponse,
  type E2eeTransport,
  type StateBackend,
} from '../e2ee/index.js';

/** Options of {@link NodeTransport}. */
export interface NodeTransportOptions {
  /** `https://host:8200`. */
  readonly address: string;
  /** PEM of the CA that signed the server's certificate (the dev CA in --dev). */
  readonly caCert?: string | Uint8Array;
  /** Default per-request timeout (30 s). */
  readonly timeoutMs?: number;
}

/**
 * The e2ee transport of Node: node:https with a private CA.
 *
 * @example
 * ```ts no-run
 * const transport = new NodeTransport({ address: process.env.ENSEAL_ADDR!, caCert: readFileSync('ca.pem') });
 * ```
 */
export class NodeTransport implements E2eeTransport {
  readonly #url: URL;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #timeout: number;

  constructor(options: NodeTransportOptions) {
    const url = serviceAddress(options.address);
    this.#url = url;
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

  request(req: E2eeRequest): Promise<E2eeResponse> {
    const url = new URL(req.path, this.#url);
    const { body, contentType } = requestBody(req);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<E2eeResponse>((resolve, reject) => {
      const r = send(
        url,
        {
          method: req.method,
          agent: this.#agent,
          timeout: req.timeoutMs ?? this.#timeout,
          headers: {
            ...(req.token === undefined ? {} : { 'x-vault-token': req.token }),
            ...(body === undefined ? {} : { 'content-type': contentType!, 'content-length': body.length }),
          },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              contentType: String(res.headers['content-type'] ?? ''),
              body: new Uint8Array(Buffer.concat(parts)),
            }),
          );
          res.on('error', reject);
        },
      );
      r.on('timeout', () => r.destroy(new Error('request timed out')));
      r.on('error', reject);
      r.end(body === undefined ? undefined : Buffer.from(body.buffer, body.byteOffset, body.length));
    }).catch((cause: unknown) => {
      throw new EnsealError(ErrorCode.IO, `cannot reach ${this.#url.origin}`, { cause });
    });
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }
}

/** Options of {@link SqliteStateBackend}. */
export interface SqliteStateOptions {
  /** The database file (created 0600, its directory 0700). */
  readonly path: string;
  /**
   * Fault injection for crash tests only: called inside the transaction before each record is written. Throwing
   * (or killing the process) there must leave the previous state intact.
   */
  readonly beforeWrite?: (name: string) => void;
}

/** The client state in one SQLite file; each commit is one transaction. */
export class SqliteStateBackend implements StateBackend {
  readonly #db: Database.Database;
  readonly #commit: (puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]) => void;

  constructor(options: SqliteStateOptions) {
    try {
      mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
      closeSync(openSync(options.path, 'a', 0o600));
      this.#db = new Database(options.path);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
      this.#db.pragma('busy_timeout = 5000');
      this.#db.exec(
        'CREATE TABLE IF NOT EXISTS records (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;' +
          'CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;',
      );
    } catch (cause) {
      throw new EnsealError(ErrorCode.STORE, `cannot open the e2ee state at ${options.path}`, { cause });
    }
    const put = this.#db.prepare(
      'INSERT INTO records (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
    );
    const del = this.#db.prepare('DELETE FROM records WHERE name = ?');
    const hook = options.beforeWrite;
    this.#commit = this.#db.transaction(
      (puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]) => {
        for (const name of deletes) {
          hook?.(name);
          del.run(name);
        }
        for (const [name, value] of puts) {
          hook?.(name);
          put.run(name, Buffer.from(value.buffer, value.byteOffset, value.length));
        }
      },
    );
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const row = this.#db.prepare('SELECT value FROM records WHERE name = ?').get(name) as
      { value: Buffer } | undefined;
    return row === undefined ? undefined : new Uint8Array(row.value);
  }

  async list(prefix: string): Promise<string[]> {
    const rows = this.#db
      .prepare('SELECT name FROM records WHERE substr(name, 1, ?) = ? ORDER BY name')
      .all(prefix.length, prefix) as { name: string }[];
    return rows.map((r) => r.name);
  }

  async commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    this.#commit(puts, deletes);
  }

  async getMeta(name: string): Promise<string | undefined> {
    const row = this.#db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as
      { value: string } | undefined;
    return row?.value;
  }

  async setMeta(name: string, value: string): Promise<void> {
    this.#db
      .prepare(
        'INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
      )
      .run(name, value);
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
