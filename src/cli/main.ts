#!/usr/bin/env node
/**
 * The `enseal` command. Each command group lives in its own module under commands/ and registers itself on
 * the program; this file only wires them together and turns errors into `enseal: error:` lines and exit codes.
 *
 * Start-up matters for a command run from scripts and loops, so only the module of the command being run is
 * imported (commander's own help and "did you mean" suggestions need every group, so an unknown command, or
 * none, loads them all), and `--version` loads nothing at all (docs/benchmarks.md#cli-start-up).
 */
import * as nodeModule from 'node:module';
import type { Command } from 'commander';
import { VERSION } from './version.js';

// Node ≥ 22.1 can cache compiled module code on disk between runs; older versions simply lack the function.
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

type Register = (program: Command) => void;

/** Top-level command names → the module that registers them. */
const GROUPS: readonly [names: readonly string[], load: () => Promise<Register>][] = [
  [['keygen', 'encrypt', 'decrypt'], async () => (await import('./commands/age.js')).registerAge],
  [['keyset'], async () => (await import('./commands/keyset.js')).registerKeyset],
  [['fernet'], async () => (await import('./commands/fernet.js')).registerFernet],
  [['password'], async () => (await import('./commands/password.js')).registerPassword],
  [['serve'], async () => (await import('./commands/serve.js')).registerServe],
  [['operator'], async () => (await import('./commands/operator.js')).registerOperator],
  [['keys'], async () => (await import('./commands/keys.js')).registerKeys],
  [['transit'], async () => (await import('./commands/transit.js')).registerTransit],
  [['audit'], async () => (await import('./commands/audit.js')).registerAudit],
  [['db'], async () => (await import('./commands/db.js')).registerDb],
  [['tls'], async () => (await import('./commands/tls.js')).registerTls],
  [['doctor'], async () => (await import('./commands/doctor.js')).registerDoctor],
  [['e2ee'], async () => (await import('./commands/e2ee.js')).registerE2ee],
];

/** The command name in argv: the first argument that is not an option. */
function commandName(argv: readonly string[]): string | undefined {
  return argv.slice(2).find((a) => !a.startsWith('-'));
}

/**
 * The program with the command groups `argv` needs registered (all of them when `argv` is omitted, names no
 * known command, or asks for help).
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const { newProgram } = await import('./program.js');
  const program = newProgram();
  const name = argv === undefined ? undefined : commandName(argv);
  const wanted = GROUPS.filter(([names]) => name !== undefined && names.includes(name));
  const registers = await Promise.all((wanted.length > 0 ? wanted : GROUPS).map(([, load]) => load()));
  for (const register of registers) register(program);
  return program;
}

/** The bundled age commands (built by scripts/bundle-cli.mjs), or undefined when only tsc has run. */
async function bundledAge(): Promise<((argv: readonly string[]) => Promise<void>) | undefined> {
  const url = new URL('./age-bundle/age-main.js', import.meta.url).href;
  try {
    return ((await import(url)) as { runAgeCli: (argv: readonly string[]) => Promise<void> }).runAgeCli;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message?.includes('age-bundle')) return undefined;
    throw err;
  }
}

const argv = process.argv;
const version = argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V');
const age = !version && ['keygen', 'encrypt', 'decrypt'].includes(commandName(argv) ?? '');
const runAge = age ? await bundledAge() : undefined;
if (version) {
  process.stdout.write(VERSION + '\n');
} else if (runAge !== undefined) {
  await runAge(argv);
} else {
  const { runCli } = await import('./run.js');
  await runCli(await buildProgram(argv), argv);
}
