/**
 * `enseal e2ee`: end-to-end encryption. Each subcommand lives in its own module (`e2ee-witness.ts`, …) and is
 * added to this group here.
 */
import type { Command } from 'commander';
import { registerE2eeWitness } from './e2ee-witness.js';

export function registerE2ee(program: Command): void {
  const group = program
    .command('e2ee')
    .description('End-to-end encryption: the transparency log witness (and, later, the device client)');
  registerE2eeWitness(group);
}
