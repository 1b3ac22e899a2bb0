/** The CLI's exit statuses are part of its interface: every error code is documented with the status it gets. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EnsealError, ErrorCode } from '../../src/crypto/index.js';
import { exitCodeFor } from '../../src/cli/run.js';

const table = new Map(
  [
    ...readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8').matchAll(
      /^\| `(ERR_\w+)`.*\|\s*(\d+)\s*\|$/gm,
    ),
  ].map((m) => [m[1]!, Number(m[2])]),
);

describe('CLI exit statuses', () => {
  it('documents every error code', () => {
    const missing = Object.values(ErrorCode).filter((code) => !table.has(code));
    expect(missing).toEqual([]);
  });

  it.each([...table])('%s exits with the documented status %i', (code, status) => {
    expect(exitCodeFor(new EnsealError(code as ErrorCode, 'x'))).toBe(status);
  });
});
