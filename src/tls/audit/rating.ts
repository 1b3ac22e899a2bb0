/**
 * The grade, after the SSL Labs SSL Server Rating Guide, version 2009r (2025-05-16), the version testssl.sh
 * 3.2 implements:
 *
 * - score = 0.3 × protocol + 0.3 × key exchange + 0.4 × cipher strength; a zero in any category makes the
 *   score zero. Protocol and cipher are (best + worst) / 2. Letters: ≥80 A, ≥65 B, ≥50 C, ≥35 D, ≥20 E, else F.
 * - caps lower the letter (the lowest applies): F, C and B for weak protocols, suites and keys; T (not trusted)
 *   and M (name mismatch) replace the letter, with the letter "if trust issues are ignored" kept beside it.
 * - an A with no warnings is an A+; any warning makes it an A−.
 *
 * Every cap and warning carries an explanation, so a report says why, not only what.
 */
import type { CipherSuite } from './cipher-suites.js';
import type { CertificateReport } from './certificate-checks.js';
import { HSTS_MIN_MAX_AGE, type Hsts } from './http-checks.js';
import type { ProtocolName } from './suite-scan.js';

export type Letter = 'A' | 'B' | 'C' | 'D' | 'E' | 'F';
export type Grade = 'A+' | 'A' | 'A-' | 'B' | 'C' | 'D' | 'E' | 'F' | 'M' | 'T';

export interface Cap {
  readonly grade: 'F' | 'C' | 'B' | 'M' | 'T';
  /** Short reason, e.g. "TLS 1.0 or 1.1 offered". */
  readonly reason: string;
  /** Why it matters and what to change. */
  readonly explanation: string;
}

export interface Warning {
  readonly reason: string;
  readonly explanation: string;
}

export interface RatingInput {
  readonly protocols: ReadonlySet<ProtocolName>;
  /** Every accepted suite with the protocol it was accepted on. */
  readonly suites: readonly { protocol: ProtocolName; suite: CipherSuite }[];
  readonly certificate: CertificateReport | null;
  /** The smallest ECDHE group the server accepts, in bits (X25519: 253). */
  readonly ecdhBits: number | null;
  /** The DHE group size when a DHE suite is accepted. */
  readonly dhBits: number | null;
  readonly compression: boolean;
  /** null when only TLS 1.3 is offered (renegotiation does not exist there). */
  readonly secureRenegotiation: boolean | null;
  /** undefined: HTTP checks were not run; null: no HSTS header. */
  readonly hsts: Hsts | null | undefined;
}

export interface Rating {
  readonly score: number;
  readonly protocolScore: number;
  readonly keyExchangeScore: number;
  readonly cipherScore: number;
  /** The letter the score alone gives. */
  readonly scoreGrade: Letter;
  readonly grade: Grade;
  /** The grade with the T and M caps left out (SSL Labs: "if trust issues are ignored"). */
  readonly gradeIgnoringTrust: Grade;
  readonly caps: readonly Cap[];
  readonly warnings: readonly Warning[];
}

const PROTOCOL_POINTS: Record<ProtocolName, number> = {
  SSLv2: 0,
  SSLv3: 80,
  'TLSv1.0': 90,
  'TLSv1.1': 95,
  'TLSv1.2': 100,
  'TLSv1.3': 100,
};

/** Key-exchange points for RSA, DH and DSA key sizes. */
export function rsaKeyPoints(bits: number): number {
  if (bits < 512) return 20;
  if (bits < 1024) return 40;
  if (bits < 2048) return 80;
  if (bits < 4096) return 90;
  return 100;
}

/** Key-exchange points for elliptic-curve key sizes (their RSA-equivalent strength, as testssl.sh maps it). */
export function ecKeyPoints(bits: number): number {
  if (bits < 110) return 20;
  if (bits < 123) return 40;
  if (bits < 163) return 80;
  if (bits < 225) return 90;
  return 100;
}

/** Cipher-strength points for a symmetric key size. */
export function cipherPoints(bits: number): number {
  if (bits === 0) return 0;
  if (bits < 128) return 20;
  if (bits < 256) return 80;
  return 100;
}

export function letterFor(score: number): Letter {
  if (score >= 80) return 'A';
  if (score >= 65) return 'B';
  if (score >= 50) return 'C';
  if (score >= 35) return 'D';
  if (score >= 20) return 'E';
  return 'F';
}

