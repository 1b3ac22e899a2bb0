/**
 * The age v1 header (https://age-encryption.org/v1): the version line, recipient stanzas, and the MAC line.
 * Parsing is strict, as the spec requires: LF line endings only, canonical unpadded base64, body lines of
 * exactly 64 columns except a shorter final one, and arguments of visible ASCII. Any deviation is a
 * ERR_MALFORMED "header failure"; nothing here touches secrets.
 */
import { base64Decode, base64Encode, concatBytes, malformed, utf8Encode } from '../../crypto/index.js';

export const AGE_VERSION_LINE = 'age-encryption.org/v1';
/** The whole header, MAC line included, must fit in this many bytes; streaming decoders buffer no more. */
export const MAX_HEADER = 1 << 20;
const MAX_STANZAS = 1024;

export interface Stanza {
  type: string;
  args: string[];
  body: Uint8Array;
}

export interface ParsedHeader {
  stanzas: Stanza[];
  /** The header bytes the MAC covers: from the version line through "---". */
  macInput: Uint8Array;
  mac: Uint8Array;
  /** Offset of the first payload byte. */
  payloadOffset: number;
}

function fail(detail: string): never {
  throw malformed('age header', detail);
}

/** Unpadded canonical base64 as age writes it. */
export function b64Decode(text: string, what: string): Uint8Array {
  if (text.includes('=')) fail(`${what}: padding is not allowed`);
  const padded = text + '='.repeat((4 - (text.length % 4)) % 4);
  try {
    return base64Decode(padded, what);
  } catch {
    return fail(`${what}: invalid or non-canonical base64`);
  }
}

export function b64Encode(bytes: Uint8Array): string {
  return base64Encode(bytes).replace(/=+$/, '');
}

function isArgument(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Reads one LF-terminated line starting at `offset`; returns it and the next offset, or undefined at EOF. */
function readLine(data: Uint8Array, offset: number): [string, number] | undefined {
  const end = data.indexOf(0x0a, offset);
  if (end < 0) return undefined;
  let line = '';
  for (let i = offset; i < end; i++) {
    const c = data[i]!;
    if (c < 0x20 || c > 0x7e) fail('header lines must be printable ASCII ending in LF');
    line += String.fromCharCode(c);
  }
  return [line, end + 1];
}

function tooLargeOrIncomplete(data: Uint8Array): undefined {
  if (data.length >= MAX_HEADER) fail('header too large');
  return undefined;
}

/**
 * Parses the header at the start of `data`. Returns undefined when `data` does not yet contain the whole
 * header (streaming callers then read more), and throws when what is there is invalid.
 */
export function parseHeader(data: Uint8Array): ParsedHeader | undefined {
  const first = readLine(data, 0);
  if (first === undefined) {
    if (data.length > AGE_VERSION_LINE.length + 1) fail('missing version line');
    return undefined;
  }
  if (first[0] !== AGE_VERSION_LINE) fail('unsupported version line');
  let offset = first[1];
  const stanzas: Stanza[] = [];
  for (;;) {
    if (offset > MAX_HEADER) fail('header too large');
    const next = readLine(data, offset);
    // Without this, a line that never ends would be waited for forever, however much arrives.
    if (next === undefined) return tooLargeOrIncomplete(data);
    const [line, after] = next;
    if (line.startsWith('---')) {
      if (!line.startsWith('--- ')) fail('malformed MAC line');
      const mac = b64Decode(line.slice(4), 'header MAC');
      if (mac.length !== 32) fail('header MAC must be 32 bytes');
      if (stanzas.length === 0) fail('no recipient stanzas');
      return { stanzas, macInput: data.subarray(0, offset + 3), mac, payloadOffset: after };
    }
    if (!line.startsWith('-> ')) fail('expected a stanza or the MAC line');
    const args = line.slice(3).split(' ');
    if (!args.every(isArgument)) fail('invalid stanza argument');
    const bodyLines: string[] = [];
    offset = after;
    for (;;) {
      const bl = readLine(data, offset);
      if (bl === undefined) return tooLargeOrIncomplete(data);
      const [text, nextOffset] = bl;
      if (text.length > 64) fail('stanza body line longer than 64 columns');
      bodyLines.push(text);
      offset = nextOffset;
      if (text.length < 64) break;
    }
    const body = b64Decode(bodyLines.join(''), 'stanza body');
    stanzas.push({ type: args[0]!, args: args.slice(1), body });
    if (stanzas.length > MAX_STANZAS) fail('too many stanzas');
  }
}

/** Serialises stanzas and the "---" prefix; the caller appends " <mac>\n". */
export function marshalHeaderWithoutMac(stanzas: Stanza[]): Uint8Array {
  let text = AGE_VERSION_LINE + '\n';
  for (const s of stanzas) {
    text += '-> ' + [s.type, ...s.args].join(' ') + '\n';
    const b64 = b64Encode(s.body);
    for (let i = 0; i < b64.length; i += 64) text += b64.slice(i, i + 64) + '\n';
    if (b64.length % 64 === 0) text += '\n';
  }
  return utf8Encode(text + '---');
}

export function macLine(mac: Uint8Array): Uint8Array {
  return utf8Encode(' ' + b64Encode(mac) + '\n');
}

export function marshalHeader(stanzas: Stanza[], mac: Uint8Array): Uint8Array {
  return concatBytes(marshalHeaderWithoutMac(stanzas), macLine(mac));
}
