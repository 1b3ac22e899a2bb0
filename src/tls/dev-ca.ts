/**
 * A development certificate authority: a local CA and a server certificate it signs, both ECDSA P-256,
 * created on first use and reused afterwards. It exists so that `enseal serve --dev` speaks real TLS from the
 * first minute; the CA path is printed so a developer can trust it (`curl --cacert`, `ENSEAL_CACERT`).
 * Production deployments bring their own certificates.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../crypto/index.js';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

export interface DevCertificateFiles {
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f; // positive
  return Buffer.from(bytes).toString('hex');
}

interface LoadedCa {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  readonly certFile: string;
}

/** The dev CA under `dir`, created (ten years, ECDSA P-256) when missing. */
async function loadOrCreateCa(dir: string): Promise<LoadedCa> {
  const certFile = join(dir, 'dev-ca.pem');
  const keyFile = join(dir, 'dev-ca-key.pem');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  x509.cryptoProvider.set(globalThis.crypto);
  if (existsSync(certFile) && existsSync(keyFile)) {
    const cert = new x509.X509Certificate(await readFile(certFile, 'utf8'));
    const der = Buffer.from((await readFile(keyFile, 'utf8')).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const privateKey = await globalThis.crypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
    return { cert, keys: { privateKey, publicKey: await cert.publicKey.export(ALG, ['verify']) }, certFile };
  }
  const keys = (await globalThis.crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = new Date();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=enseal development CA (not for production), O=enseal',
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 3650 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await writeFile(certFile, cert.toString('pem') + '\n', { mode: 0o644 });
  await writeFile(keyFile, pemKey(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey)), {
    mode: 0o600,
  });
  return { cert, keys, certFile };
}

/** Issues a leaf certificate (90 days) signed by the CA, for a server or a client. */
async function issue(
  ca: LoadedCa,
  commonName: string,
  usage: 'server' | 'client',
  names: { type: 'dns' | 'ip'; value: string }[],
): Promise<{ cert: string; key: string }> {
  const keys = (await globalThis.crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = new Date();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 90 * DAY),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    cert: leaf.toString('pem') + '\n' + ca.cert.toString('pem') + '\n',
    key: pemKey(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

/**
 * Returns the dev CA and server certificate files under `dir`, creating them when missing or when the
 * server certificate expires within a week. The CA lives ten years, the server certificate 90 days.
 */
export async function ensureDevCertificates(
  dir: string,
  hostnames: readonly string[] = ['localhost'],
): Promise<DevCertificateFiles> {
  const files = {
    caCert: join(dir, 'dev-ca.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server-key.pem'),
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  x509.cryptoProvider.set(globalThis.crypto);
  if (existsSync(files.cert) && existsSync(files.caCert) && existsSync(files.key)) {
    const cert = new x509.X509Certificate(await readFile(files.cert, 'utf8'));
    if (cert.notAfter.getTime() - Date.now() > 7 * DAY) return files;
  }
  const ca = await loadOrCreateCa(dir);
  const names = [
    ...hostnames.map((value) => ({ type: 'dns' as const, value })),
    { type: 'ip' as const, value: '127.0.0.1' },
    { type: 'ip' as const, value: '::1' },
  ];
  const { cert, key } = await issue(ca, hostnames[0] ?? 'localhost', 'server', names);
  await writeFile(files.key, key, { mode: 0o600 });
  await writeFile(files.cert, cert, { mode: 0o644 });
  return files;
}

/**
 * Issues a client certificate from the dev CA under `dir` (for mTLS with `--tls-client-ca`), written as
 * `<name>.pem` and `<name>-key.pem`.
 */
export async function issueDevClientCertificate(
  dir: string,
  commonName: string,
): Promise<{ cert: string; key: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(commonName))
    throw invalidArgument('client certificate name', 'must be a simple identifier');
  const ca = await loadOrCreateCa(dir);
  const { cert, key } = await issue(ca, commonName, 'client', []);
  const files = { cert: join(dir, `${commonName}.pem`), key: join(dir, `${commonName}-key.pem`) };
  await writeFile(files.key, key, { mode: 0o600 });
  await writeFile(files.cert, cert, { mode: 0o644 });
  return files;
}
