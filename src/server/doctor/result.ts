/**
 * What every `enseal doctor` check returns, and the requirement each check serves. The texts of
 * {@link REQUIREMENTS} are the ones docs/operations.md tabulates; a test keeps the two in step.
 */

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'unknown';

export interface CheckResult {
  /** Stable identifier, for scripts: `store-encrypted`, `seal-type`, … */
  readonly id: string;
  /** One line a person reads: what was checked. */
  readonly title: string;
  readonly status: CheckStatus;
  /** What was found. */
  readonly message: string;
  /** What to do about it (a command where one exists); null when there is nothing to do. */
  readonly fix: string | null;
  /** The controls this check gives evidence for. */
  readonly requirement: string;
}

export type CheckId =
  | 'store-encrypted'
  | 'store-permissions'
  | 'key-permissions'
  | 'tls-permissions'
  | 'server'
  | 'seal-type'
  | 'tls-profile'
  | 'tls-certificate'
  | 'audit-chain'
  | 'key-rotation'
  | 'root-token';

export const TITLES: Readonly<Record<CheckId, string>> = {
  'store-encrypted': 'store directory on an encrypted block device',
  'store-permissions': 'store files private to the service',
  'key-permissions': 'key, seal and token files private',
  'tls-permissions': 'TLS key private, TLS files not writable by others',
  server: 'server reachable, initialised and unsealed',
  'seal-type': 'seal splits the unseal key (Shamir), no dev or file seal',
  'tls-profile': 'TLS profile: TLS 1.2+ with forward secrecy and AEAD only',
  'tls-certificate': 'TLS certificate valid, trusted and not about to expire',
  'audit-chain': 'audit log hash chain verifies',
  'key-rotation': 'no key overdue for rotation',
  'root-token': 'initial root token revoked',
};

export const REQUIREMENTS: Readonly<Record<CheckId, string>> = {
  'store-encrypted': 'PCI DSS 3.5.1; GDPR art. 32(1)(a); HIPAA 164.312(a)(2)(iv)',
  'store-permissions': 'PCI DSS 3.5.1, 3.6.1; GDPR art. 32(1)(b); HIPAA 164.312(a)(1)',
  'key-permissions': 'PCI DSS 3.6.1.2, 3.6.1.3; GDPR art. 32(1)(b); HIPAA 164.312(a)(2)(iv)',
  'tls-permissions': 'PCI DSS 3.6.1, 4.2.1; GDPR art. 32(1)(b); HIPAA 164.312(e)(1)',
  server: 'GDPR art. 32(1)(b), 32(1)(d)',
  'seal-type': 'PCI DSS 3.6.1.2, 3.7.6; GDPR art. 32(1)(a); HIPAA 164.312(a)(2)(iv)',
  'tls-profile': 'PCI DSS 4.2.1; GDPR art. 32(1)(a); HIPAA 164.312(e)(1)',
  'tls-certificate': 'PCI DSS 4.2.1; GDPR art. 32(1)(a); HIPAA 164.312(e)(1)',
  'audit-chain': 'PCI DSS 10.3.2; GDPR art. 32(1)(b); HIPAA 164.312(b)',
  'key-rotation': 'PCI DSS 3.6.1, 3.7.4; GDPR art. 32(1)(a); HIPAA 164.312(a)(2)(iv)',
  'root-token': 'PCI DSS 7.2.2, 8.2.2; GDPR art. 32(1)(b); HIPAA 164.312(a)(2)(i)',
};

/** A check's verdict, before its id, title and requirement are added. */
export type Outcome = Pick<CheckResult, 'status' | 'message' | 'fix'>;

/** The full result of check `id` from its outcome. */
export function result(id: CheckId, outcome: Outcome): CheckResult {
  return { id, title: TITLES[id], ...outcome, requirement: REQUIREMENTS[id] };
}

export const pass = (message: string, fix: string | null = null): Outcome => ({
  status: 'pass',
  message,
  fix,
});
export const fail = (message: string, fix: string): Outcome => ({ status: 'fail', message, fix });
export const warn = (message: string, fix: string): Outcome => ({ status: 'warn', message, fix });
export const unknown = (message: string, fix: string): Outcome => ({ status: 'unknown', message, fix });

/** Octal mode text, e.g. `0644`. */
export function modeText(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

/** A shell-safe rendering of a path for a fix command. */
export function shellQuote(path: string): string {
  return /^[A-Za-z0-9_./@%+=:,-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}
