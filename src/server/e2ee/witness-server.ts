/**
 * `enseal e2ee witness`: a witness for transparency logs speaking C2SP tlog-witness (`POST
 * <prefix>/add-checkpoint`) over plain HTTP or HTTPS, on the witness core of src/e2ee. Its Ed25519 key lives
 * in a key file (created at first start, mode 0600); its state (the latest cosigned size and root per log)
 * in a JSON file written atomically before any cosignature is returned, so a crash cannot make it cosign a
 * checkpoint inconsistent with one it already signed.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64Encode,
  generateSigningKeyPair,
  invalidArgument,
  utf8Decode,
} from '../../crypto/index.js';
import {
  NOTE_MAX_BYTES,
  SignatureType,
  Witness,
  WitnessConflictError,
  ed25519Cosigner,
  formatVerifierKey,
  noteVerifierFromKey,
  parseAddCheckpointRequest,
  parseVerifierKey,
  type NoteVerifier,
  type WitnessStateStore,
} from '../../e2ee/index.js';
import { writeFileAtomic } from '../../files/index.js';

/** A witness state file: `{"version":1,"logs":{"<origin>":{"size":n,"root_hash":"<b64>"}}}`. */
export class FileWitnessState implements WitnessStateStore {
  readonly #path: string;
  #logs: Record<string, { size: number; rootHash: Uint8Array }> | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  async #load(): Promise<Record<string, { size: number; rootHash: Uint8Array }>> {
    if (this.#logs !== undefined) return this.#logs;
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT')
        throw new EnsealError(ErrorCode.IO, `witness state file ${this.#path} cannot be read`);
      return (this.#logs = {});
    }
    try {
      const doc = JSON.parse(text) as {
        version?: number;
        logs?: Record<string, { size: number; root_hash: string }>;
      };
      if (doc.version !== 1 || typeof doc.logs !== 'object' || doc.logs === null) throw new Error('shape');
      const logs: Record<string, { size: number; rootHash: Uint8Array }> = {};
      for (const [origin, s] of Object.entries(doc.logs)) {
        if (!Number.isSafeInteger(s.size) || s.size < 0) throw new Error('size');
        logs[origin] = { size: s.size, rootHash: base64Decode(s.root_hash) };
      }
      return (this.#logs = logs);
    } catch {
      throw new EnsealError(ErrorCode.MALFORMED, `witness state file ${this.#path} is not a witness state`);
    }
  }

  async get(origin: string): Promise<{ size: number; rootHash: Uint8Array } | undefined> {
    return (await this.#load())[origin];
  }

  compareAndSet(
    origin: string,
    expectedSize: number,
    next: { size: number; rootHash: Uint8Array },
  ): Promise<boolean> {
    // One at a time, so the check and the write form one step; the file is on disk before this resolves.
    const run = this.#queue.then(async () => {
      const logs = await this.#load();
      if ((logs[origin]?.size ?? 0) !== expectedSize) return false;
      const updated = { ...logs, [origin]: { size: next.size, rootHash: next.rootHash.slice() } };
      const doc = {
        version: 1,
        logs: Object.fromEntries(
          Object.entries(updated).map(([o, s]) => [o, { size: s.size, root_hash: base64Encode(s.rootHash) }]),
        ),
      };
      await writeFileAtomic(this.#path, JSON.stringify(doc, null, 2) + '\n', 0o600);
      this.#logs = updated;
      return true;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * Reads the witness key file (base64 of the 32-byte Ed25519 private key, one line), creating it with a fresh
 * key when it does not exist.
 */
export async function loadWitnessKey(path: string): Promise<{ privateKey: Uint8Array; created: boolean }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT')
      throw new EnsealError(ErrorCode.IO, `witness key file ${path} cannot be read`);
    const { privateKey } = generateSigningKeyPair('ed25519');
    await writeFileAtomic(path, base64Encode(privateKey) + '\n', 0o600);
    return { privateKey, created: true };
  }
  let key: Uint8Array;
  try {
    key = base64Decode(text.trim());
  } catch {
    throw new EnsealError(ErrorCode.MALFORMED, `witness key file ${path} does not hold a base64 key`);
  }
  if (key.length !== 32)
    throw new EnsealError(ErrorCode.MALFORMED, `witness key file ${path} does not hold a 32-byte key`);
  return { privateKey: key, created: false };
}

export interface WitnessServerOptions {
  /** The witness's name in its cosignatures (for example `witness.example/w1`). */
  readonly name: string;
  readonly privateKey: Uint8Array;
  /** The logs it witnesses, by their verifier keys (the origin is the key's name). */
  readonly logs: readonly string[];
  readonly state: WitnessStateStore;
  readonly host?: string;
  readonly port?: number;
  /** The path before `/add-checkpoint` (default none). */
  readonly prefix?: string;
  readonly https?: HttpsOptions;
  /** Called for every refused submission (never with the checkpoint's content). */
  readonly onRefused?: (status: number, code: string) => void;
}

export interface RunningWitness {
  readonly url: string;
  /** The witness's cosignature verifier key, for the logs' `e2ee.witnesses` configuration. */
  readonly verifierKey: string;
  close(): Promise<void>;
}

function statusOfWitnessError(err: unknown): number {
  if (err instanceof WitnessConflictError) return 409;
  if (!(err instanceof EnsealError)) return 500;
  switch (err.code) {
    case ErrorCode.KEY_NOT_FOUND:
      return 404;
    case ErrorCode.SIGNATURE_INVALID:
      return 403;
    case ErrorCode.E2EE_PROOF_INVALID:
      return 422;
    default:
      return 400;
  }
}

async function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > max) return undefined;
    parts.push(chunk as Buffer);
  }
  return utf8Decode(new Uint8Array(Buffer.concat(parts)));
}

