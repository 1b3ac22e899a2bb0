/** `enseal tls ca`: placeholder, replaced by its implementation before this lands. */
import type { Command } from 'commander';

export function registerTlsCa(_tls: Command): void {}
