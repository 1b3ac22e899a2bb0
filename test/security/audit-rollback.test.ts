/**
 * The audit log against a store writer who deletes rather than forges: a wiped log, a log cut back to an
 * older consistent state, and a whole store restored from an old copy are each caught by `verify`.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { utf8Encode } from '../../src/crypto/index.js';
import { KeyManager } from '../../src/kms/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { devManager, tempDir } from '../kms/helpers.js';

/** The store writer's own connection to the SQLite file. */
const sql = (dir: string, fn: (db: Database.Database) => void) => {
  const db = new Database(join(dir, 'enseal.db'));
  try {
    fn(db);
  } finally {
    db.close();
  }
};
const reopen = async (dir: string) => {
  const km = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'enseal.db') }) });
  await km.unsealDev();
  return km;
};

describe('audit log rollback', () => {
  it('a wiped log (entries and head gone) is reported on an initialised store', async () => {
    const { km, dir } = await devManager();
    await km.createKey('k');
    const wipe = () =>
      sql(dir, (db) => {
        db.prepare('DELETE FROM audit_log').run();
        db.prepare("DELETE FROM meta WHERE key = 'audit_head'").run();
      });
    // Under a running node: nothing left at all, which an initialised store never shows.
    wipe();
    const live = await km.verifyAudit();
    expect(live.ok).toBe(false);
    expect(live.problems.map((p) => p.kind)).toContain('truncated');
    await km.close();
    // After a restart the new unseal entry starts a fresh chain, but the keyring remembers how far it was.
    wipe();
    const again = await reopen(dir);
    const result = await again.verifyAudit();
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.kind)).toContain('rolled-back');
    await again.close();
  });

  it('a log cut back to an older consistent state is caught by the position sealed in the keyring', async () => {
    const { km, dir } = await devManager();
    await km.createKey('k');
    await km.close(); // sealing raises the keyring's anchor to this head
    let oldHead: Buffer | undefined;
    let cut = 0;
    sql(dir, (db) => {
      oldHead = (db.prepare("SELECT value FROM meta WHERE key = 'audit_head'").get() as { value: Buffer })
        .value;
      cut = (db.prepare('SELECT max(seq) AS n FROM audit_log').get() as { n: number }).n;
    });
    const more = await reopen(dir);
    for (let i = 0; i < 5; i++) await more.encrypt('k', utf8Encode(`v${i}`));
    await more.close(); // anchor moves past `cut`
    // The writer deletes everything after `cut` and puts the old (authentic) head back: a consistent log.
    sql(dir, (db) => {
      db.prepare('DELETE FROM audit_log WHERE seq > ?').run(cut);
      db.prepare("UPDATE meta SET value = ? WHERE key = 'audit_head'").run(oldHead);
    });
    const victim = await reopen(dir);
    const result = await victim.verifyAudit();
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.kind)).toContain('rolled-back');
    await victim.close();
  });

  it('a whole store restored from an old copy is caught by a checkpoint exported earlier', async () => {
    const { km, dir } = await devManager();
    await km.createKey('k');
    await km.close();
    const copy = tempDir();
    for (const f of ['enseal.db', 'enseal.db-wal', 'enseal.db-shm', 'dev-unseal.key'])
      if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
    const live = await reopen(dir);
    await live.encrypt('k', utf8Encode('after the copy'));
    const checkpoint = await live.auditCheckpoint();
    expect((await live.verifyAudit(checkpoint)).ok).toBe(true);
    await live.close();
    // The old copy is internally consistent (its keyring's anchor is old too) ...
    const old = await reopen(copy);
    expect((await old.verifyAudit()).ok).toBe(true);
    // ... but it does not contain the checkpoint the operator kept.
    const result = await old.verifyAudit(checkpoint);
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.kind)).toEqual(['rolled-back']);
    // A forged checkpoint is refused as such.
    const forged = await old.verifyAudit({ ...checkpoint, seq: 1 });
    expect(forged.problems.map((p) => p.kind)).toContain('modified');
    await old.close();
  });
});
