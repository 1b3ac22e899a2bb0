/** `enseal tls acme`: placeholder, replaced by its implementation before this lands. */
import type { Command } from 'commander';

export function registerTlsAcme(_tls: Command): void {}
