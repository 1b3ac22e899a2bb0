/**
 * Every `@example` in the public API's TSDoc runs here, so documentation cannot drift from the code. Each
 * example is transpiled and executed with the library's exports in scope; `import` lines inside examples are
 * dropped because those names are provided. An example that throws fails its test.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import * as root from '../../src/index.js';
import * as kms from '../../src/kms/index.js';
import * as store from '../../src/store/index.js';
import * as fields from '../../src/fields/index.js';
import * as e2ee from '../../src/e2ee/index.js';

// Examples see every public export: the root entry point, the server-side subpaths and enseal/e2ee (first, so
// that a name both export, such as checkKeyName, is the key manager's).
const enseal = { ...e2ee, ...root, ...kms, ...store, ...fields };

const srcDir = fileURLToPath(new URL('../../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'cli' ? [] : sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

interface Example {
  file: string;
  line: number;
  code: string;
}

/** Pulls ```ts fenced blocks that follow an @example tag out of JSDoc comments. */
function examplesIn(file: string): Example[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const found: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\*\s*@example\b/.test(lines[i]!)) continue;
    let j = i + 1;
    while (j < lines.length && !/^\s*\*\s*```/.test(lines[j]!)) {
      if (/^\s*\*\//.test(lines[j]!) || /^\s*\*\s*@\w/.test(lines[j]!)) break;
      j++;
    }
    if (j >= lines.length || !/^\s*\*\s*```/.test(lines[j]!)) continue;
    // ```ts no-run marks an example that needs files or a terminal; everything else must run.
    const noRun = /no-run/.test(lines[j]!);
    const body: string[] = [];
    for (j = j + 1; j < lines.length && !/^\s*\*\s*```/.test(lines[j]!); j++) {
      body.push(lines[j]!.replace(/^\s*\* ?/, ''));
    }
    if (!noRun) found.push({ file: relative(srcDir, file), line: i + 1, code: body.join('\n') });
    i = j;
  }
  return found;
}

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
  ...args: string[]
) => (...values: unknown[]) => Promise<unknown>;

async function runExample(code: string): Promise<void> {
  const withoutImports = code
    .split('\n')
    .filter((l) => !/^\s*import\s/.test(l))
    .join('\n');
  const js = transformSync(withoutImports, { loader: 'ts', format: 'esm', target: 'es2022' }).code;
  const names = Object.keys(enseal).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n));
  const fn = new AsyncFunction(...names, js);
  await fn(...names.map((n) => (enseal as Record<string, unknown>)[n]));
}

const examples = sourceFiles(srcDir).flatMap(examplesIn);

describe('TSDoc examples', () => {
  it('finds examples to run', () => {
    expect(examples.length).toBeGreaterThan(0);
  });
  for (const ex of examples) {
    it(`${ex.file}:${ex.line} runs`, async () => {
      await runExample(ex.code);
    });
  }
});
