/**
 * The `LIST` method that Vault clients send (node-vault, the `vault` CLI), answered on every route exactly as
 * `GET …?list=true`: the same route, the same `list` capability, the same answer.
 *
 * Over HTTP/2 the method is only a header, so a `request` listener renames it before routing. Over HTTP/1.1
 * Node's request parser (llhttp) knows a fixed table of methods and stops at `LIST` with `HPE_INVALID_METHOD`
 * before any listener runs; `insecureHTTPParser` does not widen that table. So the HTTP/1.1 path works on the
 * parser's refusal, and only where the refusal proves where the `LIST` message starts:
 *
 * - the error is `HPE_INVALID_METHOD` at byte 2 of the chunk being parsed, and that chunk starts with `LIST `
 *   (llhttp reads `L`, `I` as the start of `LINK` and fails at `S`; a message starting anywhere else in the
 *   chunk, or a body byte before it, puts the error elsewhere), so the parser was between messages when the
 *   chunk arrived and nothing of the `LIST` message was consumed;
 * - no request is in flight on the connection (every earlier response has been sent), so nothing pipelined
 *   before it is waiting for an answer from the parser being replaced;
 * - the whole request line is in the chunk and has the form `LIST <target> HTTP/1.x`.
 *
 * Then the request line is rewritten to `GET <target>?list=true` (or `&list=true`) and the chunk, unchanged
 * after its first line, goes back into the connection, which is handed to a fresh Node parser. That parser
 * does all the framing (headers, `Content-Length`, chunked bodies, the next pipelined message), with the same
 * strictness as the first, so a body, a conflicting `Content-Length`/`Transfer-Encoding` or a second message
 * are judged exactly as they would be after a `GET`. Requests it parses go to the main server's `request`
 * listeners, Fastify's among them.
 *
 * Anything else (a `LIST` pipelined after a request still in flight, `list`, `LISTX`, a request line split
 * across chunks) gets a 400 once the responses in flight have been written, and the connection is closed.
 * Replacing the parser uses a few of Node's own parser handles (unconsume, remove, close), as Node does when
 * it hands a socket over on `upgrade`; if any is missing the request is refused the same way, never half
 * handled. `test/server/list-verb.test.ts` holds the behaviour to this, attacks included.
 */
import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** The parts of Node's per-connection parser that the hand-over uses; checked before use. */
interface NodeParser {
  _consumed?: boolean;
  unconsume(): void;
  remove(): void;
  close(): void;
}

/** The listeners Node's HTTP/1.1 connection handler attaches to a socket, by event. */
const PARSER_LISTENERS: Readonly<Record<string, readonly string[]>> = {
  data: ['bound socketOnData'],
  end: ['bound socketOnEnd'],
  close: ['bound socketOnClose'],
  drain: ['bound socketOnDrain'],
  timeout: ['socketOnTimeout'],
  resume: ['onSocketResume'],
  pause: ['onSocketPause'],
};

/** `LIST <origin-form target> HTTP/1.x`, visible ASCII only. */
const LIST_LINE = /^LIST (\/[!-~]*) (HTTP\/1\.[01])$/;

/** The limits of the server whose connections are re-parsed, so the fresh parser is no laxer. */
export interface ListVerbLimits {
  readonly maxHeaderSize?: number;
  readonly headersTimeout?: number;
}

function isParser(value: unknown): value is NodeParser {
  const p = value as Partial<NodeParser> | null | undefined;
  return (
    typeof p?.unconsume === 'function' && typeof p.remove === 'function' && typeof p.close === 'function'
  );
}

/** The rewritten first line, or undefined when the chunk does not start with a whole `LIST` request line. */
export function rewriteListLine(chunk: Buffer): Buffer | undefined {
  const end = chunk.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return undefined;
  const match = LIST_LINE.exec(chunk.toString('latin1', 0, end));
  if (match === null) return undefined;
  const target = match[1]!;
  const line = `GET ${target}${target.includes('?') ? '&' : '?'}list=true ${match[2]!}`;
  return Buffer.concat([Buffer.from(line, 'latin1'), chunk.subarray(end)]);
}

/**
 * Accepts `LIST` on both protocols. Create it before the server, pass {@link ListVerb.onClientError} as the
 * server's client-error handler, then {@link ListVerb.attach} the server.
 */
export class ListVerb {
  #server: { emit(event: string, ...args: unknown[]): boolean } | undefined;
  readonly #inFlight = new WeakMap<Duplex, number>();
  /** Connections refused: their later parse errors are ignored until the 400 is written. */
  readonly #refusing = new WeakSet<Duplex>();
  /** Connections moved to a fresh parser, to end when the server closes. */
  readonly #moved = new Set<Duplex>();
  readonly #side: HttpServer;

