import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { utf8Encode } from '../../src/crypto/index.js';
import type { KeyManager } from '../../src/kms/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
import { devManager, tempDir } from './helpers.js';

async function exported(km: KeyManager) {
  const lines: string[] = [];
  for await (const line of km.exportAudit()) lines.push(line);
  return lines;
}

async function populated() {
  const dir = tempDir();
  const store = SqliteStore.open({ path: join(dir, 'enseal.db') });
  const { km } = await devManager({ store, dir });
  await km.createKey('k', { derived: true });
  for (let i = 0; i < 5; i++)
    await km.encrypt('k', utf8Encode(`card 4111-${i}`), { context: utf8Encode('tenant-a') });
  await asyncCodeOf(km.sign('k', utf8Encode('m'), {}, { caller: 'mallory' }));
  return { km, store: store as SqliteStore };
}

describe('audit log', () => {
  it('records every operation, allowed or denied, with secrets only as keyed hashes', async () => {
    const { km } = await populated();
    const lines = await exported(km);
    const entries = lines.map((l) => JSON.parse(l));
    expect(entries.map((e) => e.op)).toEqual([
      'init',
      'unseal',
      'key.create',
      'encrypt',
      'encrypt',
      'encrypt',
      'encrypt',
      'encrypt',
      'sign',
    ]);
    const denied = entries.at(-1);
    expect([denied.outcome, denied.code, denied.caller]).toEqual(['denied', 'ERR_KEY_USAGE', 'mallory']);
    const text = lines.join('');
    expect(text).not.toContain('tenant-a');
    // 'card 4111' has a space and letters outside hex, so no hash or chain value can contain it by chance.
    expect(text).not.toContain('card 4111');
    // Operators can find entries about a value by hashing it the same way.
    expect(entries[3].hashed.context).toBe(km.auditHash(utf8Encode('tenant-a')));
    expect((await km.verifyAudit()).ok).toBe(true);
    // Nor in metrics, usage counters or error messages.
    const errors: string[] = [];
    for (const attempt of [
      km.decrypt('k', 'vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', { context: utf8Encode('tenant-a') }),
      km.encrypt('k', utf8Encode('card 4111-x'), { context: new Uint8Array(5000) }),
      km.encrypt('nope', utf8Encode('card 4111-y')),
    ]) {
      await attempt.catch((err: Error) => errors.push(`${err.message} ${JSON.stringify(err)}`));
    }
    expect(errors).toHaveLength(3);
    for (const text of [km.metrics(), JSON.stringify(km.usage()), ...errors]) {
      expect(text).not.toContain('tenant-a');
      expect(text).not.toContain('card 4111');
    }
    await km.close();
  });

  it.each([
    [
      'modified',
      (s: SqliteStore) =>
        s.unsafeExec(`UPDATE audit_log SET entry = replace(entry, '"ok"', '"denied"') WHERE seq = 3`),
      3,
    ],
    ['deleted', (s: SqliteStore) => s.unsafeExec('DELETE FROM audit_log WHERE seq = 4'), 5],
    [
      'inserted',
      (s: SqliteStore) =>
        s.unsafeExec(
          `INSERT INTO audit_log (seq, entry, hash, mac) SELECT 100, entry, hash, '${'0'.repeat(64)}' FROM audit_log WHERE seq = 2`,
        ),
      100,
    ],
    [
      'reordered',
      (s: SqliteStore) =>
        s.unsafeExec(
          `UPDATE audit_log SET seq = -1 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = -1`,
        ),
      3,
    ],
    ['truncated', (s: SqliteStore) => s.unsafeExec('DELETE FROM audit_log WHERE seq >= 7'), 6],
  ] as const)('verify detects a %s entry and says where', async (kind, tamper, seq) => {
    const { km, store } = await populated();
    await km.seal(); // flush, then tamper with the file as an attacker with database access would
    await km.unsealDev();
    tamper(store);
    const result = await km.verifyAudit();
    expect(result.ok).toBe(false);
    expect(result.problems[0]).toMatchObject({ kind, seq });
    await km.close();
  });

  it('fails the operation when its audit record cannot be written', async () => {
    const { km, store } = await populated();
    await km.encrypt('k', utf8Encode('fine'), { context: 'YQ==' });
    store.unsafeExec('ALTER TABLE audit_log RENAME TO audit_log_gone');
    expect(await asyncCodeOf(km.encrypt('k', utf8Encode('x'), { context: 'YQ==' }))).toBe('ERR_AUDIT_FAILED');
    expect(await asyncCodeOf(km.rotateKey('k'))).toBe('ERR_AUDIT_FAILED');
    store.unsafeExec('ALTER TABLE audit_log_gone RENAME TO audit_log');
    // The failed rotation committed nothing: its audit entry and its new version were one transaction.
    expect((await km.readKey('k')).latestVersion).toBe(1);
    expect((await km.verifyAudit()).ok).toBe(true);
    await km.close();
  });

  it('group-commits concurrent records into a valid chain', async () => {
    const { km } = await devManager();
    await km.createKey('k');
    await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        km.encrypt('k', utf8Encode(String(i)), {}, { caller: `c${i % 7}` }),
      ),
    );
    const result = await km.verifyAudit();
    // init, unseal, key.create and the 500 encryptions
    expect(result).toMatchObject({ ok: true, entries: 503 });
    await km.close();
  });

  it('usage monitor flags a rate spike and a denied burst, as warnings and metrics', async () => {
    const { FakeClock } = await import('./helpers.js');
    const clock = new FakeClock();
    const warnings: string[] = [];
    const { km } = await devManager({
      clock: clock.fn,
      monitor: {
        windowMs: 60_000,
        spikeMinimum: 50,
        deniedBurst: 10,
        onWarning: (w) => warnings.push(`${w.kind}:${w.caller}`),
      },
    });
    await km.createKey('k');
    for (let w = 0; w < 4; w++) {
      for (let i = 0; i < 5; i++) await km.encrypt('k', utf8Encode('x'), {}, { caller: 'app' });
      clock.advance(60_000);
    }
    expect(warnings).toEqual([]);
    for (let i = 0; i < 60; i++) await km.encrypt('k', utf8Encode('x'), {}, { caller: 'app' });
    for (let i = 0; i < 10; i++) await asyncCodeOf(km.sign('k', utf8Encode('x'), {}, { caller: 'probe' }));
    expect(warnings).toEqual(['rate_spike:app', 'denied_burst:probe']);
    const metrics = km.metrics();
    expect(metrics).toContain('enseal_requests_total{key="k",op="encrypt",caller="app",outcome="ok"} 80');
    expect(metrics).toContain('enseal_usage_warnings_total{kind="rate_spike"} 1');
    await km.close();
  });
});
