/**
 * Audit targets shared by the auditor's tests: real nginx servers built from the nginx harness's strong and
 * weak blocks with the fixture certificates, plus `enseal serve` (modern and intermediate profiles), each
 * audited once.
 * Also the readers for testssl.sh and sslscan output, normalised to "TLSv1.2 0xc02f" entries.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditTls, type AuditOptions, type AuditReport } from '../../src/tls/index.js';
import { startNginx, strongHttpBlock, weakHttpBlock, type RunningNginx } from '../helpers/nginx.js';
import { runAsync } from '../helpers/peers.js';
import { tlsFixtures, type CertFixture, type TlsFixtures } from '../helpers/tls-certs.js';
import { devServer } from '../server/helpers.js';

export type NginxTarget = 'strong' | 'noHsts' | 'weak' | 'expired' | 'selfSigned' | 'wrongName' | 'rsa1024';
export type TargetName = NginxTarget | 'serve' | 'serveIntermediate';

/** The strong block with OpenSSL's security level lowered, so nginx accepts an RSA-1024 key at all. */
const seclevel0 = (block: string) => block.replace(/(ssl_ciphers [^;]+);/, '$1:@SECLEVEL=0;');
const withoutHsts = (block: string) => block.replace(/^.*Strict-Transport-Security.*$/m, '');

const BLOCKS: Record<NginxTarget, (f: TlsFixtures) => string> = {
  strong: (f) => strongHttpBlock(f.goodEcdsa),
  noHsts: (f) => withoutHsts(strongHttpBlock(f.goodEcdsa)),
  weak: (f) => weakHttpBlock(f.goodRsa),
  expired: (f) => strongHttpBlock(f.expired),
  selfSigned: (f) => strongHttpBlock(f.selfSigned),
  wrongName: (f) => strongHttpBlock(f.wrongName),
  rsa1024: (f) => seclevel0(strongHttpBlock(f.rsa1024)),
};

export interface Targets {
  readonly reports: Partial<Record<TargetName, AuditReport>>;
  /** HOST:PORT of the TLS listener. */
  hostPort(name: TargetName): string;
  /** The CA file the audit trusts for this target (never the self-signed leaf itself). */
  caFile(name: TargetName): string;
  httpPort(name: NginxTarget): number;
  stop(): Promise<void>;
}

/** Starts the named targets and audits each once. */
export async function startTargets(names: readonly TargetName[]): Promise<Targets> {
  const fx = await tlsFixtures();
  const servers: Partial<Record<NginxTarget, RunningNginx>> = {};
  const serves: Partial<Record<'serve' | 'serveIntermediate', Awaited<ReturnType<typeof devServer>>>> = {};
  const isServe = (name: TargetName): name is 'serve' | 'serveIntermediate' =>
    name === 'serve' || name === 'serveIntermediate';
  const trust = (name: NginxTarget): CertFixture =>
    name === 'weak' || name === 'rsa1024' ? fx.goodRsa : fx.goodEcdsa;
  const targets: Targets = {
    reports: {},
    hostPort: (name) => {
      if (isServe(name)) {
        const u = new URL(serves[name]!.server.url);
        return `${u.hostname}:${u.port}`;
      }
      return `127.0.0.1:${servers[name]!.httpsPort}`;
    },
    caFile: (name) => (isServe(name) ? serves[name]!.server.caFile! : trust(name).caFile),
    httpPort: (name) => servers[name]!.httpPort,
    stop: async () => {
      await Promise.all(Object.values(servers).map((s) => s?.stop()));
      await Promise.all(Object.values(serves).map((s) => s?.server.close()));
    },
  };
  try {
    await Promise.all(
      names.map(async (name) => {
        if (name === 'serve') serves.serve = await devServer();
        else if (name === 'serveIntermediate') {
          serves.serveIntermediate = await devServer({ tlsProfile: 'intermediate' });
        } else servers[name] = await startNginx({ http: BLOCKS[name](fx) });
      }),
    );
    for (const name of names) {
      const options: AuditOptions = {
        serverName: 'localhost',
        extraCa: [readFileSync(targets.caFile(name), 'utf8')],
        // enseal serve has no plain-HTTP listener here: port 1 has nothing, which the report must say.
        httpPort: isServe(name) ? 1 : targets.httpPort(name),
      };
      targets.reports[name] = await auditTls(targets.hostPort(name), options);
    }
  } catch (err) {
    await targets.stop();
    throw err;
  }
  return targets;
}

