/**
 * `enseal doctor`: checks a deployment against the seeds' checklist (full-disk encryption under the data,
 * keys not in plain files, TLS current, the audit log whole, keys rotated, no root token left alive) and says
 * what passes, what fails and the fix. Each check is one small function of a {@link DoctorContext}; the
 * report's `ok` is false when any check fails (a warning or an unknown does not fail it).
 */
import { auditTls, type AuditReport } from '../../tls/index.js';
import { deploymentFiles, type ServeConfig } from '../serve.js';
import type { SystemRoots } from './block-device.js';
import { once, type DoctorContext, type DoctorServer } from './context.js';
import {
  checkKeyPermissions,
  checkStoreEncrypted,
  checkStorePermissions,
  checkTlsPermissions,
} from './host-checks.js';
import {
  checkAuditChain,
  checkKeyRotation,
  checkRootToken,
  checkSealType,
  checkServer,
  checkTlsCertificate,
  checkTlsProfile,
} from './service-checks.js';
import { result, unknown, type CheckId, type CheckResult, type CheckStatus } from './result.js';

export interface DoctorOptions {
  /** The configuration, as `enseal serve` would build it from the same file and flags. */
  readonly config: ServeConfig;
  readonly configFile?: string;
  /** The running server; without it the checks that need one report `unknown`. */
  readonly server?: DoctorServer;
  /** Where procfs and sysfs are (tests point them at a fake tree). */
  readonly roots?: SystemRoots;
  readonly now?: Date;
  /** The TLS auditor (default: the one of `enseal tls audit`). */
  readonly auditTls?: (
    target: string,
    options: { extraCa?: string[]; noHttp: boolean },
  ) => Promise<AuditReport>;
}

export interface DoctorReport {
  /** False when any check failed. */
  readonly ok: boolean;
  readonly counts: Readonly<Record<CheckStatus, number>>;
  readonly checks: readonly CheckResult[];
}

/** Every check, in the order they are printed: this host's files first, then the running server. */
export const CHECKS: readonly (readonly [
  CheckId,
  (ctx: DoctorContext) => CheckResult | Promise<CheckResult>,
])[] = [
  ['store-encrypted', checkStoreEncrypted],
  ['store-permissions', checkStorePermissions],
  ['key-permissions', checkKeyPermissions],
  ['tls-permissions', checkTlsPermissions],
  ['server', checkServer],
  ['seal-type', checkSealType],
  ['tls-profile', checkTlsProfile],
  ['tls-certificate', checkTlsCertificate],
  ['audit-chain', checkAuditChain],
  ['key-rotation', checkKeyRotation],
  ['root-token', checkRootToken],
];

export function doctorContext(options: DoctorOptions): DoctorContext {
  const server = options.server;
  const audit = options.auditTls ?? auditTls;
  const tlsAudit = once(async () => {
    const url = new URL(server!.address);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const target = `${host.includes(':') ? `[${host}]` : host}:${url.port || '443'}`;
    return audit(target, { noHttp: true, ...(server!.caPem ? { extraCa: [server!.caPem] } : {}) });
  });
  return {
    config: options.config,
    ...(options.configFile ? { configFile: options.configFile } : {}),
    files: deploymentFiles(options.config),
    roots: options.roots ?? {},
    now: options.now ?? new Date(),
    ...(server ? { server } : {}),
    sealStatus: once(() => server!.api.sealStatus()),
    tlsAudit: async () => (server?.address.startsWith('https:') ? tlsAudit() : undefined),
  };
}

/** Runs every check; a check that throws is reported as `unknown` with its error, never as a crash. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const ctx = doctorContext(options);
  const checks: CheckResult[] = [];
  for (const [id, check] of CHECKS) {
    try {
      checks.push(await check(ctx));
    } catch (err) {
      const message = `the check could not run: ${err instanceof Error ? err.message : String(err)}`;
      checks.push(
        result(id, unknown(message, 'check this by hand, and report the error as a bug in enseal doctor')),
      );
    }
  }
  const counts = { pass: 0, fail: 0, warn: 0, unknown: 0 };
  for (const c of checks) counts[c.status]++;
  return { ok: counts.fail === 0, counts, checks };
}

/** The report as lines for a person: one line per check, with the fix under each one not passing. */
export function formatReport(report: DoctorReport): string {
  const label: Record<CheckStatus, string> = { pass: 'PASS', fail: 'FAIL', warn: 'WARN', unknown: 'UNKNOWN' };
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${label[c.status].padEnd(7)}  ${c.id}: ${c.message}`);
    if (c.status !== 'pass' && c.fix) lines.push(`         fix: ${c.fix}`);
    if (c.status !== 'pass' && c.requirement) lines.push(`         serves: ${c.requirement}`);
  }
  const { pass, fail, warn, unknown: unknowns } = report.counts;
  lines.push('', `enseal doctor: ${pass} pass, ${fail} fail, ${warn} warn, ${unknowns} unknown`);
  return lines.join('\n');
}