/** Starts a witness and resolves once it listens. */
export async function startWitnessServer(options: WitnessServerOptions): Promise<RunningWitness> {
  const cosigner = ed25519Cosigner(options.name, options.privateKey);
  const logs = new Map<string, NoteVerifier[]>();
  for (const vkey of options.logs) {
    const key = parseVerifierKey(vkey);
    if (key.type !== SignatureType.ED25519)
      throw invalidArgument('log', 'must be an Ed25519 verifier key of the log');
    logs.set(key.name, [...(logs.get(key.name) ?? []), noteVerifierFromKey(vkey)]);
  }
  if (logs.size === 0) throw invalidArgument('log', 'at least one log verifier key is required');
  const witness = new Witness({ cosigner, logs, state: options.state });
  const path = `${(options.prefix ?? '').replace(/\/+$/, '')}/add-checkpoint`;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if ((req.url ?? '').split('?')[0] !== path) return send(404, 'not found\n');
    if (req.method !== 'POST') return send(405, 'add-checkpoint takes POST\n');
    const body = await readBody(req, NOTE_MAX_BYTES + 64 * 64);
    if (body === undefined) return send(413, 'request too large\n');
    try {
      const lines = await witness.addCheckpoint(parseAddCheckpointRequest(body));
      return send(200, lines);
    } catch (err) {
      const status = statusOfWitnessError(err);
      options.onRefused?.(status, err instanceof EnsealError ? err.code : 'ERR_INTERNAL');
      if (err instanceof WitnessConflictError) return send(409, `${err.latestSize}\n`, 'text/x.tlog.size');
      const message =
        err instanceof EnsealError && status < 500 ? `${err.code}: ${err.message}` : 'internal error';
      return send(status, message + '\n');
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
  const server: Server = options.https ? createHttpsServer(options.https, listener) : createServer(listener);
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8300, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8300);
  const host = options.host ?? '127.0.0.1';
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `${options.https ? 'https' : 'http'}://${shown}:${port}${(options.prefix ?? '').replace(/\/+$/, '')}`,
    verifierKey: formatVerifierKey(options.name, SignatureType.COSIGNATURE_V1, cosigner.publicKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
