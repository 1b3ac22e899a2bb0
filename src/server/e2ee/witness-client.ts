/**
 * Submits checkpoints to one witness (C2SP tlog-witness `add-checkpoint`) and checks the cosignature it returns.
 * Submissions to one witness run one at a time, because each must name the size the witness last cosigned;
 * that size is learnt from the witness itself (a 409 answer carries it), so a restarted node needs no state.
 */
import {
  ed25519CosignatureVerifier,
  formatAddCheckpointRequest,
  openNote,
  parseDecimal,
  parseVerifierKey,
  type CosignatureVerifier,
} from '../../e2ee/index.js';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { invalidArgument } from '../../crypto/index.js';
import type { E2eeWitnessConfig } from './config.js';

const MAX_ANSWER = 64 * 1024;

/**
 * POSTs `body` and reads at most MAX_ANSWER bytes of the answer: a witness is another party, so a huge or
 * endless answer must cost this node nothing. `ca` replaces the system's trust anchors for HTTPS.
 */
function post(
  url: URL,
  body: string,
  ca: Buffer | undefined,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, answer?: { status: number; text: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error !== undefined) reject(error);
      else resolve(answer!);
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) },
        ...(ca !== undefined ? { ca } : {}),
      },
      (res) => {
        const parts: Buffer[] = [];
        let size = 0;
        const answer = () => ({
          status: res.statusCode ?? 0,
          text: Buffer.concat(parts).subarray(0, MAX_ANSWER).toString('utf8'),
        });
        res.on('data', (d: Buffer) => {
          parts.push(d);
          size += d.length;
          // Enough read: the rest is not wanted, whatever it is.
          if (size >= MAX_ANSWER) {
            finish(undefined, answer());
            res.destroy();
          }
        });
        res.on('end', () => finish(undefined, answer()));
        res.on('error', (err) => finish(err));
      },
    );
    // The whole exchange, not just each idle gap, must fit in the witness's time.
    const timer = setTimeout(() => {
      finish(new Error('timed out'));
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => finish(err));
    req.end(body);
  });
}

export class WitnessClient {
  readonly name: string;
  readonly #url: URL;
  readonly #ca: Buffer | undefined;
  readonly #verifier: CosignatureVerifier;
  readonly #timeoutMs: number;
  readonly #warn: (message: string) => void;
  /** The size this witness last cosigned, as far as this node knows (0 until it is learnt). */
  #size = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(config: E2eeWitnessConfig, timeoutMs: number, warn: (message: string) => void) {
    const key = parseVerifierKey(config.verifierKey);
    this.name = key.name;
    this.#verifier = ed25519CosignatureVerifier(key.name, key.publicKey);
    this.#url = new URL(config.url.replace(/\/+$/, '') + '/add-checkpoint');
    try {
      this.#ca = config.caFile === undefined ? undefined : readFileSync(config.caFile);
    } catch {
      throw invalidArgument('e2ee.witnesses[].ca_file', `cannot read ${config.caFile}`);
    }
    this.#timeoutMs = timeoutMs;
    this.#warn = warn;
  }

  /**
   * Asks the witness to cosign `note` (of tree size `size`); `proofFrom(old)` gives the consistency proof from
   * the witness's size. Resolves to the verified cosignature line, or undefined (the failure is logged).
   */
  submit(
    size: number,
    note: string,
    proofFrom: (oldSize: number) => Promise<Uint8Array[]>,
  ): Promise<string | undefined> {
    const run = this.#queue.then(() => this.#submit(size, note, proofFrom));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #submit(
    size: number,
    note: string,
    proofFrom: (oldSize: number) => Promise<Uint8Array[]>,
  ): Promise<string | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const oldSize = this.#size;
      if (oldSize > size) return undefined; // it already cosigned a larger tree
      let res: { status: number; text: string };
      try {
        const proof = await proofFrom(oldSize);
        res = await post(
          this.#url,
          formatAddCheckpointRequest({ oldSize, proof, checkpoint: note }),
          this.#ca,
          this.#timeoutMs,
        );
      } catch {
        this.#warn(`witness ${this.name} could not be reached`);
        return undefined;
      }
      if (res.status === 409) {
        try {
          this.#size = parseDecimal(res.text.trim(), 'witness size');
        } catch {
          this.#warn(`witness ${this.name} answered 409 without a tree size`);
          return undefined;
        }
        continue;
      }
      if (res.status !== 200) {
        this.#warn(`witness ${this.name} refused the checkpoint of size ${size} (HTTP ${res.status})`);
        return undefined;
      }
      const line = this.#verifiedLine(note, res.text);
      if (line === undefined) {
        this.#warn(`witness ${this.name} returned no valid cosignature`);
        return undefined;
      }
      this.#size = size;
      return line;
    }
    return undefined;
  }

  /** The witness's own line among the answer's, if its cosignature verifies over the checkpoint. */
  #verifiedLine(note: string, body: string): string | undefined {
    for (const line of body.split('\n')) {
      if (!line.startsWith('\u2014 ')) continue;
      try {
        openNote(`${note}${line}\n`, [this.#verifier]);
        return `${line}\n`;
      } catch {
        // another key's line, or a bad one: keep looking
      }
    }
    return undefined;
  }
}
