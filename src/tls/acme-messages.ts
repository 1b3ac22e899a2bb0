/**
 * Parsers for what an ACME server (RFC 8555) sends back: the directory, accounts, orders, authorizations,
 * challenges, renewal information (RFC 9773) and problem documents (RFC 7807). Every one of them is untrusted
 * input, so each parser checks shapes and types field by field and turns anything unexpected into a typed
 * {@link EnsealError}: `ERR_MALFORMED` for a response that is not what the protocol says, `ERR_ACME_FAILED`
 * (as an {@link AcmeProblemError}) for a problem document. None of them throws anything else.
 */
import { EnsealError, ErrorCode, malformed } from '../crypto/index.js';

/** The ACME problem type prefix (RFC 8555 §6.7); the short name after it is what users see. */
const ACME_ERROR_PREFIX = 'urn:ietf:params:acme:error:';

/** Longest detail text kept from a problem document, so a hostile server cannot flood logs. */
const MAX_DETAIL = 500;

/** An ACME server refused a request; `acmeType` is the short problem type (`badNonce`, `unauthorized`, …). */
export class AcmeProblemError extends EnsealError {
  /** Short problem type, without the `urn:ietf:params:acme:error:` prefix (the full URI if another namespace). */
  readonly acmeType: string;
  /** HTTP status of the response that carried the problem (0 when the problem came inside an object). */
  readonly status: number;
  readonly detail: string;

  constructor(acmeType: string, detail: string, status: number) {
    super(ErrorCode.ACME_FAILED, `ACME server: ${acmeType}${detail ? `: ${detail}` : ''}`);
    this.name = 'AcmeProblemError';
    this.acmeType = acmeType;
    this.detail = detail;
    this.status = status;
  }
}

/** The ACME resources a directory names (RFC 8555 §7.1.1), plus `renewalInfo` (RFC 9773) when offered. */
export interface AcmeDirectory {
  readonly newNonce: string;
  readonly newAccount: string;
  readonly newOrder: string;
  readonly revokeCert?: string;
  readonly keyChange?: string;
  readonly renewalInfo?: string;
  readonly termsOfService?: string;
  /** Certificate profiles the server offers (name → description), when it advertises any. */
  readonly profiles?: Readonly<Record<string, string>>;
  /** New accounts must be bound to an account at the CA (external account binding, RFC 8555 §7.3.4). */
  readonly externalAccountRequired: boolean;
}

export type AcmeStatus =
  'pending' | 'ready' | 'processing' | 'valid' | 'invalid' | 'expired' | 'deactivated' | 'revoked';

export interface AcmeIdentifier {
  readonly type: 'dns' | 'ip';
  readonly value: string;
}

export interface AcmeOrder {
  readonly status: AcmeStatus;
  readonly authorizations: readonly string[];
  readonly finalize: string;
  readonly certificate?: string;
  readonly error?: AcmeProblemError;
}

export interface AcmeChallenge {
  readonly type: string;
  readonly url: string;
  readonly token: string;
  readonly status: AcmeStatus;
  readonly error?: AcmeProblemError;
}

export interface AcmeAuthorization {
  readonly identifier: AcmeIdentifier;
  readonly status: AcmeStatus;
  readonly challenges: readonly AcmeChallenge[];
  readonly wildcard: boolean;
}

/** RFC 9773 §4.2: the window in which the server would like the certificate renewed. */
export interface RenewalInfo {
  readonly start: Date;
  readonly end: Date;
  readonly explanationUrl?: string;
}

const STATUSES: ReadonlySet<string> = new Set([
  'pending',
  'ready',
  'processing',
  'valid',
  'invalid',
  'expired',
  'deactivated',
  'revoked',
]);

/** Parses JSON text, mapping a syntax error to ERR_MALFORMED. */
export function parseJson(what: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw malformed(what, 'is not valid JSON');
  }
}

function object(what: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed(what, 'must be a JSON object');
  return value as Record<string, unknown>;
}

function string(what: string, value: unknown): string {
  if (typeof value !== 'string') throw malformed(what, 'must be a string');
  return value;
}

/** An absolute https URL (RFC 8555 §6.1: ACME runs over HTTPS only). */
function url(what: string, value: unknown): string {
  const text = string(what, value);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw malformed(what, 'must be an absolute URL');
  }
  if (parsed.protocol !== 'https:') throw malformed(what, 'must be an https URL');
  return text;
}

function optionalUrl(what: string, value: unknown): string | undefined {
  return value === undefined ? undefined : url(what, value);
}

function status(what: string, value: unknown): AcmeStatus {
  const s = string(what, value);
  if (!STATUSES.has(s)) throw malformed(what, `unknown status "${s.slice(0, 20)}"`);
  return s as AcmeStatus;
}

/**
 * A problem document (RFC 7807 / RFC 8555 §6.7) as a typed error. Subproblems (§6.7.1) are folded into the
 * detail, one per identifier, since they say which name failed.
 */
export function parseProblem(value: unknown, httpStatus = 0): AcmeProblemError {
  const o = object('ACME problem document', value);
  const type = typeof o.type === 'string' ? o.type : 'about:blank';
  const short = type.startsWith(ACME_ERROR_PREFIX) ? type.slice(ACME_ERROR_PREFIX.length) : type;
  let detail = typeof o.detail === 'string' ? o.detail : '';
  if (Array.isArray(o.subproblems)) {
    const parts: string[] = [];
    for (const sub of o.subproblems.slice(0, 10)) {
      if (typeof sub !== 'object' || sub === null) continue;
      const s = sub as Record<string, unknown>;
      const id =
        typeof s.identifier === 'object' && s.identifier !== null
          ? (s.identifier as Record<string, unknown>)
          : {};
      if (typeof s.detail === 'string')
        parts.push(`${typeof id.value === 'string' ? id.value : '?'}: ${s.detail}`);
    }
    if (parts.length > 0) detail += ` (${parts.join('; ')})`;
  }
  // Control characters from a hostile server must not reach a terminal or a log line.
  const clean = (t: string) => t.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, MAX_DETAIL); // eslint-disable-line no-control-regex
  return new AcmeProblemError(clean(short).slice(0, 100), clean(detail), httpStatus);
}

