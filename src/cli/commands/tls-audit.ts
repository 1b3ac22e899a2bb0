/**
 * `enseal tls audit HOST[:PORT]`: protocols, cipher suites, key exchange, certificate and HTTP security
 * headers of a TLS server, graded after the SSL Labs rating guide. `--fail-under` turns the grade into an
 * exit status for CI pipelines.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { EnsealError, ErrorCode, invalidArgument } from '../../crypto/index.js';
import {
  auditTls,
  meets,
  parseGrade,
  SECURITY_HEADERS,
  type AuditReport,
  type Grade,
} from '../../tls/index.js';
import { writeStdout } from '../run.js';

/** Exit status when the audit ran but the grade is below --fail-under (distinct from every error status). */
export const EXIT_BELOW_THRESHOLD = 10;

interface AuditFlags {
  json?: boolean;
  failUnder?: string;
  servername?: string;
  httpPort?: string;
  timeout?: string;
  caFile?: string[];
  http: boolean;
}

function integer(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,6}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw invalidArgument(flag, `must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

async function readCaFiles(files: string[] | undefined): Promise<string[] | undefined> {
  if (files === undefined) return undefined;
  return Promise.all(
    files.map(async (f) => {
      const pem = await readFile(f, 'utf8').catch((err: { code?: string }) => {
        throw new EnsealError(ErrorCode.IO, `cannot read --ca-file ${f}: ${err.code ?? 'error'}`);
      });
      if (!pem.includes('-----BEGIN CERTIFICATE-----'))
        throw invalidArgument('--ca-file', `${f} holds no PEM certificate`);
      return pem;
    }),
  );
}

const yes = (b: boolean) => (b ? 'yes' : 'no');

function gradeLine(r: AuditReport): string {
  const rt = r.rating;
  const ignoring =
    rt.grade !== rt.gradeIgnoringTrust ? ` (${rt.gradeIgnoringTrust} if trust issues are ignored)` : '';
  return (
    `Grade ${rt.grade}${ignoring}\n` +
    `  score ${rt.score} = 0.3 × protocol ${rt.protocolScore} + 0.3 × key exchange ${rt.keyExchangeScore} + 0.4 × cipher ${rt.cipherScore} → ${rt.scoreGrade} before caps\n`
  );
}

function protocolLines(r: AuditReport): string[] {
  const out = ['Protocols'];
  for (const [p, on] of Object.entries(r.protocols))
    out.push(`  ${p.padEnd(8)} ${on ? 'offered' : 'not offered'}`);
  out.push('Cipher suites (in the order the server picked them)');
  for (const [p, suites] of Object.entries(r.suites)) {
    out.push(`  ${p}`);
    for (const s of suites ?? []) {
      const tags = [s.forwardSecrecy ? 'FS' : 'no FS', s.aead ? 'AEAD' : 'not AEAD'].join(', ');
      out.push(
        `    ${s.id}  ${s.openssl.padEnd(32)} ${String(s.bits).padStart(3)} bits  ${s.keyExchange.padEnd(6)} ${tags}`,
      );
    }
  }
  out.push(`Forward secrecy: ${r.forwardSecrecy} of the suites; AEAD: ${r.aead} of the suites`);
  const order = Object.entries(r.cipherOrder).map(
    ([p, o]) => `${p} ${o === 'server' ? "server's" : "client's"}`,
  );
  if (order.length > 0) out.push(`Suite order: ${order.join(', ')} preference`);
  const groups = r.groups.map((g) => `${g.name} (${g.bits})`).join(', ');
  out.push(
    `Key exchange groups: ${groups || 'none accepted (or not measurable)'}${r.dhBits !== null ? `; DHE group ${r.dhBits} bits` : ''}`,
  );
  out.push(`ALPN: ${r.alpn.join(', ') || 'none'}`);
  out.push(
    `TLS compression: ${yes(r.compression)}; secure renegotiation: ${r.secureRenegotiation === null ? 'n/a (TLS 1.3 only)' : yes(r.secureRenegotiation)}`,
  );
  return out;
}

function certificateLines(r: AuditReport): string[] {
  const c = r.certificate;
  if (c === null) return ['Certificate: not checked'];
  return [
    'Certificate',
    `  subject    ${c.subject}`,
    `  names      ${c.names.join(', ') || '(none)'}`,
    `  issuer     ${c.issuer}`,
    `  valid      ${c.notBefore.slice(0, 10)} to ${c.notAfter.slice(0, 10)} (${c.expired ? 'EXPIRED' : `${c.daysLeft} days left`})`,
    `  key        ${c.keyType}${c.curve !== null ? ` ${c.curve}` : ''} ${c.keyBits} bits`,
    `  signature  ${c.signatureAlgorithm}`,
    `  trusted    ${c.trusted ? 'yes' : `no (${c.trustError ?? 'unknown'})`}${c.selfSigned ? ', self-signed' : ''}`,
    `  name       ${c.nameMatches ? 'matches' : 'DOES NOT match'} ${c.checkedName}`,
    `  chain      ${c.chain.length} certificate(s) sent`,
  ];
}

function httpLines(r: AuditReport): string[] {
  if (r.http === null) return ['HTTP: not checked (--no-http)'];
  const out = ['HTTP'];
  const h = r.http.headers;
  if (h === null) out.push('  no HTTP answer over TLS');
  else {
    const hsts = h.hsts;
    out.push(
      `  HSTS       ${hsts === null ? 'missing' : `max-age=${hsts.maxAge ?? 'invalid'}${hsts.includeSubDomains ? '; includeSubDomains' : ''}${hsts.preload ? '; preload' : ''}${hsts.problems.length > 0 ? ` (${hsts.problems.join('; ')})` : ''}`}`,
    );
    for (const { name } of SECURITY_HEADERS) out.push(`  ${name}: ${h.headers[name] ?? 'missing'}`);
    if (h.disclosure.length > 0) out.push(`  advertises versions: ${h.disclosure.join(', ')}`);
  }
  const rd = r.http.redirect;
  if (rd !== null) {
    out.push(
      `  port ${rd.port}    ${!rd.listening ? 'no HTTP listener' : rd.redirectsToHttps ? `redirects to HTTPS (${rd.status} ${rd.location ?? ''})` : `does NOT redirect to HTTPS (status ${rd.status})`}`,
    );
  }
  return out;
}

function human(r: AuditReport): string {
  const sni = r.target.serverName !== null ? ` (SNI ${r.target.serverName})` : '';
  const out = [
    `TLS audit of ${r.target.host}:${r.target.port}${sni}, ${(r.elapsedMs / 1000).toFixed(1)} s`,
    '',
    gradeLine(r),
  ];
  out.push(...protocolLines(r), '', ...certificateLines(r), '', ...httpLines(r), '');
  out.push(r.rating.caps.length === 0 ? 'Caps: none' : 'Caps');
  for (const c of r.rating.caps) out.push(`  [${c.grade}] ${c.reason}: ${c.explanation}`);
  out.push(r.rating.warnings.length === 0 ? 'Warnings: none' : 'Warnings');
  for (const w of r.rating.warnings) out.push(`  - ${w.reason}: ${w.explanation}`);
  for (const n of r.notes) out.push(`Note: ${n}`);
  out.push(`Not tested: ${r.notTested.join('; ')}.`);
  return out.join('\n') + '\n';
}

export function registerTlsAudit(tls: Command): void {
  tls
    .command('audit')
    .description(
      'audit a TLS server: protocols, suites, key exchange, certificate, HSTS; graded like SSL Labs',
    )
    .argument(
      '<target>',
      'HOST[:PORT] (port 443 by default; [::1]:8443 for IPv6), or https://HOST[:PORT]/PATH to check the headers of PATH',
    )
    .option('--json', 'print the full report as JSON')
    .option(
      '--fail-under <grade>',
      `exit ${EXIT_BELOW_THRESHOLD} when the grade is below this (A+, A, A-, B, C, D, E, F)`,
    )
    .option('--servername <name>', 'SNI and the name the certificate must match (default: the host)')
    .option('--http-port <port>', 'plain-HTTP port for the redirect check (default 80)')
    .option('--timeout <ms>', 'per-connection timeout in milliseconds (default 5000)')
    .option(
      '--ca-file <file>',
      'also trust this CA (PEM; repeatable), e.g. a private or development CA',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--no-http', 'skip the HTTP checks (security headers, HSTS, redirect)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  enseal tls audit example.com\n' +
        '  enseal tls audit 127.0.0.1:8443 --servername app.test --ca-file ~/.enseal/ca/ca.pem --http-port 8080\n' +
        '  enseal tls audit example.com --json --fail-under A   # in CI\n\n' +
        `Exit status: 0 audited (and at least --fail-under); ${EXIT_BELOW_THRESHOLD} grade below --fail-under;\n` +
        '1 the audit could not run (ERR_CONNECT_FAILED, ERR_TLS_AUDIT_FAILED); 2 bad usage.\n' +
        'T (not trusted) and M (name mismatch) rank below F for --fail-under.\n',
    )
    .action(async (target: string, o: AuditFlags) => {
      let threshold: Grade | undefined;
      if (o.failUnder !== undefined) {
        threshold = parseGrade(o.failUnder);
        if (threshold === undefined)
          throw invalidArgument('--fail-under', `"${o.failUnder}" is not a grade (A+, A, A-, B … F)`);
      }
      const extraCa = await readCaFiles(o.caFile);
      const httpPort = integer(o.httpPort, '--http-port', 1, 65535);
      const timeoutMs = integer(o.timeout, '--timeout', 100, 120_000);
      const report = await auditTls(target, {
        ...(o.servername !== undefined ? { serverName: o.servername } : {}),
        ...(httpPort !== undefined ? { httpPort } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        ...(extraCa !== undefined ? { extraCa } : {}),
        noHttp: !o.http,
      });
      await writeStdout(o.json ? JSON.stringify(report, null, 2) + '\n' : human(report));
      if (threshold !== undefined && !meets(report.rating.grade, threshold)) {
        process.stderr.write(`enseal: grade ${report.rating.grade} is below --fail-under ${threshold}\n`);
        process.exitCode = EXIT_BELOW_THRESHOLD;
      }
    });
}