  constructor(limits: ListVerbLimits = {}) {
    this.#side = new HttpServer({
      ...(limits.maxHeaderSize !== undefined ? { maxHeaderSize: limits.maxHeaderSize } : {}),
      insecureHTTPParser: false,
    });
    this.#side.keepAliveTimeout = 0;
    // The fresh parser is not in the main server's connection checks; an idle timeout bounds a slow client.
    this.#side.timeout = limits.headersTimeout ?? 60_000;
    this.#side.on('request', (req: IncomingMessage, res: ServerResponse) =>
      this.#server?.emit('request', req, res),
    );
    this.#side.on('clientError', (err: Error, socket: Duplex) => this.onClientError(err, socket));
  }

  /** Renames HTTP/2 `LIST` requests and counts requests in flight per connection. */
  attach(server: {
    prependListener(event: 'request', fn: (req: IncomingMessage, res: ServerResponse) => void): unknown;
    emit(event: string, ...args: unknown[]): boolean;
  }): void {
    this.#server = server;
    // Answers from the fresh parser must be the main server's, header for header (Keep-Alive included).
    const { keepAliveTimeout } = server as { keepAliveTimeout?: number };
    this.#side.keepAliveTimeout = typeof keepAliveTimeout === 'number' ? keepAliveTimeout : 0;
    server.prependListener('request', (req, res) => {
      if (req.method === 'LIST') {
        req.method = 'GET';
        const url = req.url ?? '/';
        req.url = `${url}${url.includes('?') ? '&' : '?'}list=true`;
      }
      // HTTP/2 streams share a session; only HTTP/1.1 connections are counted.
      if (req.httpVersionMajor !== 1) return;
      const socket = req.socket as Duplex;
      this.#inFlight.set(socket, (this.#inFlight.get(socket) ?? 0) + 1);
      res.once('close', () => this.#inFlight.set(socket, (this.#inFlight.get(socket) ?? 1) - 1));
    });
  }

  /** Ends the connections moved to a fresh parser once they are idle; called when the server closes. */
  close(): void {
    for (const socket of this.#moved) this.#whenIdle(socket, () => socket.end());
    this.#moved.clear();
  }

  /** The server's client-error handler: `LIST` hand-over, else a 400 once responses in flight are written. */
  onClientError(
    err: Error & { code?: string; bytesParsed?: number; rawPacket?: Buffer },
    socket: Duplex,
  ): void {
    if (this.#refusing.has(socket)) return;
    if (err.code === 'ECONNRESET' || socket.destroyed) {
      socket.destroy();
      return;
    }
    if (err.code === 'HPE_INVALID_METHOD' && this.#tryHandOver(err, socket)) return;
    this.#refuse(socket, err.code);
  }

  #tryHandOver(err: { bytesParsed?: number; rawPacket?: Buffer }, socket: Duplex): boolean {
    const chunk = err.rawPacket;
    if (!Buffer.isBuffer(chunk) || err.bytesParsed !== 2 || (this.#inFlight.get(socket) ?? 0) !== 0)
      return false;
    const rewritten = rewriteListLine(chunk);
    if (rewritten === undefined) return false;
    const holder = socket as Duplex & { parser?: unknown };
    const parser = holder.parser;
    if (!isParser(parser)) return false;
    const found = Object.entries(PARSER_LISTENERS).flatMap(([event, names]) =>
      socket
        .listeners(event)
        .filter((fn) => names.includes((fn as { name?: string }).name ?? ''))
        .map((fn) => [event, fn as (...args: unknown[]) => void] as const),
    );
    if (found.length !== Object.keys(PARSER_LISTENERS).length) return false;
    // Detach the failed parser the way Node does before an upgrade: stop it reading, drop its listeners,
    // take it out of the server's timeout checks, and close it once this call stack has unwound.
    if (parser._consumed === true) parser.unconsume();
    parser._consumed = false;
    for (const [event, fn] of found) socket.removeListener(event, fn);
    parser.remove();
    holder.parser = null;
    setImmediate(() => parser.close());
    socket.unshift(rewritten);
    this.#moved.add(socket);
    socket.once('close', () => this.#moved.delete(socket));
    this.#side.emit('connection', socket);
    return true;
  }

  #whenIdle(socket: Duplex, fn: () => void): void {
    const check = () => {
      if ((this.#inFlight.get(socket) ?? 0) > 0) setTimeout(check, 10).unref();
      else fn();
    };
    check();
  }

  #refuse(socket: Duplex, code: string | undefined): void {
    this.#refusing.add(socket);
    // Read nothing more: whatever follows the refused bytes is never parsed.
    socket.pause();
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const reason =
      status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
    const message =
      code === 'HPE_INVALID_METHOD'
        ? 'ERR_INVALID_ARGUMENT: unknown HTTP method (LIST is accepted at the start of a request line, with no request in flight before it)'
        : 'ERR_INVALID_ARGUMENT: the request could not be parsed';
    const body = JSON.stringify({ errors: [message] });
    // Answers in flight are written first, so the 400 never lands inside another response.
    this.#whenIdle(socket, () => {
      if (socket.writable && !socket.destroyed) {
        socket.end(
          `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
        // The client has the answer; do not wait for it to close its side.
        setTimeout(() => socket.destroy(), 1000).unref();
      } else socket.destroy();
    });
  }
}
