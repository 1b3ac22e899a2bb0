import { EnsealError, ErrorCode } from '../crypto/index.js';

/**
 * Wraps a driver failure. The message names the operation only: driver messages can quote row values,
 * and rows hold wrapped key material.
 */
export function storeError(operation: string, cause: unknown): EnsealError {
  if (cause instanceof EnsealError) return cause;
  const code = (cause as { code?: unknown } | null)?.code;
  const hint = typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? ` (${code})` : '';
  return new EnsealError(
    ErrorCode.STORE,
    `store ${operation} failed${hint}; check that the database is reachable and writable`,
    {
      cause,
    },
  );
}
