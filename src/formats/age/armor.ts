/**
 * age's ASCII armor: strict PEM-style framing with standard padded base64 in 64-column lines. The decoder
 * accepts surrounding whitespace but nothing else outside the armor, and rejects non-canonical base64,
 * short or long lines, and data after the end line.
 */
import { base64Decode, base64Encode, concatBytes, malformed, utf8Encode } from '../../crypto/index.js';

const BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
const END = '-----END AGE ENCRYPTED FILE-----';

function fail(detail: string): never {
  throw malformed('age armor', detail);
}

/** True when `data` (after optional leading whitespace) starts with the armor's BEGIN line. */
export function isArmored(data: Uint8Array): boolean {
  let i = 0;
  while (i < data.length && (data[i] === 0x20 || data[i] === 0x09 || data[i] === 0x0a || data[i] === 0x0d))
    i++;
  const head = BEGIN.slice(0, 10);
  for (let j = 0; j < head.length; j++) if (data[i + j] !== head.charCodeAt(j)) return false;
  return true;
}

export function armor(binary: Uint8Array): Uint8Array {
  const b64 = base64Encode(binary);
  const lines = [BEGIN];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  lines.push(END);
  return utf8Encode(lines.join('\n') + '\n');
}

export function dearmor(data: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const dec = new ArmorDecoder();
  const collect = (bytes: Uint8Array) => void parts.push(bytes);
  dec.push(data, collect);
  dec.finish(collect);
  return parts.length === 1 ? parts[0]! : concatBytes(...parts);
}

const LF = 0x0a;
/** Longest line worth buffering: 64 columns, a CR, and the END line with trailing blanks to spare. */
const MAX_LINE = 128;
/** Validated full body lines decoded together, so a large file costs few decoder calls. */
const BATCH_LINES = 1024;

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * Incremental armor decoder with the same rules as a whole-buffer decode: leading and trailing whitespace,
 * the BEGIN line, 64-column body lines (the last one shorter or equal), the END line, CRLF accepted. It
 * holds at most one partial line and one batch of lines, so an armored file of any size streams through,
 * and it fails on the first line that breaks the rules. Every body line but the last must be exactly 64
 * canonical base64 characters with no padding, which makes decoding line batches equal to decoding the
 * whole body at once.
 */
export class ArmorDecoder {
  #state: 'leading' | 'begin' | 'body' | 'trailing' = 'leading';
  #partial = '';
  /** The last body line seen: only the next line tells whether it was the final one. */
  #held: string | undefined;
  #batch: string[] = [];

  push(data: Uint8Array, emit: (bytes: Uint8Array) => void): void {
    let i = 0;
    if (this.#state === 'leading') {
      while (i < data.length && isBlank(data[i]!)) i++;
      if (i === data.length) return;
      this.#state = 'begin';
    }
    if (this.#state === 'trailing') {
      for (; i < data.length; i++) if (!isBlank(data[i]!)) fail('data after the END line');
      return;
    }
    while (i < data.length) {
      const lf = data.indexOf(LF, i);
      const end = lf < 0 ? data.length : lf;
      if (this.#partial.length + (end - i) > MAX_LINE) fail('invalid armor line length');
      this.#partial += latin1(data, i, end);
      if (lf < 0) return;
      const line = this.#partial.endsWith('\r') ? this.#partial.slice(0, -1) : this.#partial;
      this.#partial = '';
      i = lf + 1;
      this.#line(line, emit);
      if ((this.#state as string) === 'trailing') {
        for (; i < data.length; i++) if (!isBlank(data[i]!)) fail('data after the END line');
        return;
      }
    }
  }

  finish(emit: (bytes: Uint8Array) => void): void {
    if (this.#state === 'leading') fail('missing BEGIN line');
    if (this.#state !== 'trailing') {
      // The END line may end the input without a line feed, and trailing blanks may follow it.
      const last = this.#partial.replace(/[ \t\r]+$/, '');
      this.#partial = '';
      if (last !== END)
        fail(this.#state === 'begin' && last === '' ? 'missing BEGIN line' : 'missing END line');
      this.#line(END, emit);
    }
  }

  #line(line: string, emit: (bytes: Uint8Array) => void): void {
    if (this.#state === 'begin') {
      if (line !== BEGIN) fail('missing BEGIN line');
      this.#state = 'body';
      return;
    }
    if (line.replace(/[ \t\r]+$/, '') === END) {
      if (this.#held === undefined) fail('empty armor');
      this.#flush(this.#held, emit);
      this.#held = undefined;
      this.#state = 'trailing';
      return;
    }
    if (line.length === 0 || line.length > 64) fail('invalid armor line length');
    if (this.#held !== undefined) {
      // Not the last line, then: it must be full and unpadded.
      if (this.#held.length !== 64) fail('invalid armor line length');
      if (this.#held.includes('=')) fail('invalid or non-canonical base64');
      this.#batch.push(this.#held);
      if (this.#batch.length >= BATCH_LINES) this.#flush(undefined, emit);
    }
    this.#held = line;
  }

  #flush(last: string | undefined, emit: (bytes: Uint8Array) => void): void {
    if (last !== undefined) this.#batch.push(last);
    if (this.#batch.length === 0) return;
    const text = this.#batch.join('');
    this.#batch = [];
    let bytes: Uint8Array;
    try {
      bytes = base64Decode(text, 'age armor');
    } catch {
      return fail('invalid or non-canonical base64');
    }
    emit(bytes);
  }
}

/** Bytes [from, to) as a string of char codes 0–255 (armor is ASCII; anything else fails validation). */
function latin1(data: Uint8Array, from: number, to: number): string {
  // At most MAX_LINE codes at a time, well within the argument-count limit of apply().
  return String.fromCharCode.apply(null, data.subarray(from, to) as unknown as number[]);
}

/** Incremental armor encoder for streams: emits complete 64-column lines as data arrives. */
export class ArmorEncoder {
  #carry = new Uint8Array(0);
  #started = false;

  push(data: Uint8Array): string {
    let out = this.#started ? '' : BEGIN + '\n';
    this.#started = true;
    const all = new Uint8Array(this.#carry.length + data.length);
    all.set(this.#carry);
    all.set(data, this.#carry.length);
    const whole = all.length - (all.length % 48);
    const b64 = base64Encode(all.subarray(0, whole));
    for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + '\n';
    this.#carry = all.slice(whole);
    return out;
  }

  finish(): string {
    let out = this.#started ? '' : BEGIN + '\n';
    this.#started = true;
    if (this.#carry.length > 0) out += base64Encode(this.#carry) + '\n';
    this.#carry = new Uint8Array(0);
    return out + END + '\n';
  }
}
