/**
 * Process-level CLI plumbing: error formatting, exit statuses, stdin/stdout helpers. Errors print as
 * `enseal: error: <message> (<CODE>)` on stderr, or as JSON with --json, and never include a cause chain,
 * which could hold secrets.
 */
import type { Command } from 'commander';
import { CommanderError } from 'commander';
import { EnsealError, ErrorCode } from '../crypto/index.js';

/** Exit statuses are stable so scripts can branch on them. */
export const ExitCode = {
  OK: 0,
  /** Any other failure. */
  FAILURE: 1,
  /** Bad usage: unknown flag, missing argument, conflicting options. */
  USAGE: 2,
  /** Decryption or verification failed: wrong key, tampered or truncated input. */
  DECRYPT: 3,
  /** Input was not in the expected format. */
  MALFORMED: 4,
  /** A key, identity or passphrase was missing or did not match. */
  KEY: 5,
  /** Reading or writing failed, or the output already exists. */
  IO: 6,
} as const;

export function exitCodeFor(err: EnsealError): number {
  return EXIT_CODES[err.code] ?? ExitCode.FAILURE;
}

/** The CLI exit status of each error code, as docs/errors.md lists them (a test keeps the two in step). */
const EXIT_CODES: Partial<Record<string, number>> = {
  [ErrorCode.DECRYPT_FAILED]: ExitCode.DECRYPT,
  [ErrorCode.TOKEN_EXPIRED]: ExitCode.DECRYPT,
  [ErrorCode.SIGNATURE_INVALID]: ExitCode.DECRYPT,
  [ErrorCode.MALFORMED]: ExitCode.MALFORMED,
  [ErrorCode.KEY_NOT_FOUND]: ExitCode.KEY,
  [ErrorCode.KEK_MISSING]: ExitCode.KEY,
  [ErrorCode.NO_IDENTITY_MATCH]: ExitCode.KEY,
  [ErrorCode.PASSWORD_MISMATCH]: ExitCode.KEY,
  [ErrorCode.KEY_USAGE]: ExitCode.KEY,
  [ErrorCode.PERMISSION_DENIED]: ExitCode.KEY,
  [ErrorCode.SEALED]: ExitCode.KEY,
  [ErrorCode.UNSEAL_FAILED]: ExitCode.KEY,
  [ErrorCode.KEY_PENDING_DELETION]: ExitCode.KEY,
  [ErrorCode.NOT_ALLOWED]: ExitCode.KEY,
  [ErrorCode.KEY_RESERVED]: ExitCode.KEY,
  [ErrorCode.IO]: ExitCode.IO,
  [ErrorCode.OUTPUT_EXISTS]: ExitCode.IO,
  [ErrorCode.STORE]: ExitCode.IO,
  [ErrorCode.AUDIT_FAILED]: ExitCode.IO,
  [ErrorCode.RECORD_TAMPERED]: ExitCode.IO,
  [ErrorCode.RATE_LIMITED]: ExitCode.IO,
  [ErrorCode.ACME_UNREACHABLE]: ExitCode.IO,
  [ErrorCode.INVALID_ARGUMENT]: ExitCode.USAGE,
  [ErrorCode.UNSUPPORTED]: ExitCode.USAGE,
  [ErrorCode.INVALID_STATE]: ExitCode.USAGE,
  [ErrorCode.KEY_EXISTS]: ExitCode.USAGE,
};

/** True when the user asked for machine-readable output anywhere on the command line. */
export function wantsJson(argv: readonly string[]): boolean {
  return argv.includes('--json');
}

export function printError(err: unknown, json: boolean): number {
  if (err instanceof EnsealError) {
    if (json) process.stderr.write(JSON.stringify({ error: err.toJSON() }) + '\n');
    else process.stderr.write(`enseal: error: ${err.message} (${err.code})\n`);
    return exitCodeFor(err);
  }
  // Unexpected errors: print the message only; a stack trace could include secrets from arguments.
  const message = err instanceof Error ? err.message : String(err);
  if (json) process.stderr.write(JSON.stringify({ error: { code: 'ERR_INTERNAL', message } }) + '\n');
  else process.stderr.write(`enseal: error: ${message} (ERR_INTERNAL)\n`);
  return ExitCode.FAILURE;
}

/** Settings every command inherits; apply before adding subcommands, which copy them when created. */
export function configureProgram(program: Command): Command {
  return program.exitOverride().configureOutput({
    outputError: (str, write) => write(str.startsWith('error:') ? `enseal: ${str}` : str),
  });
}

export async function runCli(program: Command, argv: readonly string[]): Promise<void> {
  // `enseal … | head` closes the pipe early; that ends the output, it is not a crash worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : ExitCode.USAGE;
      return;
    }
    process.exitCode = printError(err, wantsJson(argv));
  }
}

/** Reads all of stdin. */
export async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const buf = Buffer.concat(chunks);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Writes to stdout and resolves once flushed, so a following exit cannot truncate output. */
export function writeStdout(data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolve()));
  });
}
