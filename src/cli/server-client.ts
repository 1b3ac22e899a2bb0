/**
 * What the commands that talk to `enseal serve` share: the client from ENSEAL_ADDR / ENSEAL_TOKEN /
 * ENSEAL_CACERT (or --address / --token / --ca-cert), and output as text or, with --json, as one JSON document.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EnsealClient } from '../client/index.js';
import { EnsealError, ErrorCode } from '../crypto/index.js';
import { writeStdout } from './run.js';

export interface ServerFlags {
  address?: string;
  token?: string;
  caCert?: string;
  json?: boolean;
}

/** Adds the connection flags and --json to a command. */
export function serverOptions(command: Command): Command {
  return command
    .option('--address <url>', 'server address (env ENSEAL_ADDR, default https://127.0.0.1:8200)')
    .option('--token <token>', 'token (env ENSEAL_TOKEN; prefer the env var: flags show up in ps)')
    .option('--ca-cert <file>', 'CA certificate to trust (env ENSEAL_CACERT)')
    .option('--json', 'machine-readable output');
}

export function clientFor(flags: ServerFlags): EnsealClient {
  const env = { ...process.env };
  if (flags.address) env.ENSEAL_ADDR = flags.address;
  if (flags.token) env.ENSEAL_TOKEN = flags.token;
  if (flags.caCert) env.ENSEAL_CACERT = flags.caCert;
  return EnsealClient.fromEnv(env);
}

/** Prints `value` as JSON with --json, else as `text` (or indented JSON when no text form is given). */
export async function output(flags: ServerFlags, value: unknown, text?: string): Promise<void> {
  await writeStdout(
    flags.json || text === undefined
      ? JSON.stringify(value, null, flags.json ? undefined : 2) + '\n'
      : text + '\n',
  );
}

/** Reads a whole file, or stdin for `-` / no argument. */
export async function inputBytes(path: string | undefined): Promise<Uint8Array> {
  if (path === undefined || path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }
  try {
    return new Uint8Array(readFileSync(path));
  } catch (cause) {
    throw new EnsealError(ErrorCode.IO, `cannot read ${path}`, { cause });
  }
}
