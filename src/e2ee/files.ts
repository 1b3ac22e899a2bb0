/**
 * Files shared in a group, streamed in constant memory. Each file gets a fresh random 32-byte key; its content is
 * sealed with age's STREAM (64 KiB chunks of ChaCha20-Poly1305 with a counter-and-last-flag nonce, from
 * src/formats), and the ciphertext is cut into relay blob parts. The file key is wrapped with AES-256-GCM under a
 * key exported from the group's MLS epoch (`exportSecret`), with the group id, the epoch, the blob id and the
 * size as associated data; the wrapped key travels in the group's file message. A member removed before the
 * share never has that epoch's exporter secret, so it cannot unwrap the key.
 */
import { AgeStreamDecryptor, AgeStreamEncryptor } from '../formats/index.js';
import {
  aeadOpenWithNonce,
  aeadSealWithRandomNonce,
  decryptFailed,
  invalidArgument,
  randomBytes,
  wipe,
} from '../crypto/index.js';
import { Writer } from './wire.js';

/** Size of one uploaded blob part (the relay takes at most 4 MiB per chunk). */
export const FILE_PART_BYTES = 1024 * 1024;
/** The MLS exporter label of the file-key wrapping key. */
export const FILE_EXPORTER_LABEL = 'enseal e2ee file key wrap v1';

/** Anything that yields byte chunks: an async iterable (Node streams), an iterable, or a web ReadableStream. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | ReadableStream<Uint8Array>;

/** Iterates any {@link ByteSource}. */
export async function* iterateBytes(source: ByteSource): AsyncGenerator<Uint8Array> {
  if (
    typeof (source as ReadableStream<Uint8Array>).getReader === 'function' &&
    !(Symbol.asyncIterator in source)
  ) {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
  for await (const chunk of source as AsyncIterable<Uint8Array>) {
    if (!(chunk instanceof Uint8Array)) throw invalidArgument('file', 'must yield bytes');
    yield chunk;
  }
}

/** A fresh file key. */
export function generateFileKey(): Uint8Array {
  return randomBytes(32);
}

/**
 * Encrypts a stream into ciphertext parts of `partSize` bytes (the last may be shorter). Memory stays at one
 * part plus one STREAM chunk whatever the input's size.
 */
export async function* encryptFileStream(
  fileKey: Uint8Array,
  source: ByteSource,
  partSize = FILE_PART_BYTES,
): AsyncGenerator<Uint8Array> {
  if (fileKey.length !== 32) throw invalidArgument('fileKey', 'must be 32 bytes');
  if (!Number.isSafeInteger(partSize) || partSize < 1024 || partSize > 4 * 1024 * 1024)
    throw invalidArgument('partSize', 'must be 1 KiB to 4 MiB');
  const enc = new AgeStreamEncryptor(fileKey);
  let part = new Uint8Array(partSize);
  let length = 0;
  const ready: Uint8Array[] = [];
  const emit = (bytes: Uint8Array): void => {
    let offset = 0;
    while (offset < bytes.length) {
      const n = Math.min(bytes.length - offset, partSize - length);
      part.set(bytes.subarray(offset, offset + n), length);
      length += n;
      offset += n;
      if (length === partSize) {
        ready.push(part);
        part = new Uint8Array(partSize);
        length = 0;
      }
    }
  };
  for await (const chunk of iterateBytes(source)) {
    enc.push(chunk, emit);
    while (ready.length > 0) yield ready.shift()!;
  }
  enc.finish(emit);
  while (ready.length > 0) yield ready.shift()!;
  if (length > 0) yield part.slice(0, length);
}

/**
 * Decrypts ciphertext parts back into plaintext chunks, each released only after its tag verified. A truncated,
 * reordered or altered stream is ERR_DECRYPT_FAILED (with no detail).
 */
export async function* decryptFileStream(fileKey: Uint8Array, parts: ByteSource): AsyncGenerator<Uint8Array> {
  if (fileKey.length !== 32) throw invalidArgument('fileKey', 'must be 32 bytes');
  const dec = new AgeStreamDecryptor(fileKey);
  const out: Uint8Array[] = [];
  const emit = (bytes: Uint8Array): void => {
    if (bytes.length > 0) out.push(bytes);
  };
  for await (const part of iterateBytes(parts)) {
    dec.push(part, emit);
    while (out.length > 0) yield out.shift()!;
  }
  dec.finish(emit);
  while (out.length > 0) yield out.shift()!;
}

/** What the wrapped file key is bound to. */
export interface FileKeyContext {
  readonly groupId: Uint8Array;
  readonly epoch: number;
  readonly blobId: string;
  /** Ciphertext size in bytes. */
  readonly size: number;
}

function wrapAad(ctx: FileKeyContext): Uint8Array {
  return new Writer()
    .string8('enseal e2ee file key v1')
    .bytes8(ctx.groupId)
    .u64(ctx.epoch)
    .string8(ctx.blobId)
    .u64(ctx.size)
    .finish();
}

/** Wraps a file key under the epoch's exported wrapping key (32 bytes). */
export function wrapFileKey(wrappingKey: Uint8Array, fileKey: Uint8Array, ctx: FileKeyContext): Uint8Array {
  return aeadSealWithRandomNonce('aes-256-gcm', wrappingKey, fileKey, wrapAad(ctx));
}

/** Unwraps a file key; any mismatch (wrong epoch key, other blob, other size) is ERR_DECRYPT_FAILED. */
export function unwrapFileKey(wrappingKey: Uint8Array, wrapped: Uint8Array, ctx: FileKeyContext): Uint8Array {
  let key: Uint8Array;
  try {
    key = aeadOpenWithNonce('aes-256-gcm', wrappingKey, wrapped, wrapAad(ctx));
  } catch {
    throw decryptFailed();
  }
  if (key.length !== 32) {
    wipe(key);
    throw decryptFailed();
  }
  return key;
}
