import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAtomicFile, writeFileAtomic, writeFileAtomicSync } from '../../src/files/index.js';
import { openInput, runPipeline } from '../../src/cli/file-io.js';

const dir = mkdtempSync(join(tmpdir(), 'enseal-atomic-'));

/** A file another local user controls, and a symlink to it planted where a temporary file might be made. */
function plant(at: string): string {
  const victim = join(dir, `victim-${Math.random().toString(36).slice(2)}`);
  writeFileSync(victim, 'victim');
  symlinkSync(victim, at);
  return victim;
}

describe('atomic files', () => {
  it('never follow a symlink planted at the predictable temporary names used before', () => {
    // The CLI used to write `<target>.tmp-<pid>` (keyset, audit export, operator backup) and
    // `.<name>.enseal-<pid>.tmp` (encrypt/decrypt -o) with a plain "w" open, which follows a symlink.
    const target = join(dir, 'keyset.json');
    const victim = plant(`${target}.tmp-${process.pid}`);
    writeFileAtomicSync(target, 'secret keyset', { mode: 0o600 });
    expect(readFileSync(victim, 'utf8')).toBe('victim');
    expect(readFileSync(target, 'utf8')).toBe('secret keyset');
    expect(lstatSync(target).isSymbolicLink()).toBe(false);
    expect(lstatSync(target).mode & 0o777).toBe(0o600);
  });

  it('the CLI pipeline writes -o output through an exclusive, randomly named temporary file', async () => {
    const input = join(dir, 'plain.txt');
    writeFileSync(input, 'plaintext that must not leak');
    const target = join(dir, 'plain.out');
    const victim = plant(join(dir, `.plain.out.enseal-${process.pid}.tmp`));
    const identity = { push: (d: Uint8Array, emit: (b: Uint8Array) => void) => emit(d.slice()), finish() {} };
    await runPipeline(openInput(input), { path: target }, identity);
    expect(readFileSync(victim, 'utf8')).toBe('victim');
    expect(lstatSync(target).isSymbolicLink()).toBe(false);
    expect(readFileSync(target, 'utf8')).toBe('plaintext that must not leak');
    expect(readdirSync(dir).filter((f) => f.startsWith('.plain.out.') && !f.includes('enseal-'))).toEqual([]);
  });

  it('creates the temporary file exclusively, beside the target, and cleans up', async () => {
    const target = join(dir, 'out.bin');
    const file = createAtomicFile(target, { mode: 0o600 });
    expect(file.tempPath.startsWith(join(dir, '.out.bin.'))).toBe(true);
    expect(file.tempPath).toMatch(/\.[0-9a-f]{16}\.tmp$/);
    expect(lstatSync(file.tempPath).mode & 0o777).toBe(0o600);
    file.discard();
    file.discard();
    expect(existsSync(file.tempPath)).toBe(false);
    expect(existsSync(target)).toBe(false);
    await writeFileAtomic(target, 'async', 0o644);
    expect(readFileSync(target, 'utf8')).toBe('async');
    await expect(writeFileAtomic(join(dir, 'missing', 'x'), 'y')).rejects.toMatchObject({ code: 'ERR_IO' });
  });
});
