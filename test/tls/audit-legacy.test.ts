/**
 * Legacy servers no current OpenSSL can be configured as: a fake server that speaks just enough SSLv2, SSLv3
 * and TLS 1.0 to answer ClientHellos, picking RC4, 3DES and export suites. It proves the raw probes find what
 * Node's TLS client cannot offer, and that the grade follows the guide's F and C caps for them. The fake
 * parses the auditor's ClientHello independently of the auditor's decoder.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditTls, type AuditReport } from '../../src/tls/index.js';

const VERSIONS = new Set([0x0300, 0x0301]);
/** The fake's preference order: RC4-SHA, DES-CBC3-SHA, EXP-RC4-MD5. */
const SUITES = [0x0005, 0x000a, 0x0003];

function serverHello(version: number, suite: number): Buffer {
  const body = [version >> 8, version & 0xff, ...new Array(32).fill(0x42), 0, suite >> 8, suite & 0xff, 0];
  const handshake = [2, 0, 0, body.length, ...body];
  return Buffer.from([22, version >> 8, version & 0xff, 0, handshake.length, ...handshake]);
}

const alert = (description: number) => Buffer.from([21, 3, 1, 0, 2, 2, description]);

/** SSLv2 SERVER-HELLO offering RC4-128-MD5 (an empty certificate is enough for detection). */
const SSL2_SERVER_HELLO = (() => {
  const body = [4, 0, 1, 0, 2, 0, 0, 0, 3, 0, 16, 0x01, 0x00, 0x80, ...new Array(16).fill(7)];
  return Buffer.from([0x80 | (body.length >> 8), body.length & 0xff, ...body]);
})();

function answer(hello: Buffer): Buffer {
  if ((hello[0]! & 0x80) !== 0) return SSL2_SERVER_HELLO;
  if (hello[0] !== 22 || hello[5] !== 1) return alert(10);
  const version = (hello[9]! << 8) | hello[10]!;
  if (!VERSIONS.has(version)) return alert(70); // protocol_version
  const sessionLength = hello[43]!;
  const at = 44 + sessionLength;
  const count = ((hello[at]! << 8) | hello[at + 1]!) / 2;
  const offered = new Set(
    Array.from({ length: count }, (_, i) => (hello[at + 2 + 2 * i]! << 8) | hello[at + 3 + 2 * i]!),
  );
  const pick = SUITES.find((s) => offered.has(s));
  return pick === undefined ? alert(40) : serverHello(version, pick);
}

let server: Server;
let report: AuditReport;

beforeAll(async () => {
  server = createServer((socket: Socket) => {
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const complete =
        (buf[0]! & 0x80) !== 0 ? buf.length >= 2 : buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3);
      if (complete) socket.end(answer(buf));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  report = await auditTls(`127.0.0.1:${port}`, { timeoutMs: 1000, noHttp: true });
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('legacy protocols and suites Node cannot offer', () => {
  it('finds SSLv2, SSLv3 and TLS 1.0, and the RC4, 3DES and export suites in server order', () => {
    expect(report.protocols).toEqual({
      SSLv2: true,
      SSLv3: true,
      'TLSv1.0': true,
      'TLSv1.1': false,
      'TLSv1.2': false,
      'TLSv1.3': false,
    });
    for (const p of ['SSLv3', 'TLSv1.0'] as const) {
      expect(report.suites[p]!.map((s) => s.openssl)).toEqual(['RC4-SHA', 'DES-CBC3-SHA', 'EXP-RC4-MD5']);
    }
    expect(report.cipherOrder).toEqual({ SSLv3: 'server', 'TLSv1.0': 'server' });
    expect(report.forwardSecrecy).toBe('none');
  });

  it('grades F with every applicable cap explained; the certificate is noted as unchecked', () => {
    const caps = report.rating.caps.map((c) => `${c.grade} ${c.reason}`);
    expect(caps).toEqual([
      'F SSLv2 offered',
      'F export cipher suites offered',
      'F cipher suites weaker than 112 bits offered',
      'C neither TLS 1.2 nor TLS 1.3 offered',
      'C vulnerable to POODLE (SSLv3 with CBC)',
      'B TLS 1.0 or 1.1 offered',
      'B no forward secrecy',
      'B no AEAD cipher suites',
      'B RC4 offered with old protocols',
    ]);
    for (const c of report.rating.caps) expect(c.explanation.length).toBeGreaterThan(20);
    expect(report.rating.grade).toBe('F');
    expect(report.certificate).toBeNull();
    expect(report.notes.join(' ')).toMatch(/certificate handshake failed/);
  });
});
