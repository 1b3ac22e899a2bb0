/**
 * One certificate order, start to finish (RFC 8555 §7.4): newOrder, one challenge per pending authorization
 * (put in place, announced, polled, removed), finalize with a CSR for a fresh key, poll, download.
 * The certificate key is new on every issuance: a renewal never reuses the key of the certificate it replaces.
 */
import { isIP } from 'node:net';
import { EnsealError, ErrorCode, invalidArgument } from '../crypto/index.js';
import type { AcmeClient } from './acme-client.js';
import type { ChallengeSolver } from './acme-challenges.js';
import type { AcmeAuthorization, AcmeIdentifier, AcmeOrder } from './acme-messages.js';
import { certificateInfo, pemPrivateKey, type CertificateInfo } from './certificate-files.js';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export type CertificateKeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072';

/** Certificate key algorithms, as WebCrypto key generation and signing parameters. */
const KEY_ALGORITHMS: Record<
  CertificateKeyType,
  (EcKeyGenParams | RsaHashedKeyGenParams) & { hash: string }
> = {
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
  // RSA for clients that still lack ECDSA; 2048 bits is the CA/Browser Forum minimum.
  'rsa-2048': {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
  'rsa-3072': {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 3072,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
};

/** The certificate key types `createCsr` accepts. */
export const CERTIFICATE_KEY_TYPES = Object.keys(KEY_ALGORITHMS) as CertificateKeyType[];

export interface AcmeIssueOptions {
  /** A client with a registered account. */
  readonly client: AcmeClient;
  /** Names for the certificate; the first is also its common name. `*.example.com` needs dns-01. */
  readonly domains: readonly string[];
  readonly solver: ChallengeSolver;
  readonly keyType?: CertificateKeyType;
  /** RFC 9773 certificate ID of the certificate this one replaces. */
  readonly replaces?: string;
  /** Certificate profile name, when the server offers profiles. */
  readonly profile?: string;
  /** Progress lines for a CLI (never secrets). */
  readonly onProgress?: (message: string) => void;
}

export interface AcmeIssuedCertificate {
  /** PEM chain, leaf first. */
  readonly chainPem: string;
  /** PEM PKCS#8 private key of the new certificate. */
  readonly keyPem: string;
  readonly info: CertificateInfo;
  readonly orderUrl: string;
}

const DNS_NAME =
  /^(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** The ACME identifiers for a list of names, checked before anything is sent. */
export function identifiersFor(domains: readonly string[]): AcmeIdentifier[] {
  if (domains.length === 0) throw invalidArgument('--domain', 'is required (at least one name)');
  if (domains.length > 100) throw invalidArgument('--domain', 'at most 100 names per certificate');
  return domains.map((d) => {
    if (isIP(d)) return { type: 'ip', value: d };
    if (d.length > 253 || !DNS_NAME.test(d))
      throw invalidArgument('--domain', `"${d.slice(0, 60)}" is not a DNS name`);
    return { type: 'dns', value: d.toLowerCase() };
  });
}

async function solveAuthorization(options: AcmeIssueOptions, authzUrl: string): Promise<void> {
  const { client, solver } = options;
  const { authz } = await client.getAuthorization(authzUrl);
  if (authz.status === 'valid') return; // reused from an earlier order
  const name = `${authz.wildcard ? '*.' : ''}${authz.identifier.value}`;
  if (authz.status !== 'pending')
    throw new EnsealError(ErrorCode.ACME_FAILED, `ACME: authorization for ${name} is ${authz.status}`);
  const challenge = authz.challenges.find((c) => c.type === solver.type);
  if (!challenge) {
    const offered = authz.challenges.map((c) => c.type).join(', ') || 'none';
    throw new EnsealError(
      ErrorCode.ACME_FAILED,
      `ACME: the server offers no ${solver.type} challenge for ${name} (offered: ${offered})`,
    );
  }
  const keyAuthorization = await client.keyAuthorization(challenge.token);
  const domain = authz.identifier.value;
  options.onProgress?.(`${name}: presenting ${solver.type}`);
  await solver.present(domain, challenge.token, keyAuthorization);
  try {
    await client.respondToChallenge(challenge.url);
    const final = await client.poll<AcmeAuthorization>(
      `authorization for ${name}`,
      async () => {
        const { authz: value, retryAfterMs } = await client.getAuthorization(authzUrl);
        return { value, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
      },
      (a) => a.status !== 'pending',
    );
    if (final.status !== 'valid') {
      const failed = final.challenges.find((c) => c.type === solver.type)?.error;
      if (failed) throw failed;
      throw new EnsealError(ErrorCode.ACME_FAILED, `ACME: authorization for ${name} is ${final.status}`);
    }
    options.onProgress?.(`${name}: validated`);
  } finally {
    await solver.cleanup(domain, challenge.token, keyAuthorization).catch((err: unknown) => {
      options.onProgress?.(`${name}: cleanup failed (${(err as Error).message})`);
    });
  }
}

async function pollOrder(
  client: AcmeClient,
  orderUrl: string,
  until: (o: AcmeOrder) => boolean,
): Promise<AcmeOrder> {
  const order = await client.poll<AcmeOrder>(
    'order',
    async () => {
      const { order: value, retryAfterMs } = await client.getOrder(orderUrl);
      return { value, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    },
    (o) => o.status === 'invalid' || until(o),
  );
  if (order.status === 'invalid')
    throw order.error ?? new EnsealError(ErrorCode.ACME_FAILED, 'ACME: the order became invalid');
  return order;
}

/** A CSR (PKCS#10, DER) for `domains`, signed by a new key pair of `keyType`. */
export async function createCsr(
  domains: readonly string[],
  keyType: CertificateKeyType = 'ec-p256',
): Promise<{ csrDer: Uint8Array; keyPem: string }> {
  x509.cryptoProvider.set(globalThis.crypto);
  const alg = KEY_ALGORITHMS[keyType];
  if (!alg) throw invalidArgument('key type', `must be one of ${CERTIFICATE_KEY_TYPES.join(', ')}`);
  const keys = (await globalThis.crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const names = domains.map((value) => ({ type: isIP(value) ? ('ip' as const) : ('dns' as const), value }));
  const first = domains[0] ?? '';
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    // A common name is limited to 64 characters; longer names live in the SAN only.
    ...(first.length <= 64 ? { name: `CN=${first}` } : {}),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension(names)],
  });
  return {
    csrDer: new Uint8Array(csr.rawData),
    keyPem: pemPrivateKey(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

/** Runs one order to a certificate. */
export async function issueAcmeCertificate(options: AcmeIssueOptions): Promise<AcmeIssuedCertificate> {
  const { client } = options;
  const identifiers = identifiersFor(options.domains);
  if (options.profile) {
    const offered = (await client.directory()).profiles ?? {};
    if (!Object.hasOwn(offered, options.profile)) {
      const names = Object.keys(offered).join(', ') || 'none';
      throw invalidArgument(
        '--profile',
        `"${options.profile}" is not offered by this server (offered: ${names})`,
      );
    }
  }
  const { url: orderUrl, order } = await client.newOrder({
    identifiers,
    ...(options.replaces ? { replaces: options.replaces } : {}),
    ...(options.profile ? { profile: options.profile } : {}),
  });
  options.onProgress?.(`order ${orderUrl}: ${order.authorizations.length} authorization(s)`);
  for (const authzUrl of order.authorizations) await solveAuthorization(options, authzUrl);
  await pollOrder(client, orderUrl, (o) => o.status !== 'pending');
  const { csrDer, keyPem } = await createCsr(
    identifiers.map((i) => i.value),
    options.keyType,
  );
  await client.finalize(order.finalize, csrDer);
  const done = await pollOrder(client, orderUrl, (o) => o.status === 'valid');
  if (!done.certificate)
    throw new EnsealError(ErrorCode.ACME_FAILED, 'ACME: valid order without a certificate URL');
  const chainPem = await client.downloadCertificate(done.certificate);
  options.onProgress?.('certificate issued');
  return { chainPem, keyPem, info: certificateInfo(chainPem), orderUrl };
}