export interface Findings {
  protocols: string[];
  /** "TLSv1.2 0xc02f" entries, sorted. */
  suites: string[];
}

const PROTOCOL_IDS: Record<string, string> = {
  SSLv2: 'SSLv2',
  SSLv3: 'SSLv3',
  TLS1: 'TLSv1.0',
  TLS1_1: 'TLSv1.1',
  TLS1_2: 'TLSv1.2',
  TLS1_3: 'TLSv1.3',
};
const CIPHER_PROTOCOL: Record<string, string> = {
  ssl3: 'SSLv3',
  tls1: 'TLSv1.0',
  tls1_1: 'TLSv1.1',
  tls1_2: 'TLSv1.2',
  tls1_3: 'TLSv1.3',
};
const hex = (id: string) => `0x${id.toLowerCase().replace(/^0x/, '').padStart(4, '0')}`;

/** The auditor's findings in the normalised form. */
export function auditFindings(r: AuditReport): Findings {
  return {
    protocols: Object.entries(r.protocols)
      .filter(([, on]) => on)
      .map(([p]) => p)
      .sort(),
    suites: Object.entries(r.suites)
      .flatMap(([p, list]) => (list ?? []).map((s) => `${p} ${s.id}`))
      .sort(),
  };
}

/** testssl.sh -p -E (protocols, then each accepted cipher per protocol), read from its flat JSON. */
export async function testsslFindings(hostPort: string, caFile: string): Promise<Findings> {
  const dir = mkdtempSync(join(tmpdir(), 'enseal-testssl-'));
  try {
    const json = join(dir, 'out.json');
    await runAsync('testssl', [
      '--quiet',
      '--color',
      '0',
      '--warnings',
      'off',
      '--nodns',
      'none',
      '--add-ca',
      caFile,
      '--jsonfile',
      json,
      '-p',
      '-E',
      `https://${hostPort}`,
    ]).catch(() => undefined); // non-zero on findings; the JSON is what is judged
    const findings = JSON.parse(readFileSync(json, 'utf8')) as { id: string; finding: string }[];
    const protocols = findings
      .filter((f) => PROTOCOL_IDS[f.id] !== undefined && /^offered/.test(f.finding))
      .map((f) => PROTOCOL_IDS[f.id]!)
      .sort();
    const suites = findings
      .map((f) => /^cipher-(ssl3|tls1|tls1_1|tls1_2|tls1_3)_x([0-9a-f]+)$/.exec(f.id))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => `${CIPHER_PROTOCOL[m[1]!]} ${hex(m[2]!)}`)
      .sort();
    return { protocols, suites };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** sslscan --xml=- (every protocol, every accepted cipher with its id). */
export async function sslscanFindings(hostPort: string): Promise<Findings> {
  const xml = (await runAsync('sslscan', ['--no-colour', '--xml=-', hostPort])).toString();
  const protocols = [...xml.matchAll(/<protocol type="(ssl|tls)" version="([\d.]+)" enabled="1"/g)]
    .map((m) => (m[1] === 'ssl' ? `SSLv${m[2]}` : `TLSv${m[2]}`))
    .sort();
  const suites = [
    ...xml.matchAll(
      /<cipher status="(?:preferred|accepted)" sslversion="([^"]+)"[^>]*? id="(0x[0-9A-Fa-f]+)"/g,
    ),
  ]
    .map((m) => `${m[1]} ${hex(m[2]!)}`)
    .sort();
  return { protocols, suites };
}
