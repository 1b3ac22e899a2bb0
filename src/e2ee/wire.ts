/**
 * The canonical binary encoding of the directory's records (RFC 8446 §3 presentation style: big-endian
 * integers, length-prefixed opaque vectors). The reader is strict: every length is checked against what
 * remains and against its own maximum, and a record must be consumed exactly, so each value has one encoding.
 */
import { concatBytes, malformed, utf8Decode, utf8Encode } from '../crypto/index.js';

export class Writer {
  readonly #parts: Uint8Array[] = [];

  u8(v: number): this {
    this.#parts.push(Uint8Array.of(v & 0xff));
    return this;
  }

  u16(v: number): this {
    this.#parts.push(Uint8Array.of((v >>> 8) & 0xff, v & 0xff));
    return this;
  }

  u64(v: number): this {
    const out = new Uint8Array(8);
    let n = BigInt(v);
    for (let i = 7; i >= 0; i--) {
      out[i] = Number(n & 0xffn);
      n >>= 8n;
    }
    this.#parts.push(out);
    return this;
  }

  raw(b: Uint8Array): this {
    this.#parts.push(b);
    return this;
  }

  /** opaque<0..2^8-1> */
  bytes8(b: Uint8Array): this {
    if (b.length > 0xff) throw malformed('record', 'a field is longer than 255 bytes');
    return this.u8(b.length).raw(b);
  }

  /** opaque<0..2^16-1> */
  bytes16(b: Uint8Array): this {
    if (b.length > 0xffff) throw malformed('record', 'a field is longer than 65535 bytes');
    return this.u16(b.length).raw(b);
  }

  string8(s: string): this {
    return this.bytes8(utf8Encode(s));
  }

  finish(): Uint8Array {
    return concatBytes(...this.#parts);
  }
}

export class Reader {
  readonly #b: Uint8Array;
  #o = 0;
  readonly #what: string;

  constructor(bytes: Uint8Array, what: string) {
    if (!(bytes instanceof Uint8Array)) throw malformed(what, 'expected bytes');
    this.#b = bytes;
    this.#what = what;
  }

  get offset(): number {
    return this.#o;
  }

  #need(n: number): void {
    if (this.#o + n > this.#b.length) throw malformed(this.#what, 'truncated');
  }

  u8(): number {
    this.#need(1);
    return this.#b[this.#o++]!;
  }

  u16(): number {
    return (this.u8() << 8) | this.u8();
  }

  u64(): number {
    this.#need(8);
    let n = 0n;
    for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(this.#b[this.#o++]!);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(this.#what, 'integer out of range');
    return Number(n);
  }

  raw(n: number): Uint8Array {
    this.#need(n);
    const out = this.#b.slice(this.#o, this.#o + n);
    this.#o += n;
    return out;
  }

  bytes8(min = 0, max = 0xff): Uint8Array {
    const n = this.u8();
    if (n < min || n > max) throw malformed(this.#what, `a field has length ${n}, outside ${min}..${max}`);
    return this.raw(n);
  }

  bytes16(min = 0, max = 0xffff): Uint8Array {
    const n = this.u16();
    if (n < min || n > max) throw malformed(this.#what, `a field has length ${n}, outside ${min}..${max}`);
    return this.raw(n);
  }

  string8(min = 1, max = 0xff): string {
    const b = this.bytes8(min, max);
    try {
      return utf8Decode(b);
    } catch {
      throw malformed(this.#what, 'a text field is not valid UTF-8');
    }
  }

  /** The bytes consumed so far, from `start`. */
  slice(start: number): Uint8Array {
    return this.#b.slice(start, this.#o);
  }

  end(): void {
    if (this.#o !== this.#b.length) throw malformed(this.#what, 'trailing bytes');
  }
}
