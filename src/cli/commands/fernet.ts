import type { Command } from 'commander';

/** `enseal fernet …`: generate keys, encrypt and decrypt Fernet tokens (implemented in formats/fernet). */
export function registerFernet(program: Command): void {
  program.command('fernet').description('Fernet tokens, compatible with Python cryptography');
}
