/** The `enseal` program before any command group is registered: name, description, version, help settings. */
import { Command } from 'commander';
import { configureProgram } from './run.js';
import { VERSION } from './version.js';

export function newProgram(): Command {
  return configureProgram(new Command('enseal'))
    .description(
      'Protect application data: an encryption service, envelopes, keysets, Fernet, age-format files, passwords.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });
}
