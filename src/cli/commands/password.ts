/** `enseal password hash|verify`: PHC password hashes. Passwords are read from stdin, never from argv. */
import type { Command } from 'commander';
import { hashPassword, needsRehash, verifyPassword } from '../../keys/index.js';
import { readStdin, writeStdout } from '../run.js';

async function passwordFromStdin(): Promise<string> {
  return new TextDecoder().decode(await readStdin()).replace(/\r?\n$/, '');
}

export function registerPassword(program: Command): void {
  const password = program
    .command('password')
    .description('hash and verify passwords (Argon2id by default; scrypt and PBKDF2 supported)');

  password
    .command('hash')
    .description('hash the password read from stdin; prints a PHC string')
    .option('--algorithm <name>', 'argon2id, scrypt or pbkdf2-sha256', 'argon2id')
    .option('--json', 'structured output')
    .action(async (options: { algorithm: 'argon2id' | 'scrypt' | 'pbkdf2-sha256'; json?: boolean }) => {
      const phc = await hashPassword(await passwordFromStdin(), { algorithm: options.algorithm });
      await writeStdout(options.json ? JSON.stringify({ hash: phc }) + '\n' : phc + '\n');
    });

  password
    .command('verify <hash>')
    .description('verify the password read from stdin against a PHC string; exit 0 if it matches, 5 if not')
    .option('--json', 'structured output')
    .action(async (phc: string, options: { json?: boolean }) => {
      const ok = await verifyPassword(await passwordFromStdin(), phc);
      const rehash = ok && needsRehash(phc);
      if (options.json) await writeStdout(JSON.stringify({ match: ok, needsRehash: rehash }) + '\n');
      else await writeStdout(ok ? (rehash ? 'match (rehash recommended)\n' : 'match\n') : 'no match\n');
      if (!ok) process.exitCode = 5;
    });
}
