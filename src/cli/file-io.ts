/**
 * Streaming file plumbing for the CLI: input from a path or stdin, output to stdout, to a device or pipe, or
 * to a regular file through an atomic file (src/files): a temporary file beside the target, renamed into
 * place only when everything succeeded, so a failed or tampered decryption never leaves partial plaintext
 * behind.
 *
 * Bytes move through file descriptors directly, not Node streams: reads go into two buffers allocated once
 * and reused, and each read's output is handed to one vectored write. The read of the next block and the
 * write of the previous one run on libuv's thread pool while the main thread encrypts or decrypts the
 * current one, so I/O and crypto overlap on a multi-core machine, with a fixed amount of memory in flight
 * (docs/benchmarks.md#age).
 *
 * Memory: node:crypto returns every 64 KiB chunk's output in a fresh buffer, and V8 frees such buffers only
 * once 32 MiB of them have piled up in the young generation (twice its default semi-space size), which took
 * the process to about 90 MiB. A young-generation collection every 2 MiB of input keeps it near the module
 * baseline (docs/benchmarks.md#age). V8 only offers that through its `gc` function, exposed here the way test
 * runners expose it; where that is unavailable the pipeline runs the same, with V8's own schedule.
 */
import { closeSync, fstatSync, openSync, read, statSync, writev } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EnsealError, ErrorCode } from '../crypto/index.js';
import { createAtomicFile, type AtomicFile } from '../files/index.js';

/** Bytes per read; the output of one read is one vectored write. */
const BLOCK = 512 * 1024;
const STDIN = 0;
const STDOUT = 1;

export interface Input {
  fd: number;
  /** Size in bytes when reading a regular file. */
  size?: number;
}

export function openInput(path: string | undefined): Input {
  if (path === undefined || path === '-') return { fd: STDIN };
  try {
    const fd = openSync(path, 'r');
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      closeSync(fd);
      throw new Error('is a directory');
    }
    return st.isFile() ? { fd, size: st.size } : { fd };
  } catch (cause) {
    throw new EnsealError(ErrorCode.IO, `cannot read ${path}`, { cause });
  }
}

export interface OutputTarget {
  path?: string;
}

/**
 * Checks the output before any work, as far as it can be checked: a directory is refused. An existing
 * regular file is replaced, as `age` does (atomically, once the whole input succeeded); devices and pipes
 * (`-o /dev/null`, a FIFO) are written to directly.
 */
export function checkOutput(target: OutputTarget): void {
  const path = target.path;
  if (path === undefined || path === '-') return;
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    return; // does not exist yet (or unreadable): the open reports it
  }
  if (isDirectory) throw new EnsealError(ErrorCode.IO, `cannot write ${path}: it is a directory`);
}

/** Transforms bytes as they arrive; output goes to `emit`, which must not be kept past the call. */
export interface Codec {
  push(data: Uint8Array, emit: (bytes: Uint8Array) => void): void;
  finish(emit: (bytes: Uint8Array) => void): void;
}

interface Progress {
  tick(n: number): void;
  stop(): void;
}

/** A progress bar on stderr for large inputs when stderr is a terminal; nothing in pipes. */
async function progress(size: number | undefined): Promise<Progress> {
  if (size === undefined || size < 16 * 1024 * 1024 || !process.stderr.isTTY) return { tick() {}, stop() {} };
  const { SingleBar } = await import('cli-progress'); // loaded only when a bar is shown
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

/** Input bytes between young-generation collections. */
const COLLECT_EVERY = 2 * 1024 * 1024;

type MinorGc = () => void;
let minorGc: MinorGc | null | undefined;

/** V8's collector for the young generation, or null when this runtime does not expose one. */
function youngGc(): MinorGc | null {
  if (minorGc !== undefined) return minorGc;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as ((options: { type: 'minor' }) => void) | undefined;
    minorGc = typeof gc === 'function' ? () => gc({ type: 'minor' }) : null;
  } catch {
    minorGc = null;
  }
  return minorGc;
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 2));

function isRetryable(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR';
}

/** One read into `buf`; 0 at the end. A non-blocking stdin (EAGAIN) is polled. */
async function readBlock(fd: number, buf: Uint8Array): Promise<number> {
  for (;;) {
    try {
      return await new Promise<number>((resolve, reject) =>
        read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))),
      );
    } catch (err) {
      if (!isRetryable(err)) throw err;
      await pause();
    }
  }
}

