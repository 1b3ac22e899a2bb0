/** The error code a call fails with ('no error' when it succeeds); non-enseal errors propagate. */
import { EnsealError } from '../../src/crypto/index.js';

export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EnsealError) return err.code;
    throw err;
  }
  return 'no error';
}

export async function asyncCodeOf(work: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    if (err instanceof EnsealError) return err.code;
    throw err;
  }
  return 'no error';
}
