/**
 * C2SP transparency-log checkpoints (c2sp.org/tlog-checkpoint): the note text `origin\nsize\nbase64(root)\n`
 * followed by optional non-empty extension lines. Parsed line by line without regular expressions, with a
 * size limit; the tree size is a decimal without leading zeros and at most 2^53 − 1 (JavaScript's safe
 * integers, far beyond any real log).
 */
import { base64Decode, base64Encode, invalidArgument, malformed } from '../crypto/index.js';
import { MERKLE_HASH_LENGTH } from './merkle.js';
import {
  NOTE_MAX_BYTES,
  openNote,
  signNote,
  type NoteSigner,
  type NoteVerifier,
  type VerifiedNote,
} from './signed-note.js';

/** At most this many extension lines (their use is discouraged by the spec). */
export const CHECKPOINT_MAX_EXTENSIONS = 16;

/** A tree head of a log: origin, size and root hash, plus any opaque extension lines. */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly extensions: readonly string[];
}

const WHAT = 'checkpoint';

/** Parses a decimal without sign or leading zeros into a safe integer. Throws ERR_MALFORMED. */
export function parseDecimal(text: string, what: string): number {
  if (text.length === 0 || text.length > 16) throw malformed(what, 'expected a decimal number');
  if (text.length > 1 && text.charCodeAt(0) === 0x30) throw malformed(what, 'leading zeros are not allowed');
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw malformed(what, 'expected a decimal number');
    n = n * 10 + (c - 0x30);
  }
  if (!Number.isSafeInteger(n)) throw malformed(what, 'number is too large');
  return n;
}

function checkOrigin(origin: string): void {
  if (typeof origin !== 'string' || origin.length === 0) throw malformed(WHAT, 'origin is empty');
  for (let i = 0; i < origin.length; i++) {
    const c = origin.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) throw malformed(WHAT, 'origin holds a control character');
  }
}

/** Parses a checkpoint body (a note text). Throws ERR_MALFORMED. */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string') throw malformed(WHAT, 'expected a string');
  if (text.length > NOTE_MAX_BYTES) throw malformed(WHAT, 'too large');
  if (!text.endsWith('\n')) throw malformed(WHAT, 'must end with a newline');
  const lines: string[] = [];
  let start = 0;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end);
    if (line.length === 0) throw malformed(WHAT, 'empty line');
    if (lines.length >= 3 + CHECKPOINT_MAX_EXTENSIONS) throw malformed(WHAT, 'too many extension lines');
    lines.push(line);
    start = end + 1;
  }
  if (lines.length < 3) throw malformed(WHAT, 'needs origin, size and root hash lines');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  checkOrigin(origin);
  const size = parseDecimal(sizeLine, 'checkpoint size');
  const rootHash = base64Decode(rootLine, 'checkpoint root hash');
  if (rootHash.length !== MERKLE_HASH_LENGTH)
    throw malformed(WHAT, `root hash must be ${MERKLE_HASH_LENGTH} bytes`);
  for (const e of extensions) checkOrigin(e);
  return { origin, size, rootHash, extensions };
}

/** Serialises a checkpoint body. */
export function formatCheckpoint(cp: Checkpoint): string {
  checkOrigin(cp.origin);
  if (!Number.isSafeInteger(cp.size) || cp.size < 0)
    throw invalidArgument('size', 'must be a non-negative safe integer');
  if (!(cp.rootHash instanceof Uint8Array) || cp.rootHash.length !== MERKLE_HASH_LENGTH) {
    throw invalidArgument('rootHash', `must be ${MERKLE_HASH_LENGTH} bytes`);
  }
  if (cp.extensions.length > CHECKPOINT_MAX_EXTENSIONS) throw invalidArgument('extensions', 'too many lines');
  for (const e of cp.extensions) {
    if (e.length === 0 || e.includes('\n'))
      throw invalidArgument('extensions', 'lines must be non-empty single lines');
    checkOrigin(e);
  }
  return [cp.origin, String(cp.size), base64Encode(cp.rootHash), ...cp.extensions].join('\n') + '\n';
}

/** Signs a checkpoint with the log's key (and any other signers), returning the signed note. */
export function signCheckpoint(cp: Checkpoint, signers: readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(cp), signers);
}

/** A checkpoint whose note verified, with the verified note (signatures included). */
export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: VerifiedNote;
}

/**
 * Verifies a signed checkpoint against verifiers (at least the log's key) and parses its body. Throws
 * ERR_SIGNATURE_INVALID or ERR_MALFORMED.
 */
export function openCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly NoteVerifier[],
): OpenedCheckpoint {
  const opened = openNote(note, verifiers);
  return { checkpoint: parseCheckpoint(opened.text), note: opened };
}
