/**
 * The binary inbox answer (`GET /v1/e2ee/inbox?format=binary`, media type `application/vnd.enseal.inbox`): the
 * same messages as the JSON answer, without base64 and JSON around the frames. Big-endian throughout:
 *
 * ```text
 * answer  = magic "EIB" || u8 version (1) || u32 count || message × count       (nothing after)
 * message = u64 seq || u8 kind (1 commit, 2 welcome, 3 application) || u64 epoch
 *           || u8 n || group id (n bytes, unpadded base64url text, 22..86)
 *           || u8 n || sender user (n bytes, 1..128) || u8 n || sender device (n bytes, 1..128)
 *           || u64 received_at (ms since 1970) || u32 n || frame (n bytes, 1..4 MiB)
 * ```
 *
 * The decoder is strict: every length is checked against what remains and its own cap, integers are safe
 * integers, seqs strictly increase, names use the service's alphabet, and the answer is consumed exactly. Any
 * deviation is ERR_MALFORMED, never a partial answer.
 */
import { malformed } from '../crypto/index.js';

export const INBOX_MEDIA_TYPE = 'application/vnd.enseal.inbox';
/** Messages one answer may carry at most (the relay sends up to 500). */
export const INBOX_WIRE_MAX_MESSAGES = 10_000;
/** A frame's size at most (the largest padding bucket). */
export const INBOX_WIRE_MAX_FRAME = 4 * 1024 * 1024;

const MAGIC = [0x45, 0x49, 0x42] as const; // "EIB"
const VERSION = 1;
const HEADER = 8;
/** The smallest message: fixed fields plus the shortest group id, names and frame. */
const MIN_MESSAGE = 8 + 1 + 8 + 1 + 22 + 1 + 1 + 1 + 1 + 8 + 4 + 1;
const KINDS = ['commit', 'welcome', 'application'] as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const GID = /^[A-Za-z0-9_-]{22,86}$/;

export type InboxWireKind = (typeof KINDS)[number];

/** One message of a binary inbox answer. */
export interface InboxWireMessage {
  readonly seq: number;
  readonly kind: InboxWireKind;
  readonly groupId: string;
  readonly epoch: number;
  readonly sender: { readonly user: string; readonly device: string };
  readonly receivedAt: number;
  readonly frame: Uint8Array;
}

function putU64(view: DataView, at: number, v: number): void {
  view.setUint32(at, Math.floor(v / 0x1_0000_0000));
  view.setUint32(at + 4, v >>> 0);
}

/** ASCII text into `out` at `at`; returns the new offset. Names and group ids are ASCII by their alphabet. */
function putAscii(out: Uint8Array, at: number, s: string): number {
  out[at++] = s.length;
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}

function checkOut(m: InboxWireMessage): void {
  const ok =
    Number.isSafeInteger(m.seq) &&
    m.seq >= 0 &&
    Number.isSafeInteger(m.epoch) &&
    m.epoch >= 0 &&
    Number.isSafeInteger(m.receivedAt) &&
    m.receivedAt >= 0 &&
    KINDS.includes(m.kind) &&
    GID.test(m.groupId) &&
    NAME.test(m.sender.user) &&
    NAME.test(m.sender.device) &&
    m.frame.length >= 1 &&
    m.frame.length <= INBOX_WIRE_MAX_FRAME;
  if (!ok) throw malformed('inbox message', 'cannot be encoded');
}

/** One message's bytes (what {@link encodeInboxAnswer} puts after the header). */
export function encodeInboxMessage(m: InboxWireMessage): Uint8Array {
  checkOut(m);
  const fixed = 8 + 1 + 8 + 3 + 8 + 4;
  const out = new Uint8Array(
    fixed + m.groupId.length + m.sender.user.length + m.sender.device.length + m.frame.length,
  );
  const view = new DataView(out.buffer);
  putU64(view, 0, m.seq);
  out[8] = KINDS.indexOf(m.kind) + 1;
  putU64(view, 9, m.epoch);
  let at = putAscii(out, 17, m.groupId);
  at = putAscii(out, at, m.sender.user);
  at = putAscii(out, at, m.sender.device);
  putU64(view, at, m.receivedAt);
  view.setUint32(at + 8, m.frame.length);
  out.set(m.frame, at + 12);
  return out;
}

/** The answer's header for `count` messages. */
export function inboxAnswerHeader(count: number): Uint8Array {
  if (!Number.isSafeInteger(count) || count < 0 || count > INBOX_WIRE_MAX_MESSAGES)
    throw malformed('inbox answer', 'too many messages');
  const out = new Uint8Array(HEADER);
  out.set(MAGIC, 0);
  out[3] = VERSION;
  new DataView(out.buffer).setUint32(4, count);
  return out;
}

/** A whole answer (the relay writes the header and shares each message's bytes between answers instead). */
export function encodeInboxAnswer(messages: readonly InboxWireMessage[]): Uint8Array {
  const parts = [inboxAnswerHeader(messages.length), ...messages.map(encodeInboxMessage)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Decodes a binary inbox answer. Throws ERR_MALFORMED for anything but an exact, valid encoding. */
export function decodeInboxAnswer(bytes: Uint8Array): InboxWireMessage[] {
  const bad = (why: string) => malformed('inbox answer', why);
  if (!(bytes instanceof Uint8Array)) throw bad('expected bytes');
  if (bytes.length < HEADER) throw bad('truncated');
  if (bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1] || bytes[2] !== MAGIC[2])
    throw bad('not a binary answer');
  if (bytes[3] !== VERSION) throw bad(`unknown version ${bytes[3]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(4);
  if (count > INBOX_WIRE_MAX_MESSAGES) throw bad('too many messages');
  if (count * MIN_MESSAGE > bytes.length - HEADER) throw bad('truncated');
  let at = HEADER;
  const need = (n: number) => {
    if (at + n > bytes.length) throw bad('truncated');
  };
  const u64 = () => {
    need(8);
    const hi = view.getUint32(at);
    const lo = view.getUint32(at + 4);
    at += 8;
    if (hi > 0x1f_ffff) throw bad('integer out of range');
    return hi * 0x1_0000_0000 + lo;
  };
  const ascii = (pattern: RegExp, what: string) => {
    need(1);
    const n = bytes[at++]!;
    need(n);
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = bytes[at + i]!;
      if (c > 0x7e) throw bad(`${what} is not in the alphabet`);
      s += String.fromCharCode(c);
    }
    at += n;
    if (!pattern.test(s) || (pattern === NAME && s.includes('..')))
      throw bad(`${what} is not in the alphabet`);
    return s;
  };
  const out: InboxWireMessage[] = [];
  let last = -1;
  for (let i = 0; i < count; i++) {
    const seq = u64();
    if (seq <= last) throw bad('seqs must increase');
    last = seq;
    need(1);
    const kind = KINDS[bytes[at++]! - 1];
    if (kind === undefined) throw bad('unknown kind');
    const epoch = u64();
    const groupId = ascii(GID, 'group id');
    const user = ascii(NAME, 'sender user');
    const device = ascii(NAME, 'sender device');
    const receivedAt = u64();
    need(4);
    const n = view.getUint32(at);
    at += 4;
    if (n < 1 || n > INBOX_WIRE_MAX_FRAME) throw bad('frame length out of range');
    need(n);
    const frame = bytes.slice(at, at + n);
    at += n;
    out.push({ seq, kind, groupId, epoch, sender: { user, device }, receivedAt, frame });
  }
  if (at !== bytes.length) throw bad('trailing bytes');
  return out;
}
