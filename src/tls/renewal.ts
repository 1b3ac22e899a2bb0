/**
 * When to renew a certificate, and doing it when due.
 *
 * If the ACME server offers renewal information (ARI, RFC 9773), its suggested window decides: a time is
 * drawn uniformly inside it (§4.2, so that many clients do not renew in the same second) and renewal is due
 * once that time has passed; a window already in the past means now. This lets a CA move renewals earlier,
 * for instance ahead of a mass revocation. Without ARI, renewal is due at two thirds of the lifetime, the point
 * Let's Encrypt recommends: a 90-day certificate renews with 30 days left, time enough for retries.
 * A certificate that does not cover the requested names is renewed at once.
 */
import { EnsealError, ErrorCode, base64UrlEncode, hexDecode, invalidArgument } from '../crypto/index.js';
import type { AcmeClient } from './acme-client.js';
import type { ChallengeSolver } from './acme-challenges.js';
import type { RenewalInfo } from './acme-messages.js';
import { issueAcmeCertificate, type AcmeIssuedCertificate, type CertificateKeyType } from './acme-order.js';
import { readCertificateFile, writeCertificateFiles, type CertificateInfo } from './certificate-files.js';

/** Fraction of the lifetime after which a certificate is renewed when the server gives no window. */
export const DEFAULT_RENEW_FRACTION = 2 / 3;

/**
 * The RFC 9773 §4.1 certificate identifier: base64url of the authority key identifier, a dot, base64url of
 * the serial number's DER INTEGER content (with the leading zero byte that keeps it positive).
 */
export function ariCertificateId(info: Pick<CertificateInfo, 'authorityKeyId' | 'serialNumber'>): string {
  if (!info.authorityKeyId)
    throw new EnsealError(
      ErrorCode.UNSUPPORTED,
      'certificate has no authority key identifier, so ARI cannot name it',
    );
  let serial = info.serialNumber.replace(/[^0-9a-fA-F]/g, '').toLowerCase();
  if (serial.length % 2 === 1) serial = '0' + serial;
  serial = serial.replace(/^(00)+/, '');
  if (serial === '' || parseInt(serial.slice(0, 2), 16) >= 0x80) serial = '00' + serial;
  const aki = info.authorityKeyId.replace(/[^0-9a-fA-F]/g, '');
  return `${base64UrlEncode(hexDecode(aki))}.${base64UrlEncode(hexDecode(serial))}`;
}

export type RenewalReason = 'missing' | 'forced' | 'names' | 'ari' | 'lifetime';

export interface RenewalDecision {
  readonly due: boolean;
  /** When renewal is (or was) due. */
  readonly at: Date;
  readonly reason: RenewalReason;
}

export interface RenewalPolicy {
  readonly now?: Date;
  /** Fraction of the lifetime after which to renew without ARI (default 2/3; in (0, 1]). */
  readonly fraction?: number;
  /** The server's suggested window, when it has one. */
  readonly ari?: RenewalInfo;
  /** Renew regardless of dates. */
  readonly force?: boolean;
  /** Names the certificate must cover. */
  readonly domains?: readonly string[];
  /** Source of randomness in [0, 1) for the point inside the ARI window (tests pass a fixed one). */
  readonly random?: () => number;
}

/** The renewal time for `info`: inside the ARI window if there is one, else at `fraction` of its lifetime. */
export function renewalTime(
  info: CertificateInfo,
  policy: RenewalPolicy = {},
): { at: Date; reason: 'ari' | 'lifetime' } {
  if (policy.ari) {
    const { start, end } = policy.ari;
    const pick = policy.random ?? Math.random;
    return {
      at: new Date(start.getTime() + Math.floor(pick() * (end.getTime() - start.getTime()))),
      reason: 'ari',
    };
  }
  const fraction = policy.fraction ?? DEFAULT_RENEW_FRACTION;
  if (!(fraction > 0 && fraction <= 1)) throw invalidArgument('renewal fraction', 'must be in (0, 1]');
  const from = info.notBefore.getTime();
  return { at: new Date(from + Math.floor(fraction * (info.notAfter.getTime() - from))), reason: 'lifetime' };
}

