/**
 * A development certificate authority: a local CA and a server certificate it signs, both ECDSA P-256,
 * created on first use and reused afterwards. It exists so that `enseal serve --dev` speaks real TLS from the
 * first minute; the CA path is printed so a developer can trust it (`curl --cacert`, `ENSEAL_CACERT`).
 * Production deployments bring their own certificates. The CA itself is the local CA of local-ca.ts, kept
 * under the file names `enseal serve` has always used.
 */
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../crypto/index.js';
import {
  createCa,
  issueCertificate,
  loadCa,
  saveCa,
  saveIssued,
  type CaFiles,
  type LocalCa,
} from './local-ca.js';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

const DAY = 24 * 60 * 60 * 1000;

export interface DevCertificateFiles {
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
}

/** Where the dev CA and server certificate live under `dir` (what `enseal doctor` inspects), created or not. */
export function devCertificateFiles(dir: string): DevCertificateFiles & { readonly caKey: string } {
  return {
    caCert: join(dir, 'dev-ca.pem'),
    caKey: join(dir, 'dev-ca-key.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server-key.pem'),
  };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The dev CA under `dir`, created (ten years, ECDSA P-256, unconstrained) when missing. */
async function loadOrCreateCa(dir: string): Promise<LocalCa> {
  const names = devCertificateFiles(dir);
  const files: CaFiles = { cert: names.caCert, key: names.caKey };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if ((await exists(files.cert)) && (await exists(files.key))) return loadCa(files);
  const ca = await createCa({ commonName: 'enseal development CA (not for production)', days: 3650 });
  await saveCa(ca, files);
  return ca;
}

/**
 * Returns the dev CA and server certificate files under `dir`, creating them when missing or when the
 * server certificate expires within a week. The CA lives ten years, the server certificate 90 days.
 */
export async function ensureDevCertificates(
  dir: string,
  hostnames: readonly string[] = ['localhost'],
): Promise<DevCertificateFiles> {
  const { caCert, cert, key } = devCertificateFiles(dir);
  const files = { caCert, cert, key };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if ((await exists(files.cert)) && (await exists(files.caCert)) && (await exists(files.key))) {
    x509.cryptoProvider.set(globalThis.crypto);
    const cert = new x509.X509Certificate(await readFile(files.cert, 'utf8'));
    if (cert.notAfter.getTime() - Date.now() > 7 * DAY) return files;
  }
  const ca = await loadOrCreateCa(dir);
  const issued = await issueCertificate(ca, {
    names: [...hostnames, '127.0.0.1', '::1'],
    commonName: hostnames[0] ?? 'localhost',
    server: true,
    client: false,
    days: 90,
  });
  await saveIssued(issued, { cert: files.cert, key: files.key });
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
  const issued = await issueCertificate(ca, { names: [], commonName, server: false, client: true, days: 90 });
  const files = { cert: join(dir, `${commonName}.pem`), key: join(dir, `${commonName}-key.pem`) };
  await saveIssued(issued, files);
  return files;
}