/** The directory object (RFC 8555 §7.1.1). */
export function parseDirectory(value: unknown): AcmeDirectory {
  const o = object('ACME directory', value);
  const meta = o.meta === undefined ? {} : object('ACME directory meta', o.meta);
  let profiles: Record<string, string> | undefined;
  if (meta.profiles !== undefined) {
    const p = object('ACME directory profiles', meta.profiles);
    profiles = {};
    for (const [name, description] of Object.entries(p))
      profiles[name] = typeof description === 'string' ? description : '';
  }
  const revokeCert = optionalUrl('ACME directory revokeCert', o.revokeCert);
  const keyChange = optionalUrl('ACME directory keyChange', o.keyChange);
  const renewalInfo = optionalUrl('ACME directory renewalInfo', o.renewalInfo);
  const termsOfService =
    meta.termsOfService === undefined ? undefined : string('termsOfService', meta.termsOfService);
  return {
    newNonce: url('ACME directory newNonce', o.newNonce),
    newAccount: url('ACME directory newAccount', o.newAccount),
    newOrder: url('ACME directory newOrder', o.newOrder),
    ...(revokeCert ? { revokeCert } : {}),
    ...(keyChange ? { keyChange } : {}),
    ...(renewalInfo ? { renewalInfo } : {}),
    ...(termsOfService !== undefined ? { termsOfService } : {}),
    ...(profiles ? { profiles } : {}),
    externalAccountRequired: meta.externalAccountRequired === true,
  };
}

function urlList(what: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw malformed(what, 'must be an array');
  if (value.length > 100) throw malformed(what, 'has too many entries');
  return value.map((v) => url(what, v));
}

function embeddedProblem(value: unknown): AcmeProblemError | undefined {
  return value === undefined ? undefined : parseProblem(value);
}

/** An order object (RFC 8555 §7.1.3). */
export function parseOrder(value: unknown): AcmeOrder {
  const o = object('ACME order', value);
  const certificate = optionalUrl('ACME order certificate', o.certificate);
  const error = embeddedProblem(o.error);
  return {
    status: status('ACME order status', o.status),
    authorizations: urlList('ACME order authorizations', o.authorizations),
    finalize: url('ACME order finalize', o.finalize),
    ...(certificate ? { certificate } : {}),
    ...(error ? { error } : {}),
  };
}

function identifier(value: unknown): AcmeIdentifier {
  const o = object('ACME identifier', value);
  const type = string('ACME identifier type', o.type);
  if (type !== 'dns' && type !== 'ip')
    throw malformed('ACME identifier type', `unsupported "${type.slice(0, 20)}"`);
  return { type, value: string('ACME identifier value', o.value) };
}

/** A challenge object (RFC 8555 §8). The token must be base64url (§8.1), since it lands in URLs and file names. */
export function parseChallenge(value: unknown): AcmeChallenge {
  const o = object('ACME challenge', value);
  const token = o.token === undefined ? '' : string('ACME challenge token', o.token);
  if (token !== '' && !/^[A-Za-z0-9_-]{1,256}$/.test(token))
    throw malformed('ACME challenge token', 'must be base64url');
  const error = embeddedProblem(o.error);
  return {
    type: string('ACME challenge type', o.type),
    url: url('ACME challenge url', o.url),
    token,
    status: status('ACME challenge status', o.status),
    ...(error ? { error } : {}),
  };
}

/** An authorization object (RFC 8555 §7.1.4). */
export function parseAuthorization(value: unknown): AcmeAuthorization {
  const o = object('ACME authorization', value);
  if (!Array.isArray(o.challenges)) throw malformed('ACME authorization challenges', 'must be an array');
  if (o.challenges.length > 20) throw malformed('ACME authorization challenges', 'has too many entries');
  return {
    identifier: identifier(o.identifier),
    status: status('ACME authorization status', o.status),
    challenges: o.challenges.map(parseChallenge),
    wildcard: o.wildcard === true,
  };
}

function date(what: string, value: unknown): Date {
  const d = new Date(string(what, value));
  if (Number.isNaN(d.getTime())) throw malformed(what, 'must be an RFC 3339 date');
  return d;
}

/** A renewalInfo response (RFC 9773 §4.2). */
export function parseRenewalInfo(value: unknown): RenewalInfo {
  const o = object('ACME renewal info', value);
  const w = object('ACME renewal info suggestedWindow', o.suggestedWindow);
  const start = date('ACME renewal window start', w.start);
  const end = date('ACME renewal window end', w.end);
  if (end.getTime() < start.getTime()) throw malformed('ACME renewal window', 'ends before it starts');
  const explanationUrl = optionalUrl('ACME renewal info explanationURL', o.explanationURL);
  return { start, end, ...(explanationUrl ? { explanationUrl } : {}) };
}

/**
 * The delay a Retry-After header asks for (RFC 9110 §10.2.3: seconds or an HTTP date), in milliseconds,
 * or undefined when absent or unreadable.
 */
export function parseRetryAfter(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