function covers(info: CertificateInfo, domains: readonly string[]): boolean {
  const names = new Set([...info.dnsNames, ...info.ipAddresses].map((n) => n.toLowerCase()));
  return domains.every((d) => names.has(d.toLowerCase()));
}

/** Whether a certificate (or its absence) is due for renewal under `policy`. */
export function renewalDecision(
  info: CertificateInfo | undefined,
  policy: RenewalPolicy = {},
): RenewalDecision {
  const now = policy.now ?? new Date();
  if (!info) return { due: true, at: now, reason: 'missing' };
  if (policy.force) return { due: true, at: now, reason: 'forced' };
  if (policy.domains && !covers(info, policy.domains)) return { due: true, at: now, reason: 'names' };
  const { at, reason } = renewalTime(info, policy);
  return { due: now.getTime() >= at.getTime(), at, reason };
}

export interface RenewOptions {
  readonly client: AcmeClient;
  readonly domains: readonly string[];
  /**
   * The challenge responder, or a function that opens one: then it is opened only when a certificate is
   * actually due (a daily `renew` does not bind port 80 for nothing) and closed afterwards.
   */
  readonly solver: ChallengeSolver | (() => Promise<ChallengeSolver>);
  /** Where the chain and key live; both are replaced atomically when a new certificate is issued. */
  readonly files: { readonly cert: string; readonly key: string };
  readonly force?: boolean;
  readonly fraction?: number;
  readonly now?: Date;
  readonly keyType?: CertificateKeyType;
  readonly profile?: string;
  readonly onProgress?: (message: string) => void;
}

export interface RenewResult {
  readonly renewed: boolean;
  readonly decision: RenewalDecision;
  /** The certificate now in `files.cert`. */
  readonly info: CertificateInfo;
  /** The certificate it replaced, if any. */
  readonly previous?: CertificateInfo;
  /** Whether the server's renewal information (ARI) was used. */
  readonly ari: boolean;
}

/** Asks the server for its window, if it offers ARI; a failure there falls back to the lifetime rule. */
async function fetchAri(
  options: RenewOptions,
  info: CertificateInfo,
): Promise<{ ari?: RenewalInfo; certId?: string }> {
  if (!info.authorityKeyId || !(await options.client.directory()).renewalInfo) return {};
  const certId = ariCertificateId(info);
  try {
    const ari = await options.client.renewalInfo(certId);
    return { certId, ...(ari ? { ari } : {}) };
  } catch (err) {
    options.onProgress?.(
      `renewal information unavailable (${(err as Error).message}); using the lifetime rule`,
    );
    return { certId };
  }
}

/**
 * Renews the certificate in `options.files` when due (or missing, or forced, or not covering the names),
 * writing the new chain and key atomically. With ARI, the new order names the old certificate in `replaces`.
 */
export async function renewIfDue(options: RenewOptions): Promise<RenewResult> {
  const previous = await readCertificateFile(options.files.cert);
  const { ari, certId } = previous ? await fetchAri(options, previous) : {};
  const decision = renewalDecision(previous, {
    ...(options.now ? { now: options.now } : {}),
    ...(options.fraction !== undefined ? { fraction: options.fraction } : {}),
    ...(ari ? { ari } : {}),
    ...(options.force ? { force: true } : {}),
    domains: options.domains,
  });
  if (!decision.due && previous) return { renewed: false, decision, info: previous, ari: ari !== undefined };
  options.onProgress?.(`renewing (${decision.reason})`);
  const opened = typeof options.solver === 'function' ? await options.solver() : undefined;
  let issued: AcmeIssuedCertificate;
  try {
    issued = await issueAcmeCertificate({
      client: options.client,
      domains: options.domains,
      solver: opened ?? (options.solver as ChallengeSolver),
      ...(options.keyType ? { keyType: options.keyType } : {}),
      ...(options.profile ? { profile: options.profile } : {}),
      ...(ari && certId ? { replaces: certId } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } finally {
    await opened?.close();
  }
  await writeCertificateFiles(options.files, issued.chainPem, issued.keyPem);
  return {
    renewed: true,
    decision,
    info: issued.info,
    ...(previous ? { previous } : {}),
    ari: ari !== undefined,
  };
}
