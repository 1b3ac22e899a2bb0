/**
 * `auditTls`: runs every probe against one TLS endpoint and grades the result. The order matters for bad
 * input: one preflight ClientHello first, so an unreachable host, a port that does not speak TLS or a
 * server that never answers fails fast with a clear typed error; then the protocol lanes (raw probes) in
 * parallel; then the handshakes through Node and the HTTP checks under a concurrency limit. Each connection
 * has its own timeout and the whole audit a deadline, so it always ends.
 */
import { isIP } from 'node:net';
import { EnsealError, ErrorCode, invalidArgument, isEnsealError } from '../../crypto/index.js';
import { suiteHex, type CipherSuite } from './cipher-suites.js';
import { checkCertificate, type CertificateReport } from './certificate-checks.js';
import { Version, encodeClientHello } from './client-hello.js';
import {
  checkHttpRedirect,
  checkHttpsHeaders,
  type HttpsHeadersReport,
  type RedirectReport,
} from './http-checks.js';
import { nodeHandshake, probeGroup, PROBED_GROUPS, type GroupResult, type ProbeTarget } from './probe.js';
import { rawProbe } from './raw-probe.js';
import { rate, type Rating } from './rating.js';
import {
  offerFor,
  PROTOCOLS,
  scanProtocol,
  scanSsl2,
  type ProtocolName,
  type ProtocolScan,
} from './suite-scan.js';

export interface AuditOptions {
  /** SNI and certificate name; defaults to the host unless it is an IP literal. */
  readonly serverName?: string;
  /** Per-connection timeout in milliseconds (default 5000). */
  readonly timeoutMs?: number;
  /** Whole-audit deadline in milliseconds (default 60000, or 12 timeouts when that is longer). */
  readonly deadlineMs?: number;
  /** Extra trust anchors (PEM strings) for a private CA. */
  readonly extraCa?: readonly string[];
  /** Port for the plain-HTTP redirect check (default 80). */
  readonly httpPort?: number;
  /** Skip the HTTP checks (headers, HSTS, redirect). */
  readonly noHttp?: boolean;
  /** Parallel connections at most (default 6). */
  readonly concurrency?: number;
}

export interface SuiteReport {
  readonly id: string;
  readonly name: string;
  readonly openssl: string;
  readonly keyExchange: string;
  readonly bits: number;
  readonly forwardSecrecy: boolean;
  readonly aead: boolean;
}

export interface AuditReport {
  readonly target: { host: string; port: number; serverName: string | null };
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly protocols: Readonly<Record<ProtocolName, boolean>>;
  /** Accepted suites per supported protocol, in the order the server picked them. */
  readonly suites: Readonly<Partial<Record<ProtocolName, readonly SuiteReport[]>>>;
  /** Per protocol with two or more suites: whether the server enforces its own suite preference. */
  readonly cipherOrder: Readonly<Partial<Record<ProtocolName, 'server' | 'client'>>>;
  readonly forwardSecrecy: 'all' | 'some' | 'none';
  readonly aead: 'all' | 'some' | 'none';
  readonly groups: readonly GroupResult[];
  readonly dhBits: number | null;
  readonly alpn: readonly string[];
  readonly compression: boolean;
  readonly secureRenegotiation: boolean | null;
  readonly certificate: CertificateReport | null;
  readonly http: { headers: HttpsHeadersReport | null; redirect: RedirectReport | null } | null;
  readonly rating: Rating;
  /** What this audit does not test, so a clean report is not read as more than it is. */
  readonly notTested: readonly string[];
  readonly notes: readonly string[];
}

export const NOT_TESTED = [
  'Heartbleed, CCS injection, Ticketbleed, ROBOT, DROWN and other implementation bugs (F caps in the guide): use testssl.sh for those',
  'certificate revocation (OCSP/CRL)',
  'chains completed through AIA fetching (an incomplete chain is reported as not trusted)',
  'client-initiated renegotiation',
];

