/**
 * `enseal e2ee`: end-to-end encryption. Each subcommand lives in its own module (`e2ee-witness.ts`,
 * `e2ee-client.ts`) and is added to this group here.
 */
import type { Command } from 'commander';
import { registerE2eeClient } from './e2ee-client.js';
import { registerE2eeWitness } from './e2ee-witness.js';

export function registerE2ee(program: Command): void {
  const group = program
    .command('e2ee')
    .description('End-to-end encryption: the device client (groups, messages, files) and the log witness');
  registerE2eeClient(group);
  registerE2eeWitness(group);
}
