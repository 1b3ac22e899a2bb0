/**
 * Protocol and cipher-suite enumeration with raw ClientHellos. For each protocol version the probe offers
 * every suite the table knows for it; the server picks one; that suite is removed from the offer and the
 * probe repeats until the server refuses. n accepted suites cost n + 1 connections per protocol, and the
 * protocols run side by side.
 */
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import { CIPHER_SUITES, suiteById, type CipherSuite } from './cipher-suites.js';
import {
  Version,
  alertName,
  encodeClientHello,
  encodeSsl2ClientHello,
  type ServerHello,
} from './client-hello.js';
import { rawProbe, type Endpoint, type ProbeOutcome } from './raw-probe.js';

/** Protocol names as the report prints them. */
export const PROTOCOLS = ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type ProtocolName = (typeof PROTOCOLS)[number];

const WIRE: Record<Exclude<ProtocolName, 'SSLv2'>, number> = {
  SSLv3: Version.SSL3,
  'TLSv1.0': Version.TLS10,
  'TLSv1.1': Version.TLS11,
  'TLSv1.2': Version.TLS12,
  'TLSv1.3': Version.TLS13,
};

export interface ProtocolScan {
  readonly protocol: ProtocolName;
  readonly supported: boolean;
  /** Accepted suites in the order the server picked them (its preference when it enforces one). */
  readonly suites: readonly CipherSuite[];
  /** The server chose DEFLATE compression (CRIME). */
  readonly compression: boolean;
  /** The server echoed renegotiation_info (TLS 1.2 and older). */
  readonly secureRenegotiation: boolean;
  /** Why enumeration stopped, for the report: an alert name, "closed", or "timeout". */
  readonly refusal: string;
  /** 'server' when the server picks by its own preference, 'client' when it follows the offer; null below two suites. */
  readonly cipherOrder: 'server' | 'client' | null;
}

export interface ScanContext extends Endpoint {
  /** SNI name, or undefined for an IP literal. */
  readonly serverName: string | undefined;
  /** Set when the audit gave up (deadline): lanes stop before their next connection. */
  readonly stop?: { readonly stopped: boolean };
}

/** The suites worth offering for a protocol. */
export function offerFor(protocol: Exclude<ProtocolName, 'SSLv2'>): number[] {
  if (protocol === 'TLSv1.3') return CIPHER_SUITES.filter((s) => s.tls13).map((s) => s.id);
  const old = protocol !== 'TLSv1.2';
  return CIPHER_SUITES.filter((s) => !s.tls13 && !(old && s.tls12Only)).map((s) => s.id);
}

function refusal(outcome: ProbeOutcome): string {
  if (outcome.kind === 'alert') return alertName(outcome.description);
  return outcome.kind;
}

function helloFor(ctx: ScanContext, protocol: Exclude<ProtocolName, 'SSLv2'>, suites: readonly number[]) {
  return encodeClientHello({
    version: WIRE[protocol],
    suites,
    ...(ctx.serverName !== undefined ? { serverName: ctx.serverName } : {}),
    offerCompression: protocol !== 'TLSv1.3',
  });
}

/** The ServerHello when it accepts `protocol`; undefined when the server negotiated something else or refused. */
function acceptance(
  outcome: ProbeOutcome,
  protocol: Exclude<ProtocolName, 'SSLv2'>,
  offered: readonly number[],
): ServerHello | undefined {
  if (outcome.kind !== 'server-hello') return undefined;
  if (outcome.version !== WIRE[protocol]) return undefined;
  if (!offered.includes(outcome.cipherSuite)) {
    throw new EnsealError(
      ErrorCode.TLS_AUDIT_FAILED,
      `the server picked cipher suite 0x${outcome.cipherSuite.toString(16)}, which was not offered (broken TLS stack)`,
    );
  }
  return outcome;
}

/** Enumerates one protocol (SSLv3 to TLS 1.3). */
export async function scanProtocol(
  ctx: ScanContext,
  protocol: Exclude<ProtocolName, 'SSLv2'>,
): Promise<ProtocolScan> {
  let offer = offerFor(protocol);
  const suites: CipherSuite[] = [];
  let compression = false;
  let secureRenegotiation = false;
  let why = 'all offered suites accepted';
  while (offer.length > 0) {
    if (ctx.stop?.stopped === true) throw new EnsealError(ErrorCode.TLS_AUDIT_FAILED, 'audit stopped');
    const outcome = await rawProbe(ctx, helloFor(ctx, protocol, offer));
    const hello = acceptance(outcome, protocol, offer);
    if (hello === undefined) {
      why =
        outcome.kind === 'server-hello'
          ? `negotiated 0x${outcome.version.toString(16)} instead`
          : refusal(outcome);
      break;
    }
    if (suites.length === 0) {
      compression = hello.compression !== 0;
      secureRenegotiation = hello.secureRenegotiation;
    }
    suites.push(suiteById(hello.cipherSuite)!);
    offer = offer.filter((id) => id !== hello.cipherSuite);
  }
  const cipherOrder = await orderOf(ctx, protocol, suites);
  return {
    protocol,
    supported: suites.length > 0,
    suites,
    compression,
    secureRenegotiation,
    refusal: why,
    cipherOrder,
  };
}

/**
 * Offers the accepted suites in reverse order: a server that enforces its own preference picks its favourite
 * (the first it picked before) again; one that follows the client picks the first offered.
 */
async function orderOf(
  ctx: ScanContext,
  protocol: Exclude<ProtocolName, 'SSLv2'>,
  suites: readonly CipherSuite[],
): Promise<'server' | 'client' | null> {
  if (suites.length < 2) return null;
  const reversed = suites.map((s) => s.id).reverse();
  const outcome = await rawProbe(ctx, helloFor(ctx, protocol, reversed));
  const hello = acceptance(outcome, protocol, reversed);
  if (hello === undefined) return null;
  return hello.cipherSuite === suites[0]!.id ? 'server' : 'client';
}

/** SSLv2: one CLIENT-HELLO; only an SSLv2 server answers with an SSLv2 SERVER-HELLO. */
export async function scanSsl2(ctx: ScanContext): Promise<ProtocolScan> {
  let outcome: ProbeOutcome;
  try {
    outcome = await rawProbe(ctx, encodeSsl2ClientHello(), true);
  } catch (err) {
    // A TLS-only server may answer an SSLv2 hello with a TLS alert or bytes we read as garbage: not SSLv2.
    if (err instanceof EnsealError && err.code === ErrorCode.MALFORMED) outcome = { kind: 'closed' };
    else throw err;
  }
  const supported = outcome.kind === 'ssl2-server-hello' && outcome.cipherSpecs.length > 0;
  return {
    protocol: 'SSLv2',
    supported,
    suites: [],
    compression: false,
    secureRenegotiation: false,
    refusal: supported ? '' : refusal(outcome),
    cipherOrder: null,
  };
}
