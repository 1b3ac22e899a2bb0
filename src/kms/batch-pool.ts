/**
 * A pool of worker threads for the symmetric work of large batches, sized to the cores: a batch of N items
 * is split into one chunk per worker, and the chunks run side by side while the event loop keeps serving
 * other requests. Only the per-item AEAD calls move: key lookups, usage reservations and the one audit
 * entry per request stay in the key manager's thread, so audit order and fail-closed behaviour do not
 * change.
 *
 * Keys cross to the workers as raw bytes inside a message (memory to memory, never written anywhere). If a
 * worker cannot start or dies, its chunks run in the calling thread instead, so a batch never fails
 * because of the pool.
 */
import { Worker } from 'node:worker_threads';
import { pack, runChunk, type BatchChunk, type ChunkResult, type Packed } from './batch-work.js';
import type { KeyType } from './key-types.js';

export interface BatchPoolOptions {
  /** Worker threads (at least 1). */
  readonly size: number;
  /** Where the worker's entry module is (default: batch-worker.js next to this module). */
  readonly workerUrl?: URL;
}

/** One item of a batch, after its key lookup: the data key, the version, and the bytes to work on. */
export interface PoolItem {
  readonly key: Uint8Array;
  readonly version: number;
  readonly data: Uint8Array;
  readonly aad: Uint8Array;
}

/** An item's outcome: a ciphertext text (encrypt), a plaintext (decrypt), or an error code and message. */
export type PoolOutcome =
  | { readonly text: string }
  | { readonly plain: Uint8Array }
  | { readonly code: string; readonly message: string };

interface Slot {
  worker: Worker | undefined;
  broken: boolean;
  jobs: Map<number, { chunk: BatchChunk; resolve: (r: ChunkResult) => void }>;
}

export class BatchPool {
  readonly #slots: Slot[];
  readonly #url: URL;
  #nextId = 1;
  #closed = false;

  constructor(options: BatchPoolOptions) {
    this.#url = options.workerUrl ?? new URL('./batch-worker.js', import.meta.url);
    this.#slots = Array.from({ length: Math.max(1, Math.trunc(options.size)) }, () => ({
      worker: undefined,
      broken: false,
      jobs: new Map(),
    }));
  }

  get size(): number {
    return this.#slots.length;
  }

  /** Runs `items` split over the workers; results come back in item order. */
  async run(kind: 'encrypt' | 'decrypt', type: KeyType, items: readonly PoolItem[]): Promise<PoolOutcome[]> {
    const parts = Math.min(this.#slots.length, items.length);
    const per = Math.ceil(items.length / parts);
    const chunks: Promise<PoolOutcome[]>[] = [];
    for (let p = 0; p < parts; p++) {
      const slice = items.slice(p * per, (p + 1) * per);
      if (slice.length > 0) chunks.push(this.#runOn(this.#slots[p]!, kind, type, slice));
    }
    return (await Promise.all(chunks)).flat();
  }

  async #runOn(
    slot: Slot,
    kind: 'encrypt' | 'decrypt',
    type: KeyType,
    items: readonly PoolItem[],
  ): Promise<PoolOutcome[]> {
    const keys: Uint8Array[] = [];
    const keyIndex = new Uint32Array(items.length);
    const versions = new Uint32Array(items.length);
    const seen = new Map<Uint8Array, number>();
    items.forEach((item, i) => {
      let k = seen.get(item.key);
      if (k === undefined) {
        k = keys.length;
        seen.set(item.key, k);
        keys.push(Uint8Array.from(item.key)); // a copy of its own, so wiping it never touches the cache
      }
      keyIndex[i] = k;
      versions[i] = item.version;
    });
    const chunk: BatchChunk = {
      kind,
      type,
      keys,
      keyIndex,
      versions,
      data: pack(items.map((i) => i.data)),
      aad: pack(items.map((i) => i.aad)),
    };
    const result = await this.#dispatch(slot, chunk);
    for (const k of keys) k.fill(0);
    return outcomes(result, items.length);
  }

  #dispatch(slot: Slot, chunk: BatchChunk): Promise<ChunkResult> {
    const worker = this.#closed ? undefined : this.#worker(slot);
    if (worker === undefined) return Promise.resolve(runChunk(chunk));
    const id = this.#nextId++;
    return new Promise((resolve) => {
      slot.jobs.set(id, { chunk, resolve });
      worker.ref();
      worker.postMessage({ id, chunk });
    });
  }

  #worker(slot: Slot): Worker | undefined {
    if (slot.broken) return undefined;
    if (slot.worker !== undefined) return slot.worker;
    let worker: Worker;
    try {
      worker = new Worker(this.#url, { stdout: false, stderr: false });
    } catch {
      slot.broken = true;
      return undefined;
    }
    worker.unref();
    worker.on('message', (m: { id: number; result: ChunkResult }) => {
      const job = slot.jobs.get(m.id);
      if (job === undefined) return;
      slot.jobs.delete(m.id);
      if (slot.jobs.size === 0) worker.unref();
      job.resolve(m.result);
    });
    // A worker that fails (cannot load, crashes) is not restarted: its chunks, pending and future, run here.
    const fail = () => {
      slot.broken = true;
      slot.worker = undefined;
      const pending = [...slot.jobs.values()];
      slot.jobs.clear();
      for (const job of pending) job.resolve(runChunk(job.chunk));
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    slot.worker = worker;
    return worker;
  }

  /** Stops the workers; work still queued on them finishes in the calling thread. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#slots.map(async (slot) => {
        const w = slot.worker;
        slot.worker = undefined;
        if (w !== undefined) {
          w.removeAllListeners('exit');
          const pending = [...slot.jobs.values()];
          slot.jobs.clear();
          await w.terminate();
          for (const job of pending) job.resolve(runChunk(job.chunk));
        }
      }),
    );
  }
}

function unpack(p: Packed, i: number): Uint8Array {
  return p.bytes.subarray(p.offsets[i]!, p.offsets[i + 1]!);
}

function outcomes(result: ChunkResult, n: number): PoolOutcome[] {
  const failed = new Map(result.errors.map(([i, code, message]) => [i, { code, message }]));
  const out: PoolOutcome[] = [];
  for (let i = 0; i < n; i++) {
    const err = failed.get(i);
    if (err !== undefined) out.push(err);
    else if (result.texts !== undefined) out.push({ text: result.texts[i]! });
    else out.push({ plain: unpack(result.plain!, i) });
  }
  return out;
}
