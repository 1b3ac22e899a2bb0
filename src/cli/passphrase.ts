/**
 * Reading a passphrase from the terminal without echo, as `age -p` does. Scripts use --passphrase-file;
 * with neither a terminal nor a file, the CLI refuses rather than reading a secret from a pipe by surprise.
 */
import { openSync, closeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { EnsealError, ErrorCode } from '../crypto/index.js';

function ttyStream(): { stream: ReadStream; close: () => void } {
  if (process.stdin.isTTY) return { stream: process.stdin as ReadStream, close: () => undefined };
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r');
  } catch {
    throw new EnsealError(
      ErrorCode.KEK_MISSING,
      'no terminal to read a passphrase from; use --passphrase-file',
    );
  }
  const stream = new ReadStream(fd);
  return { stream, close: () => (stream.destroy(), closeSync(fd)) };
}

/** Reads one line from the terminal without echoing it (passphrases, unseal shares). */
export function readHidden(prompt: string): Promise<string> {
  const { stream, close } = ttyStream();
  process.stderr.write(prompt);
  stream.setRawMode(true);
  stream.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stream.setRawMode(false);
      stream.pause();
      stream.removeListener('data', onData);
      close();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new EnsealError(ErrorCode.IO, 'interrupted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stream.on('data', onData);
  });
}

/** Prompts for a passphrase; when `confirm`, asks twice and requires both to match. */
export async function promptPassphrase(confirm: boolean): Promise<string> {
  const first = await readHidden('Enter passphrase: ');
  if (first.length === 0)
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'the passphrase must not be empty');
  if (confirm && (await readHidden('Confirm passphrase: ')) !== first) {
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'the passphrases did not match');
  }
  return first;
}
