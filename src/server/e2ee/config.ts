/**
 * The e2ee service's settings (`[e2ee]` in the serve configuration): the log's origin, the witnesses the
 * server submits checkpoints to, the quorum it aims for, and how long undelivered messages and blobs live.
 */
import { hostname } from 'node:os';
import { invalidArgument } from '../../crypto/index.js';
import { checkKeyName, parseVerifierKey } from '../../e2ee/index.js';

export interface E2eeWitnessConfig {
  /** The witness's submission prefix: `add-checkpoint` is posted to `<url>/add-checkpoint`. */
  readonly url: string;
  /** The witness's cosignature verifier key (`name+hex id+base64(0x04 || key)`). */
  readonly verifierKey: string;
  /**
   * A PEM file of the CA(s) to trust for this witness's HTTPS certificate instead of the system's (a witness
   * run with `enseal e2ee witness --tls-cert` and a private CA).
   */
  readonly caFile?: string;
}

export interface E2eeOptions {
  /** The log's origin line (default `<hostname>/enseal-e2ee`). */
  readonly origin?: string;
  readonly witnesses?: readonly E2eeWitnessConfig[];
  /** Cosignatures the clients require (default: every configured witness). */
  readonly quorum?: number;
  /** How long undelivered messages and blobs are kept, in milliseconds (default 30 days). */
  readonly queueTtlMs?: number;
  /** How long each witness has to answer an add-checkpoint request, in milliseconds (default 5 s). */
  readonly witnessTimeoutMs?: number;
}

/** The settings with defaults applied and checked. */
export interface E2eeSettings {
  readonly origin: string;
  readonly witnesses: readonly E2eeWitnessConfig[];
  readonly quorum: number;
  readonly queueTtlMs: number;
  readonly witnessTimeoutMs: number;
}

const DAY = 24 * 60 * 60 * 1000;

export function e2eeSettings(options: E2eeOptions = {}): E2eeSettings {
  const origin = options.origin ?? `${hostname()}/enseal-e2ee`;
  try {
    checkKeyName(origin);
  } catch {
    throw invalidArgument(
      'e2ee.origin',
      'must be one line without spaces or "+" (for example example.com/e2ee)',
    );
  }
  const witnesses = options.witnesses ?? [];
  for (const w of witnesses) {
    if (typeof w?.url !== 'string' || !/^https?:\/\/[^\s]+$/.test(w.url))
      throw invalidArgument('e2ee.witnesses[].url', 'must be an http(s) URL');
    if (w.caFile !== undefined && !w.url.startsWith('https://'))
      throw invalidArgument('e2ee.witnesses[].ca_file', 'applies only to an https:// witness URL');
    const key = parseVerifierKey(w.verifierKey);
    if (key.type !== 0x04 || key.publicKey.length !== 32)
      throw invalidArgument(
        'e2ee.witnesses[].verifier_key',
        'must be an Ed25519 cosignature/v1 verifier key',
      );
  }
  const quorum = options.quorum ?? witnesses.length;
  if (!Number.isInteger(quorum) || quorum < 0 || quorum > witnesses.length)
    throw invalidArgument('e2ee.quorum', 'must be between 0 and the number of witnesses');
  const queueTtlMs = options.queueTtlMs ?? 30 * DAY;
  if (!Number.isSafeInteger(queueTtlMs) || queueTtlMs < 1000)
    throw invalidArgument('e2ee.queue_ttl', 'must be at least one second');
  const witnessTimeoutMs = options.witnessTimeoutMs ?? 5000;
  return { origin, witnesses, quorum, queueTtlMs, witnessTimeoutMs };
}
