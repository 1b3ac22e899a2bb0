/**
 * The ACME account: an ECDSA P-256 key, stored only encrypted, in enseal's passphrase envelope (Argon2id and
 * a key-committing AEAD, see formats/passphrase-envelope.ts), bound by associated data to its purpose so the
 * file cannot be swapped with another envelope sealed under the same passphrase. Whoever holds the account key
 * can revoke the account's certificates and order new ones, so it never touches disk in clear.
 * Next to it, `account.json` records (in clear: URLs are not secret) the account URL per ACME directory.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, importJWK, type JWK } from 'jose';
import { EnsealError, ErrorCode, utf8Decode } from '../crypto/index.js';
import { openWithPassphrase, sealWithPassphrase, type PassphraseSealOptions } from '../formats/index.js';
import { AcmeClient, type AcmeClientOptions, type ExternalAccountBinding } from './acme-client.js';
import { writeFileAtomic } from './certificate-files.js';

const KEY_FILE = 'account-key.enseal';
const ACCOUNTS_FILE = 'account.json';
const AAD = 'enseal acme account key v1';
const ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export interface AccountKeyOptions {
  /** Directory holding the encrypted account key and account.json (created 0700). */
  readonly dir: string;
  /** Passphrase protecting the account key. */
  readonly passphrase: string | Uint8Array;
  /** Argon2id cost for a new key file (the default is OWASP's; tests lower it). */
  readonly params?: PassphraseSealOptions['params'];
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw new EnsealError(ErrorCode.IO, `cannot read ${path}: ${(err as { code?: string }).code ?? 'error'}`);
  }
}

function checkPassphrase(passphrase: string | Uint8Array): void {
  if (passphrase.length === 0)
    throw new EnsealError(
      ErrorCode.KEK_MISSING,
      'the ACME account key needs a passphrase (--passphrase-file or ENSEAL_ACME_PASSPHRASE)',
    );
}

/**
 * Loads the account key from `dir`, or creates one (and its encrypted file) when there is none. A wrong
 * passphrase is ERR_DECRYPT_FAILED.
 */
export async function loadOrCreateAccountKey(
  options: AccountKeyOptions,
): Promise<{ key: CryptoKeyPair; created: boolean }> {
  checkPassphrase(options.passphrase);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const path = join(options.dir, KEY_FILE);
  const sealed = await readOptional(path);
  if (sealed !== undefined) {
    const jwk = JSON.parse(
      utf8Decode(await openWithPassphrase(options.passphrase, sealed.trim(), { aad: AAD })),
    ) as JWK;
    const privateKey = (await importJWK(jwk, 'ES256', { extractable: false })) as CryptoKey;
    const { d: _d, ...pub } = jwk;
    const publicKey = (await importJWK({ ...pub, key_ops: ['verify'] }, 'ES256')) as CryptoKey;
    return { key: { privateKey, publicKey }, created: false };
  }
  const key = (await globalThis.crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const jwk = await exportJWK(key.privateKey);
  const text = await sealWithPassphrase(options.passphrase, JSON.stringify(jwk), {
    aad: AAD,
    ...(options.params ? { params: options.params } : {}),
  });
  await writeFileAtomic(path, text + '\n', 0o600);
  return { key, created: true };
}

async function readAccounts(dir: string): Promise<Record<string, string>> {
  const text = await readOptional(join(dir, ACCOUNTS_FILE));
  if (text === undefined) return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return Object.fromEntries(
        Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'),
      );
    }
  } catch {
    // A damaged cache only costs one newAccount call, which finds the existing account again.
  }
  return {};
}

export interface OpenAccountOptions extends AccountKeyOptions, Omit<AcmeClientOptions, 'accountKey'> {
  /** The user agreed to the server's terms of service (newAccount requires it). */
  readonly termsOfServiceAgreed: boolean;
  /** Contact URLs, for example `mailto:ops@example.com`. */
  readonly contact?: readonly string[];
  /** External account binding, for CAs that require it (ZeroSSL, Google Trust Services, some private CAs). */
  readonly externalAccountBinding?: ExternalAccountBinding;
}

/**
 * A client for `directoryUrl` with its account ready: the key from `dir` (created on first use) and the account
 * URL from newAccount, recorded in `account.json`.
 */
export async function openAcmeAccount(options: OpenAccountOptions): Promise<AcmeClient> {
  const { key } = await loadOrCreateAccountKey(options);
  const client = new AcmeClient({ ...options, accountKey: key });
  // newAccount for a known key returns the existing account (RFC 8555 §7.3.1), so calling it on every run
  // costs one request and survives a server that forgot the account (a test server restarted, for one).
  const accounts = await readAccounts(options.dir);
  const url = await client.register({
    termsOfServiceAgreed: options.termsOfServiceAgreed,
    ...(options.contact ? { contact: options.contact } : {}),
    ...(options.externalAccountBinding ? { externalAccountBinding: options.externalAccountBinding } : {}),
  });
  if (accounts[options.directoryUrl] === url) return client;
  await writeFileAtomic(
    join(options.dir, ACCOUNTS_FILE),
    JSON.stringify({ ...accounts, [options.directoryUrl]: url }, null, 2) + '\n',
    0o600,
  );
  return client;
}
