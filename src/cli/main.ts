#!/usr/bin/env node
/**
 * The `enseal` command. Each command group lives in its own module under commands/ and registers itself on
 * the program; this file only wires them together and turns errors into `enseal: error:` lines and exit codes.
 */
import { Command } from 'commander';
import { configureProgram, runCli } from './run.js';
import { registerAge } from './commands/age.js';
import { registerFernet } from './commands/fernet.js';
import { registerKeyset } from './commands/keyset.js';
import { registerPassword } from './commands/password.js';
import { registerServe } from './commands/serve.js';
import { registerOperator } from './commands/operator.js';
import { registerKeys } from './commands/keys.js';
import { registerTransit } from './commands/transit.js';
import { registerAudit } from './commands/audit.js';
import { registerDb } from './commands/db.js';
import { registerTls } from './commands/tls.js';

export function buildProgram(): Command {
  const program = configureProgram(new Command('enseal'))
    .description(
      'Protect application data: an encryption service, envelopes, keysets, Fernet, age-format files, passwords.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });
  registerAge(program);
  registerKeyset(program);
  registerFernet(program);
  registerPassword(program);
  registerServe(program);
  registerOperator(program);
  registerKeys(program);
  registerTransit(program);
  registerAudit(program);
  registerDb(program);
  registerTls(program);
  return program;
}

const VERSION = '0.1.0';

await runCli(buildProgram(), process.argv);
