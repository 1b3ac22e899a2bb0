/**
 * A development certificate authority: a local CA and a server certificate it signs, both ECDSA P-256,
 * created on first use and reused afterwards. It exists so that `enseal serve --dev` speaks real TLS from the
 * first minute; the CA path is printed so a developer can trust it (`curl --cacert`, `ENSEAL_CACERT`).
 * Production deployments bring their own certificates.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
    caKey: join(dir, 'dev-ca-key.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server-key.pem'),
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  x509.cryptoProvider.set(globalThis.crypto);
  if (existsSync(files.cert) && existsSync(files.caCert) && existsSync(files.key)) {
    const cert = new x509.X509Certificate(await readFile(files.cert, 'utf8'));
    if (cert.notAfter.getTime() - Date.now() > 7 * DAY)
      return { caCert: files.caCert, cert: files.cert, key: files.key };
  }
  let caCert: x509.X509Certificate;
  let caKeys: CryptoKeyPair;
  if (existsSync(files.caCert) && existsSync(files.caKey)) {
    caCert = new x509.X509Certificate(await readFile(files.caCert, 'utf8'));
    const keyPem = await readFile(files.caKey, 'utf8');
    const der = Buffer.from(keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const privateKey = await globalThis.crypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
    caKeys = { privateKey, publicKey: await caCert.publicKey.export(ALG, ['verify']) };
  } else {
    caKeys = (await globalThis.crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = new Date();
    caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=enseal development CA (not for production), O=enseal',
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 3650 * DAY),
      keys: caKeys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
      ],
    });
    await writeFile(files.caCert, caCert.toString('pem') + '\n', { mode: 0o644 });
    await writeFile(
      files.caKey,
      pemKey(await globalThis.crypto.subtle.exportKey('pkcs8', caKeys.privateKey)),
      { mode: 0o600 },
    );
  }
  const leafKeys = (await globalThis.crypto.subtle.generateKey(ALG, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const now = new Date();
  const names = [
    ...hostnames.map((value) => ({ type: 'dns' as const, value })),
    { type: 'ip' as const, value: '127.0.0.1' },
    { type: 'ip' as const, value: '::1' },
  ];
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${hostnames[0] ?? 'localhost'}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 90 * DAY),
    signingKey: caKeys.privateKey,
    publicKey: leafKeys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
    ],
  });
  await writeFile(files.key, pemKey(await globalThis.crypto.subtle.exportKey('pkcs8', leafKeys.privateKey)), {
    mode: 0o600,
  });
  await writeFile(files.cert, leaf.toString('pem') + '\n' + caCert.toString('pem') + '\n', { mode: 0o644 });
  return { caCert: files.caCert, cert: files.cert, key: files.key };
}
