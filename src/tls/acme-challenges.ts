/**
 * Challenge responders: what proves to an ACME server that we control a name.
 *
 * - http-01 (RFC 8555 §8.3): the key authorization at `/.well-known/acme-challenge/<token>` on port 80, served
 *   by a small standalone HTTP server or written as a file under an existing web server's root.
 * - tls-alpn-01 (RFC 8737): a TLS server that, for the ALPN protocol `acme-tls/1` and the name being
 *   validated, presents a self-signed certificate carrying the critical acmeIdentifier extension
 *   (1.3.6.1.5.5.7.1.31) whose value is SHA-256 of the key authorization.
 * - dns-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.<name>`; DNS providers differ, so a user command
 *   (the hook) publishes and removes it, told what to do through environment variables.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type Server as TlsServer,
} from 'node:tls';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { EnsealError, ErrorCode, invalidArgument, sha256, utf8Encode } from '../crypto/index.js';
import { writeFileAtomic } from '../files/index.js';
import { dns01TxtValue } from './acme-client.js';
import { pemPrivateKey, randomSerial } from './certificate-files.js';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01';

/** Puts a challenge response in place and takes it away again. */
export interface ChallengeSolver {
  readonly type: ChallengeType;
  /** Makes the response for `domain` visible (`domain` is the name without a `*.` wildcard prefix). */
  present(domain: string, token: string, keyAuthorization: string): Promise<void>;
  /** Removes it; called whether validation succeeded or not. */
  cleanup(domain: string, token: string, keyAuthorization: string): Promise<void>;
  /** Stops any listener the solver opened. */
  close(): Promise<void>;
}

const ACME_PATH = '/.well-known/acme-challenge/';
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

function listen(server: HttpServer | TlsServer, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new EnsealError(
          ErrorCode.IO,
          `cannot listen on ${host ?? '*'}:${port} for the ACME challenge (${err.code ?? 'error'})${
            err.code === 'EACCES' ? '; ports below 1024 need privileges (or use --webroot / dns-01)' : ''
          }`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
}

function closeServer(server: HttpServer | TlsServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    (server as HttpServer).closeAllConnections?.();
  });
}

/**
 * http-01 served by a standalone listener: it answers only challenge paths, with exactly the key
 * authorization, and 404 to everything else.
 */
export async function http01Responder(options: {
  port: number;
  host?: string;
}): Promise<ChallengeSolver & { readonly port: number }> {
  const responses = new Map<string, string>();
  const server = createHttpServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const token = path.startsWith(ACME_PATH) ? path.slice(ACME_PATH.length) : '';
    const body = req.method === 'GET' || req.method === 'HEAD' ? responses.get(token) : undefined;
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await listen(server, options.port, options.host);
  const address = server.address();
  return {
    type: 'http-01',
    port: typeof address === 'object' && address ? address.port : options.port,
    async present(_domain, token, keyAuthorization) {
      if (!TOKEN.test(token)) throw invalidArgument('ACME token', 'must be base64url');
      responses.set(token, keyAuthorization);
    },
    async cleanup(_domain, token) {
      responses.delete(token);
    },
    close: () => closeServer(server),
  };
}

/** http-01 through an existing web server: the response is a file under `<webroot>/.well-known/acme-challenge/`. */
export function http01Webroot(webroot: string): ChallengeSolver {
  const dir = join(webroot, ...ACME_PATH.split('/').filter(Boolean));
  return {
    type: 'http-01',
    async present(_domain, token, keyAuthorization) {
      // The token comes from the server; checking it keeps a hostile one from naming a path outside `dir`.
      if (!TOKEN.test(token)) throw invalidArgument('ACME token', 'must be base64url');
      await mkdir(dir, { recursive: true, mode: 0o755 });
      // Written atomically (random temporary name, exclusive create, rename): the webroot may be writable
      // by the web application, and a plain open of the server-chosen name would follow a symlink there.
      await writeFileAtomic(join(dir, token), keyAuthorization, 0o644);
    },
    async cleanup(_domain, token) {
      if (TOKEN.test(token)) await rm(join(dir, token), { force: true });
    },
    close: async () => undefined,
  };
}

const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/**
 * The tls-alpn-01 validation certificate for `domain` (RFC 8737 §3): self-signed, one dNSName, and the
 * critical acmeIdentifier extension holding the DER OCTET STRING of SHA-256(key authorization).
 */
