/**
 * C2SP signed notes (c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank line, then one or more
 * lines `— <key name> base64(key ID || signature)`. Used for transparency-log checkpoints and their witness
 * cosignatures. Ed25519 keys (signature type 0x01) and verifier keys `name+hex(key ID)+base64(type || key)`.
 *
 * The parser is a single left-to-right scan (no regular expressions over the input), bounded by
 * {@link NOTE_MAX_BYTES} and {@link NOTE_MAX_SIGNATURES}, and every failure is an ERR_MALFORMED naming where.
 * Verification follows the spec: signatures from unknown keys are ignored; a signature from a known key
 * (same name and key ID) that fails rejects the whole note; a note with no verified known signature is
 * rejected.
 */
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64Encode,
  concatBytes,
  hexEncode,
  invalidArgument,
  malformed,
  sha256,
  sign,
  signingPublicKey,
  utf8Decode,
  utf8Encode,
  verify,
} from '../crypto/index.js';

/** Notes larger than this are refused before parsing (a checkpoint with many post-quantum cosignatures fits). */
export const NOTE_MAX_BYTES = 256 * 1024;
/** At most this many signature lines; the spec requires accepting at least 16. */
export const NOTE_MAX_SIGNATURES = 64;

/** Signature type identifier bytes of c2sp.org/signed-note. */
export const SignatureType = {
  /** Ed25519 over the note text. */
  ED25519: 0x01,
  /** Timestamped Ed25519 checkpoint cosignature (c2sp.org/tlog-cosignature). */
  COSIGNATURE_V1: 0x04,
} as const;
export type SignatureType = (typeof SignatureType)[keyof typeof SignatureType];

/** One signature line, as parsed: the signature bytes exclude the 4-byte key ID. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  readonly signature: Uint8Array;
}

/** A parsed note: the text (with its final newline) and its signature lines, in order. */
export interface Note {
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** Something that can sign a note's text as one key. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  /** Signature bytes over the note text (without the key ID prefix). */
  sign(text: Uint8Array): Uint8Array;
}

/** Something that can check signatures of one key. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  /** True when `signature` (without the key ID prefix) is valid over the note text. */
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

const EM_DASH_PREFIX = '\u2014 ';
const WHAT = 'signed note';

function isUnicodeSpace(code: number): boolean {
  // Unicode White_Space: the ASCII ones, NEL, NBSP, Ogham space, U+2000–U+200A, line/paragraph separators,
  // narrow NBSP, medium mathematical space and the ideographic space.
  return (
    (code >= 0x09 && code <= 0x0d) ||
    code === 0x20 ||
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

/** Checks a key name: non-empty, no Unicode spaces, no `+`, no control characters. */
export function checkKeyName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw malformed(WHAT, 'key name is empty');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2b || c < 0x20 || c === 0x7f || isUnicodeSpace(c)) {
      throw malformed(WHAT, 'key name holds a space, "+" or a control character');
    }
  }
}

/** Converts the input to text, enforcing the size limit, UTF-8 validity and the control-character rule. */
function noteText(input: string | Uint8Array): string {
  let text: string;
  if (typeof input === 'string') {
    if (input.length > NOTE_MAX_BYTES) throw malformed(WHAT, `larger than ${NOTE_MAX_BYTES} bytes`);
    for (let i = 0; i < input.length; i++) {
      const c = input.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = input.charCodeAt(i + 1);
        if (!(d >= 0xdc00 && d <= 0xdfff)) throw malformed(WHAT, 'not valid UTF-8');
        i++;
      } else if (c >= 0xdc00 && c <= 0xdfff) {
        throw malformed(WHAT, 'not valid UTF-8');
      }
    }
    text = input;
    if (utf8Encode(text).length > NOTE_MAX_BYTES)
      throw malformed(WHAT, `larger than ${NOTE_MAX_BYTES} bytes`);
  } else if (input instanceof Uint8Array) {
    if (input.length > NOTE_MAX_BYTES) throw malformed(WHAT, `larger than ${NOTE_MAX_BYTES} bytes`);
    try {
      text = utf8Decode(input);
    } catch {
      throw malformed(WHAT, 'not valid UTF-8');
    }
  } else {
    throw malformed(WHAT, 'expected a string or bytes');
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a) || c === 0x7f) throw malformed(WHAT, 'holds a control character');
  }
  return text;
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(EM_DASH_PREFIX)) throw malformed(WHAT, 'a signature line must start with "— "');
  const rest = line.slice(EM_DASH_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space <= 0) throw malformed(WHAT, 'a signature line needs a key name and a signature');
  const name = rest.slice(0, space);
  checkKeyName(name);
  const encoded = rest.slice(space + 1);
  const raw = base64Decode(encoded, 'note signature');
  if (raw.length < 5) throw malformed(WHAT, 'a signature is shorter than its key ID');
  const keyId = ((raw[0]! << 24) | (raw[1]! << 16) | (raw[2]! << 8) | raw[3]!) >>> 0;
  return { name, keyId, signature: raw.slice(4) };
}

