/**
 * A local certificate authority for development, in the spirit of mkcert: a root CA (ECDSA P-256 by
 * default) that may be technically constrained to the names a developer lists, and leaf certificates with
 * DNS and IP subject alternative names for servers and clients.
 *
 * Why name constraints: trusting a local CA in a browser or OS store lets whoever holds its key impersonate
 * any site to that machine. A CA constrained to `localhost`, `.test` and loopback addresses can only vouch
 * for those, so a stolen key is worth little. When the user lists DNS names but no addresses (or the
 * reverse), the other name type is excluded entirely, because a constraint on one type says nothing about
 * the other (RFC 5280 §4.2.1.10).
 *
 * The CA key is written with mode 0600 and may be sealed under a passphrase with enseal's passphrase
 * envelope (Argon2id, key-committing AEAD). Every file is written atomically (temp file, fsync, rename), so
 * an interrupted run never leaves a half-written key or certificate.
 */
import { access, mkdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { EnsealError, ErrorCode, invalidArgument, utf8Decode, type Argon2Params } from '../crypto/index.js';
import { openWithPassphrase, sealWithPassphrase } from '../formats/index.js';
import { pemPrivateKey, pkcs8FromPem, randomSerial, writeFileAtomic } from './certificate-files.js';
import {
  nameConstraintsExtension,
  parsePermittedName,
  parseSanName,
  permittedBy,
  readConstraints,
  type ParsedConstraints,
  type SanName,
} from './certificate-names.js';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export {
  parsePermittedName,
  parseSanName,
  permittedBy,
  type ParsedConstraints,
  type PermittedName,
  type SanName,
} from './certificate-names.js';

/** Key types for the CA and for leaves. RSA-2048 is offered for leaves only (Mozilla intermediate allows it). */
export type CaKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-3072';
export type LeafKeyType = CaKeyType | 'rsa-2048';

export const CA_KEY_TYPES: readonly CaKeyType[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-3072'];
export const LEAF_KEY_TYPES: readonly LeafKeyType[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072'];

/** The CA/Browser Forum's historical cap; Mozilla recommends 90 days and both profiles allow at most 366. */
export const MAX_LEAF_DAYS = 825;
export const DEFAULT_LEAF_DAYS = 90;
export const DEFAULT_CA_DAYS = 3650;
const MAX_CA_DAYS = 7300;
const DAY = 86_400_000;
/** Associated data binding a sealed CA key to its role, so another enseal passphrase envelope cannot stand in. */
const CA_KEY_AAD = 'enseal tls local-ca key v1';

interface KeyAlgorithms {
  readonly generate: RsaHashedKeyGenParams | EcKeyGenParams;
  readonly import: RsaHashedImportParams | EcKeyImportParams;
  readonly sign: Algorithm | EcdsaParams;
}

function algorithms(type: LeafKeyType): KeyAlgorithms {
  switch (type) {
    case 'ecdsa-p256':
    case 'ecdsa-p384': {
      const namedCurve = type === 'ecdsa-p256' ? 'P-256' : 'P-384';
      const hash = type === 'ecdsa-p256' ? 'SHA-256' : 'SHA-384';
      return {
        generate: { name: 'ECDSA', namedCurve },
        import: { name: 'ECDSA', namedCurve },
        sign: { name: 'ECDSA', hash } as EcdsaParams,
      };
    }
    case 'rsa-2048':
    case 'rsa-3072': {
      const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
      return {
        generate: {
          ...rsa,
          modulusLength: type === 'rsa-2048' ? 2048 : 3072,
          publicExponent: new Uint8Array([1, 0, 1]),
        },
        import: rsa,
        sign: rsa,
      };
    }
  }
}

function keyTypeOf(cert: x509.X509Certificate): CaKeyType {
  const alg = cert.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  if (alg.name === 'ECDSA' && alg.namedCurve === 'P-256') return 'ecdsa-p256';
  if (alg.name === 'ECDSA' && alg.namedCurve === 'P-384') return 'ecdsa-p384';
  if (alg.name === 'RSASSA-PKCS1-v1_5' || alg.name === 'RSA-PSS' || alg.name === 'RSA-OAEP')
    return 'rsa-3072';
  throw new EnsealError(
    ErrorCode.UNSUPPORTED,
    `the CA certificate's key type (${alg.name}) is not supported`,
  );
}

async function generateKeys(type: LeafKeyType): Promise<CryptoKeyPair> {
  return (await globalThis.crypto.subtle.generateKey(algorithms(type).generate, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
}

// ---------------------------------------------------------------------------------------------------------
// Files

async function readTextFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new EnsealError(ErrorCode.IO, `cannot read the ${what} file ${path}`, { cause });
  }
}

// ---------------------------------------------------------------------------------------------------------
// The CA

/** A loaded CA: its certificate and signing key (held as a non-extractable-in-practice CryptoKey). */
export interface LocalCa {
  readonly cert: x509.X509Certificate;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly keyType: CaKeyType;
}

export interface CreateCaOptions {
  /** Subject common name. */
  readonly commonName?: string;
  readonly keyType?: CaKeyType;
  /** Validity in days (default 3650). */
  readonly days?: number;
  /** Names the CA may vouch for; empty or absent means unconstrained. */
  readonly permit?: readonly string[];
}

function checkDays(days: number, max: number, what: string): number {
  if (!Number.isInteger(days) || days < 1 || days > max) {
    throw invalidArgument(what, `must be a whole number of days from 1 to ${max}`);
  }
  return days;
}

function checkCommonName(cn: string): string {
  // Printable, no DN syntax characters, so the string parser in @peculiar/x509 sees exactly one attribute.
  if (!/^[A-Za-z0-9 ()._@'-]{1,64}$/.test(cn)) {
    throw invalidArgument('common name', "use 1-64 letters, digits, spaces and ( ) . _ @ ' -");
  }
  return cn;
}

/** Creates a CA in memory: BasicConstraints CA pathlen 0, KeyUsage keyCertSign|cRLSign, SKI, optional NC. */
export async function createCa(options: CreateCaOptions = {}): Promise<LocalCa> {
  x509.cryptoProvider.set(globalThis.crypto);
  const keyType = options.keyType ?? 'ecdsa-p256';
  if (!CA_KEY_TYPES.includes(keyType)) throw invalidArgument('CA key type', `use ${CA_KEY_TYPES.join(', ')}`);
  const days = checkDays(options.days ?? DEFAULT_CA_DAYS, MAX_CA_DAYS, 'CA lifetime');
  const parsed = (options.permit ?? []).map(parsePermittedName);
  const permitted = parsed.filter(
    (p, i) => parsed.findIndex((q) => q.type === p.type && q.value === p.value) === i,
  );
  const cn = checkCommonName(options.commonName ?? 'enseal local development CA');
  const keys = await generateKeys(keyType);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [cn] }, { O: ['enseal local CA (development only)'] }],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * DAY),
    keys,
    signingAlgorithm: algorithms(keyType).sign,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(permitted.length > 0 ? [nameConstraintsExtension(permitted)] : []),
    ],
  });
  return { cert, privateKey: keys.privateKey, publicKey: keys.publicKey, keyType };
}

