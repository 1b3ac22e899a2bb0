/**
 * age's STREAM payload: the plaintext in 64 KiB chunks, each sealed with ChaCha20-Poly1305 under the payload
 * key, nonce = 11-byte big-endian chunk counter ‖ last-chunk flag. The flag makes truncation at a chunk
 * boundary detectable; an empty final chunk is allowed only when the whole payload is empty.
 *
 * Both directions are incremental and keep at most one chunk buffered (in one block allocated once), so memory
 * stays constant whatever the file size, and neither keeps references to its input. Decryption releases a
 * chunk only after its tag verified. Whether a chunk is the last depends on what follows it: the encryptor
 * holds a full chunk back until more data or the end arrives; the decryptor tries a full chunk as a middle
 * chunk and, failing that, as the final one.
 */
import { aeadOpen, aeadSealDetached, decryptFailed, EnsealError, ErrorCode } from '../../crypto/index.js';

export const CHUNK_SIZE = 64 * 1024;
const TAG = 16;
const SEALED_CHUNK = CHUNK_SIZE + TAG;

/** Writes the STREAM nonce for chunk `counter` into `nonce` (12 bytes, reused: the AEAD copies it). */
function setNonce(nonce: Uint8Array, counter: number, last: boolean): Uint8Array {
  if (counter >= 2 ** 53) throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'age payload is too large');
  let c = counter;
  for (let i = 10; i >= 0; i--) {
    nonce[i] = c % 256;
    c = Math.floor(c / 256);
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Accumulates bytes into one exact-size block; the block's memory is reused after each take(). */
class Blocker {
  readonly #buf: Uint8Array;
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
    this.#buf.set(n === data.length ? data : data.subarray(0, n), this.#len);
    this.#len += n;
    return n;
  }

  get full(): boolean {
    return this.#len === this.#buf.length;
  }

  /** The buffered bytes, valid only until the next fill(): callers consume them at once. */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#len);
    this.#len = 0;
    return out;
  }
}

/** Receives output (sealed chunks, or verified plaintext) as soon as it is produced. */
export type Emit = (bytes: Uint8Array) => void;

export class StreamEncryptor {
  readonly #key: Uint8Array;
  readonly #nonce = new Uint8Array(12);
  #counter = 0;
  readonly #block = new Blocker(CHUNK_SIZE);

  constructor(payloadKey: Uint8Array) {
    this.#key = payloadKey;
  }

  /**
   * Encrypts every chunk known not to be the last, emitting ciphertext and tag as two buffers (written back
   * to back they are the sealed chunk). A chunk is sealed straight from `data` when more bytes follow it
   * there; otherwise it is copied into one reused block until the next push or finish() says whether it is
   * the last. Nothing keeps a reference to `data`, so callers may reuse its memory.
   */
  push(data: Uint8Array, emit: Emit): void {
    let offset = 0;
    while (offset < data.length) {
      if (this.#block.full) this.#seal(this.#block.take(), false, emit); // more data follows it
      if (this.#block.length === 0 && data.length - offset > CHUNK_SIZE) {
        this.#seal(data.subarray(offset, offset + CHUNK_SIZE), false, emit);
        offset += CHUNK_SIZE;
        continue;
      }
      offset += this.#block.fill(offset === 0 ? data : data.subarray(offset));
    }
  }

  /** Seals the final chunk: a full one carries the flag itself; an empty one only for an empty payload. */
  finish(emit: Emit): void {
    this.#seal(this.#block.take(), true, emit);
  }

  #seal(chunk: Uint8Array, last: boolean, emit: Emit): void {
    const { ciphertext, tag } = aeadSealDetached(
      'chacha20-poly1305',
      this.#key,
      setNonce(this.#nonce, this.#counter++, last),
      chunk,
    );
    emit(ciphertext);
    emit(tag);
  }
}

export class StreamDecryptor {
  readonly #key: Uint8Array;
  readonly #nonce = new Uint8Array(12);
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
    try {
      const plaintext = aeadOpen(
        'chacha20-poly1305',
        this.#key,
        setNonce(this.#nonce, this.#counter, false),
        sealed,
      );
      this.#counter++;
      return plaintext;
    } catch {
      const plaintext = this.#open(sealed, true);
      this.#done = true;
      return plaintext;
    }
  }

  #open(sealed: Uint8Array, last: boolean): Uint8Array {
    return aeadOpen('chacha20-poly1305', this.#key, setNonce(this.#nonce, this.#counter++, last), sealed);
  }
}