/** Splits HOST[:PORT], [IPv6]:PORT or a bare IPv6 literal; the port defaults to 443. */
/**
 * The path of a target given as a URL (`https://host:port/app`), which the HTTPS header check requests, so
 * a page served with headers of its own is graded on them; `/` for HOST[:PORT].
 */
export function targetPath(target: string): string {
  const m = /^https:\/\/[^/?#\s]+(\/[^\s#]*)?$/i.exec(target.trim());
  return m?.[1] ?? '/';
}

export function parseTarget(target: string): { host: string; port: number } {
  const t = target
    .trim()
    .replace(/^https:\/\//i, '')
    .replace(/\/.*$/, '');
  let host: string;
  let port = '443';
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracket !== null) {
    host = bracket[1]!;
    port = bracket[2] ?? port;
  } else if (isIP(t) === 6) {
    host = t;
  } else {
    const m = /^([^:\s]+)(?::(\d+))?$/.exec(t);
    if (m === null) throw invalidArgument('target', `"${target}" is not HOST[:PORT]`);
    host = m[1]!;
    port = m[2] ?? port;
  }
  const n = Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw invalidArgument('target', `port ${port} is out of range`);
  if (!/^[A-Za-z0-9.\-:%_]+$/.test(host))
    throw invalidArgument('target', `"${host}" is not a host name or IP address`);
  return { host, port: n };
}

/** Runs `tasks` with at most `limit` in flight; results in task order. */
async function limited<T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

function auditFailed(message: string, cause?: unknown): EnsealError {
  return new EnsealError(ErrorCode.TLS_AUDIT_FAILED, message, cause === undefined ? undefined : { cause });
}

/** One ClientHello first: the only step whose failure means "this is not a TLS server". */
async function preflight(target: ProbeTarget): Promise<void> {
  const hello = encodeClientHello({
    version: Version.TLS12,
    suites: offerFor('TLSv1.2'),
    ...(target.serverName !== undefined ? { serverName: target.serverName } : {}),
  });
  const where = `${target.host}:${target.port}`;
  try {
    const outcome = await rawProbe(target, hello);
    if (outcome.kind === 'timeout') {
      throw auditFailed(
        `${where} accepted the connection but did not answer a TLS ClientHello within ${target.timeoutMs} ms`,
      );
    }
  } catch (err) {
    if (isEnsealError(err, ErrorCode.MALFORMED)) {
      throw auditFailed(`${where} does not speak TLS: ${err.message}`, err);
    }
    throw err;
  }
}

function summarise(
  suites: readonly CipherSuite[],
  pick: (s: CipherSuite) => boolean,
): 'all' | 'some' | 'none' {
  const n = suites.filter(pick).length;
  return n === 0 ? 'none' : n === suites.length ? 'all' : 'some';
}

const toReport = (s: CipherSuite): SuiteReport => ({
  id: suiteHex(s.id),
  name: s.name,
  openssl: s.openssl,
  keyExchange: s.keyExchange,
  bits: s.bits,
  forwardSecrecy: s.forwardSecrecy,
  aead: s.aead,
});

async function scanAll(target: ProbeTarget, stop: { stopped: boolean }): Promise<ProtocolScan[]> {
  const ctx = { ...target, stop };
  return Promise.all([
    scanSsl2(ctx),
    ...PROTOCOLS.filter((p) => p !== 'SSLv2').map((p) =>
      scanProtocol(ctx, p as Exclude<ProtocolName, 'SSLv2'>),
    ),
  ]);
}

interface HandshakeFindings {
  certificate: CertificateReport | null;
  groups: GroupResult[];
  dhBits: number | null;
  alpn: string[];
  notes: string[];
}

const NODE_VERSION = {
  'TLSv1.3': 'TLSv1.3',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.0': 'TLSv1',
} as const;

async function handshakes(
  target: ProbeTarget,
  scans: ProtocolScan[],
  limit: number,
  checkedName: string,
): Promise<HandshakeFindings> {
  const supported = new Set(scans.filter((s) => s.supported).map((s) => s.protocol));
  // The best protocol Node can speak, in Node's spelling; SSL-only servers get no handshake probes.
  const best = (['TLSv1.3', 'TLSv1.2', 'TLSv1.1', 'TLSv1.0'] as const).find((p) => supported.has(p));
  const nodeBest = best === undefined ? undefined : NODE_VERSION[best];
  const nodeCan = best !== undefined;
  const notes: string[] = [];
  const dhe = scans
    .flatMap((s) => s.suites.map((suite) => ({ protocol: s.protocol, suite })))
    .find((x) => x.suite.keyExchange === 'DHE');
  const tasks: (() => Promise<unknown>)[] = [
    () => (nodeCan ? nodeHandshake(target, { minVersion: nodeBest! }) : Promise.resolve(undefined)),
    () =>
      best === undefined
        ? Promise.resolve(undefined)
        : nodeHandshake(target, { alpn: ['h2'], minVersion: nodeBest! }),
    () =>
      best === undefined
        ? Promise.resolve(undefined)
        : nodeHandshake(target, { alpn: ['http/1.1'], minVersion: nodeBest! }),
    () =>
      dhe === undefined || dhe.protocol === 'SSLv3'
        ? Promise.resolve(undefined)
        : nodeHandshake(target, {
            minVersion: NODE_VERSION[dhe.protocol as keyof typeof NODE_VERSION],
            maxVersion: NODE_VERSION[dhe.protocol as keyof typeof NODE_VERSION],
            ciphers: 'kEDH:@SECLEVEL=0',
          }),
    ...PROBED_GROUPS.map(
      (g) => () => (best === undefined ? Promise.resolve(undefined) : probeGroup(target, g, nodeBest!)),
    ),
  ];
  const [main, h2, h11, dh, ...groupResults] = (await limited(limit, tasks)) as [
    Awaited<ReturnType<typeof nodeHandshake>> | undefined,
    Awaited<ReturnType<typeof nodeHandshake>> | undefined,
    Awaited<ReturnType<typeof nodeHandshake>> | undefined,
    Awaited<ReturnType<typeof nodeHandshake>> | undefined,
    ...(GroupResult | undefined)[],
  ];
  let certificate: CertificateReport | null = null;
  if (main?.ok === true && main.chain.length > 0) certificate = checkCertificate(main, checkedName);
  else if (nodeCan)
    notes.push(`the certificate handshake failed (${main?.ok === false ? main.reason : 'no certificate'})`);
  else notes.push('only SSL protocols are offered, which Node cannot complete: certificate not checked');
  const alpn = [h2, h11]
    .filter((r) => r?.ok === true && r.alpn !== false)
    .map((r) => (r as { alpn: string }).alpn);
  const dhBits = dh?.ok === true && dh.ephemeral.type === 'DH' ? (dh.ephemeral.size ?? null) : null;
  if (dhe !== undefined && dhBits === null)
    notes.push('a DHE suite is accepted but its group size could not be measured');
  const groups = groupResults.filter((g): g is GroupResult => g !== undefined);
  return { certificate, groups, dhBits, alpn, notes };
}

/** Audits the TLS endpoint `target` (HOST[:PORT]). */
export async function auditTls(targetText: string, options: AuditOptions = {}): Promise<AuditReport> {
  const started = Date.now();
  const { host, port } = parseTarget(targetText);
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 120_000) {
    throw invalidArgument('timeout', 'must be between 100 and 120000 ms');
  }
  const serverName = options.serverName ?? (isIP(host) === 0 ? host : undefined);
  const target: ProbeTarget = {
    host,
    port,
    timeoutMs,
    serverName,
    ...(options.extraCa !== undefined ? { extraCa: options.extraCa } : {}),
    path: targetPath(targetText),
  };
  const deadlineMs = options.deadlineMs ?? Math.max(60_000, 12 * timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          auditFailed(
            `the audit of ${host}:${port} did not finish within ${deadlineMs} ms (a server answering very slowly?)`,
          ),
        ),
      deadlineMs,
    );
  });
  const stop = { stopped: false };
  try {
    return await Promise.race([deadline, run(target, options, started, stop)]);
  } finally {
    // Lanes still running after a missed deadline stop at their next probe.
    stop.stopped = true;
    clearTimeout(timer);
  }
}