/** The names the CA is constrained to (permitted and excluded subtrees), or undefined when unconstrained. */
export function caConstraints(ca: LocalCa): ParsedConstraints | undefined {
  return readConstraints(ca.cert);
}

export interface CaFiles {
  /** The CA certificate (PEM), the file users trust. */
  readonly cert: string;
  /** The CA private key: PKCS#8 PEM, or an enseal passphrase envelope when sealed. */
  readonly key: string;
}

export interface SaveCaOptions {
  /** Seal the key under this passphrase (enseal passphrase envelope, Argon2id). */
  readonly passphrase?: string | Uint8Array;
  /** Argon2id cost for the passphrase (tests lower it); defaults to the envelope's default. */
  readonly passphraseParams?: Argon2Params;
}

/** Writes the CA certificate (0644) and key (0600, sealed when a passphrase is given) atomically. */
export async function saveCa(ca: LocalCa, files: CaFiles, options: SaveCaOptions = {}): Promise<void> {
  const keyPem = pemPrivateKey(await globalThis.crypto.subtle.exportKey('pkcs8', ca.privateKey));
  const keyText =
    options.passphrase === undefined
      ? keyPem
      : (await sealWithPassphrase(options.passphrase, keyPem, {
          aad: CA_KEY_AAD,
          ...(options.passphraseParams ? { params: options.passphraseParams } : {}),
        })) + '\n';
  await writeFileAtomic(files.key, keyText, 0o600);
  await writeFileAtomic(files.cert, ca.cert.toString('pem') + '\n', 0o644);
}

/** True when a CA key file is a sealed (passphrase) envelope rather than a PEM key. */
export async function isCaKeySealed(keyFile: string): Promise<boolean> {
  return !(await readTextFile(keyFile, 'CA key')).startsWith('-----BEGIN');
}

/**
 * Parses and checks a CA certificate file: PEM, BasicConstraints CA, a supported key type, readable name
 * constraints. Any failure of the parser on a damaged file becomes ERR_MALFORMED.
 */
