/**
 * One raw probe: open a TCP connection, send a ClientHello, read until the server's first answer decodes,
 * close. Every probe ends within its timeout whatever the peer does (answers garbage, closes early, never
 * answers, trickles bytes).
 */
import { connect } from 'node:net';
import { EnsealError, ErrorCode, isEnsealError } from '../../crypto/index.js';
import { decodeServerAnswer, type ServerAnswer } from './client-hello.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** Per-connection timeout in milliseconds (connect plus answer). */
  readonly timeoutMs: number;
}

/** What a probe saw: an answer, an orderly close or reset without one, or no answer in time. */
export type ProbeOutcome = ServerAnswer | { readonly kind: 'closed' } | { readonly kind: 'timeout' };

/** The error for a target that cannot be reached at all (DNS, refused, unreachable, connect timeout). */
export function connectFailed(endpoint: Endpoint, detail: string, cause?: unknown): EnsealError {
  return new EnsealError(
    ErrorCode.CONNECT_FAILED,
    `cannot connect to ${endpoint.host}:${endpoint.port}: ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

function describeSocketError(err: unknown): string {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing listens on that port)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return code ?? (err instanceof Error ? err.message : 'socket error');
  }
}

/**
 * Sends `hello` and resolves with the decoded answer. Rejects with CONNECT_FAILED when the TCP connection
 * cannot be made (or is not made within the timeout), and with MALFORMED when the peer's bytes are not TLS.
 */
export function rawProbe(endpoint: Endpoint, hello: Uint8Array, expectSsl2 = false): Promise<ProbeOutcome> {
  return new Promise((resolve, reject) => {
    let received = new Uint8Array(0);
    let connected = false;
    let settled = false;
    const socket = connect({ host: endpoint.host, port: endpoint.port });
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    // One deadline for the whole probe, so a peer that trickles a byte at a time cannot stretch it.
    const timer = setTimeout(() => {
      finish(() =>
        connected
          ? resolve({ kind: 'timeout' })
          : reject(connectFailed(endpoint, `no TCP connection within ${endpoint.timeoutMs} ms`)),
      );
    }, endpoint.timeoutMs);
    socket.once('connect', () => {
      connected = true;
      socket.write(hello);
    });
    socket.on('data', (chunk: Buffer) => {
      const next = new Uint8Array(received.length + chunk.length);
      next.set(received);
      next.set(chunk, received.length);
      received = next;
      try {
        const answer = decodeServerAnswer(received, expectSsl2);
        if (answer !== undefined) finish(() => resolve(answer));
      } catch (err) {
        finish(() => reject(err));
      }
    });
    socket.once('end', () => finish(() => resolve({ kind: 'closed' })));
    socket.once('close', () => finish(() => resolve({ kind: 'closed' })));
    socket.once('error', (err) => {
      if (!connected) finish(() => reject(connectFailed(endpoint, describeSocketError(err), err)));
      // A reset after connecting is how many servers refuse a hello they dislike.
      else finish(() => resolve({ kind: 'closed' }));
    });
  });
}

/** True when `err` is one of the probe's own typed errors (as opposed to a bug). */
export function isProbeError(err: unknown): err is EnsealError {
  return isEnsealError(err, ErrorCode.CONNECT_FAILED) || isEnsealError(err, ErrorCode.MALFORMED);
}
