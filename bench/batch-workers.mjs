// Where the batch worker pool starts to pay: km.encryptBatch / km.decryptBatch of 32-byte values on SQLite,
// in the calling thread (batchWorkers 0) against the pool sized to the cores, alternating round by round,
// at several batch sizes, with 4 batches in flight (the serve benchmark's batch load). The ratio is the
// median of the per-round ratios. Every call writes its one audit entry, durably, either way.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KeyManager } from '../dist/kms/index.js';
import { SqliteStore } from '../dist/store/index.js';
import { fmt } from './harness.mjs';

const SIZES = [64, 128, 256, 512, 1000, 2000, 5000];
const ROUNDS = 5;
const SECONDS = 0.4;
const IN_FLIGHT = 4;
const WORKERS = availableParallelism();
const value = randomBytes(32);
const dir = mkdtempSync(join(tmpdir(), 'enseal-bench-batch-'));
chmodSync(dir, 0o777);

async function open(label, batchWorkers) {
  const km = await KeyManager.open({
    store: SqliteStore.open({ path: join(dir, `${label}.db`) }),
    batchWorkers,
    batchWorkerThreshold: 1,
  });
  await km.init({ type: 'dev', devKeyFile: join(dir, `${label}.key`) });
  await km.unsealDev();
  await km.createKey('bench');
  return km;
}

/** Values/s, and the main thread's busy time and the whole process's CPU time per value, in µs. */
async function rate(op, items) {
  let n = 0;
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await op();
        n += items;
      }
    }),
  );
  const busy = performance.eventLoopUtilization(elu).active * 1000;
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - start) / 1000;
  return { rate: n / seconds, main: busy / n, cpu: (used.user + used.system) / n };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const inline = await open('inline', 0);
  const pooled = await open('pooled', WORKERS);
  console.log(
    `Batch encrypt/decrypt of 32-byte values, ${IN_FLIGHT} calls in flight, main thread vs ${WORKERS} workers` +
      ` (load average ${loadavg()[0].toFixed(1)})`,
  );
  for (const kind of ['encrypt', 'decrypt']) {
    for (const size of SIZES) {
      const items = Array.from({ length: size }, () => ({ plaintext: value }));
      const run = async (km) => {
        if (kind === 'encrypt') return () => km.encryptBatch('bench', items);
        const cts = (await km.encryptBatch('bench', items)).map((r) => ({ ciphertext: r.value }));
        return () => km.decryptBatch('bench', cts);
      };
      const a = await run(inline);
      const b = await run(pooled);
      await rate(a, size);
      await rate(b, size);
      const ra = [];
      const rb = [];
      const ratios = [];
      for (let r = 0; r < ROUNDS; r++) {
        const x = await rate(a, size);
        const y = await rate(b, size);
        ra.push(x);
        rb.push(y);
        ratios.push(y.rate / x.rate);
      }
      const m = (xs, f) => median(xs.map((x) => x[f]));
      console.log(
        `${kind.padEnd(8)} ${String(size).padStart(5)} items  main thread ${fmt(m(ra, 'rate')).padStart(9)} values/s` +
          ` (${m(ra, 'main').toFixed(1)} µs busy, ${m(ra, 'cpu').toFixed(1)} µs CPU per value)` +
          `  workers ${fmt(m(rb, 'rate')).padStart(9)} values/s (${m(rb, 'main').toFixed(1)} µs main thread busy,` +
          ` ${m(rb, 'cpu').toFixed(1)} µs CPU)  ${median(ratios).toFixed(2)}x`,
      );
    }
  }
  console.log(`load average at the end ${loadavg()[0].toFixed(1)}`);
  await inline.close();
  await pooled.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
