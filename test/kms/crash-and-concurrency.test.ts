/**
 * Proof under real failure: a node killed with SIGKILL in the middle of key rotation, keyring re-wrapping
 * or backup leaves a store in which every earlier ciphertext still decrypts; and two processes rotating and
 * encrypting on one PostgreSQL lose no version and no write.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { AgeX25519Identity } from '../../src/formats/index.js';
import { KeyManager, restoreBackup } from '../../src/kms/index.js';
import { PostgresStore, SqliteStore } from '../../src/store/index.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from './helpers.js';
import { asyncCodeOf } from '../helpers/errors.js';

const WORKER = new URL('./worker.mjs', import.meta.url).pathname;

function startWorker(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const child = spawn(process.execPath, [WORKER, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  child.on('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null) console.error(`worker failed (${code}): ${stderr}`);
  });
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
}

async function killMidway(args: string[], env: Record<string, string>, afterMs: number): Promise<void> {
  const { child, lines } = startWorker(args, env);
  const first = await lines.next();
  expect(JSON.parse(first.value as string)).toEqual({ ready: true });
  await new Promise((r) => setTimeout(r, afterMs));
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('crash safety (SQLite, SIGKILL)', () => {
  it('rotate, keyring re-wrap and backup killed midway leave every earlier ciphertext readable', async () => {
    const dir = tempDir();
    const dbPath = join(dir, 'enseal.db');
    const devKeyFile = join(dir, 'dev.key');
    const open = async () => KeyManager.open({ store: SqliteStore.open({ path: dbPath }) });
    let km = await open();
    await km.init({ type: 'dev', devKeyFile });
    await km.unsealDev();
    await km.createKey('a');
    await km.createKey('d', { derived: true });
    const made: { key: string; ct: string; plain: string; context?: string }[] = [];
    for (let i = 0; i < 30; i++) {
      made.push({ key: 'a', ct: await km.encrypt('a', utf8Encode(`a${i}`)), plain: `a${i}` });
      const context = `subject-${i % 6}`;
      made.push({
        key: 'd',
        ct: await km.encrypt('d', utf8Encode(`d${i}`), { context: utf8Encode(context) }),
        plain: `d${i}`,
        context,
      });
    }
    await km.close();

    const identity = AgeX25519Identity.generate();
    const backupPath = join(dir, 'backup.age');
    for (const [mode, ms] of [
      ['rotate', 150],
      ['rewrap', 200],
      ['rotate', 60],
      ['rewrap', 90],
      ['backup', 300],
    ] as const) {
      await killMidway(
        [mode, `sqlite:${dbPath}`, identity.recipient.toString()],
        { BACKUP_PATH: backupPath },
        ms,
      );
    }

    km = await open();
    await km.unsealDev();
    for (const m of made) {
      const opts = m.context ? { context: utf8Encode(m.context) } : {};
      expect(utf8Decode(await km.decrypt(m.key, m.ct, opts))).toBe(m.plain);
    }
    const info = await km.readKey('a');
    expect(info.versions.map((v) => v.version)).toEqual(
      Array.from({ length: info.latestVersion }, (_, i) => i + 1),
    );
    expect((await km.verifyAudit()).ok).toBe(true);
    // A second keyring rotation finishes whatever the killed one left.
    await km.rotateKeyring();
    for (const m of made.slice(0, 10)) {
      const opts = m.context ? { context: utf8Encode(m.context) } : {};
      expect(utf8Decode(await km.decrypt(m.key, m.ct, opts))).toBe(m.plain);
    }
    await km.close();
    // The backup file is either absent or complete: never a torn file.
    if (existsSync(backupPath))
      expect(readFileSync(backupPath).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
  });
});

describe('backup and restore', () => {
  it('wipes the store, restores into a fresh one, and decrypts every ciphertext made before the backup', async () => {
    const dir = tempDir();
    const km = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'a.db') }) });
    await km.init({ type: 'dev', devKeyFile: join(dir, 'a.key') });
    await km.unsealDev();
    await km.createKey('orders');
    await km.createKey('tenants', { derived: true });
    await km.createKey('signer', { type: 'ed25519' });
    const made: [string, string, string, string?][] = [];
    for (let i = 0; i < 3; i++) {
      made.push(['orders', await km.encrypt('orders', utf8Encode(`o${i}`)), `o${i}`]);
      await km.rotateKey('orders');
      made.push([
        'tenants',
        await km.encrypt('tenants', utf8Encode(`t${i}`), { context: utf8Encode(`t-${i}`) }),
        `t${i}`,
        `t-${i}`,
      ]);
    }
    const sig = await km.sign('signer', utf8Encode('doc'));
    const identity = AgeX25519Identity.generate();
    const { backupAllKeys, backupKey } = await import('../../src/kms/index.js');
    const full = await backupAllKeys(km, { recipients: [identity.recipient.toString()] });
    expect(await asyncCodeOf(backupKey(km, 'orders', { passphrase: 'pw' }))).toBe('ERR_NOT_ALLOWED');
    await km.close();

    // A new, empty store with a new root key.
    const fresh = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'b.db') }) });
    await fresh.init({ type: 'dev', devKeyFile: join(dir, 'b.key') });
    await fresh.unsealDev();
    expect((await restoreBackup(fresh, full, { identities: [identity] })).sort()).toEqual([
      'orders',
      'signer',
      'tenants',
    ]);
    for (const [key, ct, plain, context] of made) {
      expect(utf8Decode(await fresh.decrypt(key, ct, context ? { context: utf8Encode(context) } : {}))).toBe(
        plain,
      );
    }
    expect(await fresh.verify('signer', utf8Encode('doc'), sig)).toBe(true);
    expect(await restoreBackup(fresh, full, { identities: [identity] }).catch((e) => e.code)).toBe(
      'ERR_KEY_EXISTS',
    );

    // Single-key backup with a passphrase, once allowed.
    await fresh.updateKeyConfig('orders', { allowPlaintextBackup: true });
    const one = await backupKey(fresh, 'orders', { passphrase: 'correct horse battery' });
    const third = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'c.db') }) });
    await third.init({ type: 'dev', devKeyFile: join(dir, 'c.key') });
    await third.unsealDev();
    await restoreBackup(third, one, { passphrase: 'correct horse battery' });
    expect(utf8Decode(await third.decrypt('orders', made[0]![1]))).toBe('o0');
    await fresh.close();
    await third.close();
  });
});

describe('two nodes on one PostgreSQL', () => {
  let pg: TestPostgres | undefined;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => pg?.stop());

  it('rotating and encrypting concurrently loses no version and no write', async () => {
    if (!pg) return;
    const dir = tempDir();
    const km = await KeyManager.open({
      store: await PostgresStore.connect({ connectionString: pg.connectionString }),
    });
    await km.init({ type: 'dev', devKeyFile: join(dir, 'dev.key') });
    await km.unsealDev();
    await km.createKey('shared');
    const cts: string[] = [];
    const rounds = 40;
    const runs = [0, 1].map(async () => {
      const { child, lines } = startWorker(['node', pg!.connectionString, String(rounds)]);
      for await (const line of { [Symbol.asyncIterator]: () => lines }) {
        const event = JSON.parse(line);
        if (event.cts) cts.push(...event.cts);
      }
      await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
      return child.exitCode;
    });
    expect(await Promise.all(runs)).toEqual([0, 0]);
    expect(cts).toHaveLength(2 * rounds * 10);
    const info = await km.readKey('shared');
    // Each node rotated rounds/5 times: every rotation produced exactly one new version.
    expect(info.latestVersion).toBe(1 + 2 * (rounds / 5));
    expect(info.versions.map((v) => v.version)).toEqual(
      Array.from({ length: info.latestVersion }, (_, i) => i + 1),
    );
    const plains = new Set<string>();
    for (const ct of cts) plains.add(utf8Decode(await km.decrypt('shared', ct)));
    expect(plains.size).toBe(cts.length);
    const audit = await km.verifyAudit();
    expect(audit.ok).toBe(true);
    await km.close();
  });
});
