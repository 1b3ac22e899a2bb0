import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyManager, type KeyManagerOptions } from '../../src/kms/index.js';
import { SqliteStore, type Store } from '../../src/store/index.js';

/** A controllable clock, so rotation schedules and deletion waits can be tested without waiting. */
export class FakeClock {
  now = Date.parse('2026-01-01T00:00:00Z');
  readonly fn = () => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

export const DAY = 24 * 60 * 60 * 1000;

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'enseal-kms-'));
}

/** An unsealed key manager on a fresh SQLite file (dev seal, low cost). */
export async function devManager(
  options: Partial<KeyManagerOptions> & { store?: Store; dir?: string } = {},
): Promise<{ km: KeyManager; store: Store; dir: string }> {
  const dir = options.dir ?? tempDir();
  const store = options.store ?? SqliteStore.open({ path: join(dir, 'enseal.db') });
  const km = await KeyManager.open({ ...options, store });
  await km.init({ type: 'dev', devKeyFile: join(dir, 'dev-unseal.key') });
  await km.unsealDev();
  return { km, store, dir };
}
