/**
 * Streaming file plumbing for the CLI: input from a path or stdin, output to stdout or to a temporary file
 * beside the target that is renamed into place only when everything succeeded, so a failed or tampered
 * decryption never leaves partial plaintext behind.
 */
import { createReadStream, createWriteStream, existsSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SingleBar } from 'cli-progress';
import { EnsealError, ErrorCode } from '../crypto/index.js';

export interface Input {
  stream: Readable;
  /** Size in bytes when reading a regular file. */
  size?: number;
}

export function openInput(path: string | undefined): Input {
  if (path === undefined || path === '-') return { stream: process.stdin };
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (cause) {
    throw new EnsealError(ErrorCode.IO, `cannot read ${path}`, { cause });
  }
  return { stream: createReadStream(path, { highWaterMark: 1 << 20 }), size };
}

export interface OutputTarget {
  path?: string;
  force?: boolean;
}

/** Fails early, before any work, when the output exists and --force was not given. */
export function checkOutput(target: OutputTarget): void {
  if (target.path !== undefined && target.path !== '-' && existsSync(target.path) && !target.force) {
    throw new EnsealError(ErrorCode.OUTPUT_EXISTS, `${target.path} exists; pass --force to overwrite it`);
  }
}

/** A progress bar on stderr for large inputs when stderr is a terminal; nothing in pipes. */
function progress(size: number | undefined): { tick(n: number): void; stop(): void } {
  if (size === undefined || size < 16 * 1024 * 1024 || !process.stderr.isTTY) return { tick() {}, stop() {} };
  const bar = new SingleBar({
    stream: process.stderr,
    format: ' {bar} {percentage}% | {value}/{total} MiB | {speed} MiB/s | ETA {eta}s',
    hideCursor: true,
  });
  const mib = (n: number) => Math.round(n / 1048576);
  const start = Date.now();
  let done = 0;
  bar.start(mib(size), 0, { speed: 0 });
  return {
    tick(n) {
      done += n;
      const secs = (Date.now() - start) / 1000 || 1;
      bar.update(mib(done), { speed: Math.round(mib(done) / secs) });
    },
    stop() {
      bar.stop();
    },
  };
}

export type Transform = (source: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array | string>;

/** Runs input → transform → output with backpressure; the output file appears only on success. */
export async function runPipeline(input: Input, target: OutputTarget, transform: Transform): Promise<void> {
  const bar = progress(input.size);
  const counted = async function* (source: AsyncIterable<Uint8Array>) {
    for await (const chunk of source) {
      bar.tick(chunk.length);
      yield chunk;
    }
  };
  const toFile = target.path !== undefined && target.path !== '-';
  const tmp = toFile
    ? join(dirname(target.path!), `.${basename(target.path!)}.enseal-${process.pid}.tmp`)
    : undefined;
  const out: Writable =
    tmp !== undefined // A 1 MiB buffer lets the stream batch 64 KiB chunks into few writev calls.
      ? createWriteStream(tmp, { mode: 0o600, highWaterMark: 1 << 20 })
      : process.stdout;
  try {
    await pipeline(input.stream, counted, transform, out, { end: tmp !== undefined });
    if (tmp !== undefined) renameSync(tmp, target.path!);
  } catch (err) {
    if (tmp !== undefined && existsSync(tmp)) unlinkSync(tmp);
    if (err instanceof EnsealError) throw err;
    throw new EnsealError(ErrorCode.IO, (err as Error).message ?? 'I/O failed', { cause: err });
  } finally {
    bar.stop();
  }
}
