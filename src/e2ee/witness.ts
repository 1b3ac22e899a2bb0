/**
 * A witness core (c2sp.org/tlog-witness, `add-checkpoint`): for each log it knows, it keeps the latest
 * checkpoint it cosigned. Given a new signed checkpoint, the old size the submitter believes the witness
 * holds, and a consistency proof from that size, it verifies the log's signature, refuses rollback and
 * inconsistency, records the new checkpoint, and only then returns its cosignature.
 *
 * The HTTP status each failure maps to in the spec: unknown origin 404 (ERR_KEY_NOT_FOUND), bad or missing
 * log signature 403 (ERR_SIGNATURE_INVALID), old size above the checkpoint's 400 (ERR_INVALID_ARGUMENT), old
 * size not the one held 409 (ERR_E2EE_ROLLBACK, with `latestSize`), bad proof or mismatched roots 422
 * (ERR_E2EE_PROOF_INVALID). State updates go through a compare-and-set, so two concurrent submissions cannot
 * roll the witness back.
 */
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64Encode,
  constantTimeEqual,
  invalidArgument,
  malformed,
  utf8Encode,
} from '../crypto/index.js';
import { parseCheckpoint, parseDecimal, type Checkpoint } from './checkpoint.js';
import type { Cosigner } from './cosignature.js';
import { emptyRoot, verifyConsistency } from './merkle.js';
import { NOTE_MAX_BYTES, formatNote, openNote, parseNote, type NoteVerifier } from './signed-note.js';

/** A witness refused a checkpoint because the old size was not the one it holds (HTTP 409). */
export class WitnessConflictError extends EnsealError {
  readonly latestSize: number;

  constructor(latestSize: number, given: number) {
    super(
      ErrorCode.E2EE_ROLLBACK,
      `witness holds tree size ${latestSize}, not ${given}: resubmit with old size ${latestSize}`,
    );
    this.latestSize = latestSize;
    this.name = 'WitnessConflictError';
  }
}

/** Where a witness keeps its latest cosigned checkpoint per origin. `compareAndSet` must be atomic. */
export interface WitnessStateStore {
  get(origin: string): Promise<{ size: number; rootHash: Uint8Array } | undefined>;
  /** Sets the state when the stored size is still `expectedSize` (0 when none is stored); returns whether it did. */
  compareAndSet(
    origin: string,
    expectedSize: number,
    next: { size: number; rootHash: Uint8Array },
  ): Promise<boolean>;
}

/** A {@link WitnessStateStore} in memory. */
export class MemoryWitnessState implements WitnessStateStore {
  readonly #map = new Map<string, { size: number; rootHash: Uint8Array }>();

  get(origin: string): Promise<{ size: number; rootHash: Uint8Array } | undefined> {
    return Promise.resolve(this.#map.get(origin));
  }

  compareAndSet(
    origin: string,
    expectedSize: number,
    next: { size: number; rootHash: Uint8Array },
  ): Promise<boolean> {
    const cur = this.#map.get(origin)?.size ?? 0;
    if (cur !== expectedSize) return Promise.resolve(false);
    this.#map.set(origin, { size: next.size, rootHash: next.rootHash.slice() });
    return Promise.resolve(true);
  }
}

/** A parsed add-checkpoint request. */
export interface AddCheckpointRequest {
  readonly oldSize: number;
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note. */
  readonly checkpoint: string;
}

/** Parses an add-checkpoint request body: `old N`, up to 63 proof lines, a blank line, the checkpoint. */
export function parseAddCheckpointRequest(body: string): AddCheckpointRequest {
  const what = 'add-checkpoint request';
  if (typeof body !== 'string' || body.length > NOTE_MAX_BYTES)
    throw malformed(what, 'too large or not text');
  let start = 0;
  const next = (): string => {
    const end = body.indexOf('\n', start);
    if (end < 0) throw malformed(what, 'a line is not terminated');
    const line = body.slice(start, end);
    start = end + 1;
    return line;
  };
  const first = next();
  if (!first.startsWith('old ')) throw malformed(what, 'must start with "old <size>"');
  const oldSize = parseDecimal(first.slice(4), 'old size');
  const proof: Uint8Array[] = [];
  for (;;) {
    const line = next();
    if (line.length === 0) break;
    if (proof.length >= 63) throw malformed(what, 'more than 63 proof lines');
    const h = base64Decode(line, 'consistency proof hash');
    if (h.length !== 32) throw malformed(what, 'a proof hash is not 32 bytes');
    proof.push(h);
  }
  return { oldSize, proof, checkpoint: body.slice(start) };
}

/** Formats an add-checkpoint request body. */
export function formatAddCheckpointRequest(req: AddCheckpointRequest): string {
  return `old ${req.oldSize}\n${req.proof.map((p) => base64Encode(p) + '\n').join('')}\n${req.checkpoint}`;
}

/** The witness. */
export class Witness {
  readonly #cosigner: Cosigner;
  readonly #logs: ReadonlyMap<string, readonly NoteVerifier[]>;
  readonly #state: WitnessStateStore;
  readonly #now: () => number;

