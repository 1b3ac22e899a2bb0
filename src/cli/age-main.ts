/**
 * `enseal keygen|encrypt|decrypt` as one self-contained entry. The build bundles it (with its libraries) into
 * `dist/cli/age-bundle/`, because these commands run from scripts and loops and on Node 20 most of their
 * start-up went to resolving and compiling about 45 separate modules (docs/benchmarks.md#cli-start-up).
 * The bundle holds its own copy of every module it uses, so nothing from outside it may be mixed in.
 */
import { registerAge } from './commands/age.js';
import { newProgram } from './program.js';
import { runCli } from './run.js';

export async function runAgeCli(argv: readonly string[]): Promise<void> {
  const program = newProgram();
  registerAge(program);
  await runCli(program, argv);
}
