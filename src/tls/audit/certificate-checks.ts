/**
 * What the audit says about the server's certificate: trust (Node's verification against its bundled roots
 * plus any extra CA), validity dates, the name, key type and size, and the signature algorithm. Dates and
 * self-signature are checked directly, because a verification error names only the first problem found.
 */
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { isIP } from 'node:net';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { HandshakeResult } from './probe.js';

export interface ChainEntry {
  readonly subject: string;
  readonly issuer: string;
  readonly notAfter: string;
  readonly keyBits: number | null;
}

export interface CertificateReport {
  readonly subject: string;
  readonly issuer: string;
  /** DNS names and IP addresses from subjectAltName. */
  readonly names: readonly string[];
  readonly notBefore: string;
  readonly notAfter: string;
  /** Whole days until expiry (negative once expired). */
  readonly daysLeft: number;
  readonly expired: boolean;
  readonly notYetValid: boolean;
  readonly selfSigned: boolean;
  /** The chain verified against the trust store (and --ca-file). */
  readonly trusted: boolean;
  /** OpenSSL's verification error when not trusted, e.g. DEPTH_ZERO_SELF_SIGNED_CERT. */
  readonly trustError: string | null;
  /** The name the audit checked (the SNI name, or the host). */
  readonly checkedName: string;
  readonly nameMatches: boolean;
  /** rsa, ec, ed25519, ed448, dsa, rsa-pss. */
  readonly keyType: string;
  readonly keyBits: number;
  readonly curve: string | null;
  /** e.g. SHA-256 with RSASSA-PKCS1-v1_5, ECDSA with SHA-384, or an OID when unknown. */
  readonly signatureAlgorithm: string;
  /** MD2/MD5 (F), SHA-1 (not trusted by browsers). */
  readonly weakSignature: 'md5' | 'md2' | 'sha1' | null;
  readonly chain: readonly ChainEntry[];
}

const DAY = 86_400_000;
const CURVE_BITS: Record<string, number> = {
  prime256v1: 256,
  secp256r1: 256,
  secp384r1: 384,
  secp521r1: 521,
  secp256k1: 256,
  secp224r1: 224,
  secp192r1: 192,
  prime192v1: 192,
};
const WEAK_SIGNATURE_OIDS: Record<string, 'md5' | 'md2'> = {
  '1.2.840.113549.1.1.4': 'md5',
  '1.2.840.113549.1.1.2': 'md2',
};

function dn(fields: object | undefined): string {
  if (fields === undefined) return '';
  return Object.entries(fields as Record<string, string | string[] | undefined>)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

function sanNames(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return [];
  return subjectAltName
    .split(/,\s*/)
    .map((entry) => entry.replace(/^(DNS|IP Address):/, ''))
    .filter((n) => n.length > 0);
}

function signatureOf(raw: Buffer): { name: string; weak: CertificateReport['weakSignature'] } {
  try {
    const alg = new x509.X509Certificate(new Uint8Array(raw)).signatureAlgorithm as {
      name: string;
      hash?: { name: string };
    };
    const weakOid = WEAK_SIGNATURE_OIDS[alg.name];
    if (weakOid !== undefined)
      return { name: `${weakOid.toUpperCase()} with RSA (${alg.name})`, weak: weakOid };
    const hash = alg.hash?.name;
    return {
      name: hash === undefined ? alg.name : `${hash} with ${alg.name}`,
      weak: hash === 'SHA-1' ? 'sha1' : null,
    };
  } catch {
    return { name: 'unknown', weak: null };
  }
}

function keyOf(
  leaf: HandshakeResult['leaf'],
  peer: PeerCertificate,
): { type: string; bits: number; curve: string | null } {
  const key = leaf?.publicKey;
  const type = key?.asymmetricKeyType ?? 'unknown';
  const details = (key?.asymmetricKeyDetails ?? {}) as { modulusLength?: number; namedCurve?: string };
  if (details.modulusLength !== undefined) return { type, bits: details.modulusLength, curve: null };
  if (details.namedCurve !== undefined) {
    return { type, bits: CURVE_BITS[details.namedCurve] ?? peer.bits ?? 0, curve: details.namedCurve };
  }
  if (type === 'ed25519') return { type, bits: 256, curve: 'Ed25519' };
  if (type === 'ed448') return { type, bits: 456, curve: 'Ed448' };
  return { type, bits: peer.bits ?? 0, curve: null };
}

/** Builds the certificate report from a completed handshake. */
export function checkCertificate(
  handshake: HandshakeResult,
  checkedName: string,
  now = Date.now(),
): CertificateReport {
  const peer = handshake.chain[0];
  if (peer === undefined) throw new Error('handshake without a peer certificate');
  const notBefore = new Date(peer.valid_from);
  const notAfter = new Date(peer.valid_to);
  const leaf = handshake.leaf;
  // Issued by itself and verifiable with its own key. X509Certificate.checkIssued is not used: it also wants
  // keyCertSign in the key usage, which a self-signed leaf usually lacks.
  const selfSigned =
    handshake.authorizationError === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    (leaf !== undefined && leaf.subject === leaf.issuer && leaf.verify(leaf.publicKey));
  const identity = isIP(checkedName) ? checkedName : checkedName.toLowerCase();
  const nameMatches = checkServerIdentity(identity, peer) === undefined;
  const key = keyOf(leaf, peer);
  const signature = signatureOf(peer.raw);
  return {
    subject: dn(peer.subject),
    issuer: dn(peer.issuer),
    names: sanNames(peer.subjectaltname),
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - now) / DAY),
    expired: notAfter.getTime() < now,
    notYetValid: notBefore.getTime() > now,
    selfSigned,
    trusted: handshake.authorized,
    trustError: handshake.authorized ? null : (handshake.authorizationError ?? 'not trusted'),
    checkedName,
    nameMatches,
    keyType: key.type,
    keyBits: key.bits,
    curve: key.curve,
    signatureAlgorithm: signature.name,
    weakSignature: signature.weak,
    chain: handshake.chain.map((c) => ({
      subject: dn(c.subject),
      issuer: dn(c.issuer),
      notAfter: new Date(c.valid_to).toISOString(),
      keyBits: c.bits ?? null,
    })),
  };
}
