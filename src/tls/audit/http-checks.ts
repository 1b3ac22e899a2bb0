/**
 * HTTP-level checks: the security headers on the HTTPS response (HSTS parsed per RFC 6797, and the others
 * OWASP recommends), and whether plain HTTP redirects to HTTPS. Both requests are bounded by the
 * per-connection timeout; bodies are never read.
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { ProbeTarget } from './probe.js';

/** 180 days: below this HSTS max-age the rating adds a warning (SSL Labs guide 2009r). */
export const HSTS_MIN_MAX_AGE = 15_552_000;

export interface Hsts {
  /** max-age in seconds, or null when missing or invalid. */
  readonly maxAge: number | null;
  readonly includeSubDomains: boolean;
  readonly preload: boolean;
  /** Problems with the header itself (RFC 6797 §6.1), if any. */
  readonly problems: readonly string[];
}

/**
 * Parses a Strict-Transport-Security value. Never throws: whatever the server sent becomes a result with
 * `problems` listing what is wrong with it.
 */
export function parseHsts(value: string): Hsts {
  let maxAge: number | null = null;
  let includeSubDomains = false;
  let preload = false;
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const raw of value.split(';')) {
    const directive = raw.trim();
    if (directive.length === 0) continue;
    const eq = directive.indexOf('=');
    const name = (eq < 0 ? directive : directive.slice(0, eq)).trim().toLowerCase();
    let arg = eq < 0 ? undefined : directive.slice(eq + 1).trim();
    if (arg !== undefined && arg.length >= 2 && arg.startsWith('"') && arg.endsWith('"'))
      arg = arg.slice(1, -1);
    if (seen.has(name)) problems.push(`directive ${name} appears more than once`);
    seen.add(name);
    if (name === 'max-age') {
      if (arg !== undefined && /^\d{1,15}$/.test(arg)) maxAge = Number(arg);
      else problems.push('max-age is not a number of seconds');
    } else if (name === 'includesubdomains') includeSubDomains = true;
    else if (name === 'preload') preload = true;
  }
  if (!seen.has('max-age')) problems.push('max-age is missing (the header is ignored without it)');
  return { maxAge, includeSubDomains, preload, problems };
}

/** Security headers reported besides HSTS, with what each protects against. */
export const SECURITY_HEADERS: readonly { name: string; why: string }[] = [
  { name: 'content-security-policy', why: 'limits where scripts and other content may load from (XSS)' },
  { name: 'x-content-type-options', why: 'nosniff stops MIME-type sniffing' },
  { name: 'x-frame-options', why: 'refuses framing (clickjacking); CSP frame-ancestors supersedes it' },
  { name: 'referrer-policy', why: 'limits what the Referer header leaks' },
  { name: 'permissions-policy', why: 'switches off browser features the site does not use' },
  { name: 'cross-origin-opener-policy', why: 'isolates the browsing context from cross-origin windows' },
  { name: 'cross-origin-resource-policy', why: 'stops other origins from embedding the resources' },
];

export interface HttpsHeadersReport {
  readonly status: number;
  readonly hsts: Hsts | null;
  /** Each security header and its value, or null when absent. */
  readonly headers: Readonly<Record<string, string | null>>;
  /** Server / X-Powered-By values, which advertise software versions. */
  readonly disclosure: readonly string[];
}

export interface RedirectReport {
  readonly port: number;
  /** No HTTP listener on the port (refused or timed out). */
  readonly listening: boolean;
  readonly status: number | null;
  readonly location: string | null;
  /** A 301/302/303/307/308 to an https:// URL. */
  readonly redirectsToHttps: boolean;
}

const header = (h: IncomingHttpHeaders, name: string): string | null => {
  const v = h[name];
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
};

interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
}

function get(
  secure: boolean,
  target: ProbeTarget,
  port: number,
  hostHeader: string,
): Promise<SimpleResponse | null> {
  return new Promise((resolve) => {
    const common = {
      host: target.host,
      port,
      path: secure ? (target.path ?? '/') : '/',
      method: 'GET',
      headers: { host: hostHeader, 'user-agent': 'enseal-tls-audit' },
      agent: false as const,
      timeout: target.timeoutMs,
    };
    // Only the status and headers matter: take them and drop the connection without reading the body.
    const onResponse = (res: IncomingMessage) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      res.destroy();
    };
    const req = secure
      ? httpsRequest(
          {
            ...common,
            rejectUnauthorized: false,
            ...(target.serverName !== undefined ? { servername: target.serverName } : {}),
            ...(target.extraCa !== undefined ? { ca: [...rootCertificates, ...target.extraCa] } : {}),
            minVersion: 'TLSv1',
            ciphers: 'ALL:@SECLEVEL=0',
          },
          onResponse,
        )
      : httpRequest(common, onResponse);
    const timer = setTimeout(() => {
      req.destroy();
      resolve(null);
    }, target.timeoutMs);
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

function hostHeader(target: ProbeTarget, port: number, defaultPort: number): string {
  const name = target.serverName ?? (target.host.includes(':') ? `[${target.host}]` : target.host);
  return port === defaultPort ? name : `${name}:${port}`;
}

/** GET / over HTTPS and report the security headers; null when the server gives no HTTP answer. */
export async function checkHttpsHeaders(target: ProbeTarget): Promise<HttpsHeadersReport | null> {
  const res = await get(true, target, target.port, hostHeader(target, target.port, 443));
  if (res === null) return null;
  const hstsValue = header(res.headers, 'strict-transport-security');
  const headers: Record<string, string | null> = {};
  for (const h of SECURITY_HEADERS) headers[h.name] = header(res.headers, h.name);
  const disclosure = ['server', 'x-powered-by']
    .map((n) => header(res.headers, n))
    .filter((v): v is string => v !== null && /\d/.test(v));
  return {
    status: res.status,
    hsts: hstsValue === null ? null : parseHsts(hstsValue),
    headers,
    disclosure,
  };
}

/** GET / over plain HTTP on `port` and report whether it redirects to HTTPS. */
export async function checkHttpRedirect(target: ProbeTarget, port: number): Promise<RedirectReport> {
  const res = await get(false, target, port, hostHeader(target, port, 80));
  if (res === null) return { port, listening: false, status: null, location: null, redirectsToHttps: false };
  const location = header(res.headers, 'location');
  const redirect = [301, 302, 303, 307, 308].includes(res.status);
  return {
    port,
    listening: true,
    status: res.status,
    location,
    redirectsToHttps: redirect && location !== null && /^https:\/\//i.test(location),
  };
}
