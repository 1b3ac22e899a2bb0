/**
 * Files that appear whole or not at all. Content goes to a temporary file beside the target, which is renamed
 * over the target only when complete: readers see the old file or the new one, never a mix, and a failed
 * write (or a decryption that fails half-way) leaves the target untouched.
 *
 * The temporary name is random and the file is created exclusively (O_CREAT | O_EXCL, the `wx` flag), which
 * also refuses a symbolic link at that name. A predictable name such as `<target>.tmp-<pid>` opened with `w`
 * would let another local user who can write to the directory plant a file or a symlink there in advance
 * and have the content, plaintext included, written where they chose.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { EnsealError, ErrorCode, hexEncode, randomBytes } from '../crypto/index.js';

export interface AtomicFileOptions {
  /** Permission bits of the new file, applied from its creation (default 0o644). */
  mode?: number;
  /**
   * Flush the file and its directory entry to disk before and after the rename (default true), so a crash
   * cannot leave an empty file under the target name. Bulk outputs that a crash would redo anyway may skip
   * it, as the `age` CLI does.
   */
  durable?: boolean;
}

/** A temporary file being written; `commit()` puts it in place, `discard()` removes it. */
export interface AtomicFile {
  /** Open for writing; owned by this object until commit() or discard(). */
  readonly fd: number;
  readonly tempPath: string;
  commit(): void;
  /** Closes and deletes the temporary file. Safe to call more than once and after a failed commit(). */
  discard(): void;
}

function ioError(path: string, err: unknown): EnsealError {
  if (err instanceof EnsealError) return err;
  const code = (err as { code?: string }).code ?? 'error';
  return new EnsealError(ErrorCode.IO, `cannot write ${path}: ${code}`, { cause: err });
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A fresh random name beside `target`; 64 random bits make meeting a name already there vanishingly rare. */
function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${hexEncode(randomBytes(8))}.tmp`);
}

const ATTEMPTS = 4;

function retryable(err: unknown, attempt: number): boolean {
  return (err as { code?: string }).code === 'EEXIST' && attempt < ATTEMPTS - 1;
}

/** Opens a new temporary file beside `target` (exclusive create, random name). */
export function createAtomicFile(target: string, options: AtomicFileOptions = {}): AtomicFile {
  const mode = options.mode ?? 0o644;
  const durable = options.durable ?? true;
  const dir = dirname(target);
  let tempPath = '';
  let fd = -1;
  for (let attempt = 0; fd < 0; attempt++) {
    tempPath = tempName(target);
    try {
      fd = openSync(tempPath, 'wx', mode);
    } catch (err) {
      if (!retryable(err, attempt)) throw ioError(target, err);
    }
  }
  let open = true;
  let placed = false;
  const close = () => {
    if (open) {
      open = false;
      closeSync(fd);
    }
  };
  try {
    fchmodSync(fd, mode); // the umask may have narrowed the create mode
  } catch (err) {
    close();
    rmSync(tempPath, { force: true });
    throw ioError(target, err);
  }
  return {
    fd,
    tempPath,
    commit() {
      try {
        if (durable) fsyncSync(fd);
        close();
        renameSync(tempPath, target);
        placed = true;
        if (durable) syncDirectory(dir);
      } catch (err) {
        throw ioError(target, err);
      }
    },
    discard() {
      try {
        close();
      } finally {
        if (!placed) rmSync(tempPath, { force: true });
      }
    },
  };
}

/** Writes `data` to `path` atomically (see {@link createAtomicFile}); errors are ERR_IO. */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  options: AtomicFileOptions = {},
): void {
  const file = createAtomicFile(path, options);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length;) off += writeSync(file.fd, bytes, off, bytes.length - off);
    file.commit();
  } catch (err) {
    file.discard();
    throw ioError(path, err);
  }
}

/**
 * Writes `data` to `path` atomically and durably with `mode`, without blocking the event loop. Readers see the
 * old file or the new one, never a mix; the rename replaces the inode, which is why `enseal serve` watches
 * directories, not files.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  let temp = '';
  let handle: FileHandle | undefined;
  try {
    for (let attempt = 0; handle === undefined; attempt++) {
      temp = tempName(path);
      try {
        handle = await open(temp, 'wx', mode);
      } catch (err) {
        if (!retryable(err, attempt)) throw err;
      }
    }
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    temp = '';
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } catch {
      // as in syncDirectory
    } finally {
      await dir.close();
    }
  } catch (err) {
    if (temp !== '' && handle !== undefined) await rm(temp, { force: true });
    throw ioError(path, err);
  }
}
