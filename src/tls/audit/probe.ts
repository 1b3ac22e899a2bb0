/**
 * Probes through Node's own TLS client (OpenSSL), for what needs a completed handshake: the certificate
 * chain and its verification, the key-exchange groups a server accepts (one `ecdhCurve` per connection),
 * the size of a DHE group, and ALPN. Each probe is one connection with its own timeout.
 */
import {
  connect,
  rootCertificates,
  type ConnectionOptions,
  type PeerCertificate,
  type TLSSocket,
} from 'node:tls';
import type { Endpoint } from './raw-probe.js';
import { connectFailed } from './raw-probe.js';

export interface HandshakeOptions {
  readonly minVersion?: ConnectionOptions['minVersion'];
  readonly maxVersion?: ConnectionOptions['maxVersion'];
  /** OpenSSL cipher string; legacy protocols need `@SECLEVEL=0` on the client side too. */
  readonly ciphers?: string;
  readonly ecdhCurve?: string;
  readonly alpn?: readonly string[];
}

export interface ProbeTarget extends Endpoint {
  readonly serverName: string | undefined;
  /** Extra trust anchors (PEM), added to Node's bundled roots. */
  readonly extraCa?: readonly string[];
  /** The path the HTTPS header check requests (`/` unless the target was a URL with a path). */
  readonly path?: string;
}

export interface HandshakeResult {
  readonly ok: true;
  readonly protocol: string | null;
  /** IANA (standard) name of the negotiated suite. */
  readonly cipher: string;
  /** The ephemeral key exchange: type (ECDH/DH), curve name and size in bits; empty for RSA key exchange. */
  readonly ephemeral: { type?: string; name?: string; size?: number };
  readonly alpn: string | false;
  readonly authorized: boolean;
  readonly authorizationError: string | undefined;
  /** Leaf first, then each issuer the server sent (or Node completed from the trust store). */
  readonly chain: readonly PeerCertificate[];
  readonly leaf: ReturnType<TLSSocket['getPeerX509Certificate']>;
}

export interface HandshakeRefused {
  readonly ok: false;
  /** OpenSSL/Node error code, e.g. ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE, or "timeout". */
  readonly reason: string;
}

function peerChain(socket: TLSSocket): PeerCertificate[] {
  const chain: PeerCertificate[] = [];
  let cert = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
  const seen = new Set<string>();
  while (cert !== undefined && cert.raw !== undefined && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(cert);
    cert = (cert as { issuerCertificate?: PeerCertificate }).issuerCertificate as typeof cert;
  }
  return chain;
}

/**
 * One full handshake with the given options. Resolves with what was negotiated, or with the refusal; rejects
 * only when the TCP connection itself fails. Verification never aborts the probe: the result says whether
 * the chain was trusted and why not.
 */
export function nodeHandshake(
  target: ProbeTarget,
  options: HandshakeOptions = {},
): Promise<HandshakeResult | HandshakeRefused> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let connected = false;
    const socket = connect({
      host: target.host,
      port: target.port,
      ...(target.serverName !== undefined ? { servername: target.serverName } : {}),
      rejectUnauthorized: false,
      // The name is checked separately (certificate-checks.ts): left to Node, a mismatch would also clear
      // `authorized`, and an untrusted chain could not be told apart from a wrong name.
      checkServerIdentity: () => undefined,
      ...(target.extraCa !== undefined && target.extraCa.length > 0
        ? { ca: [...rootCertificates, ...target.extraCa] }
        : {}),
      minVersion: options.minVersion ?? 'TLSv1',
      ...(options.maxVersion !== undefined ? { maxVersion: options.maxVersion } : {}),
      ciphers: options.ciphers ?? 'ALL:@SECLEVEL=0',
      ...(options.ecdhCurve !== undefined ? { ecdhCurve: options.ecdhCurve } : {}),
      ...(options.alpn !== undefined ? { ALPNProtocols: [...options.alpn] } : {}),
    });
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(
      () =>
        finish(() =>
          connected
            ? resolve({ ok: false, reason: 'timeout' })
            : reject(connectFailed(target, `no TCP connection within ${target.timeoutMs} ms`)),
        ),
      target.timeoutMs,
    );
    socket.once('connect', () => (connected = true));
    socket.once('secureConnect', () => {
      const cipher = socket.getCipher() as { standardName?: string; name: string };
      const result: HandshakeResult = {
        ok: true,
        protocol: socket.getProtocol(),
        cipher: cipher.standardName ?? cipher.name,
        ephemeral: (socket.getEphemeralKeyInfo() ?? {}) as HandshakeResult['ephemeral'],
        alpn: socket.alpnProtocol ?? false,
        authorized: socket.authorized,
        authorizationError:
          socket.authorizationError === undefined ? undefined : String(socket.authorizationError),
        chain: peerChain(socket),
        leaf: socket.getPeerX509Certificate(),
      };
      finish(() => resolve(result));
    });
    socket.once('error', (err: Error & { code?: string }) => {
      if (!connected) {
        const code = err.code ?? err.message;
        finish(() =>
          reject(
            connectFailed(
              target,
              code === 'ECONNREFUSED' ? 'connection refused (nothing listens on that port)' : code,
              err,
            ),
          ),
        );
      } else {
        finish(() => resolve({ ok: false, reason: err.code ?? err.message }));
      }
    });
    socket.once('close', () => finish(() => resolve({ ok: false, reason: 'closed' })));
  });
}

/** Groups probed one per connection, with the OpenSSL names `ecdhCurve` takes and their sizes. */
export const PROBED_GROUPS = [
  { name: 'X25519', tls13Only: false },
  { name: 'X448', tls13Only: false },
  { name: 'prime256v1', tls13Only: false },
  { name: 'secp384r1', tls13Only: false },
  { name: 'secp521r1', tls13Only: false },
  { name: 'ffdhe2048', tls13Only: true },
  { name: 'ffdhe3072', tls13Only: true },
  { name: 'ffdhe4096', tls13Only: true },
] as const;

export interface GroupResult {
  readonly name: string;
  /** Key size in bits as OpenSSL reports it (X25519: 253, P-256: 256, ffdhe2048: 2048). */
  readonly bits: number;
}

/**
 * Whether the server accepts `group`: a handshake offering only that group. Below TLS 1.3 only ECDHE suites
 * are offered, so a success proves the group was used.
 */
export async function probeGroup(
  target: ProbeTarget,
  group: (typeof PROBED_GROUPS)[number],
  bestProtocol: 'TLSv1.3' | 'TLSv1.2' | 'TLSv1.1' | 'TLSv1',
): Promise<GroupResult | undefined> {
  if (group.tls13Only && bestProtocol !== 'TLSv1.3') return undefined;
  const r = await nodeHandshake(target, {
    minVersion: bestProtocol,
    maxVersion: bestProtocol,
    ecdhCurve: group.name,
    ciphers: bestProtocol === 'TLSv1.3' ? 'ALL:@SECLEVEL=0' : 'kEECDH:@SECLEVEL=0',
  });
  if (!r.ok || r.ephemeral.size === undefined) return undefined;
  return { name: r.ephemeral.name ?? group.name, bits: r.ephemeral.size };
}
