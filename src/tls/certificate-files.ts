/**
 * Certificate and key files on disk. Writes are atomic (src/files: a temporary file in the same directory, fsync,
 * rename, fsync of the directory), so a server reloading on change, or a crash mid-write, never sees half a chain or a
 * key that does not match its certificate's file for long; keys are created 0600 from the first byte.
 * Also reads what renewal and monitoring need from a certificate: validity, serial, names, issuer key id.
 */
import { readFile } from 'node:fs/promises';
import { EnsealError, ErrorCode, hexEncode, malformed } from '../crypto/index.js';
import { writeFileAtomic } from '../files/index.js';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

/** PKCS#8 DER as PEM. */
export function pemPrivateKey(pkcs8: ArrayBuffer): string {
  const b64 = Buffer.from(pkcs8)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

/** The PKCS#8 DER inside a PEM private key; `what` names the file in the error. */
export function pkcs8FromPem(pem: string, what: string): Uint8Array<ArrayBuffer> {
  const m = /^-----BEGIN PRIVATE KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PRIVATE KEY-----\s*$/.exec(pem);
  if (m === null) throw new EnsealError(ErrorCode.MALFORMED, `${what} is not a PKCS#8 PEM private key`);
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s/g, ''), 'base64'));
}

/** A random 128-bit serial number as hex. */
export function randomSerial(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  // 0x40..0x7f: positive, and never a leading zero byte that would make the DER INTEGER non-minimal.
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return hexEncode(bytes);
}

// The atomic writer lives in the files layer, shared with the CLI.
export { writeFileAtomic };

/**
 * Writes a new key and certificate chain, key first (0600), then the chain (0644). A watcher may see the new
 * key with the old chain for an instant; `enseal serve` rejects that pair and reloads again once the chain lands.
 */
export async function writeCertificateFiles(
  files: { cert: string; key: string },
  chainPem: string,
  keyPem: string,
): Promise<void> {
  await writeFileAtomic(files.key, keyPem, 0o600);
  await writeFileAtomic(files.cert, chainPem, 0o644);
}

/** What renewal, monitoring and ARI need to know about a certificate. */
export interface CertificateInfo {
  readonly subject: string;
  readonly issuer: string;
  /** Serial number, hex of the DER INTEGER content (as RFC 9773 uses it). */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  /** IP address subject alternative names. */
  readonly ipAddresses: readonly string[];
  /** Authority key identifier, hex, when the certificate carries one. */
  readonly authorityKeyId?: string;
}

/** The PEM blocks of a chain, leaf first. */
export function splitPemChain(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Reads the leaf (first certificate) of a PEM chain. */
export function certificateInfo(pem: string): CertificateInfo {
  const first = splitPemChain(pem)[0];
  if (!first) throw malformed('certificate', 'no PEM CERTIFICATE block found');
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(first);
  } catch {
    throw malformed('certificate', 'the PEM block is not a valid X.509 certificate');
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const dnsNames = san ? san.names.items.filter((n) => n.type === 'dns').map((n) => n.value) : [];
  const ipAddresses = san ? san.names.items.filter((n) => n.type === 'ip').map((n) => n.value) : [];
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber.toLowerCase(),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dnsNames,
    ipAddresses,
    ...(aki?.keyId ? { authorityKeyId: aki.keyId.toLowerCase() } : {}),
  };
}

/** Reads a certificate file's leaf, or undefined when the file does not exist. */
export async function readCertificateFile(path: string): Promise<CertificateInfo | undefined> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw new EnsealError(ErrorCode.IO, `cannot read ${path}: ${(err as { code?: string }).code ?? 'error'}`);
  }
  return certificateInfo(pem);
}

/** Days left before a warning: 14, or a third of the lifetime when that is shorter (short-lived certificates). */
const WARN_DAYS = 14;
const DAY_MS = 86_400_000;

/**
 * A warning text when the certificate is expired or close to it (fewer than 14 days left, or less than a third
 * of its lifetime for certificates shorter than six weeks), else undefined.
 */
export function expiryWarning(info: CertificateInfo, now = new Date()): string | undefined {
  const left = info.notAfter.getTime() - now.getTime();
  const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
  const threshold = Math.min(WARN_DAYS * DAY_MS, lifetime / 3);
  if (left <= 0) return `TLS certificate expired at ${info.notAfter.toISOString()}; renew it now`;
  if (left < threshold)
    return `TLS certificate expires in ${(left / DAY_MS).toFixed(1)} days (${info.notAfter.toISOString()}); renew it`;
  return undefined;
}

/** Prometheus gauges for a served certificate: its expiry time and the seconds left until then. */
export function expiryMetrics(info: CertificateInfo, now = new Date()): string {
  const notAfter = Math.floor(info.notAfter.getTime() / 1000);
  const left = Math.floor((info.notAfter.getTime() - now.getTime()) / 1000);
  return [
    '# HELP enseal_tls_certificate_not_after_seconds Expiry (notAfter) of the served TLS certificate, Unix time.',
    '# TYPE enseal_tls_certificate_not_after_seconds gauge',
    `enseal_tls_certificate_not_after_seconds ${notAfter}`,
    '# HELP enseal_tls_certificate_expires_in_seconds Seconds until the served TLS certificate expires (negative once expired).',
    '# TYPE enseal_tls_certificate_expires_in_seconds gauge',
    `enseal_tls_certificate_expires_in_seconds ${left}`,
    '',
  ].join('\n');
}
