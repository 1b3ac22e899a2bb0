/**
 * Where the CLI takes secrets from. Keys and passphrases are accepted from files and environment variables
 * so they need not appear in argv (which other users can read in the process list); flags that take a
 * secret inline say so in their help.
 */
import { readFileSync } from 'node:fs';
import { EnsealError, ErrorCode } from '../crypto/index.js';

/** Reads a small secret file, without its trailing newline. */
export function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (cause) {
    throw new EnsealError(ErrorCode.IO, `cannot read ${what} file ${path}`, { cause });
  }
}

/** The first non-empty of: inline values, the contents of files, an environment variable. */
export function secretsFrom(
  options: { inline?: string[]; files?: string[]; env?: string },
  what: string,
): string[] {
  const values = [...(options.inline ?? [])];
  for (const f of options.files ?? []) values.push(readSecretFile(f, what));
  if (values.length === 0 && options.env !== undefined) {
    const fromEnv = process.env[options.env];
    if (fromEnv !== undefined && fromEnv.length > 0) values.push(fromEnv);
  }
  if (values.length === 0) {
    const hint = options.env === undefined ? '' : `, or set ${options.env}`;
    throw new EnsealError(ErrorCode.KEK_MISSING, `no ${what} given: pass it with a flag or a file${hint}`);
  }
  return values;
}

/** Collects repeated options into an array (commander's variadic helper). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
