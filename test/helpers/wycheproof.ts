/** Runs Wycheproof files case by case and prints one summary line per file. */
import { expect } from 'vitest';
import { loadJson } from './vectors.js';

export interface WycheproofCase {
  tcId: number;
  comment: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
  [field: string]: unknown;
}

interface WycheproofFile<G> {
  numberOfTests: number;
  testGroups: (G & { tests: WycheproofCase[] })[];
}

/** What one case came to: `pass` (valid accepted / invalid rejected), or `na` with a reason. */
export type Outcome = { kind: 'pass' } | { kind: 'na'; reason: string } | { kind: 'skip'; reason: string };

export const PASS: Outcome = { kind: 'pass' };

/**
 * Runs `check` on every case of a Wycheproof file and asserts that every applicable case passed and that the
 * counts add up to the file's numberOfTests. `check` throws (via expect) when a case misbehaves.
 */
export function runWycheproof<G>(
  file: string,
  check: (group: G, tc: WycheproofCase) => Outcome,
): { total: number; valid: number; invalid: number; na: number; skipped: number } {
  const data = loadJson<WycheproofFile<G>>('wycheproof', file);
  const counts = { total: 0, valid: 0, invalid: 0, na: 0, skipped: 0 };
  const reasons = new Map<string, number>();
  for (const group of data.testGroups) {
    for (const tc of group.tests) {
      counts.total++;
      let outcome: Outcome;
      try {
        outcome = check(group, tc);
      } catch (err) {
        throw new Error(`${file} tcId ${tc.tcId} (${tc.result}: ${tc.comment}): ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (outcome.kind === 'pass') {
        if (tc.result === 'invalid') counts.invalid++;
        else counts.valid++;
      } else {
        if (outcome.kind === 'na') counts.na++;
        else counts.skipped++;
        reasons.set(outcome.reason, (reasons.get(outcome.reason) ?? 0) + 1);
      }
    }
  }
  expect(counts.total).toBe(data.numberOfTests);
  const why = [...reasons].map(([r, n]) => `${n} ${r}`).join('; ');
  console.log(
    `wycheproof ${file}: ${counts.total} cases, ${counts.valid} valid/acceptable ok, ${counts.invalid} invalid rejected` +
      `, ${counts.na} not applicable, ${counts.skipped} skipped${why ? ` (${why})` : ''}`,
  );
  return counts;
}

export function hex(tc: WycheproofCase, field: string): string {
  return tc[field] as string;
}