async function parseCaCertificate(
  text: string,
  file: string,
): Promise<{ cert: x509.X509Certificate; keyType: CaKeyType }> {
  try {
    const cert = new x509.X509Certificate(text);
    // The parser is lenient; re-encoding must give the same bytes (strict DER), and the self-signature must
    // hold, so a damaged or edited CA certificate (say, with its name constraints removed) is refused.
    const der = new Uint8Array(cert.rawData);
    const again = new Uint8Array(AsnConvert.serialize(AsnConvert.parse(der, Certificate)));
    if (der.length !== again.length || der.some((b, i) => b !== again[i])) {
      throw new EnsealError(ErrorCode.MALFORMED, `${file} is not DER-encoded`);
    }
    if (!(await cert.verify({ publicKey: cert.publicKey, signatureOnly: true }))) {
      throw new EnsealError(ErrorCode.MALFORMED, `${file} has an invalid self-signature`);
    }
    if (cert.getExtension(x509.BasicConstraintsExtension)?.ca !== true) {
      throw new EnsealError(ErrorCode.MALFORMED, `${file} is not a CA certificate`);
    }
    const keyType = keyTypeOf(cert);
    readConstraints(cert);
    return { cert, keyType };
  } catch (cause) {
    if (cause instanceof EnsealError) throw cause;
    throw new EnsealError(ErrorCode.MALFORMED, `${file} is not a readable PEM CA certificate`, { cause });
  }
}

/** Loads a CA from its files, opening a sealed key with `passphrase`, and checks the key matches the cert. */
export async function loadCa(files: CaFiles, passphrase?: string | Uint8Array): Promise<LocalCa> {
  x509.cryptoProvider.set(globalThis.crypto);
  const certText = await readTextFile(files.cert, 'CA certificate');
  const { cert, keyType } = await parseCaCertificate(certText, files.cert);
  let keyText = await readTextFile(files.key, 'CA key');
  if (!keyText.startsWith('-----BEGIN')) {
    if (passphrase === undefined) {
      throw new EnsealError(ErrorCode.KEK_MISSING, 'the CA key is sealed with a passphrase; provide it');
    }
    keyText = utf8Decode(await openWithPassphrase(passphrase, keyText.trim(), { aad: CA_KEY_AAD }));
  }
  const alg = algorithms(keyType).import;
  let privateKey: CryptoKey;
  try {
    privateKey = await globalThis.crypto.subtle.importKey(
      'pkcs8',
      pkcs8FromPem(keyText, 'the CA key file'),
      alg,
      true,
      ['sign'],
    );
  } catch (cause) {
    if (cause instanceof EnsealError) throw cause;
    throw new EnsealError(ErrorCode.MALFORMED, 'the CA key does not match the CA certificate type', {
      cause,
    });
  }
  let publicKey: CryptoKey;
  try {
    publicKey = await cert.publicKey.export(alg, ['verify']);
  } catch (cause) {
    throw new EnsealError(ErrorCode.MALFORMED, `${files.cert} holds an unusable public key`, { cause });
  }
  const [priv, pub] = await Promise.all([
    globalThis.crypto.subtle.exportKey('jwk', privateKey),
    globalThis.crypto.subtle.exportKey('jwk', publicKey),
  ]);
  if (priv.x !== pub.x || priv.y !== pub.y || priv.n !== pub.n) {
    throw new EnsealError(ErrorCode.MALFORMED, 'the CA key does not belong to the CA certificate');
  }
  return { cert, privateKey, publicKey, keyType };
}

// ---------------------------------------------------------------------------------------------------------
// Leaves

export interface IssueOptions {
  /** DNS names and IP addresses for the SAN extension (validated by parseSanName). */
  readonly names: readonly string[];
  /** Subject CN; defaults to the first DNS name (leaves with only IPs get no CN). */
  readonly commonName?: string;
  /** Extended key usages; default server only. */
  readonly server?: boolean;
  readonly client?: boolean;
  /** Validity in days: default 90, at most 825. */
  readonly days?: number;
  readonly keyType?: LeafKeyType;
}

export interface IssuedCertificate {
  /** The leaf certificate PEM. */
  readonly certPem: string;
  /** Leaf then CA, the file a server presents. */
  readonly chainPem: string;
  /** The leaf's PKCS#8 private key PEM. */
  readonly keyPem: string;
  readonly notAfter: Date;
  readonly serialNumber: string;
  readonly names: readonly SanName[];
}

/**
 * Issues a leaf signed by `ca`. Refuses names outside the CA's constraints (a verifier would reject the
 * leaf anyway) and lifetimes beyond the CA's own or beyond 825 days.
 */
