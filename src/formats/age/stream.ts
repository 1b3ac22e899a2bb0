/**
 * age's STREAM payload: the plaintext in 64 KiB chunks, each sealed with ChaCha20-Poly1305 under the payload
 * key, nonce = 11-byte big-endian chunk counter ‖ last-chunk flag. The flag makes truncation at a chunk
 * boundary detectable; an empty final chunk is allowed only when the whole payload is empty.
 *
 * Both directions are incremental and keep at most one chunk buffered, so memory stays constant whatever the
 * file size. Decryption releases a chunk only after its tag verified; since whether a chunk is the last
 * depends on what follows it, the decryptor holds one sealed chunk back until more data or the end arrives.
 */
import { aeadOpen, aeadSealDetached, decryptFailed, EnsealError, ErrorCode } from '../../crypto/index.js';

export const CHUNK_SIZE = 64 * 1024;
const TAG = 16;
const SEALED_CHUNK = CHUNK_SIZE + TAG;
const EMPTY = new Uint8Array(0);

function nonceFor(counter: number, last: boolean): Uint8Array {
  if (counter >= 2 ** 53) throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'age payload is too large');
  const nonce = new Uint8Array(12);
  let c = counter;
  for (let i = 10; i >= 0 && c > 0; i--) {
    nonce[i] = c % 256;
    c = Math.floor(c / 256);
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Accumulates bytes into exact-size blocks without copying more than once. */
class Blocker {
  #buf: Uint8Array;
  #len = 0;

  constructor(size: number) {
    this.#buf = new Uint8Array(size);
  }

  get length(): number {
    return this.#len;
  }

  /** Copies as much of `data` as fits; returns how many bytes were taken. */
  fill(data: Uint8Array): number {
    const n = Math.min(data.length, this.#buf.length - this.#len);
    this.#buf.set(data.subarray(0, n), this.#len);
    this.#len += n;
    return n;
  }

  get full(): boolean {
    return this.#len === this.#buf.length;
  }

  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#len);
    this.#buf = new Uint8Array(this.#buf.length);
    this.#len = 0;
    return out;
  }
}

export class StreamEncryptor {
  readonly #key: Uint8Array;
  #counter = 0;
  #pending: Uint8Array | undefined;
  readonly #block = new Blocker(CHUNK_SIZE);

  constructor(payloadKey: Uint8Array) {
    this.#key = payloadKey;
  }

  /**
   * Encrypts what it can; a full chunk is held back until we know whether it is the last. Whole chunks are
   * taken from `data` without copying, so callers must not reuse `data`'s memory afterwards (Node and web
   * streams hand out fresh buffers).
   */
  push(data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let offset = 0;
    while (offset < data.length) {
      let chunk: Uint8Array | undefined;
      if (this.#block.length === 0 && data.length - offset >= CHUNK_SIZE) {
        chunk = data.subarray(offset, offset + CHUNK_SIZE);
        offset += CHUNK_SIZE;
      } else {
        offset += this.#block.fill(data.subarray(offset));
        if (this.#block.full) chunk = this.#block.take();
      }
      if (chunk !== undefined) {
        if (this.#pending !== undefined) out.push(...this.#seal(this.#pending, false));
        this.#pending = chunk;
      }
    }
    return out;
  }

  finish(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.#block.length > 0) {
      if (this.#pending !== undefined) out.push(...this.#seal(this.#pending, false));
      out.push(...this.#seal(this.#block.take(), true));
    } else {
      // A full final chunk carries the flag itself; an empty one only for an empty payload.
      out.push(...this.#seal(this.#pending ?? EMPTY, true));
    }
    this.#pending = undefined;
    return out;
  }

  /** Ciphertext and tag as two buffers: written back to back they are the sealed chunk, with no join. */
  #seal(chunk: Uint8Array, last: boolean): [Uint8Array, Uint8Array] {
    const { ciphertext, tag } = aeadSealDetached(
      'chacha20-poly1305',
      this.#key,
      nonceFor(this.#counter++, last),
      chunk,
    );
    return [ciphertext, tag];
  }
}

/** Receives verified plaintext as soon as it is released. */
export type Emit = (plaintext: Uint8Array) => void;

export class StreamDecryptor {
  readonly #key: Uint8Array;
  #counter = 0;
  #done = false;
  readonly #block = new Blocker(SEALED_CHUNK);

  constructor(payloadKey: Uint8Array) {
    this.#key = payloadKey;
  }

  /**
   * Emits verified plaintext chunks; throws ERR_DECRYPT_FAILED at the first bad or misplaced chunk. A full
   * chunk is opened as soon as it arrives: as a middle chunk, or failing that as a full-size final chunk
   * (the flag is authenticated, so at most one can succeed), as the reference implementation does.
   */
  push(data: Uint8Array, emit: Emit): void {
    let offset = 0;
    while (offset < data.length) {
      if (this.#done) throw decryptFailed(); // data after the final chunk
      if (this.#block.length === 0 && data.length - offset >= SEALED_CHUNK) {
        emit(this.#openFull(data.subarray(offset, offset + SEALED_CHUNK))); // whole chunk: no copy
        offset += SEALED_CHUNK;
        continue;
      }
      offset += this.#block.fill(data.subarray(offset));
      if (this.#block.full) emit(this.#openFull(this.#block.take()));
    }
  }

  finish(emit: Emit): void {
    if (this.#done) return;
    const rest = this.#block.take();
    // No final chunk: either nothing at all, or the stream stopped after a middle chunk (truncation).
    if (rest.length === 0 || rest.length < TAG) throw decryptFailed();
    const plaintext = this.#open(rest, true);
    if (plaintext.length === 0 && this.#counter > 1) throw decryptFailed(); // only an empty payload ends empty
    this.#done = true;
    emit(plaintext);
  }

  #openFull(sealed: Uint8Array): Uint8Array {
    const nonce = nonceFor(this.#counter, false);
    try {
      const plaintext = aeadOpen('chacha20-poly1305', this.#key, nonce, sealed);
      this.#counter++;
      return plaintext;
    } catch {
      const plaintext = this.#open(sealed, true);
      this.#done = true;
      return plaintext;
    }
  }

  #open(sealed: Uint8Array, last: boolean): Uint8Array {
    return aeadOpen('chacha20-poly1305', this.#key, nonceFor(this.#counter++, last), sealed);
  }
}