/**
 * Parses a signed note without verifying it. The text is everything up to the last blank line; everything
 * after must be signature lines. Throws ERR_MALFORMED.
 */
export function parseNote(input: string | Uint8Array): Note {
  const all = noteText(input);
  if (!all.endsWith('\n')) throw malformed(WHAT, 'must end with a newline');
  const split = all.lastIndexOf('\n\n');
  if (split < 0) throw malformed(WHAT, 'no blank line before the signatures');
  const text = all.slice(0, split + 1);
  const sigBlock = all.slice(split + 2);
  if (sigBlock.length === 0) throw malformed(WHAT, 'no signature lines');
  const signatures: NoteSignature[] = [];
  let start = 0;
  while (start < sigBlock.length) {
    const end = sigBlock.indexOf('\n', start);
    // sigBlock ends in '\n' because the whole note does, so end is always found.
    if (signatures.length >= NOTE_MAX_SIGNATURES)
      throw malformed(WHAT, `more than ${NOTE_MAX_SIGNATURES} signatures`);
    signatures.push(parseSignatureLine(sigBlock.slice(start, end)));
    start = end + 1;
  }
  return { text, signatures };
}

/** Checks that a note text is well formed: non-empty, ending in a newline, and without control characters. */
function checkText(text: string): void {
  if (typeof text !== 'string' || text.length === 0 || !text.endsWith('\n')) {
    throw invalidArgument('note text', 'must be non-empty and end with a newline');
  }
  noteText(text);
}

function signatureLine(name: string, keyId: number, signature: Uint8Array): string {
  const id = Uint8Array.of(keyId >>> 24, (keyId >>> 16) & 0xff, (keyId >>> 8) & 0xff, keyId & 0xff);
  return `${EM_DASH_PREFIX}${name} ${base64Encode(concatBytes(id, signature))}\n`;
}

/** Serialises a note: text, blank line, signature lines. */
export function formatNote(note: Note): string {
  checkText(note.text);
  if (note.signatures.length === 0) throw invalidArgument('note', 'needs at least one signature');
  let out = `${note.text}\n`;
  for (const s of note.signatures) {
    checkKeyName(s.name);
    out += signatureLine(s.name, s.keyId, s.signature);
  }
  return out;
}

/** Signs `text` with each signer and returns the whole note. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkText(text);
  const bytes = utf8Encode(text);
  return formatNote({
    text,
    signatures: signers.map((s) => ({ name: s.name, keyId: s.keyId, signature: s.sign(bytes) })),
  });
}

/** Appends signatures to an existing note (for example a witness's cosignature). */
export function addSignatures(note: string | Uint8Array, lines: readonly NoteSignature[]): string {
  const parsed = parseNote(note);
  return formatNote({ text: parsed.text, signatures: [...parsed.signatures, ...lines] });
}

/** A verified note: its text and the signatures that verified, with the verifier that accepted each. */
export interface VerifiedNote {
  readonly text: string;
  readonly verified: readonly { readonly verifier: NoteVerifier; readonly signature: NoteSignature }[];
  /** All signature lines, known or not, for callers that pass the note on. */
  readonly signatures: readonly NoteSignature[];
}

/**
 * Parses and verifies a note against the given verifiers. Unknown signatures are ignored; a known one that
 * fails throws ERR_SIGNATURE_INVALID; when none verifies, ERR_SIGNATURE_INVALID too.
 */