async function run(
  target: ProbeTarget,
  options: AuditOptions,
  started: number,
  stop: { stopped: boolean },
): Promise<AuditReport> {
  await preflight(target);
  const scans = await scanAll(target, stop);
  const supported = scans.filter((s) => s.supported);
  if (supported.length === 0) {
    const why = scans.map((s) => `${s.protocol}: ${s.refusal}`).join('; ');
    throw auditFailed(
      `${target.host}:${target.port} accepted no protocol with any known cipher suite (${why})`,
    );
  }
  const checkedName = target.serverName ?? target.host;
  const limit = options.concurrency ?? 6;
  const httpTasks = options.noHttp
    ? Promise.resolve(null)
    : Promise.all([checkHttpsHeaders(target), checkHttpRedirect(target, options.httpPort ?? 80)]).then(
        ([headers, redirect]) => ({ headers, redirect }),
      );
  const [found, http] = await Promise.all([handshakes(target, scans, limit, checkedName), httpTasks]);
  const protocols = Object.fromEntries(
    PROTOCOLS.map((p) => [p, scans.find((s) => s.protocol === p)?.supported ?? false]),
  ) as Record<ProtocolName, boolean>;
  const allSuites = supported.flatMap((s) => s.suites);
  const tls12OrOlder = supported.filter((s) => s.protocol !== 'TLSv1.3' && s.protocol !== 'SSLv2');
  const secureRenegotiation =
    tls12OrOlder.length === 0 ? null : tls12OrOlder.every((s) => s.secureRenegotiation);
  const compression = supported.some((s) => s.compression);
  const ecdh = found.groups.filter((g) => !g.name.startsWith('ffdhe'));
  const rating = rate({
    protocols: new Set(supported.map((s) => s.protocol)),
    suites: supported.flatMap((s) => s.suites.map((suite) => ({ protocol: s.protocol, suite }))),
    certificate: found.certificate,
    ecdhBits: ecdh.length === 0 ? null : Math.min(...ecdh.map((g) => g.bits)),
    dhBits: found.dhBits,
    compression,
    secureRenegotiation,
    hsts: http === null || http.headers === null ? undefined : http.headers.hsts,
  });
  const notes = [...found.notes];
  for (const s of scans)
    if (s.refusal === 'timeout')
      notes.push(`${s.protocol}: a probe timed out; results for it may be incomplete`);
  if (http !== null && http.headers === null)
    notes.push('no HTTP answer over TLS: headers and HSTS not checked');
  return {
    target: { host: target.host, port: target.port, serverName: target.serverName ?? null },
    startedAt: new Date(started).toISOString(),
    elapsedMs: Date.now() - started,
    protocols,
    suites: Object.fromEntries(
      supported.filter((s) => s.suites.length > 0).map((s) => [s.protocol, s.suites.map(toReport)]),
    ),
    cipherOrder: Object.fromEntries(
      supported.filter((s) => s.cipherOrder !== null).map((s) => [s.protocol, s.cipherOrder]),
    ),
    forwardSecrecy: summarise(allSuites, (s) => s.forwardSecrecy),
    aead: summarise(allSuites, (s) => s.aead),
    groups: found.groups,
    dhBits: found.dhBits,
    alpn: found.alpn,
    compression,
    secureRenegotiation,
    certificate: found.certificate,
    http,
    rating,
    notTested: NOT_TESTED,
    notes,
  };
}
