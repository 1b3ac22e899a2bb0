/**
 * The order test files start in: longest first, from the per-file durations recorded in
 * test/file-durations.json, so that with two workers the long files (scanner runs, the MLS vectors, the
 * 100,000-request memory test) do not start last and leave one worker idle while the other finishes them.
 * A file the list does not know yet starts before all recorded ones (it may be long, and a new file shows up
 * early); among themselves those go largest first, as vitest's own sequencer orders unknown files.
 *
 * The order never changes what runs, only when: each file still runs alone in its own process.
 * Refresh the list after adding slow tests:
 *   CI=true ENSEAL_SLOW_VECTORS=1 npx vitest run && node scripts/file-durations.mjs
 */
import { readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const recorded = JSON.parse(
  readFileSync(new URL('./file-durations.json', import.meta.url), 'utf8'),
) as Record<string, number>;

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const key = (spec: TestSpecification) => {
      const seconds = recorded[relative(root, spec.moduleId).split('\\').join('/')];
      return { seconds: seconds ?? Number.POSITIVE_INFINITY, size: statSync(spec.moduleId).size };
    };
    const keys = new Map(files.map((spec) => [spec, key(spec)] as const));
    return [...files].sort((a, b) => {
      const ka = keys.get(a)!;
      const kb = keys.get(b)!;
      if (ka.seconds !== kb.seconds) return kb.seconds > ka.seconds ? 1 : -1;
      return kb.size - ka.size;
    });
  }
}