export function openNote(input: string | Uint8Array, verifiers: readonly NoteVerifier[]): VerifiedNote {
  const note = parseNote(input);
  const text = utf8Encode(note.text);
  const verified: { verifier: NoteVerifier; signature: NoteSignature }[] = [];
  for (const sig of note.signatures) {
    for (const v of verifiers) {
      if (v.name !== sig.name || v.keyId !== sig.keyId) continue;
      if (!v.verify(text, sig.signature)) {
        throw new EnsealError(ErrorCode.SIGNATURE_INVALID, `note signature by "${sig.name}" does not verify`);
      }
      verified.push({ verifier: v, signature: sig });
    }
  }
  if (verified.length === 0) {
    throw new EnsealError(ErrorCode.SIGNATURE_INVALID, 'note carries no valid signature from a trusted key');
  }
  return { text: note.text, verified, signatures: note.signatures };
}

/** Key ID = SHA-256(name || 0x0A || type || public key)[:4], big-endian. */
export function noteKeyId(name: string, type: number, publicKey: Uint8Array): number {
  checkKeyName(name);
  const h = sha256(concatBytes(utf8Encode(name), Uint8Array.of(0x0a, type), publicKey));
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

/** An Ed25519 note signer (type 0x01) for a 32-byte private key. */
export function ed25519NoteSigner(
  name: string,
  privateKey: Uint8Array,
): NoteSigner & { publicKey: Uint8Array } {
  const publicKey = signingPublicKey('ed25519', privateKey);
  const key = privateKey.slice();
  return {
    name,
    keyId: noteKeyId(name, SignatureType.ED25519, publicKey),
    publicKey,
    sign: (text) => sign('ed25519', key, text),
  };
}

/** An Ed25519 note verifier (type 0x01). */
export function ed25519NoteVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw invalidArgument('publicKey', 'must be a 32-byte Ed25519 public key');
  }
  const key = publicKey.slice();
  return {
    name,
    keyId: noteKeyId(name, SignatureType.ED25519, key),
    verify: (text, signature) => verify('ed25519', key, text, signature),
  };
}

/** A decoded verifier key. */
export interface VerifierKey {
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
}

/** Formats `name+hex(keyId)+base64(type || publicKey)`, computing the key ID. */
export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  const id = noteKeyId(name, type, publicKey);
  const idHex = hexEncode(Uint8Array.of(id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff));
  return `${name}+${idHex}+${base64Encode(concatBytes(Uint8Array.of(type), publicKey))}`;
}

/**
 * Parses a verifier key. The key ID must be 8 lowercase hex digits and must match the one computed from the
 * name, type and key (Ed25519 and cosignature keys must be 32 bytes). Throws ERR_MALFORMED.
 */
export function parseVerifierKey(vkey: string): VerifierKey {
  const what = 'verifier key';
  if (typeof vkey !== 'string' || vkey.length > 4096) throw malformed(what, 'expected a short string');
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  // The key part is base64, which may itself hold '+': only the first two '+' separate fields.
  if (first <= 0 || second < 0) throw malformed(what, 'expected name+keyid+key');
  const name = vkey.slice(0, first);
  checkKeyName(name);
  const idHex = vkey.slice(first + 1, second);
  if (idHex.length !== 8) throw malformed(what, 'key ID must be 8 hex digits');
  let keyId = 0;
  for (let i = 0; i < 8; i++) {
    const c = idHex.charCodeAt(i);
    const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (v < 0) throw malformed(what, 'key ID must be lowercase hex');
    keyId = keyId * 16 + v;
  }
  const raw = base64Decode(vkey.slice(second + 1), what);
  if (raw.length < 2) throw malformed(what, 'key material is empty');
  const type = raw[0]!;
  const publicKey = raw.slice(1);
  if ((type === SignatureType.ED25519 || type === SignatureType.COSIGNATURE_V1) && publicKey.length !== 32) {
    throw malformed(what, 'an Ed25519 key must be 32 bytes');
  }
  if (noteKeyId(name, type, publicKey) !== keyId) throw malformed(what, 'key ID does not match the key');
  return { name, keyId, type, publicKey };
}

/** Builds an Ed25519 note verifier from a verifier key of type 0x01. */
export function noteVerifierFromKey(vkey: string): NoteVerifier {
  const k = parseVerifierKey(vkey);
  if (k.type !== SignatureType.ED25519)
    throw new EnsealError(ErrorCode.UNSUPPORTED, `unsupported note key type ${k.type}`);
  return ed25519NoteVerifier(k.name, k.publicKey);
}
