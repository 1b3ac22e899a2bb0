/**
 * nginx server configuration in the shape of Mozilla's Server Side TLS guideline 6.0 (the ssl-config-generator's
 * nginx output): `modern` (TLS 1.3 only) or `intermediate` (TLS 1.2 and 1.3, ECDHE with AEAD suites), HSTS for
 * two years, a port-80 server that answers 308 to https, session settings chosen by nginx version, and an
 * optional OCSP stapling block.
 *
 * Every user value that reaches the output (names, paths, addresses, versions) is validated against a narrow
 * character set first, and the output is assembled from fixed templates: no quote, semicolon, brace, `#`,
 * `$`, backslash or whitespace can come from the user, so no input can add or change a directive.
 */
import { EnsealError, ErrorCode, invalidArgument } from '../crypto/index.js';
import { parseSanName } from './certificate-names.js';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { INTERMEDIATE_TLS12_CIPHERS, type TlsProfileName } from './profiles.js';

/** A version triple parsed from `x.y.z`. */
export interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** Parses `x.y.z` (each part 0-9999, no signs, no suffix). */
export function parseVersion(text: string, what = 'version'): Version {
  const m = /^(\d{1,4})\.(\d{1,4})\.(\d{1,4})$/.exec(text);
  if (m === null) throw invalidArgument(what, `"${text.slice(0, 40)}" is not a version of the form x.y.z`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** True when `v` is at least `min` (`x.y.z`). */
export function versionAtLeast(v: Version, min: string): boolean {
  const m = parseVersion(min);
  if (v.major !== m.major) return v.major > m.major;
  if (v.minor !== m.minor) return v.minor > m.minor;
  return v.patch >= m.patch;
}

/** nginx learned `ssl_protocols TLSv1.3` in 1.13.0; both profiles need it. */
export const MIN_NGINX_VERSION = '1.13.0';

export interface NginxConfigOptions {
  readonly profile: TlsProfileName;
  /** The nginx version the config is for (`nginx -v`), `x.y.z`. */
  readonly nginxVersion: string;
  /** server_name values: DNS names, optionally a leftmost `*.` wildcard. At least one. */
  readonly domains: readonly string[];
  /** ssl_certificate: the certificate followed by its intermediates (absolute path). */
  readonly certificate: string;
  /** ssl_certificate_key (absolute path). */
  readonly certificateKey: string;
  /** The OpenSSL version nginx is linked against; from 3.5 the X25519MLKEM768 hybrid group is offered. */
  readonly opensslVersion?: string;
  /** Emit the OCSP stapling block (off by default, as in the Mozilla generator since 2025). */
  readonly ocsp?: boolean;
  /** ssl_trusted_certificate for OCSP response verification (root plus intermediates); required with ocsp. */
  readonly trustedCertificate?: string;
  /** DNS resolvers nginx uses to reach the OCSP responder (IP addresses); default 127.0.0.1. */
  readonly resolvers?: readonly string[];
  /** Addresses to listen on (IP literals); default every IPv4 and IPv6 address. */
  readonly addresses?: readonly string[];
  readonly httpsPort?: number;
  readonly httpPort?: number;
  /** Add the port-80 server that redirects with 308 (default true). */
  readonly redirect?: boolean;
  /** HSTS includeSubDomains (default true, as Mozilla renders it). */
  readonly hstsIncludeSubdomains?: boolean;
  /** HSTS preload token (default false: preloading is a commitment that is slow to undo). */
  readonly hstsPreload?: boolean;
  /** Optional document root for the https server (absolute path). */
  readonly root?: string;
}

/** Mozilla's groups; X25519MLKEM768 needs OpenSSL 3.5. */
const GROUPS = ['X25519MLKEM768', 'X25519', 'prime256v1', 'secp384r1'];
export const HSTS_MAX_AGE = 63072000;

/**
 * An absolute path made only of characters that cannot end, quote or extend an nginx directive: letters,
 * digits and `/ . _ - + @ = , :`. (nginx would expand `$` as a variable; `;`, quotes, braces, `#`,
 * backslashes and whitespace would change the config's structure.)
 */
export function checkConfigPath(path: string, what: string): string {
  if (path.length > 1024 || !/^\/[A-Za-z0-9/._+@=,:-]*$/.test(path)) {
    throw invalidArgument(
      what,
      'must be an absolute path of letters, digits and / . _ - + @ = , : (no spaces, quotes, ; or $)',
    );
  }
  return path;
}

function checkDomain(input: string): string {
  let name;
  try {
    name = parseSanName(input);
  } catch {
    name = undefined;
  }
  if (name?.type !== 'dns') {
    throw invalidArgument(
      'domain',
      `"${input.slice(0, 80)}" is not a DNS name (a leading *. wildcard is allowed)`,
    );
  }
  return name.value;
}

/** An IP literal for nginx (`[v6]` bracketed), or an error naming `what`. */
function checkAddress(input: string, what: string): { text: string; v6: boolean } {
  let name;
  try {
    name = parseSanName(input);
  } catch {
    name = undefined;
  }
  if (name?.type !== 'ip') throw invalidArgument(what, `"${input.slice(0, 80)}" is not an IP address`);
  const v6 = name.value.includes(':');
  return { text: v6 ? `[${name.value}]` : name.value, v6 };
}

function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgument(what, 'must be 1-65535');
  return port;
}

interface Checked {
  readonly profile: TlsProfileName;
  readonly nginx: Version;
  readonly pq: boolean;
  readonly domains: string[];
  readonly certificate: string;
  readonly certificateKey: string;
  readonly ocsp: { trusted: string; resolvers: string[] } | undefined;
  readonly listen: { https: string[]; http: string[] };
  readonly httpsPort: number;
  readonly redirect: boolean;
  readonly hsts: string;
  readonly root: string | undefined;
}

function check(o: NginxConfigOptions): Checked {
  if (o.profile !== 'modern' && o.profile !== 'intermediate') {
    throw invalidArgument('profile', 'must be modern or intermediate (guideline 6.0 has no "old" profile)');
  }
  const nginx = parseVersion(o.nginxVersion, 'nginx version');
  if (!versionAtLeast(nginx, MIN_NGINX_VERSION)) {
    throw new EnsealError(
      ErrorCode.UNSUPPORTED,
      `nginx ${o.nginxVersion} cannot enable TLS 1.3; upgrade to ${MIN_NGINX_VERSION} or later`,
    );
  }
  const pq =
    o.opensslVersion !== undefined &&
    versionAtLeast(parseVersion(o.opensslVersion, 'OpenSSL version'), '3.5.0');
  if (o.domains.length === 0) throw invalidArgument('domain', 'give at least one domain');
  if (o.domains.length > 100) throw invalidArgument('domain', 'at most 100 domains per config');
  const domains = [...new Set(o.domains.map(checkDomain))];
  if (!o.ocsp && (o.trustedCertificate !== undefined || o.resolvers !== undefined)) {
    throw invalidArgument('trusted certificate / resolver', 'are used only with OCSP stapling; add --ocsp');
  }
  let ocsp: Checked['ocsp'];
  if (o.ocsp) {
    if (o.trustedCertificate === undefined) {
      throw invalidArgument(
        'trusted certificate',
        'OCSP stapling needs the root and intermediate certificates',
      );
    }
    const resolvers = (o.resolvers ?? ['127.0.0.1']).map((r) => checkAddress(r, 'resolver').text);
    if (resolvers.length === 0 || resolvers.length > 8)
      throw invalidArgument('resolver', 'give 1-8 resolvers');
    ocsp = { trusted: checkConfigPath(o.trustedCertificate, 'trusted certificate path'), resolvers };
  }
  const httpsPort = checkPort(o.httpsPort ?? 443, 'https port');
  const httpPort = checkPort(o.httpPort ?? 80, 'http port');
  if (httpsPort === httpPort) throw invalidArgument('ports', 'the https and http ports must differ');
  const addresses =
    o.addresses === undefined || o.addresses.length === 0
      ? [
          { text: '', v6: false },
          { text: '[::]', v6: true },
        ]
      : o.addresses.map((a) => checkAddress(a, 'listen address'));
  if (addresses.length > 16) throw invalidArgument('listen address', 'at most 16 addresses');
  const at = (port: number) => addresses.map((a) => (a.text === '' ? String(port) : `${a.text}:${port}`));
  const hsts = [
    `max-age=${HSTS_MAX_AGE}`,
    ...((o.hstsIncludeSubdomains ?? true) ? ['includeSubDomains'] : []),
    ...(o.hstsPreload ? ['preload'] : []),
  ].join('; ');
  if (o.hstsPreload && o.hstsIncludeSubdomains === false) {
    throw invalidArgument('HSTS preload', 'requires includeSubDomains');
  }
  return {
    profile: o.profile,
    nginx,
    pq,
    domains,
    certificate: checkConfigPath(o.certificate, 'certificate path'),
    certificateKey: checkConfigPath(o.certificateKey, 'certificate key path'),
    ocsp,
    listen: { https: at(httpsPort), http: at(httpPort) },
    httpsPort,
    redirect: o.redirect ?? true,
    hsts,
    root: o.root === undefined ? undefined : checkConfigPath(o.root, 'document root'),
  };
}

function listenLines(c: Checked): string[] {
  if (versionAtLeast(c.nginx, '1.25.1')) {
    return [...c.listen.https.map((l) => `listen ${l} ssl;`), 'http2 on;'];
  }
  // `listen ... http2` is deprecated from 1.25.1 but the only form before it.
  return c.listen.https.map((l) => `listen ${l} ssl http2;`);
}

function versionText(v: Version): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/**
 * Generates the config: the content of an nginx `http {}` block (for a file in `/etc/nginx/conf.d/`, which
 * Debian and the nginx.org packages include inside `http`). Throws ERR_INVALID_ARGUMENT for any input
 * outside the accepted forms.
 */
export function generateNginxConfig(options: NginxConfigOptions): string {
  const c = check(options);
  const groups = c.pq ? GROUPS : GROUPS.filter((g) => g !== 'X25519MLKEM768');
  const out: string[] = [];
  const line = (indent = 0, text = ''): void => {
    out.push(text === '' ? '' : `${'    '.repeat(indent)}${text}`);
  };
  line(0, `# Generated by enseal tls nginx: Mozilla Server Side TLS 6.0, ${c.profile} profile,`);
  line(0, `# nginx ${versionText(c.nginx)}${c.pq ? ', OpenSSL 3.5 or later' : ''}.`);
  line(0, '# Goes inside the http {} block (for example /etc/nginx/conf.d/tls.conf); check with nginx -t.');
  line();
  line(0, 'server {');
  for (const l of listenLines(c)) line(1, l);
  line(1, `server_name ${c.domains.join(' ')};`);
  line();
  line(1, `ssl_certificate ${c.certificate};`);
  line(1, `ssl_certificate_key ${c.certificateKey};`);
  line();
  line(1, `# HSTS (${HSTS_MAX_AGE} seconds = 2 years). An add_header in a location block replaces this one,`);
  line(1, '# so repeat it there if you add headers per location.');
  line(1, `add_header Strict-Transport-Security "${c.hsts}" always;`);
  if (c.root !== undefined) {
    line();
    line(1, `root ${c.root};`);
  }
  line(0, '}');
  line();
  line(0, `# ${c.profile} configuration`);
  line(0, `ssl_protocols ${c.profile === 'modern' ? 'TLSv1.3' : 'TLSv1.2 TLSv1.3'};`);
  line(0, `ssl_ecdh_curve ${groups.join(':')};`);
  if (c.profile === 'intermediate') line(0, `ssl_ciphers ${INTERMEDIATE_TLS12_CIPHERS.join(':')};`);
  line(0, 'ssl_prefer_server_ciphers off;');
  line();
  if (c.profile === 'modern') {
    line(0, '# TLS 1.3 resumes sessions with tickets; uncomment if ssl_protocols ever includes TLSv1.2.');
    line(0, '#ssl_session_timeout 1d;');
    line(0, '#ssl_session_cache shared:MozSSL:10m;  # about 40000 sessions');
  } else {
    line(0, 'ssl_session_timeout 1d;');
    line(0, 'ssl_session_cache shared:MozSSL:10m;  # about 40000 sessions');
  }
  if (!versionAtLeast(c.nginx, '1.23.2')) {
    // Before 1.23.2 nginx never rotated ticket keys, so tickets would undermine forward secrecy.
    line(0, '# nginx before 1.23.2 keeps one ticket key until restart, which would undo forward secrecy');
    line(0, 'ssl_session_tickets off;');
  }
  if (c.ocsp !== undefined) {
    line();
    line(0, "# OCSP stapling. Let's Encrypt certificates have no OCSP URL since 2025; nginx then skips it.");
    line(0, 'ssl_stapling on;');
    line(0, 'ssl_stapling_verify on;');
    line(0, '# root and intermediate certificates, to verify the OCSP response');
    line(0, `ssl_trusted_certificate ${c.ocsp.trusted};`);
    line(0, `resolver ${c.ocsp.resolvers.join(' ')};`);
  }
  if (c.redirect) {
    line();
    line(0, '# Plain HTTP: redirect everything to https (308 keeps the method and body).');
    line(0, 'server {');
    for (const l of c.listen.http) line(1, `listen ${l} default_server;`);
    line();
    line(1, `return 308 https://$host${c.httpsPort === 443 ? '' : `:${c.httpsPort}`}$request_uri;`);
    line(0, '}');
  }
  return out.join('\n') + '\n';
}

/** The same config wrapped in `http { }`, as the Mozilla generator prints it (for a complete nginx.conf). */
export function wrapInHttpBlock(config: string): string {
  const body = config
    .split('\n')
    .map((l) => (l === '' ? '' : `    ${l}`))
    .join('\n');
  return `http {\n${body}}\n`;
}

/** True when DNS name `host` is covered by SAN `san` (exact, or a `*.` wildcard for exactly one label). */
function covers(san: string, host: string): boolean {
  if (san === host) return true;
  if (!san.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === san.slice(2);
}

/**
 * Advice about the certificate a config will serve, against the profile's rules: key type (modern wants
 * ECDSA), RSA size, lifetime (Mozilla: at most 90 days for modern, 366 for intermediate; 90 recommended),
 * expiry, and whether every domain is covered. Returns human-readable warnings; an unreadable PEM gives one
 * warning rather than an error, since the file may be meant for another machine.
 */
export function certificateAdvice(
  pem: string,
  options: { profile: TlsProfileName; domains: readonly string[]; now?: Date },
): string[] {
  let cert: x509.X509Certificate;
  try {
    const first = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem);
    if (first === null) return ['the certificate file holds no PEM certificate'];
    cert = new x509.X509Certificate(first[0]);
  } catch {
    return ['the certificate file could not be parsed'];
  }
  const warnings: string[] = [];
  const alg = cert.publicKey.algorithm as { name: string; modulusLength?: number; namedCurve?: string };
  const rsa = alg.name.startsWith('RSA');
  if (rsa && options.profile === 'modern') {
    warnings.push('the modern profile expects an ECDSA (P-256 or P-384) certificate; this one is RSA');
  }
  if (rsa && (alg.modulusLength ?? 0) < 2048) {
    warnings.push(`RSA-${alg.modulusLength ?? '?'} is too small; use ECDSA P-256 or RSA 2048 or larger`);
  }
  const days = Math.round((cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000);
  const max = options.profile === 'modern' ? 90 : 366;
  if (days > max) {
    warnings.push(
      `the certificate is valid for ${days} days; the ${options.profile} profile allows ${max} (90 recommended)`,
    );
  }
  const now = options.now ?? new Date();
  if (cert.notAfter.getTime() < now.getTime())
    warnings.push(`the certificate expired on ${cert.notAfter.toISOString()}`);
  let sans: string[] = [];
  try {
    const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
    sans = (ext?.names.items ?? []).filter((n) => n.type === 'dns').map((n) => n.value.toLowerCase());
  } catch {
    sans = [];
  }
  const uncovered = options.domains.filter(
    (d) => !d.startsWith('*.') && !sans.some((s) => covers(s, d.toLowerCase())),
  );
  if (uncovered.length > 0) warnings.push(`the certificate does not cover ${uncovered.join(', ')}`);
  return warnings;
}