export async function tlsAlpn01Certificate(
  domain: string,
  keyAuthorization: string,
): Promise<{ cert: string; key: string }> {
  x509.cryptoProvider.set(globalThis.crypto);
  const keys = (await globalThis.crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const digest = sha256(utf8Encode(keyAuthorization));
  const value = new Uint8Array(2 + digest.length);
  value.set([0x04, digest.length]); // OCTET STRING, 32 bytes
  value.set(digest, 2);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: 'CN=ACME tls-alpn-01 challenge',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 7 * 86_400_000),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: isIP(domain) ? 'ip' : 'dns', value: domain }]),
      new x509.Extension(ACME_IDENTIFIER_OID, true, value),
    ],
  });
  return {
    cert: cert.toString('pem') + '\n',
    key: pemPrivateKey(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

/**
 * The server name a validator sends for `identifier`: the name itself, or for an IP address its reverse-DNS
 * name (RFC 8738 §6), since SNI cannot carry an address.
 */
export function sniName(identifier: string): string {
  if (isIPv4(identifier)) return `${identifier.split('.').reverse().join('.')}.in-addr.arpa`;
  if (isIPv6(identifier)) {
    const [head = '', tail = ''] = identifier.split('::');
    const groups = (part: string) => (part === '' ? [] : part.split(':'));
    const h = groups(head);
    const t = groups(tail);
    const full = identifier.includes('::')
      ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
      : h;
    const nibbles = full.map((g) => g.padStart(4, '0')).join('');
    return `${nibbles.split('').reverse().join('.')}.ip6.arpa`;
  }
  return identifier.toLowerCase();
}

/**
 * tls-alpn-01 served by a TLS listener. Only handshakes that offer `acme-tls/1` for a name with a pending
 * challenge get a certificate; everything else fails the handshake.
 */
export async function tlsAlpn01Responder(options: {
  port: number;
  host?: string;
}): Promise<ChallengeSolver & { readonly port: number }> {
  const contexts = new Map<string, SecureContext>();
  const server = createTlsServer({
    ALPNProtocols: ['acme-tls/1'],
    SNICallback: (servername, cb) => cb(null, contexts.get(servername.toLowerCase())),
  });
  server.on('secureConnection', (socket) => socket.end());
  server.on('tlsClientError', () => undefined);
  await listen(server, options.port, options.host);
  const address = server.address();
  return {
    type: 'tls-alpn-01',
    port: typeof address === 'object' && address ? address.port : options.port,
    async present(domain, _token, keyAuthorization) {
      const { cert, key } = await tlsAlpn01Certificate(domain, keyAuthorization);
      contexts.set(sniName(domain), createSecureContext({ cert, key }));
    },
    async cleanup(domain) {
      contexts.delete(sniName(domain));
    },
    close: () => closeServer(server),
  };
}

/** RFC 8555 §8.4: where the dns-01 TXT record goes. */
export function dns01RecordName(domain: string): string {
  return `_acme-challenge.${domain.replace(/^\*\./, '')}`;
}

export interface DnsHookOptions {
  /** A shell command; it gets ENSEAL_ACME_ACTION=present|cleanup, ENSEAL_ACME_DOMAIN, ENSEAL_ACME_TXT_NAME, ENSEAL_ACME_TXT_VALUE. */
  readonly command: string;
  /** Longest the hook may run (default 120 s). */
  readonly timeoutMs?: number;
  /** Pause after a successful `present`, for DNS propagation (default 0). */
  readonly propagationDelayMs?: number;
}

function runHook(options: DnsHookOptions, env: Record<string, string>): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', options.command], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 2000) stderr += String(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new EnsealError(ErrorCode.ACME_FAILED, `dns-01 hook could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const why = signal
        ? `was killed (${signal}${signal === 'SIGKILL' ? `, timeout ${timeoutMs / 1000} s` : ''})`
        : `exited ${code}`;
      const tail = stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 300);
      reject(
        new EnsealError(
          ErrorCode.ACME_FAILED,
          `dns-01 hook (${env.ENSEAL_ACME_ACTION}) ${why}${tail ? `: ${tail}` : ''}`,
        ),
      );
    });
  });
}

/** dns-01 through a user command that publishes and removes the TXT record. */
export function dns01Hook(options: DnsHookOptions): ChallengeSolver {
  if (options.command.trim() === '') throw invalidArgument('--dns-hook', 'must be a command');
  const env = (action: string, domain: string, keyAuthorization: string) => ({
    ENSEAL_ACME_ACTION: action,
    ENSEAL_ACME_DOMAIN: domain,
    ENSEAL_ACME_TXT_NAME: dns01RecordName(domain),
    ENSEAL_ACME_TXT_VALUE: dns01TxtValue(keyAuthorization),
  });
  return {
    type: 'dns-01',
    async present(domain, _token, keyAuthorization) {
      await runHook(options, env('present', domain, keyAuthorization));
      if (options.propagationDelayMs) await new Promise((r) => setTimeout(r, options.propagationDelayMs));
    },
    async cleanup(domain, _token, keyAuthorization) {
      await runHook(options, env('cleanup', domain, keyAuthorization));
    },
    close: async () => undefined,
  };
}
