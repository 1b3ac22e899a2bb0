// Writes test/file-durations.json (seconds per test file, longest first) from a vitest JSON report, for the
// longest-first test sequencer (test/sequencer.ts). Usage:
//   npx vitest run --reporter=json --outputFile=report.json && node scripts/file-durations.mjs report.json
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const reportFile = process.argv[2];
if (!reportFile) {
  console.error('usage: node scripts/file-durations.mjs <vitest JSON report>');
  process.exit(2);
}
const report = JSON.parse(readFileSync(reportFile, 'utf8'));
const entries = report.testResults
  .map((r) => [
    relative(root, r.name).split('\\').join('/'),
    Math.round((r.endTime - r.startTime) / 100) / 10,
  ])
  .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
const out = join(root, 'test', 'file-durations.json');
writeFileSync(out, `${JSON.stringify(Object.fromEntries(entries), null, 2)}\n`);
console.log(`${entries.length} files written to ${relative(root, out)}`);
