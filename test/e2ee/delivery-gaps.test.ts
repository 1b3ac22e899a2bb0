/**
 * The numbering that reveals dropped application messages: whatever subset of a sender's messages arrives, in
 * whatever order, the open gaps are exactly the indexes that never came (below the highest one seen, or below
 * the count the sender declared for an earlier epoch).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/crypto/index.js';
import {
  EPOCHS_KEPT,
  checkDeliveryRecord,
  newDeliveryRecord,
  noteDelivery,
  openGaps,
  stillMissing,
} from '../../src/e2ee/delivery-gaps.js';
import { codeOf } from '../helpers/errors.js';

/** The indexes a list of gaps covers. */
function covered(gaps: readonly { from: number; to: number }[]): number[] {
  return gaps
    .flatMap((g) => Array.from({ length: g.to - g.from + 1 }, (_, i) => g.from + i))
    .sort((a, b) => a - b);
}

describe('delivery gaps', () => {
  it('names exactly the indexes that never arrived, in any order of arrival', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }).chain((n) =>
          fc.tuple(
            fc.constant(n),
            fc.shuffledSubarray(
              Array.from({ length: n }, (_, i) => i),
              { minLength: 1 },
            ),
          ),
        ),
        ([, arrived]) => {
          const record = newDeliveryRecord(3);
          for (const c of arrived) noteDelivery(record, 'alice/d1', 5, c);
          const max = Math.max(...arrived);
          const expected = Array.from({ length: max + 1 }, (_, i) => i).filter((i) => !arrived.includes(i));
          expect(covered(openGaps(record))).toEqual(expected);
        },
      ),
    );
  });

  it('a count declared for an earlier epoch reveals the tail that was dropped', () => {
    const record = newDeliveryRecord(0);
    noteDelivery(record, 'alice/d1', 2, 0);
    expect(openGaps(record)).toEqual([]);
    const opened = noteDelivery(record, 'alice/d1', 3, 0, [2, 4]);
    expect(opened).toEqual([{ sender: 'alice/d1', epoch: 2, from: 1, to: 3 }]);
    expect(stillMissing(record, opened[0]!)).toEqual([[1, 3]]);
    noteDelivery(record, 'alice/d1', 2, 2); // a late arrival closes part of it
    expect(stillMissing(record, opened[0]!)).toEqual([
      [1, 1],
      [3, 3],
    ]);
  });

  it('expects nothing of epochs before the device joined, nor of a claim about a later epoch', () => {
    const record = newDeliveryRecord(7);
    expect(noteDelivery(record, 'bob/d1', 6, 9)).toEqual([]);
    expect(noteDelivery(record, 'bob/d1', 8, 0, [6, 100])).toEqual([]);
    expect(noteDelivery(record, 'bob/d1', 8, 1, [9, 100])).toEqual([]);
    expect(openGaps(record)).toEqual([]);
  });

  it('stays bounded: old epochs are forgotten and gap lists merge', () => {
    const record = newDeliveryRecord(0);
    for (let e = 0; e < EPOCHS_KEPT + 10; e++) noteDelivery(record, 'carol/d1', e, 0);
    expect(Object.keys(record.senders['carol/d1']!).length).toBe(EPOCHS_KEPT);
    for (let c = 0; c < 1000; c += 2) noteDelivery(record, 'carol/d2', 1, c);
    expect(record.senders['carol/d2']!['1']!.gaps.length).toBeLessThanOrEqual(64);
    // Merged ranges still cover every missing index (and may over-report, never under-report).
    const missing = covered(openGaps({ since: 0, senders: { x: { 1: record.senders['carol/d2']!['1']! } } }));
    for (let c = 1; c < 998; c += 2) expect(missing).toContain(c);
  });

  it('refuses a record that is not one, and ignores indexes that are not indexes', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        expect(['no error', ErrorCode.MALFORMED]).toContain(codeOf(() => checkDeliveryRecord(value)));
      }),
    );
    expect(codeOf(() => checkDeliveryRecord({ since: 'x', senders: {} }))).toBe(ErrorCode.MALFORMED);
    const record = newDeliveryRecord(0);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) expect(noteDelivery(record, 'a/b', 1, bad)).toEqual([]);
    expect(openGaps(record)).toEqual([]);
  });
});
