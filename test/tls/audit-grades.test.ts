/**
 * The auditor against real servers: nginx (Debian package) configured strong, deliberately weak, and with
 * expired, self-signed, wrong-name and RSA-1024 certificates, and `enseal serve` (modern). Grades are
 * asserted as the SSL Labs guide 2009r gives them; protocol and cipher-suite findings must equal sslscan's
 * for the same targets in the same run (testssl.sh is compared in audit-testssl.test.ts); and the built CLI
 * is run for its exit statuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReport } from '../../src/tls/index.js';
import { buildOnce, enseal } from '../helpers/cli.js';
import { nginxPeer } from '../helpers/nginx.js';
import { tool } from '../helpers/peers.js';
import {
  auditFindings,
  sslscanFindings,
  startTargets,
  type NginxTarget,
  type Targets,
} from './audit-targets.js';

const nginx = nginxPeer();
const sslscan = tool('sslscan', ['--version'], 'apt-get install sslscan');

let t: Targets;

beforeAll(async () => {
  if (!nginx.available) return;
  t = await startTargets([
    'strong',
    'noHsts',
    'weak',
    'expired',
    'selfSigned',
    'wrongName',
    'rsa1024',
    'serve',
    'serveIntermediate',
  ]);
});
afterAll(async () => {
  await t?.stop();
});

const cap = (r: AuditReport, grade: string) =>
  r.rating.caps.filter((c) => c.grade === grade).map((c) => c.reason);

describe.skipIf(!nginx.available)('enseal tls audit grades real servers as the SSL Labs guide does', () => {
  it('strong nginx (Mozilla intermediate, ECDSA, HSTS two years): A+ with no caps or warnings', () => {
    const r = t.reports.strong!;
    expect(r.protocols).toEqual({
      SSLv2: false,
      SSLv3: false,
      'TLSv1.0': false,
      'TLSv1.1': false,
      'TLSv1.2': true,
      'TLSv1.3': true,
    });
    expect(r.forwardSecrecy).toBe('all');
    expect(r.cipherOrder['TLSv1.2']).toBe('client'); // ssl_prefer_server_ciphers off, as Mozilla advises
    expect(r.aead).toBe('all');
    expect(r.certificate?.trusted).toBe(true);
    expect(r.certificate?.nameMatches).toBe(true);
    expect(r.certificate?.keyType).toBe('ec');
    expect(r.http?.headers?.hsts?.maxAge).toBe(63_072_000);
    expect(r.http?.redirect?.redirectsToHttps).toBe(true);
    expect(r.alpn).toContain('h2');
    expect(r.groups.map((g) => g.name)).toEqual(
      expect.arrayContaining(['X25519', 'prime256v1', 'secp384r1']),
    );
    expect(r.groups.map((g) => g.name)).not.toContain('secp521r1');
    expect(r.rating.caps).toEqual([]);
    expect(r.rating.warnings).toEqual([]);
    // 0.3 × 100 + 0.3 × 100 + 0.4 × (100 + 80) / 2 = 96
    expect(r.rating.score).toBe(96);
    expect(r.rating.grade).toBe('A+');
  });

  it('the same server without HSTS: A− with the HSTS warning explained', () => {
    const r = t.reports.noHsts!;
    expect(r.http?.headers?.hsts).toBeNull();
    expect(r.rating.warnings.map((w) => w.reason)).toEqual(['no HSTS header']);
    expect(r.rating.warnings[0]!.explanation).toMatch(/180 days/);
    expect(r.rating.grade).toBe('A-');
  });

  it('weak nginx (TLS 1.0/1.1, CBC only, no HSTS): capped at B for old protocols and no AEAD', () => {
    const r = t.reports.weak!;
    expect(r.protocols['TLSv1.0']).toBe(true);
    expect(r.protocols['TLSv1.1']).toBe(true);
    expect(r.protocols['TLSv1.3']).toBe(false);
    expect(r.aead).toBe('none');
    expect(cap(r, 'B')).toEqual(expect.arrayContaining(['TLS 1.0 or 1.1 offered', 'no AEAD cipher suites']));
    expect(r.rating.warnings.map((w) => w.reason)).toEqual(
      expect.arrayContaining(['TLS 1.3 not offered', 'no HSTS header']),
    );
    expect(r.rating.grade).toBe('B');
  });

  it('expired certificate: T, with the grade ignoring trust still shown', () => {
    const r = t.reports.expired!;
    expect(r.certificate?.expired).toBe(true);
    expect(cap(r, 'T')[0]).toMatch(/^certificate expired on \d{4}-\d\d-\d\d$/);
    expect(r.rating.grade).toBe('T');
    expect(r.rating.gradeIgnoringTrust).toBe('A+');
  });

  it('self-signed certificate: T', () => {
    const r = t.reports.selfSigned!;
    expect(r.certificate?.selfSigned).toBe(true);
    expect(r.certificate?.trusted).toBe(false);
    expect(cap(r, 'T')).toEqual(['self-signed certificate']);
    expect(r.rating.grade).toBe('T');
  });

  it('certificate for another name: M', () => {
    const r = t.reports.wrongName!;
    expect(r.certificate?.trusted).toBe(true);
    expect(r.certificate?.nameMatches).toBe(false);
    expect(cap(r, 'M')).toEqual(['certificate does not cover localhost']);
    expect(r.rating.grade).toBe('M');
  });

  it('RSA-1024 certificate: B (the guide caps keys under 2048 at B; F is for keys under 1024)', () => {
    const r = t.reports.rsa1024!;
    expect(r.certificate?.keyType).toBe('rsa');
    expect(r.certificate?.keyBits).toBe(1024);
    expect(cap(r, 'F')).toEqual([]);
    expect(cap(r, 'B')).toEqual(['certificate key under 2048 bits (rsa 1024)']);
    expect(r.rating.keyExchangeScore).toBe(80);
    expect(r.rating.grade).toBe('B');
  });

  it('enseal serve (modern profile): TLS 1.3 only, HSTS from helmet, A+', () => {
    const r = t.reports.serve!;
    expect(Object.entries(r.protocols).filter(([, on]) => on)).toEqual([['TLSv1.3', true]]);
    expect(r.secureRenegotiation).toBeNull();
    expect(r.certificate?.trusted).toBe(true);
    expect(r.http?.redirect?.listening).toBe(false);
    expect(r.rating.caps).toEqual([]);
    expect(r.rating.grade).toBe('A+');
  });

  it('enseal serve (intermediate profile): TLS 1.2 adds ECDHE AEAD suites only, still A+', () => {
    const r = t.reports.serveIntermediate!;
    expect(
      Object.entries(r.protocols)
        .filter(([, on]) => on)
        .map(([p]) => p),
    ).toEqual(['TLSv1.2', 'TLSv1.3']);
    for (const s of r.suites['TLSv1.2']!) expect(s).toMatchObject({ keyExchange: 'ECDHE', aead: true });
    expect(r.secureRenegotiation).toBe(true);
    expect(r.rating.caps).toEqual([]);
    expect(r.rating.grade).toBe('A+');
  });
});

describe.skipIf(!nginx.available || !sslscan.available)(
  'protocol and cipher findings agree with sslscan',
  () => {
    it.each(['strong', 'weak', 'serve', 'serveIntermediate'] as const)('%s', async (name) => {
      const theirs = await sslscanFindings(t.hostPort(name));
      const mine = auditFindings(t.reports[name]!);
      expect(mine.protocols).toEqual(theirs.protocols);
      expect(mine.suites).toEqual(theirs.suites);
      expect(mine.suites.length).toBeGreaterThan(0);
    });
  },
);

describe.skipIf(!nginx.available)('enseal tls audit (the built CLI)', () => {
  beforeAll(() => buildOnce());

  const args = (name: NginxTarget) => [
    'tls',
    'audit',
    t.hostPort(name),
    '--servername',
    'localhost',
    '--ca-file',
    t.caFile(name),
    '--http-port',
    String(t.httpPort(name)),
  ];

  it('--json --fail-under A on the strong server: exit 0 and the full report', () => {
    const r = enseal([...args('strong'), '--json', '--fail-under', 'A']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout.toString()) as AuditReport;
    expect(report.rating.grade).toBe('A+');
    expect(report.suites['TLSv1.3']?.length).toBeGreaterThan(0);
  });

  it('--fail-under A on the weak server: exit 10, the human report lists the caps with explanations', () => {
    const r = enseal([...args('weak'), '--fail-under', 'a']);
    expect(r.status).toBe(10);
    expect(r.stderr).toBe('enseal: grade B is below --fail-under A\n');
    const out = r.stdout.toString();
    expect(out).toMatch(/^Grade B$/m);
    expect(out).toMatch(/^ {2}\[B\] TLS 1\.0 or 1\.1 offered: Deprecated by RFC 8996/m);
    expect(out).toMatch(/^ {2}- no HSTS header: /m);
    expect(out).toMatch(/TLSv1\.0\n {4}0x[0-9a-f]{4} {2}\S+/);
  });

  it('--fail-under B passes the weak server; T ranks below F', () => {
    expect(enseal([...args('weak'), '--fail-under', 'B']).status).toBe(0);
    expect(enseal([...args('selfSigned'), '--fail-under', 'F', '--no-http']).status).toBe(10);
  });

  it('bad usage and unreachable targets: typed errors and documented statuses', () => {
    const bad = enseal([...args('strong'), '--fail-under', 'Z']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--fail-under "Z" is not a grade .*\(ERR_INVALID_ARGUMENT\)/);
    const noCa = enseal(['tls', 'audit', '127.0.0.1:1', '--ca-file', '/nonexistent/ca.pem']);
    expect(noCa.status).toBe(6);
    expect(noCa.stderr).toBe('enseal: error: cannot read --ca-file /nonexistent/ca.pem: ENOENT (ERR_IO)\n');
    const closed = enseal(['tls', 'audit', '127.0.0.1:1', '--json']);
    expect(closed.status).toBe(1);
    expect(JSON.parse(closed.stderr)).toEqual({
      error: {
        code: 'ERR_CONNECT_FAILED',
        message: 'cannot connect to 127.0.0.1:1: connection refused (nothing listens on that port)',
      },
    });
    const notTls = enseal(['tls', 'audit', `127.0.0.1:${t.httpPort('strong')}`]);
    expect(notTls.status).toBe(1);
    expect(notTls.stderr).toMatch(
      /does not speak TLS: .*it answered "HTTP\/1\.1 400 Bad Request.*\(ERR_TLS_AUDIT_FAILED\)/,
    );
  });
});