/** Writes every byte of `chunks`, continuing after partial writes (pipes) and EAGAIN (non-blocking fds). */
async function writeAll(fd: number, chunks: Uint8Array[]): Promise<void> {
  let i = 0;
  while (i < chunks.length) {
    let n: number;
    try {
      n = await new Promise<number>((resolve, reject) =>
        writev(fd, chunks.slice(i, i + 1024), null, (err, written) => (err ? reject(err) : resolve(written))),
      );
    } catch (err) {
      if (!isRetryable(err)) throw err;
      await pause();
      continue;
    }
    while (i < chunks.length && n >= chunks[i]!.length) n -= chunks[i++]!.length;
    if (n > 0) chunks[i] = chunks[i]!.subarray(n);
  }
}

interface Output {
  fd: number;
  /** Set when writing a regular file through a temporary file. */
  atomic?: AtomicFile;
  close(): void;
}

function openOutput(target: OutputTarget): Output {
  const path = target.path;
  if (path === undefined || path === '-') return { fd: STDOUT, close() {} };
  let special: boolean;
  try {
    special = !statSync(path).isFile();
  } catch {
    special = false; // not there yet: a new regular file
  }
  if (special) {
    // A device or a pipe: written as data authenticates, like stdout; there is nothing to rename.
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (cause) {
      throw new EnsealError(ErrorCode.IO, `cannot write ${path}`, { cause });
    }
    return { fd, close: () => closeSync(fd) };
  }
  // Plaintext and keys alike: 0600 from the first byte. No fsync: like `age`, a crash mid-run means running
  // the command again, and the target is never left half-written either way.
  const atomic = createAtomicFile(path, { mode: 0o600, durable: false });
  return { fd: atomic.fd, atomic, close: () => atomic.discard() };
}

/**
 * Runs input → codec → output. Reads and writes overlap with the codec's work; the output file appears only
 * on success. Errors that are not EnsealErrors become ERR_IO.
 */
export async function runPipeline(input: Input, target: OutputTarget, codec: Codec): Promise<void> {
  const bar = await progress(input.size);
  const output = openOutput(target);
  const gc = input.size === undefined || input.size > COLLECT_EVERY ? youngGc() : null;
  let sinceGc = 0;
  const buffers = [new Uint8Array(BLOCK), new Uint8Array(BLOCK)];
  let which = 0;
  let reading = readBlock(input.fd, buffers[0]!);
  let writing: Promise<void> = Promise.resolve();
  try {
    let out: Uint8Array[] = [];
    const emit = (bytes: Uint8Array) => void out.push(bytes);
    for (;;) {
      const n = await reading;
      if (n === 0) break;
      const current = buffers[which]!;
      which ^= 1;
      reading = readBlock(input.fd, buffers[which]!); // the next read overlaps this block's work
      codec.push(n === current.length ? current : current.subarray(0, n), emit);
      bar.tick(n);
      sinceGc += n;
      if (gc !== null && sinceGc >= COLLECT_EVERY) {
        sinceGc = 0;
        gc();
      }
      await writing;
      writing = writeAll(output.fd, out);
      out = [];
    }
    codec.finish(emit);
    await writing;
    await writeAll(output.fd, out);
    if (output.atomic !== undefined) output.atomic.commit();
  } catch (err) {
    if ((err as { code?: string }).code === 'EPIPE' && output.fd === STDOUT) {
      // `enseal … | head` closed the pipe early: the output ends there; that is not a failure to report.
      process.exit(process.exitCode ?? 0);
    }
    if (err instanceof EnsealError) throw err;
    throw new EnsealError(ErrorCode.IO, (err as Error).message ?? 'I/O failed', { cause: err });
  } finally {
    // Let the thread pool finish with both descriptors before they are closed (and their numbers reused).
    // A pending read of stdin is left alone: it may wait for a terminal forever, and fd 0 stays open.
    await Promise.allSettled(input.fd === STDIN ? [writing] : [reading, writing]);
    output.close();
    if (input.fd !== STDIN) closeSync(input.fd);
    bar.stop();
  }
}
