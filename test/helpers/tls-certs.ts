/**
 * Fixture certificates for TLS tests, written to a temp dir (removed when the process exits): good chains
 * from a test CA (ECDSA P-256 and RSA-2048), an expired leaf, a self-signed leaf, a leaf for the wrong name
 * and an RSA-1024 leaf. Built with @peculiar/x509 directly, independent of the code under test.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFixture {
  /** The leaf certificate PEM file (the test CA is a root, so there are no intermediates). */
  readonly cert: string;
  /** The leaf's PKCS#8 private key PEM file (mode 0600). */
  readonly key: string;
  /** The trust anchor PEM file a client should use (the CA, or the leaf itself when self-signed). */
  readonly caFile: string;
  /** The name a client should connect as (`localhost`); the leaf is valid for it unless the fixture says otherwise. */
  readonly hostname: string;
}

export interface TlsFixtures {
  readonly dir: string;
  /** ECDSA P-256 CA and leaf, SANs localhost, 127.0.0.1, ::1. */
  readonly goodEcdsa: CertFixture;
  /** RSA-2048 CA and leaf, SANs localhost, 127.0.0.1, ::1. */
  readonly goodRsa: CertFixture;
  /** ECDSA leaf from the good CA that expired ten days ago. */
  readonly expired: CertFixture;
  /** A self-signed ECDSA leaf for localhost (no CA). */
  readonly selfSigned: CertFixture;
  /** ECDSA leaf from the good CA for wrong.example only. */
  readonly wrongName: CertFixture;
  /** RSA-1024 leaf from the RSA CA, SANs localhost, 127.0.0.1. OpenSSL 3 refuses it at its default security
   * level ("ee key too small"), so serve it with `weakHttpBlock` (SECLEVEL=0). */
  readonly rsa1024: CertFixture;
}

const DAY = 86_400_000;
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const rsa = (bits: number) =>
  ({
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: bits,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  }) as const;

type Alg = typeof ECDSA | ReturnType<typeof rsa>;

interface Ca {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  readonly alg: Alg;
  readonly file: string;
}

function serial(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  b[0]! &= 0x7f;
  return Buffer.from(b).toString('hex');
}

async function keyPair(alg: Alg): Promise<CryptoKeyPair> {
  return (await globalThis.crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const b64 = Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', key))
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

async function makeCa(dir: string, name: string, alg: Alg): Promise<Ca> {
  const keys = await keyPair(alg);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=enseal test CA ${name}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const file = join(dir, `ca-${name}.pem`);
  writeFileSync(file, cert.toString('pem') + '\n');
  return { cert, keys, alg, file };
}

interface LeafOptions {
  readonly name: string;
  readonly alg: Alg;
  readonly dns: string[];
  readonly ips: string[];
  readonly notBefore: number;
  readonly notAfter: number;
}

async function writeLeaf(dir: string, opts: LeafOptions, ca: Ca | undefined): Promise<CertFixture> {
  const keys = await keyPair(opts.alg);
  const san = new x509.SubjectAlternativeNameExtension([
    ...opts.dns.map((value) => ({ type: 'dns' as const, value })),
    ...opts.ips.map((value) => ({ type: 'ip' as const, value })),
  ]);
  const usage =
    opts.alg.name === 'ECDSA'
      ? x509.KeyUsageFlags.digitalSignature
      : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment;
  const common = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    san,
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  const subject = `CN=${opts.dns[0] ?? 'leaf'}`;
  const leaf =
    ca === undefined
      ? await x509.X509CertificateGenerator.createSelfSigned({
          serialNumber: serial(),
          name: subject,
          notBefore: new Date(opts.notBefore),
          notAfter: new Date(opts.notAfter),
          keys,
          signingAlgorithm: opts.alg,
          extensions: common,
        })
      : await x509.X509CertificateGenerator.create({
          serialNumber: serial(),
          subject,
          issuer: ca.cert.subject,
          notBefore: new Date(opts.notBefore),
          notAfter: new Date(opts.notAfter),
          signingKey: ca.keys.privateKey,
          publicKey: keys.publicKey,
          signingAlgorithm: ca.alg,
          extensions: [...common, await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey)],
        });
  const cert = join(dir, `${opts.name}.pem`);
  const key = join(dir, `${opts.name}-key.pem`);
  writeFileSync(cert, leaf.toString('pem') + '\n');
  writeFileSync(key, await pkcs8Pem(keys.privateKey), { mode: 0o600 });
  return { cert, key, caFile: ca?.file ?? cert, hostname: 'localhost' };
}

let cached: Promise<TlsFixtures> | undefined;

async function build(): Promise<TlsFixtures> {
  x509.cryptoProvider.set(globalThis.crypto);
  const dir = mkdtempSync(join(tmpdir(), 'enseal-tls-fixtures-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const now = Date.now();
  const valid = { notBefore: now - DAY, notAfter: now + 90 * DAY };
  const local = { dns: ['localhost'], ips: ['127.0.0.1', '::1'] };
  const ecCa = await makeCa(dir, 'ecdsa', ECDSA);
  const rsaCa = await makeCa(dir, 'rsa', rsa(2048));
  return {
    dir,
    goodEcdsa: await writeLeaf(dir, { name: 'good-ecdsa', alg: ECDSA, ...local, ...valid }, ecCa),
    goodRsa: await writeLeaf(dir, { name: 'good-rsa', alg: rsa(2048), ...local, ...valid }, rsaCa),
    expired: await writeLeaf(
      dir,
      { name: 'expired', alg: ECDSA, ...local, notBefore: now - 100 * DAY, notAfter: now - 10 * DAY },
      ecCa,
    ),
    selfSigned: await writeLeaf(dir, { name: 'self-signed', alg: ECDSA, ...local, ...valid }, undefined),
    wrongName: await writeLeaf(
      dir,
      { name: 'wrong-name', alg: ECDSA, dns: ['wrong.example'], ips: [], ...valid },
      ecCa,
    ),
    rsa1024: await writeLeaf(
      dir,
      { name: 'rsa1024', alg: rsa(1024), dns: ['localhost'], ips: ['127.0.0.1'], ...valid },
      rsaCa,
    ),
  };
}

/** Every fixture, created once per test process. */
export function tlsFixtures(): Promise<TlsFixtures> {
  cached ??= build();
  return cached;
}
