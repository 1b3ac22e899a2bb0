/**
 * One chunk of a batch's symmetric work (AES-GCM or ChaCha20-Poly1305 per item), in a form that crosses a
 * MessagePort cheaply: every item's bytes packed into one buffer with offsets, because structured cloning a
 * view copies its whole backing buffer (Node's pooled buffers are 8 KiB slabs). The same function runs in a
 * batch worker thread and, when no worker is available, in the caller's thread.
 *
 * Keys travel as raw bytes in the message only (memory to memory, never to disk or a log); the worker wipes
 * its copies when the chunk is done.
 */
import { isEnsealError, wipe } from '../crypto/index.js';
import { formatVersioned } from './ciphertext.js';
import { decryptWith, encryptWith } from './key-material.js';
import type { KeyType } from './key-types.js';

/** Byte ranges `[offsets[i], offsets[i + 1])` of `bytes`, one per item. */
export interface Packed {
  readonly bytes: Uint8Array;
  readonly offsets: Uint32Array;
}

export interface BatchChunk {
  readonly kind: 'encrypt' | 'decrypt';
  readonly type: KeyType;
  /** The distinct data keys of the chunk; `keyIndex[i]` names item i's. */
  readonly keys: Uint8Array[];
  readonly keyIndex: Uint32Array;
  /** Key version per item (encrypt: written into the `vault:v<N>:` text). */
  readonly versions: Uint32Array;
  /** Plaintexts (encrypt) or sealed bytes (decrypt). */
  readonly data: Packed;
  readonly aad: Packed;
}

/** Per item: a ciphertext text (encrypt), an index into the packed plaintexts (decrypt), or an error. */
export interface ChunkResult {
  readonly texts?: (string | undefined)[];
  readonly plain?: Packed;
  /** Item index to `[code, message]`, for the items that failed. */
  readonly errors: [number, string, string][];
}

export function pack(parts: readonly Uint8Array[]): Packed {
  const offsets = new Uint32Array(parts.length + 1);
  let total = 0;
  for (let i = 0; i < parts.length; i++) {
    offsets[i] = total;
    total += parts[i]!.length;
  }
  offsets[parts.length] = total;
  const bytes = new Uint8Array(total);
  for (let i = 0; i < parts.length; i++) bytes.set(parts[i]!, offsets[i]!);
  return { bytes, offsets };
}

export function unpacked(p: Packed, i: number): Uint8Array {
  return p.bytes.subarray(p.offsets[i]!, p.offsets[i + 1]!);
}

export function runChunk(chunk: BatchChunk): ChunkResult {
  const n = chunk.keyIndex.length;
  const errors: [number, string, string][] = [];
  const fail = (i: number, err: unknown) =>
    errors.push(isEnsealError(err) ? [i, err.code, err.message] : [i, 'ERR_INTERNAL', 'internal error']);
  if (chunk.kind === 'encrypt') {
    const texts: (string | undefined)[] = new Array<string | undefined>(n);
    for (let i = 0; i < n; i++) {
      try {
        const sealed = encryptWith(
          chunk.type,
          chunk.keys[chunk.keyIndex[i]!]!,
          unpacked(chunk.data, i),
          unpacked(chunk.aad, i),
        );
        texts[i] = formatVersioned(chunk.versions[i]!, sealed);
      } catch (err) {
        fail(i, err);
      }
    }
    return { texts, errors };
  }
  const plains: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    try {
      plains.push(
        decryptWith(
          chunk.type,
          chunk.keys[chunk.keyIndex[i]!]!,
          unpacked(chunk.data, i),
          unpacked(chunk.aad, i),
        ),
      );
    } catch (err) {
      plains.push(new Uint8Array(0));
      fail(i, err);
    }
  }
  const plain = pack(plains);
  for (const p of plains) wipe(p);
  return { plain, errors };
}
