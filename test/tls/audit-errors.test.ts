/**
 * Bad targets: fake TCP servers that answer garbage, a broken ServerHello, close at once, never answer or
 * trickle bytes; a plain HTTP server; a closed port and a name that does not resolve. Each gives a clear
 * typed error (ERR_TLS_AUDIT_FAILED or ERR_CONNECT_FAILED) within its timeout, never a crash or a hang. A
 * property test lets a fake server answer every connection with random or mutated bytes.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { EnsealError, ErrorCode } from '../../src/crypto/index.js';
import { auditTls, type AuditReport } from '../../src/tls/index.js';

const open: Server[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A TCP server on a free loopback port, handing each connection to `onConnection`; close() drops them all. */
async function fake(onConnection: (socket: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  }) as Server['close'];
  open.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
}

const onFirstData = (answer: (socket: Socket) => void) => (socket: Socket) =>
  socket.once('data', () => answer(socket));

async function auditError(target: string, timeoutMs = 400): Promise<EnsealError> {
  const err = await auditTls(target, { timeoutMs, noHttp: true, deadlineMs: 20_000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnsealError);
  return err as EnsealError;
}

describe('bad targets give clear typed errors in bounded time', () => {
  it('a server answering garbage does not speak TLS', async () => {
    const target = await fake(onFirstData((s) => s.end(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42]))));
    const err = await auditError(target);
    expect(err.code).toBe(ErrorCode.TLS_AUDIT_FAILED);
    expect(err.message).toMatch(/does not speak TLS: .*not a TLS record \(first bytes 00 ff 13 37 42\)/);
  });

  it('a garbage ServerHello inside a valid record is reported as such', async () => {
    // Handshake record holding a ServerHello that claims 40 bytes but ends after 4.
    const bad = Buffer.from([22, 3, 3, 0, 8, 2, 0, 0, 4, 3, 3, 0, 0]);
    const target = await fake(onFirstData((s) => s.end(bad)));
    const err = await auditError(target);
    expect(err.code).toBe(ErrorCode.TLS_AUDIT_FAILED);
    expect(err.message).toMatch(/does not speak TLS: TLS server answer: ServerHello is truncated/);
  });

  it('a server that closes every connection at once accepted no protocol', async () => {
    const target = await fake((s) => s.destroy());
    const err = await auditError(target);
    expect(err.code).toBe(ErrorCode.TLS_AUDIT_FAILED);
    expect(err.message).toMatch(
      /accepted no protocol with any known cipher suite \(SSLv2: closed; SSLv3: closed; /,
    );
  });

  it('a server that never answers: a timeout error naming the limit', async () => {
    const target = await fake(() => undefined);
    const err = await auditError(target, 300);
    expect(err.code).toBe(ErrorCode.TLS_AUDIT_FAILED);
    expect(err.message).toBe(
      `${target} accepted the connection but did not answer a TLS ClientHello within 300 ms`,
    );
  });

  it('a server that trickles a record header byte by byte is cut off by the same timeout', async () => {
    const target = await fake((socket) => {
      const bytes = [22, 3, 3, 0x10, 0x00];
      const timer = setInterval(() => {
        const b = bytes.shift();
        if (b === undefined) clearInterval(timer);
        else if (!socket.destroyed) socket.write(Buffer.from([b]));
      }, 100);
      socket.on('close', () => clearInterval(timer));
    });
    const err = await auditError(target, 300);
    expect(err.code).toBe(ErrorCode.TLS_AUDIT_FAILED);
    expect(err.message).toMatch(/did not answer a TLS ClientHello within 300 ms/);
  });

  it('a plain HTTP server: names what it answered', async () => {
    const server = createHttpServer((_req, res) => res.end('hello'));
    open.push(server as unknown as Server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address() as { port: number };
    const err = await auditError(`127.0.0.1:${address.port}`);
    expect(err.code).toBe(ErrorCode.TLS_AUDIT_FAILED);
    expect(err.message).toMatch(/does not speak TLS: .*it answered "HTTP\/1\.1 400 Bad Request/);
  });

  it('a closed port and an unresolvable name: ERR_CONNECT_FAILED', async () => {
    const target = await fake(() => undefined);
    const server = open.pop()!;
    await new Promise((r) => server.close(r)); // the port is free again: nothing listens
    const refused = await auditError(target);
    expect(refused.code).toBe(ErrorCode.CONNECT_FAILED);
    expect(refused.message).toBe(
      `cannot connect to ${target}: connection refused (nothing listens on that port)`,
    );
    const unknown = await auditError('no-such-host.invalid:443', 3000);
    expect(unknown.code).toBe(ErrorCode.CONNECT_FAILED);
    expect(unknown.message).toMatch(/^cannot connect to no-such-host\.invalid:443: /);
  });

  it('bad options are argument errors', async () => {
    await expect(auditTls('127.0.0.1:1', { timeoutMs: 5 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    await expect(auditTls('not a host')).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });

  it('property: whatever a server answers, the audit ends with a report or a typed error', async () => {
    const serverHello = [22, 3, 3, 0, 42, 2, 0, 0, 38, 3, 3, ...new Array(32).fill(5), 0, 0xc0, 0x2f, 0];
    let reply = Buffer.alloc(0);
    const target = await fake(onFirstData((s) => s.end(reply)));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }),
          fc
            .array(fc.tuple(fc.nat(serverHello.length - 1), fc.integer({ min: 0, max: 255 })), {
              maxLength: 4,
            })
            .map((flips) => {
              const b = [...serverHello];
              for (const [i, v] of flips) b[i] = v;
              return Uint8Array.from(b);
            }),
        ),
        async (bytes) => {
          reply = Buffer.from(bytes);
          const result = await auditTls(target, { timeoutMs: 300, noHttp: true, deadlineMs: 15_000 }).then(
            (report) => report,
            (e: unknown) => e,
          );
          if (result instanceof Error) {
            expect(result).toBeInstanceOf(EnsealError);
            expect([ErrorCode.TLS_AUDIT_FAILED, ErrorCode.CONNECT_FAILED]).toContain(
              (result as EnsealError).code,
            );
          } else {
            expect((result as AuditReport).rating.grade).toBeTypeOf('string');
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 60_000);
});
