/**
 * Detecting application messages the relay dropped. MLS protects each message but not the set of messages: a
 * relay can withhold one and every other member still decrypts the rest. So every application message of this
 * client carries, inside its encrypted payload, its index among its sender's messages of that epoch (`c`, from
 * 0) and, on the first message of an epoch, how many the sender sent in the last earlier epoch it sent in
 * (`p = [epoch, count]`). A receiver that was a member during an epoch then knows how many messages of each
 * sender to expect, and names the indexes it never got.
 *
 * Messages of one epoch may arrive out of order; a gap closes when its message arrives later. What cannot be
 * seen: messages dropped after the sender's last delivered one, until that sender sends again.
 */
import { EnsealError, ErrorCode } from '../crypto/index.js';

/** An inclusive range of missing message indexes. */
export type Gap = readonly [from: number, to: number];

/** What a receiver knows of one sender in one epoch: the next index expected, and the holes below it. */
export interface SenderEpoch {
  next: number;
  gaps: [number, number][];
}

/** A receiver's record for one group. */
export interface DeliveryRecord {
  /** The first epoch this device was a member for (messages of earlier epochs are not expected). */
  since: number;
  /** Sender (`user/device`) → epoch (decimal) → what was received. */
  senders: Record<string, Record<string, SenderEpoch>>;
}

/** Epochs kept per sender; older ones are forgotten (their gaps were reported when they opened). */
export const EPOCHS_KEPT = 16;
/** Gap ranges kept per sender and epoch; beyond that the oldest ranges merge. */
const GAPS_KEPT = 64;

/** A gap that a message opened: these indexes of `sender` in `epoch` were not delivered (yet). */
export interface OpenedGap {
  readonly sender: string;
  readonly epoch: number;
  readonly from: number;
  readonly to: number;
}

/** A fresh record for a group joined at `since`. */
export function newDeliveryRecord(since: number): DeliveryRecord {
  return { since, senders: {} };
}

/** Checks a record read back from the state (it is sealed, so a bad one is a bug or a different version). */
export function checkDeliveryRecord(value: unknown): DeliveryRecord {
  const bad = () => new EnsealError(ErrorCode.MALFORMED, 'client state: the delivery record is unreadable');
  const r = value as DeliveryRecord;
  if (typeof r !== 'object' || r === null || !Number.isSafeInteger(r.since)) throw bad();
  if (typeof r.senders !== 'object' || r.senders === null) throw bad();
  return r;
}

function isIndex(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function entry(record: DeliveryRecord, sender: string, epoch: number): SenderEpoch {
  const bySender = (record.senders[sender] ??= {});
  const e = (bySender[String(epoch)] ??= { next: 0, gaps: [] });
  const epochs = Object.keys(bySender)
    .map(Number)
    .sort((a, b) => a - b);
  for (const old of epochs.slice(0, Math.max(0, epochs.length - EPOCHS_KEPT))) delete bySender[String(old)];
  return e;
}

function openGap(e: SenderEpoch, from: number, to: number): void {
  e.gaps.push([from, to]);
  if (e.gaps.length > GAPS_KEPT) {
    const [a, b] = e.gaps.splice(0, 2) as [[number, number], [number, number]];
    e.gaps.unshift([a[0], b[1]]);
  }
}

/** Closes index `c` inside a gap; false when it was in none (a duplicate). */
function fill(e: SenderEpoch, c: number): boolean {
  const i = e.gaps.findIndex(([a, b]) => a <= c && c <= b);
  if (i < 0) return false;
  const [a, b] = e.gaps[i]!;
  const parts: [number, number][] = [];
  if (a < c) parts.push([a, c - 1]);
  if (c < b) parts.push([c + 1, b]);
  e.gaps.splice(i, 1, ...parts);
  return true;
}

/**
 * Records that message `index` of `sender` in `epoch` arrived, with the sender's count for an earlier epoch if
 * it carried one. Changes `record` in place and returns the gaps this message revealed.
 */
export function noteDelivery(
  record: DeliveryRecord,
  sender: string,
  epoch: number,
  index: number,
  previous?: readonly [number, number],
): OpenedGap[] {
  const opened: OpenedGap[] = [];
  if (!isIndex(epoch) || !isIndex(index) || epoch < record.since) return opened;
  const e = entry(record, sender, epoch);
  if (index >= e.next) {
    if (index > e.next) {
      openGap(e, e.next, index - 1);
      opened.push({ sender, epoch, from: e.next, to: index - 1 });
    }
    e.next = index + 1;
  } else {
    fill(e, index);
  }
  if (previous !== undefined) {
    const [pe, count] = previous;
    if (isIndex(pe) && isIndex(count) && pe < epoch && pe >= record.since) {
      const p = entry(record, sender, pe);
      if (count > p.next) {
        openGap(p, p.next, count - 1);
        opened.push({ sender, epoch: pe, from: p.next, to: count - 1 });
        p.next = count;
      }
    }
  }
  return opened;
}

/** The part of `gap` still missing in `record` (empty when every message of it arrived since). */
export function stillMissing(record: DeliveryRecord, gap: OpenedGap): Gap[] {
  const e = record.senders[gap.sender]?.[String(gap.epoch)];
  if (e === undefined) return [];
  const out: Gap[] = [];
  for (const [a, b] of e.gaps) {
    const from = Math.max(a, gap.from);
    const to = Math.min(b, gap.to);
    if (from <= to) out.push([from, to]);
  }
  return out;
}

/** Every gap still open in `record`, for a UI that lists what is missing. */
export function openGaps(record: DeliveryRecord): OpenedGap[] {
  const out: OpenedGap[] = [];
  for (const [sender, epochs] of Object.entries(record.senders)) {
    for (const [epoch, e] of Object.entries(epochs)) {
      for (const [from, to] of e.gaps) out.push({ sender, epoch: Number(epoch), from, to });
    }
  }
  return out;
}
