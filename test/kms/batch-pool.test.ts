import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomBytes, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { BatchPool } from '../../src/kms/batch-pool.js';
import { KeyManager } from '../../src/kms/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { devManager } from './helpers.js';

// The worker entry runs as JavaScript, so the pool's own threads are tested on the build (`npm test` builds).
const WORKER = new URL('../../dist/kms/batch-worker.js', import.meta.url);

describe('batch worker pool', () => {
  it('encrypts and decrypts in worker threads, item by item, in order', async () => {
    expect(existsSync(WORKER), 'dist/kms/batch-worker.js is missing: run npm run build').toBe(true);
    const pool = new BatchPool({ size: 2, workerUrl: WORKER });
    try {
      const key = randomBytes(32);
      const other = randomBytes(32);
      const items = Array.from({ length: 601 }, (_, i) => ({
        key: i % 3 === 0 ? other : key,
        version: 1 + (i % 3),
        data: utf8Encode(`value ${i}`),
        aad: utf8Encode(i % 2 === 0 ? '' : `aad ${i}`),
      }));
      const sealed = await pool.run('encrypt', 'aes256-gcm96', items);
      expect(sealed).toHaveLength(601);
      const texts = sealed.map((o, i) => {
        if (!('text' in o)) throw new Error(`item ${i} failed`);
        expect(o.text.startsWith(`vault:v${1 + (i % 3)}:`)).toBe(true);
        return o.text;
      });
      const back = await pool.run(
        'decrypt',
        'aes256-gcm96',
        items.map((item, i) => ({
          ...item,
          data: Buffer.from(texts[i]!.slice(texts[i]!.indexOf(':', 7) + 1), 'base64'),
          // Item 5 is presented with the wrong associated data: only that item fails.
          aad: i === 5 ? utf8Encode('wrong') : item.aad,
        })),
      );
      back.forEach((o, i) => {
        if (i === 5) expect(o).toMatchObject({ code: 'ERR_DECRYPT_FAILED' });
        else expect('plain' in o && utf8Decode(o.plain)).toBe(`value ${i}`);
      });
      // The caller's key buffers are never wiped by the pool (it sends copies).
      expect(key.some((b) => b !== 0)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('runs the work in the calling thread when a worker cannot start', async () => {
    const pool = new BatchPool({ size: 2, workerUrl: new URL('./no-such-worker.js', import.meta.url) });
    try {
      const key = randomBytes(32);
      const out = await pool.run(
        'encrypt',
        'chacha20-poly1305',
        Array.from({ length: 10 }, () => ({
          key,
          version: 1,
          data: utf8Encode('x'),
          aad: new Uint8Array(0),
        })),
      );
      expect(out.every((o) => 'text' in o)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('a key manager with batch workers keeps one audit entry per batch call', async () => {
    const { km } = await devManager({ batchWorkers: 2, batchWorkerThreshold: 1 });
    try {
      await km.createKey('k');
      const before = (await km.verifyAudit()).entries;
      const values = Array.from({ length: 700 }, (_, i) => utf8Encode(`v${i}`));
      const enc = await km.encryptBatch(
        'k',
        values.map((plaintext) => ({ plaintext })),
      );
      const dec = await km.decryptBatch('k', [
        ...enc.map((r) => ({ ciphertext: r.value! })),
        { ciphertext: 'vault:v1:AAAA' },
      ]);
      expect(dec.slice(0, 700).map((r) => utf8Decode(r.value!))).toEqual(values.map((v) => utf8Decode(v)));
      expect(dec[700]!.error).toBeDefined();
      const audit = await km.verifyAudit();
      expect(audit.ok).toBe(true);
      expect(audit.entries - before).toBe(2);
    } finally {
      await km.close();
    }
  });
});

describe('a rotation on another node', () => {
  it('is followed at once when a ciphertext names a version newer than the cached key', async () => {
    const { km: a, dir } = await devManager({ cacheTtlMs: 60_000 });
    const b = await KeyManager.open({
      store: SqliteStore.open({ path: join(dir, 'enseal.db') }),
      cacheTtlMs: 60_000,
    });
    try {
      await b.unsealDev();
      await a.createKey('k');
      const v1 = await a.encrypt('k', utf8Encode('one'));
      expect(utf8Decode(await b.decrypt('k', v1))).toBe('one'); // b caches version 1 for a minute
      await a.rotateKey('k');
      const v2 = await a.encrypt('k', utf8Encode('two'));
      expect(v2.startsWith('vault:v2:')).toBe(true);
      expect(utf8Decode(await b.decrypt('k', v2))).toBe('two');
      const batch = await b.decryptBatch('k', [{ ciphertext: v1 }, { ciphertext: v2 }]);
      expect(batch.map((r) => utf8Decode(r.value!))).toEqual(['one', 'two']);
    } finally {
      await b.close();
      await a.close();
    }
  });
});

describe('key cache reloads under concurrency', () => {
  it('never seal with the bytes of a replaced cache entry', async () => {
    // Every call reloads the key (TTL 0) and every encryption waits for a reservation (block of 1), so
    // operations hold cache entries across awaits while other calls replace them.
    const { km } = await devManager({ cacheTtlMs: 0, reservationBlock: 1 });
    try {
      await km.createKey('k');
      const values = Array.from({ length: 200 }, (_, i) => `v${i}`);
      const cts = await Promise.all(values.map((v) => km.encrypt('k', utf8Encode(v))));
      const batch = await km.encryptBatch(
        'k',
        values.map((v) => ({ plaintext: utf8Encode(v) })),
      );
      const opened = await km.decryptBatch('k', [
        ...cts.map((ciphertext) => ({ ciphertext })),
        ...batch.map((r) => ({ ciphertext: r.value! })),
      ]);
      expect(opened.filter((r) => r.error !== undefined)).toHaveLength(0);
      expect(opened.map((r) => utf8Decode(r.value!))).toEqual([...values, ...values]);
    } finally {
      await km.close();
    }
  });
});