export async function issueCertificate(ca: LocalCa, options: IssueOptions): Promise<IssuedCertificate> {
  x509.cryptoProvider.set(globalThis.crypto);
  const keyType = options.keyType ?? 'ecdsa-p256';
  if (!LEAF_KEY_TYPES.includes(keyType))
    throw invalidArgument('key type', `use ${LEAF_KEY_TYPES.join(', ')}`);
  const server = options.server ?? true;
  const client = options.client ?? false;
  if (!server && !client) throw invalidArgument('usage', 'a certificate must allow server or client use');
  const names = options.names.map(parseSanName);
  const constraints = readConstraints(ca.cert);
  for (const name of names) {
    if (!permittedBy(constraints, name)) {
      throw invalidArgument('certificate name', `${name.value} is outside the names this CA may certify`);
    }
  }
  if (server && names.length === 0)
    throw invalidArgument('certificate name', 'a server certificate needs a name');
  const days = checkDays(options.days ?? DEFAULT_LEAF_DAYS, MAX_LEAF_DAYS, 'certificate lifetime');
  const now = Date.now();
  const notAfter = new Date(now + days * DAY);
  if (notAfter.getTime() > ca.cert.notAfter.getTime()) {
    throw invalidArgument('certificate lifetime', 'would outlast the CA; choose fewer days or a new CA');
  }
  // A DNS name from the SANs is already validated (LDH labels, optional leading `*.`); a given CN is checked.
  const cn =
    options.commonName !== undefined
      ? checkCommonName(options.commonName)
      : names.find((n) => n.type === 'dns')?.value;
  const keys = await generateKeys(keyType);
  const usage = keyType.startsWith('rsa')
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  const serial = randomSerial();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: cn === undefined ? [{ O: ['enseal local CA leaf'] }] : [{ CN: [cn] }],
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - 60_000),
    notAfter,
    signingKey: ca.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: algorithms(ca.keyType).sign,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usage, true),
      new x509.ExtendedKeyUsageExtension([
        ...(server ? [x509.ExtendedKeyUsage.serverAuth] : []),
        ...(client ? [x509.ExtendedKeyUsage.clientAuth] : []),
      ]),
      // SAN is critical when the subject is empty of a CN (RFC 5280 §4.2.1.6).
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, cn === undefined)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = leaf.toString('pem') + '\n';
  return {
    certPem,
    chainPem: certPem + ca.cert.toString('pem') + '\n',
    keyPem: pemPrivateKey(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey)),
    notAfter,
    serialNumber: serial,
    names,
  };
}

/** Writes an issued certificate: the chain (leaf + CA, 0644) and the key (0600), each atomically. */
export async function saveIssued(
  issued: IssuedCertificate,
  files: { cert: string; key: string },
): Promise<void> {
  await writeFileAtomic(files.key, issued.keyPem, 0o600);
  await writeFileAtomic(files.cert, issued.chainPem, 0o644);
}

// ---------------------------------------------------------------------------------------------------------
// The CA directory used by `enseal tls ca`

/** File names inside a CA directory: `ca.pem`, and `ca-key.pem` (plain) or `ca-key.enseal` (sealed). */
export function caFilesIn(dir: string, sealed: boolean): CaFiles {
  return { cert: join(dir, 'ca.pem'), key: join(dir, sealed ? 'ca-key.enseal' : 'ca-key.pem') };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * Creates a CA in `dir` (mode 0700). Refuses to replace an existing CA unless `force`, because every
 * certificate it issued and every trust store entry would silently stop matching.
 */
export async function initLocalCa(
  dir: string,
  options: CreateCaOptions & SaveCaOptions & { readonly force?: boolean } = {},
): Promise<{ ca: LocalCa; files: CaFiles }> {
  const files = caFilesIn(dir, options.passphrase !== undefined);
  const existing = [files.cert, caFilesIn(dir, false).key, caFilesIn(dir, true).key];
  if (!options.force) {
    for (const f of existing) {
      if (await exists(f)) {
        throw new EnsealError(
          ErrorCode.OUTPUT_EXISTS,
          `a CA already exists in ${dir}; pass --force to replace it`,
        );
      }
    }
  }
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new EnsealError(ErrorCode.IO, `cannot create ${dir}`, { cause });
  }
  const ca = await createCa(options);
  await saveCa(ca, files, options);
  // A replaced CA must not leave its other-format key behind.
  const stale = caFilesIn(dir, options.passphrase === undefined).key;
  await unlink(stale).catch(() => undefined);
  return { ca, files };
}

/** The CA files present in `dir` (sealed key preferred), or an ERR_IO telling the user to run init. */
export async function findLocalCa(dir: string): Promise<CaFiles & { readonly sealed: boolean }> {
  for (const sealed of [true, false]) {
    const files = caFilesIn(dir, sealed);
    if ((await exists(files.cert)) && (await exists(files.key))) return { ...files, sealed };
  }
  throw new EnsealError(ErrorCode.IO, `no CA in ${dir}; create one with \`enseal tls ca init\``);
}

/** Loads the CA in `dir`. */
export async function openLocalCa(
  dir: string,
  passphrase?: string | Uint8Array,
): Promise<{ ca: LocalCa; files: CaFiles }> {
  const files = await findLocalCa(dir);
  return { ca: await loadCa(files, passphrase), files };
}
