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
import type { E2eeWitnessConfig } from './config.js';

const MAX_ANSWER = 64 * 1024;

export class WitnessClient {
  readonly name: string;
  readonly #url: string;
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
    this.#url = config.url.replace(/\/+$/, '') + '/add-checkpoint';
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
      let res: Response;
      let body: string;
      try {
        const proof = await proofFrom(oldSize);
        res = await fetch(this.#url, {
          method: 'POST',
          headers: { 'content-type': 'text/plain; charset=utf-8' },
          body: formatAddCheckpointRequest({ oldSize, proof, checkpoint: note }),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        body = (await res.text()).slice(0, MAX_ANSWER);
      } catch {
        this.#warn(`witness ${this.name} could not be reached`);
        return undefined;
      }
      if (res.status === 409) {
        try {
          this.#size = parseDecimal(body.trim(), 'witness size');
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
      const line = this.#verifiedLine(note, body);
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