  constructor(options: {
    cosigner: Cosigner;
    /** Each log it witnesses: origin → the log's verifier keys. */
    logs: ReadonlyMap<string, readonly NoteVerifier[]>;
    state?: WitnessStateStore;
    /** POSIX seconds; defaults to the system clock. */
    now?: () => number;
  }) {
    this.#cosigner = options.cosigner;
    this.#logs = options.logs;
    this.#state = options.state ?? new MemoryWitnessState();
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  get name(): string {
    return this.#cosigner.name;
  }

  /**
   * Verifies and cosigns. Returns the cosignature line(s) to append to the checkpoint note (the response body
   * of add-checkpoint).
   */
  async addCheckpoint(req: AddCheckpointRequest): Promise<string> {
    if (!Number.isSafeInteger(req.oldSize) || req.oldSize < 0)
      throw invalidArgument('oldSize', 'must be a non-negative integer');
    const note = parseNote(req.checkpoint);
    const cp: Checkpoint = parseCheckpoint(note.text);
    const verifiers = this.#logs.get(cp.origin);
    if (verifiers === undefined)
      throw new EnsealError(ErrorCode.KEY_NOT_FOUND, `witness does not know the log "${cp.origin}"`);
    openNote(req.checkpoint, verifiers); // ERR_SIGNATURE_INVALID when no log signature verifies, or one fails
    if (req.oldSize > cp.size)
      throw invalidArgument('oldSize', `${req.oldSize} exceeds the checkpoint size ${cp.size}`);
    if (cp.size === 0 && !constantTimeEqual(cp.rootHash, emptyRoot())) {
      throw new EnsealError(ErrorCode.E2EE_PROOF_INVALID, 'an empty checkpoint must have the empty root');
    }
    const held = await this.#state.get(cp.origin);
    const heldSize = held?.size ?? 0;
    if (req.oldSize !== heldSize) throw new WitnessConflictError(heldSize, req.oldSize);
    if (req.oldSize === 0) {
      if (req.proof.length !== 0)
        throw new EnsealError(ErrorCode.E2EE_PROOF_INVALID, 'a proof from size 0 must be empty');
    } else {
      // Equal sizes: the empty proof and equal roots; larger: a consistency proof (ERR_E2EE_PROOF_INVALID).
      verifyConsistency(req.oldSize, cp.size, req.proof, held!.rootHash, cp.rootHash);
    }
    if (!(await this.#state.compareAndSet(cp.origin, heldSize, { size: cp.size, rootHash: cp.rootHash }))) {
      const now = await this.#state.get(cp.origin);
      throw new WitnessConflictError(now?.size ?? 0, req.oldSize);
    }
    const line = this.#cosigner.cosign(utf8Encode(note.text), this.#now());
    // Formatting the line alone: a one-signature note minus its text.
    const full = formatNote({ text: note.text, signatures: [line] });
    return full.slice(note.text.length + 1);
  }
}
