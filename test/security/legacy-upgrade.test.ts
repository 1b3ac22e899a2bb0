/**
 * Upgrading a store written before records were authenticated (enseal 0.1, fixture in test/fixtures): at the
 * first unseal every token, policy and key-settings record is sealed once, the old tokens and policies keep
 * working, and from then on a plain record slipped into the store is refused as tampered.
 */
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { utf8Decode } from '../../src/crypto/index.js';
import { KeyManager } from '../../src/kms/index.js';
import { capabilitiesFor, PolicyStore, TokenStore } from '../../src/server/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { tempDir } from '../kms/helpers.js';

const fixture = join(import.meta.dirname, '..', 'fixtures', 'legacy-store-0.1');
const expected = JSON.parse(readFileSync(join(fixture, 'expect.json'), 'utf8')) as {
  rootToken: string;
  childToken: string;
  ciphertext: string;
  plaintext: string;
  createdAt: string;
};
// Token lookups run on the fixture's clock, so the 32-day child token never expires under the test.
const clock = () => Date.parse(expected.createdAt) + 60_000;

/** A copy of the fixture whose dev seal points at the copy's own key file. */
function copyOfFixture(): string {
  const dir = tempDir();
  cpSync(fixture, dir, { recursive: true });
  const db = new Database(join(dir, 'enseal.db'));
  const row = db.prepare("SELECT value FROM meta WHERE key = 'seal'").get() as { value: Buffer };
  const config = JSON.parse(row.value.toString()) as { devKeyFile: string };
  config.devKeyFile = join(dir, 'dev-unseal.key');
  db.prepare("UPDATE meta SET value = ? WHERE key = 'seal'").run(Buffer.from(JSON.stringify(config)));
  db.close();
  return dir;
}

describe('a store from before authenticated records', () => {
  it('is authenticated at the first unseal; its tokens, policies and keys keep working', async () => {
    const dir = copyOfFixture();
    const plainBefore = new Database(join(dir, 'enseal.db'))
      .prepare("SELECT value FROM meta WHERE key LIKE 'token/%'")
      .all() as { value: Buffer }[];
    expect(plainBefore.every((r) => !r.value.toString().startsWith('{"v":1,"body":'))).toBe(true);

    const km = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'enseal.db') }) });
    await km.unsealDev();
    const tokens = new TokenStore(km, clock);
    const policies = new PolicyStore(km);
    expect((await tokens.lookup(expected.rootToken))?.policies).toEqual(['root']);
    const child = await tokens.lookup(expected.childToken);
    expect(child?.policies).toEqual(['app']);
    const caps = capabilitiesFor(
      await policies.resolve(child!.policies),
      child!.policies,
      'transit/encrypt/seeds',
    );
    expect([...caps]).toEqual(['update']);
    expect(utf8Decode(await km.decrypt('seeds', expected.ciphertext))).toBe(expected.plaintext);
    expect((await km.verifyAudit()).ok).toBe(true);
    await km.close();

    // Every record is now sealed, and a plain one written behind the key manager's back is refused.
    const db = new Database(join(dir, 'enseal.db'));
    const rows = db
      .prepare("SELECT key, value FROM meta WHERE key LIKE 'token/%' OR key LIKE 'policy/%'")
      .all() as {
      key: string;
      value: Buffer;
    }[];
    expect(rows.length).toBeGreaterThanOrEqual(3);
    expect(rows.every((r) => r.value.toString().startsWith('{"v":1,"body":'))).toBe(true);
    const legacyPolicy = 'path "*" { capabilities = ["read", "update", "sudo"] }';
    db.prepare("UPDATE meta SET value = ? WHERE key = 'policy/app'").run(Buffer.from(legacyPolicy));
    db.close();
    const again = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'enseal.db') }) });
    await again.unsealDev();
    const resolved = await new PolicyStore(again).resolve(['app']);
    expect(resolved.map((p) => p.name)).toEqual(['default']);
    await again.close();
  });
});
