/** Checks shared by both stores for the e2ee tables. */
import { EnsealError, ErrorCode } from '../crypto/index.js';
import type { E2eeLeafRow } from './types.js';

/** Leaves must continue a log of `size` leaves without a gap or an overlap. */
export function checkLeafRun(size: number, rows: readonly E2eeLeafRow[]): void {
  rows.forEach((r, i) => {
    if (r.index !== size + i)
      throw new EnsealError(
        ErrorCode.STORE,
        `log leaf ${r.index} does not continue the log of size ${size + i}; nothing was appended`,
      );
  });
}