const isEc = (type: string) => type === 'ec' || type === 'ed25519' || type === 'ed448';

function keyExchangePoints(input: RatingInput): number {
  const points: number[] = [];
  const cert = input.certificate;
  if (cert !== null) points.push(isEc(cert.keyType) ? ecKeyPoints(cert.keyBits) : rsaKeyPoints(cert.keyBits));
  if (input.ecdhBits !== null) points.push(ecKeyPoints(input.ecdhBits));
  if (input.dhBits !== null) points.push(rsaKeyPoints(input.dhBits));
  if (input.suites.some((s) => s.suite.anonymous)) points.push(0);
  else if (input.suites.some((s) => s.suite.export)) points.push(40);
  return points.length === 0 ? 0 : Math.min(...points);
}

function halfway(values: number[]): number {
  if (values.length === 0) return 0;
  return Math.floor((Math.max(...values) + Math.min(...values)) / 2);
}

const has = (input: RatingInput, p: ProtocolName) => input.protocols.has(p);
const OLD = new Set<ProtocolName>(['SSLv3', 'TLSv1.0']);

function fCaps(input: RatingInput, caps: Cap[]): void {
  const cert = input.certificate;
  const suites = input.suites.map((s) => s.suite);
  if (has(input, 'SSLv2')) {
    caps.push({
      grade: 'F',
      reason: 'SSLv2 offered',
      explanation: 'SSLv2 is broken (DROWN decrypts TLS sessions with it); disable it.',
    });
  }
  const best = [...input.protocols].sort(
    (a, b) => PROTOCOL_POINTS[b] - PROTOCOL_POINTS[a] || b.localeCompare(a),
  )[0];
  if (best === 'SSLv3') {
    caps.push({
      grade: 'F',
      reason: 'SSLv3 is the best protocol offered',
      explanation: 'No client should have to use SSLv3 (POODLE); offer TLS 1.2 and 1.3.',
    });
  }
  if (suites.some((s) => s.export)) {
    caps.push({
      grade: 'F',
      reason: 'export cipher suites offered',
      explanation:
        'Export suites use 40- or 56-bit keys and enable FREAK and Logjam downgrades; remove them.',
    });
  }
  if (suites.some((s) => s.bits < 112)) {
    caps.push({
      grade: 'F',
      reason: 'cipher suites weaker than 112 bits offered',
      explanation:
        'NULL, DES and export ciphers can be broken by brute force or do not encrypt at all; remove them.',
    });
  }
  if (suites.some((s) => s.anonymous)) {
    caps.push({
      grade: 'F',
      reason: 'anonymous cipher suites offered',
      explanation:
        'Anonymous (EC)DH authenticates no one: any attacker in the path can impersonate the server; remove aNULL suites.',
    });
  }
  if (cert !== null && (isEc(cert.keyType) ? cert.keyBits < 160 : cert.keyBits < 1024)) {
    caps.push({
      grade: 'F',
      reason: `certificate key too small (${cert.keyType} ${cert.keyBits} bits)`,
      explanation:
        'Keys under 1024 bits (RSA) can be factored; issue a new certificate with RSA-2048+ or ECDSA P-256.',
    });
  }
  if (input.dhBits !== null && input.dhBits < 1024) {
    caps.push({
      grade: 'F',
      reason: `DH group too small (${input.dhBits} bits)`,
      explanation:
        'DH groups under 1024 bits are within reach of precomputation (Logjam); use ECDHE or 2048-bit groups.',
    });
  }
  if (cert?.weakSignature === 'md5' || cert?.weakSignature === 'md2') {
    caps.push({
      grade: 'F',
      reason: `certificate signed with ${cert.weakSignature.toUpperCase()}`,
      explanation: 'MD2/MD5 signatures can be forged with chosen-prefix collisions; reissue the certificate.',
    });
  }
}

