// TEMPORARY stand-in for the browser library (replaced when the real one is merged): the e2ee layer and an
// IndexedDB state whose key is kept in the same database. Not for use.
import { randomBytes } from '../crypto/index.js';
import { EncryptedState, type StateBackend } from '../e2ee/index.js';
export * from '../e2ee/index.js';

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

class IdbBackend implements StateBackend {
  constructor(readonly db: IDBDatabase) {}
  async get(name: string) {
    const v = await req(this.db.transaction('records').objectStore('records').get(name));
    return v === undefined ? undefined : new Uint8Array(v as ArrayBuffer);
  }
  async list(prefix: string) {
    const keys = (await req(this.db.transaction('records').objectStore('records').getAllKeys())) as string[];
    return keys.filter((k) => k.startsWith(prefix)).sort();
  }
  commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]) {
    return new Promise<void>((resolve, reject) => {
      const tx = this.db.transaction('records', 'readwrite');
      const s = tx.objectStore('records');
      for (const d of deletes) s.delete(d);
      for (const [k, v] of puts) s.put(v.slice().buffer, k);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  }
  async getMeta(name: string) {
    return (await req(this.db.transaction('meta').objectStore('meta').get(name))) as string | undefined;
  }
  async setMeta(name: string, value: string) {
    await req(this.db.transaction('meta', 'readwrite').objectStore('meta').put(value, name));
  }
  async close() {
    this.db.close();
  }
}

export async function openBrowserClientState(dbName: string) {
  const open = indexedDB.open(dbName, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore('records');
    open.result.createObjectStore('meta');
  };
  const db = await req(open);
  const backend = new IdbBackend(db);
  let hex = await backend.getMeta('shim-key');
  if (hex === undefined) {
    hex = [...randomBytes(32)].map((b) => b.toString(16).padStart(2, '0')).join('');
    await backend.setMeta('shim-key', hex);
  }
  const key = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
  const state = await EncryptedState.open(backend, { key });
  return { state, deviceSigner: undefined, backend };
}
