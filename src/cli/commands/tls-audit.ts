/** `enseal tls audit`: placeholder, replaced by its implementation before this lands. */
import type { Command } from 'commander';

export function registerTlsAudit(_tls: Command): void {}