function trustCaps(input: RatingInput, caps: Cap[]): void {
  const cert = input.certificate;
  if (cert === null) return;
  if (cert.expired) {
    caps.push({
      grade: 'T',
      reason: `certificate expired on ${cert.notAfter.slice(0, 10)}`,
      explanation: 'Browsers refuse expired certificates; renew it (and automate renewal).',
    });
  }
  if (cert.notYetValid) {
    caps.push({
      grade: 'T',
      reason: 'certificate not yet valid',
      explanation: 'Its notBefore is in the future; check the clock of the issuing system.',
    });
  }
  if (cert.selfSigned && !cert.trusted) {
    caps.push({
      grade: 'T',
      reason: 'self-signed certificate',
      explanation:
        'No client trusts it without manual configuration; use a certificate from a public CA (ACME), or a private CA clients are told to trust.',
    });
  } else if (!cert.trusted && !cert.expired && !cert.notYetValid) {
    caps.push({
      grade: 'T',
      reason: `certificate not trusted (${cert.trustError ?? 'unknown issuer'})`,
      explanation:
        'The chain does not lead to a trusted root: serve the intermediates, or pass --ca-file when auditing a private CA.',
    });
  }
  if (cert.weakSignature === 'sha1') {
    caps.push({
      grade: 'T',
      reason: 'certificate signed with SHA-1',
      explanation: 'Browsers stopped trusting SHA-1 signed certificates in 2017; reissue with SHA-256.',
    });
  }
  if (!cert.nameMatches) {
    caps.push({
      grade: 'M',
      reason: `certificate does not cover ${cert.checkedName}`,
      explanation: `The certificate names ${cert.names.join(', ') || cert.subject}; clients connecting as ${cert.checkedName} refuse it. Add the name to subjectAltName.`,
    });
  }
}

function cCaps(input: RatingInput, caps: Cap[]): void {
  if (!has(input, 'TLSv1.2') && !has(input, 'TLSv1.3')) {
    caps.push({
      grade: 'C',
      reason: 'neither TLS 1.2 nor TLS 1.3 offered',
      explanation: 'Modern clients need TLS 1.2 or 1.3; older protocols lack AEAD suites and modern hashes.',
    });
  }
  if (input.suites.some((s) => s.protocol === 'SSLv3' && s.suite.cbc)) {
    caps.push({
      grade: 'C',
      reason: 'vulnerable to POODLE (SSLv3 with CBC)',
      explanation:
        'SSLv3 CBC padding is not authenticated, so an attacker can decrypt cookies byte by byte; disable SSLv3.',
    });
  }
  if (input.compression) {
    caps.push({
      grade: 'C',
      reason: 'TLS compression enabled (CRIME)',
      explanation:
        'Compressing secrets with attacker-chosen data leaks them through the length; disable TLS compression.',
    });
  }
  const modern = input.suites.filter((s) => !OLD.has(s.protocol));
  if (modern.some((s) => s.suite.rc4 || s.suite.des)) {
    caps.push({
      grade: 'C',
      reason: 'RC4 or 3DES offered with TLS 1.1 or newer',
      explanation:
        'RC4 has exploitable biases and 3DES a 64-bit block (Sweet32); modern protocols have AES-GCM and ChaCha20-Poly1305.',
    });
  }
}

function bCaps(input: RatingInput, caps: Cap[]): void {
  const cert = input.certificate;
  if (has(input, 'TLSv1.0') || has(input, 'TLSv1.1')) {
    caps.push({
      grade: 'B',
      reason: 'TLS 1.0 or 1.1 offered',
      explanation:
        'Deprecated by RFC 8996 and capped at B by SSL Labs since 2020; every current client speaks TLS 1.2.',
    });
  }
  if (
    cert !== null &&
    (isEc(cert.keyType) ? cert.keyBits < 224 : cert.keyBits < 2048) &&
    cert.keyBits >= (isEc(cert.keyType) ? 160 : 1024)
  ) {
    caps.push({
      grade: 'B',
      reason: `certificate key under 2048 bits (${cert.keyType} ${cert.keyBits})`,
      explanation: 'RSA keys under 2048 bits are below current minimums; issue RSA-2048+ or ECDSA P-256.',
    });
  }
  if (input.dhBits !== null && input.dhBits < 2048 && input.dhBits >= 1024) {
    caps.push({
      grade: 'B',
      reason: `DH group under 2048 bits (${input.dhBits})`,
      explanation: 'Use ECDHE, or DHE with ffdhe2048 or larger.',
    });
  }
  const suites = input.suites.map((s) => s.suite);
  if (suites.length > 0 && !suites.some((s) => s.forwardSecrecy)) {
    caps.push({
      grade: 'B',
      reason: 'no forward secrecy',
      explanation:
        'Without ECDHE/DHE, anyone who later obtains the server key decrypts every recorded session.',
    });
  }
  if (suites.length > 0 && !suites.some((s) => s.aead)) {
    caps.push({
      grade: 'B',
      reason: 'no AEAD cipher suites',
      explanation: 'Only CBC or stream suites are offered; offer AES-GCM or ChaCha20-Poly1305 (TLS 1.2+).',
    });
  }
  if (input.suites.some((s) => OLD.has(s.protocol) && s.suite.rc4)) {
    caps.push({
      grade: 'B',
      reason: 'RC4 offered with old protocols',
      explanation: 'RC4 keystream biases allow plaintext recovery; remove RC4.',
    });
  }
}

