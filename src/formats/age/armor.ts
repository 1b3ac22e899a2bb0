/**
 * age's ASCII armor: strict PEM-style framing with standard padded base64 in 64-column lines. The decoder
 * accepts surrounding whitespace but nothing else outside the armor, and rejects non-canonical base64,
 * short or long lines, and data after the end line.
 */
import { base64Decode, base64Encode, malformed, utf8Decode, utf8Encode } from '../../crypto/index.js';

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
  let text: string;
  try {
    text = utf8Decode(data);
  } catch {
    fail('not text');
  }
  const trimmed = text.replace(/^[ \t\r\n]+/, '').replace(/[ \t\r\n]+$/, '');
  // CRLF line endings are accepted (armored text passes through tools that rewrite them); bare CR is not.
  const lines = trimmed.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines[0] !== BEGIN) fail('missing BEGIN line');
  if (lines[lines.length - 1] !== END) fail('missing END line');
  const body = lines.slice(1, -1);
  if (body.length === 0) fail('empty armor');
  for (let i = 0; i < body.length; i++) {
    const line = body[i]!;
    const last = i === body.length - 1;
    if (line.length > 64 || (!last && line.length !== 64) || line.length === 0)
      fail('invalid armor line length');
  }
  try {
    return base64Decode(body.join(''), 'age armor');
  } catch {
    return fail('invalid or non-canonical base64');
  }
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
