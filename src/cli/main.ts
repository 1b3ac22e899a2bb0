#!/usr/bin/env node
/**
 * The `enseal` command. Each command group lives in its own module under commands/ and registers itself on
 * the program; this file only wires them together and turns errors into `enseal: error:` lines and exit codes.
 */
import { Command } from 'commander';
import { runCli } from './run.js';
import { registerFernet } from './commands/fernet.js';

export function buildProgram(): Command {
  const program = new Command('enseal')
    .description(
      'Protect application data: authenticated envelopes, keysets with rotation, Fernet, HPKE/JWE,\n' +
        'age-format file encryption, and key management.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });
  registerFernet(program);
  return program;
}

const VERSION = '0.1.0';

await runCli(buildProgram(), process.argv);