function warningsFor(input: RatingInput): Warning[] {
  const warnings: Warning[] = [];
  if (!has(input, 'TLSv1.3')) {
    warnings.push({
      reason: 'TLS 1.3 not offered',
      explanation:
        'TLS 1.3 has a faster handshake and only forward-secret AEAD suites; enable it (guide 2009r warns without it).',
    });
  }
  if (input.hsts === null) {
    warnings.push({
      reason: 'no HSTS header',
      explanation:
        'Without Strict-Transport-Security a first plain-HTTP request can be intercepted (SSL stripping); send max-age of at least 180 days.',
    });
  } else if (
    input.hsts !== undefined &&
    (input.hsts.maxAge === null || input.hsts.maxAge < HSTS_MIN_MAX_AGE)
  ) {
    warnings.push({
      reason: `HSTS max-age under 180 days (${input.hsts.maxAge ?? 'invalid'})`,
      explanation:
        'A short max-age lets the protection lapse between visits; use at least 15552000, better 63072000 (2 years).',
    });
  }
  if (input.secureRenegotiation === false) {
    warnings.push({
      reason: 'secure renegotiation not supported',
      explanation: 'The server does not implement RFC 5746; update the TLS library.',
    });
  }
  return warnings;
}

const LETTERS: readonly Letter[] = ['A', 'B', 'C', 'D', 'E', 'F'];

/** Grades an audit's findings. */
export function rate(input: RatingInput): Rating {
  const protocolScore = halfway([...input.protocols].map((p) => PROTOCOL_POINTS[p]));
  const keyExchangeScore = keyExchangePoints(input);
  const cipherScore = halfway(input.suites.map((s) => cipherPoints(s.suite.bits)));
  const zero = protocolScore === 0 || keyExchangeScore === 0 || cipherScore === 0;
  const score = zero ? 0 : Math.floor((protocolScore * 3 + keyExchangeScore * 3 + cipherScore * 4) / 10);
  const scoreGrade = letterFor(score);
  const caps: Cap[] = [];
  fCaps(input, caps);
  cCaps(input, caps);
  bCaps(input, caps);
  trustCaps(input, caps);
  const warnings = warningsFor(input);
  let letter = scoreGrade;
  for (const cap of caps) {
    if (cap.grade === 'T' || cap.grade === 'M') continue;
    if (LETTERS.indexOf(cap.grade) > LETTERS.indexOf(letter)) letter = cap.grade;
  }
  const gradeIgnoringTrust: Grade = letter === 'A' ? (warnings.length === 0 ? 'A+' : 'A-') : letter;
  const trust = caps.some((c) => c.grade === 'T') ? 'T' : caps.some((c) => c.grade === 'M') ? 'M' : undefined;
  return {
    score,
    protocolScore,
    keyExchangeScore,
    cipherScore,
    scoreGrade,
    grade: trust ?? gradeIgnoringTrust,
    gradeIgnoringTrust,
    caps,
    warnings,
  };
}

/** Grades from best to worst; T and M rank below F, since the certificate is refused outright. */
export const GRADE_ORDER: readonly Grade[] = ['A+', 'A', 'A-', 'B', 'C', 'D', 'E', 'F', 'M', 'T'];

/** True when `grade` is at least as good as `threshold`. */
export function meets(grade: Grade, threshold: Grade): boolean {
  return GRADE_ORDER.indexOf(grade) <= GRADE_ORDER.indexOf(threshold);
}

/** Parses a grade as users type it (a+, A-, b…); undefined when it is not one. */
export function parseGrade(text: string): Grade | undefined {
  const g = text.trim().toUpperCase().replace('−', '-');
  return (GRADE_ORDER as readonly string[]).includes(g) ? (g as Grade) : undefined;
}
