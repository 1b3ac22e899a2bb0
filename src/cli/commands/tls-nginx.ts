/** `enseal tls nginx`: placeholder, replaced by its implementation before this lands. */
import type { Command } from 'commander';

export function registerTlsNginx(_tls: Command): void {}
