/**
 * Data keys from a key server, cached in memory within limits, in the manner of the AWS Encryption SDK's
 * caching materials manager: one data key encrypts at most `maxUses` values and lives at most `maxAgeMs`;
 * unwrapped keys for decryption are kept by their wrapped form, at most `maxEntries` of them and at most
 * `maxAgeMs` each. Keys leaving the cache are zeroed.
 *
 * Encryption must stay synchronous for ORM hooks (a Kysely `transformQuery`, a Drizzle `toDriver`), so the
 * cache holds the current key and a prefetched next one: when the current key is used up it switches to the
 * next and fetches another in the background. With neither usable it fails closed
 * (`ERR_DATA_KEY_UNAVAILABLE`), never reusing a key beyond its limits. Decryption can always wait for the
 * server ({@link DataKeyCache.unwrap}); a synchronous read finds only what is cached.
 */
import { EnsealError, ErrorCode, invalidArgument, wipe } from '../crypto/index.js';
import { remoteValuePrefix, wrappedKeyVersion } from './remote-value.js';

/** Where data keys come from: anything that can make a fresh key and unwrap one it made earlier. */
export interface DataKeyProvider {
  /**
   * A fresh 256-bit data key and its wrapped form. A wrapped key of the form `vault:v<N>:…` tells the
   * wrapping key's version (which re-encryption compares); any other form has none.
   */
  generate(): Promise<{ plaintext: Uint8Array; wrapped: string }>;
  /** The data key inside `wrapped`; a wrapped key it did not make fails (`ERR_DECRYPT_FAILED` or similar). */
  unwrap(wrapped: string): Promise<Uint8Array>;
  /** Optional: several keys in one round trip, in order; per-item failures as `Error`s. */
  unwrapMany?(wrapped: readonly string[]): Promise<(Uint8Array | Error)[]>;
}

/**
 * The part of `EnsealClient` that data keys need, as a structural type (the fields layer does not depend
 * on the client; any object with these methods works).
 */
export interface TransitDataKeyClient {
  dataKey(
    name: string,
    options?: { bits?: 128 | 256 | 512; plaintext?: boolean },
  ): Promise<{ ciphertext: string; plaintext?: Uint8Array }>;
  decrypt(name: string, ciphertext: string): Promise<Uint8Array>;
  decryptBatch?(
    name: string,
    items: readonly { ciphertext: string }[],
  ): Promise<{ plaintext?: Uint8Array; error?: string }[]>;
}

export interface DataKeyCacheOptions {
  /** Values one data key may encrypt (default 10,000; at most 2^24, far below GCM's 2^32 random-nonce bound). */
  maxUses?: number;
  /** How long a data key may encrypt, and how long an unwrapped key stays cached (default 5 minutes). */
  maxAgeMs?: number;
  /** Unwrapped keys kept for decryption, least recently used dropped first (default 1,000). */
  maxEntries?: number;
  /** The clock, in milliseconds (tests inject one). */
  now?: () => number;
  /**
   * Refresh keys in the background before they age out, so a quiet process still has a key when a write
   * comes (default true; the timer never keeps the process alive).
   */
  keepWarm?: boolean;
}

/** Counters only: never a key, never a wrapped key. */
export interface DataKeyCacheStats {
  /** Data keys fetched from the server for encryption. */
  readonly generated: number;
  /** Values encrypted under a cached data key. */
  readonly encryptions: number;
  /** Encryption keys retired because they reached `maxUses`. */
  readonly exhausted: number;
  /** Keys (encryption or decryption) dropped because they reached `maxAgeMs`. */
  readonly expired: number;
  /** Decryption keys dropped to stay within `maxEntries`. */
  readonly evicted: number;
  /** Decryption lookups answered from the cache. */
  readonly hits: number;
  /** Decryption lookups that needed the server (or failed for a synchronous call). */
  readonly misses: number;
  /** Wrapped keys sent to the server to unwrap. */
  readonly unwraps: number;
  /** Server requests that failed (generate or unwrap). */
  readonly failures: number;
  /** Unwrapped keys cached now. */
  readonly cached: number;
}

interface EncryptionKey {
  key: Uint8Array;
  wrapped: string;
  version: number;
  born: number;
  uses: number;
  retired: boolean;
}

interface CachedKey {
  key: Uint8Array;
  born: number;
}

const MAX_USES_LIMIT = 2 ** 24;
/** Encryption keys held at once (a bulk `ready(values)` may ask for several). */
const MAX_KEYS = 1000;
/** Data-key requests in flight at once during one refill. */
const PARALLEL_FETCHES = 8;

function positiveInt(name: string, value: number | undefined, fallback: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > max) throw invalidArgument(name, `must be an integer 1-${max}`);
  return v;
}

function unavailable(message: string, cause?: unknown): EnsealError {
  return new EnsealError(
    ErrorCode.DATA_KEY_UNAVAILABLE,
    message,
    cause === undefined ? undefined : { cause },
  );
}

/** A provider error as it may be shown: an EnsealError keeps its code; anything else becomes unavailable. */
function asTyped(err: unknown): EnsealError {
  if (err instanceof EnsealError) return err;
  return unavailable('the key server request failed', err);
}

/** True when a wrapped key fits in a field value's header (checked once per key, not per value). */
function storable(wrapped: unknown): boolean {
  if (typeof wrapped !== 'string') return false;
  try {
    remoteValuePrefix(wrapped);
    return true;
  } catch {
    return false;
  }
}

/** A key copied out of the cache, so that evicting the cached one cannot zero it under its user. */
function copy(key: Uint8Array): Uint8Array {
  return new Uint8Array(key);
}

/** The caching data-key source that {@link FieldEncryption} uses with `dataKeys`. */
export class DataKeyCache {
  readonly #provider: DataKeyProvider;
  readonly #maxUses: number;
  readonly #maxAge: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** Encryption keys, oldest first: the first encrypts, the rest are prefetched. */
  #keys: EncryptionKey[] = [];
  #refill: Promise<void> | undefined;
  #lastFailure: EnsealError | undefined;
  /** Insertion order doubles as recency: a hit moves its entry to the end. */
  readonly #cache = new Map<string, CachedKey>();
  readonly #inflight = new Map<string, Promise<Uint8Array>>();
  #latestVersion = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #stats = {
    generated: 0,
    encryptions: 0,
    exhausted: 0,
    expired: 0,
    evicted: 0,
    hits: 0,
    misses: 0,
    unwraps: 0,
    failures: 0,
  };

  constructor(provider: DataKeyProvider, options: DataKeyCacheOptions = {}) {
    this.#provider = provider;
    this.#maxUses = positiveInt('maxUses', options.maxUses, 10_000, MAX_USES_LIMIT);
    this.#maxAge = positiveInt('maxAgeMs', options.maxAgeMs, 5 * 60_000, 2 ** 31 - 1);
    this.#maxEntries = positiveInt('maxEntries', options.maxEntries, 1000, 1_000_000);
    this.#now = options.now ?? Date.now;
    if (options.keepWarm !== false) {
      // Refresh a few times per key lifetime; unref'd so that an idle process can exit.
      this.#timer = setInterval(
        () => void this.#topUp().catch(() => undefined),
        Math.max(this.#maxAge / 4, 1000),
      );
      this.#timer.unref?.();
    }
  }

  /**
   * Fetches keys until a current and a prefetched next key are cached, and, with `values`, until the cached
   * keys can encrypt at least that many values (for a bulk insert made synchronously). Rejects with the
   * server's error when it cannot.
   */
  async ready(values = 0): Promise<void> {
    this.#open();
    if (!Number.isInteger(values) || values < 0 || values > MAX_KEYS * this.#maxUses)
      throw invalidArgument('values', `must be an integer 0-${MAX_KEYS * this.#maxUses}`);
    await this.#topUp(values);
    if (this.#available() < Math.max(values, 1))
      throw this.#lastFailure ?? unavailable('no data key is available');
  }

  /**
   * Takes one use of the current data key (synchronous). Switches to the prefetched key when the current
   * one is used up or too old, and starts fetching the next in the background. Fails closed.
   */
  take(): { key: Uint8Array; wrapped: string } {
    this.#open();
    // Only the front key encrypts; later keys are checked when they reach the front.
    while (this.#keys.length > 0 && this.#usable(this.#keys[0]) === undefined)
      this.#retire(this.#keys.shift());
    const k = this.#keys[0];
    // The current key was used up or aged out and the prefetched one took over: fetch the next one now.
    if (this.#keys.length < 2) void this.#topUp().catch(() => undefined);
    if (k === undefined) {
      const why = this.#lastFailure === undefined ? '' : ` (last server error: ${this.#lastFailure.code})`;
      throw unavailable(
        `no data key is available for encryption${why}; await fields.ready() and check the key server`,
      );
    }
    k.uses += 1;
    this.#stats.encryptions += 1;
    return { key: k.key, wrapped: k.wrapped };
  }

  /**
   * The highest key version the server has wrapped a data key under (0 before any key was fetched, and for
   * providers whose wrapped keys carry no version).
   */
  get latestVersion(): number {
    return this.#latestVersion;
  }

  /**
   * Runs `use` with the cached key of `wrapped`, synchronously, without copying it (the key must not escape
   * `use`); returns undefined, counting a miss, when it is not cached.
   */
  withKey<T>(wrapped: string, use: (key: Uint8Array) => T): { result: T } | undefined {
    const hit = this.#cached(wrapped);
    if (hit === undefined) {
      this.#stats.misses += 1;
      return undefined;
    }
    this.#stats.hits += 1;
    return { result: use(hit) };
  }

  /** A cached unwrapped key (a copy the caller may zero), or undefined. Counts a hit or a miss. */
  lookup(wrapped: string): Uint8Array | undefined {
    const hit = this.#cached(wrapped);
    if (hit === undefined) {
      this.#stats.misses += 1;
      return undefined;
    }
    this.#stats.hits += 1;
    return copy(hit);
  }

  /** The data key inside `wrapped`, from the cache or the server (concurrent requests for one key share a call). */
  async unwrap(wrapped: string): Promise<Uint8Array> {
    const hit = this.lookup(wrapped);
    if (hit !== undefined) return hit;
    return copy(await this.#fetch(wrapped));
  }

  /**
   * Unwraps every distinct uncached key in `wrapped` (one batch call when the provider has one) and returns
   * copies of all of them, by wrapped form. The caller zeroes them when done.
   */
  async unwrapAll(wrapped: Iterable<string>): Promise<Map<string, Uint8Array>> {
    this.#open();
    const out = new Map<string, Uint8Array>();
    const missing: string[] = [];
    const pending = new Map<string, Promise<Uint8Array>>();
    for (const w of new Set(wrapped)) {
      const hit = this.lookup(w);
      if (hit !== undefined) out.set(w, hit);
      else if (this.#inflight.has(w))
        pending.set(w, this.#inflight.get(w)!); // another caller asked already
      else missing.push(w);
    }
    if (missing.length > 1 && this.#provider.unwrapMany !== undefined) {
      this.#fetchMany(missing).forEach((p, i) => pending.set(missing[i]!, p));
    } else {
      for (const w of missing) pending.set(w, this.#fetch(w));
    }
    const settled = await Promise.allSettled(pending.values());
    const keys = [...pending.keys()];
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') out.set(keys[i]!, copy(r.value));
    });
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      for (const k of out.values()) wipe(k);
      throw (failed as PromiseRejectedResult).reason;
    }
    return out;
  }

  /**
   * Stops encrypting under the keys cached now and fetches fresh ones: after the server key was rotated,
   * new values are then wrapped under its latest version at once (and re-encryption sees that version).
   */
  async refresh(): Promise<void> {
    this.#open();
    await this.#refill?.catch(() => undefined);
    for (const k of this.#keys) this.#retire(k);
    this.#keys = [];
    await this.ready();
  }

  stats(): DataKeyCacheStats {
    return { ...this.#stats, cached: this.#cache.size };
  }

  /** Zeroes and drops every key, stops the refresh timer; later calls fail. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    for (const k of this.#keys) this.#retire(k);
    this.#keys = [];
    for (const e of this.#cache.values()) wipe(e.key);
    this.#cache.clear();
  }

  #open(): void {
    if (this.#closed) throw unavailable('the data-key cache is closed');
  }

  #usable(k: EncryptionKey | undefined): EncryptionKey | undefined {
    if (k === undefined) return undefined;
    if (k.uses >= this.#maxUses) return undefined;
    if (this.#now() - k.born >= this.#maxAge) return undefined;
    return k;
  }

  /** Zeroes an encryption key that may no longer encrypt, counting why. */
  #retire(k: EncryptionKey | undefined): void {
    if (k === undefined || k.retired) return;
    k.retired = true;
    if (k.uses >= this.#maxUses) this.#stats.exhausted += 1;
    else this.#stats.expired += 1;
    wipe(k.key);
  }

  /** Retires (zeroes) the encryption keys that reached their use or age limit. */
  #dropUnusable(): void {
    this.#keys = this.#keys.filter((k) => {
      if (this.#usable(k) !== undefined) return true;
      this.#retire(k);
      return false;
    });
  }

  /** Values the cached encryption keys may still encrypt. */
  #available(): number {
    this.#dropUnusable();
    return this.#keys.reduce((n, k) => n + (this.#maxUses - k.uses), 0);
  }

  /**
   * How many keys to fetch so that two are cached, `values` uses are available, and the newest is less than
   * half its lifetime old (so that a timer running every quarter lifetime always leaves a usable key).
   */
  #wanted(values: number): number {
    const available = this.#available();
    let n = Math.max(0, 2 - this.#keys.length, Math.ceil((values - available) / this.#maxUses));
    const newest = this.#keys[this.#keys.length - 1];
    if (n === 0 && (newest === undefined || this.#now() - newest.born >= this.#maxAge / 2)) n = 1;
    return Math.min(n, MAX_KEYS - this.#keys.length);
  }

  /** Fetches the keys {@link #wanted} asks for, several at once; one refill runs at a time. */
  #topUp(values = 0): Promise<void> {
    if (this.#refill !== undefined) {
      // A caller wanting more uses waits for the running refill, then asks again.
      return this.#refill.then(() => (values > 0 ? this.#topUp(values) : undefined));
    }
    const run = async () => {
      // Bounded, so that a pathological clock or maxAgeMs cannot turn one refill into a flood of requests.
      const rounds = Math.ceil(this.#wanted(values) / PARALLEL_FETCHES) + 1;
      for (let round = 0; round < rounds && !this.#closed; round++) {
        const n = Math.min(this.#wanted(values), PARALLEL_FETCHES);
        if (n === 0) return;
        const results = await Promise.allSettled(Array.from({ length: n }, () => this.#generate()));
        for (const r of results) {
          if (r.status !== 'fulfilled') continue;
          if (this.#closed) wipe(r.value.key);
          else this.#keys.push(r.value);
        }
        const failed = results.find((r) => r.status === 'rejected');
        if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      }
    };
    this.#refill = run().finally(() => {
      this.#refill = undefined;
    });
    return this.#refill;
  }

  async #generate(): Promise<EncryptionKey> {
    let out: { plaintext: Uint8Array; wrapped: string };
    try {
      out = await this.#provider.generate();
    } catch (err) {
      this.#stats.failures += 1;
      this.#lastFailure = asTyped(err);
      throw this.#lastFailure;
    }
    const plaintext: unknown = out?.plaintext;
    if (!(plaintext instanceof Uint8Array) || plaintext.length !== 32 || !storable(out.wrapped)) {
      if (plaintext instanceof Uint8Array) wipe(plaintext);
      this.#lastFailure = unavailable(
        'the key server gave something other than a 256-bit key and its wrapped form',
      );
      throw this.#lastFailure;
    }
    this.#lastFailure = undefined;
    this.#stats.generated += 1;
    const version = wrappedKeyVersion(out.wrapped);
    if (version > this.#latestVersion) this.#latestVersion = version;
    // Values made under this key will be read back soon: cache it for decryption too (its own copy).
    this.#store(out.wrapped, copy(out.plaintext));
    return { key: out.plaintext, wrapped: out.wrapped, version, born: this.#now(), uses: 0, retired: false };
  }

  #cached(wrapped: string): Uint8Array | undefined {
    const e = this.#cache.get(wrapped);
    if (e === undefined) return undefined;
    this.#cache.delete(wrapped);
    if (this.#now() - e.born >= this.#maxAge) {
      wipe(e.key);
      this.#stats.expired += 1;
      return undefined;
    }
    this.#cache.set(wrapped, e); // most recently used
    return e.key;
  }

  #store(wrapped: string, key: Uint8Array): void {
    const old = this.#cache.get(wrapped);
    if (old !== undefined) {
      wipe(old.key);
      this.#cache.delete(wrapped);
    }
    const now = this.#now();
    // Expired entries go first, then the least recently used.
    for (const [w, e] of this.#cache) {
      if (now - e.born < this.#maxAge) continue;
      wipe(e.key);
      this.#cache.delete(w);
      this.#stats.expired += 1;
    }
    while (this.#cache.size >= this.#maxEntries) {
      const [w, e] = this.#cache.entries().next().value as [string, CachedKey];
      wipe(e.key);
      this.#cache.delete(w);
      this.#stats.evicted += 1;
    }
    this.#cache.set(wrapped, { key, born: now });
  }

  /**
   * One shared request per wrapped key in flight. Resolves with the provider's own buffer while the cache
   * keeps a copy, so that an eviction (which zeroes the cached copy) never changes what a waiter reads.
   */
  #fetch(wrapped: string): Promise<Uint8Array> {
    this.#open();
    const pending = this.#inflight.get(wrapped);
    if (pending !== undefined) return pending;
    const run = async () => {
      this.#stats.unwraps += 1;
      let key: Uint8Array;
      try {
        key = await this.#provider.unwrap(wrapped);
      } catch (err) {
        this.#stats.failures += 1;
        throw asTyped(err);
      }
      if (!(key instanceof Uint8Array) || key.length !== 32) {
        if (key instanceof Uint8Array) wipe(key);
        throw unavailable('the key server unwrapped a data key that is not 256 bits');
      }
      this.#store(wrapped, copy(key));
      return key;
    };
    return this.#track(wrapped, run());
  }

  /** {@link #fetch} for several keys in one provider request; one promise per key, in order. */
  #fetchMany(wrapped: string[]): Promise<Uint8Array>[] {
    this.#stats.unwraps += wrapped.length;
    const batch = (async () => {
      let keys: (Uint8Array | Error)[];
      try {
        keys = await this.#provider.unwrapMany!(wrapped);
      } catch (err) {
        this.#stats.failures += 1;
        throw asTyped(err);
      }
      if (!Array.isArray(keys)) keys = [];
      const failed = keys.find((k) => !(k instanceof Uint8Array) || k.length !== 32);
      if (failed !== undefined || keys.length !== wrapped.length) {
        for (const k of keys) if (k instanceof Uint8Array) wipe(k);
        this.#stats.failures += 1;
        if (failed instanceof Error) throw asTyped(failed);
        throw unavailable('the key server answered a batch with something other than 256-bit keys');
      }
      keys.forEach((k, i) => this.#store(wrapped[i]!, copy(k as Uint8Array)));
      return keys as Uint8Array[];
    })();
    return wrapped.map((w, i) =>
      this.#track(
        w,
        batch.then((keys) => keys[i]!),
      ),
    );
  }

  #track(wrapped: string, work: Promise<Uint8Array>): Promise<Uint8Array> {
    const p = work.finally(() => this.#inflight.delete(wrapped));
    p.catch(() => undefined); // its callers handle the error; this copy must not count as unhandled
    this.#inflight.set(wrapped, p);
    return p;
  }
}

/** A {@link DataKeyProvider} over an `enseal serve` transit key, through `EnsealClient` (or anything shaped like it). */
export function transitKeyProvider(client: TransitDataKeyClient, keyName: string): DataKeyProvider {
  if (typeof keyName !== 'string' || keyName.length === 0)
    throw invalidArgument('keyName', 'must be a key name');
  return {
    async generate() {
      const out = await client.dataKey(keyName, { bits: 256, plaintext: true });
      if (out.plaintext === undefined) throw unavailable('the key server returned no plaintext data key');
      return { plaintext: out.plaintext, wrapped: out.ciphertext };
    },
    unwrap: (wrapped) => client.decrypt(keyName, wrapped),
    ...(client.decryptBatch === undefined
      ? {}
      : {
          async unwrapMany(wrapped: readonly string[]) {
            const results = await client.decryptBatch!(
              keyName,
              wrapped.map((ciphertext) => ({ ciphertext })),
            );
            return results.map((r) =>
              r.plaintext !== undefined
                ? r.plaintext
                : new EnsealError(
                    /ERR_[A-Z_]+/.exec(r.error ?? '')?.[0] === ErrorCode.DECRYPT_FAILED
                      ? ErrorCode.DECRYPT_FAILED
                      : ErrorCode.DATA_KEY_UNAVAILABLE,
                    'the key server could not unwrap a data key',
                  ),
            );
          },
        }),
  };
}

/**
 * Data keys from an `enseal serve` transit key, cached within limits: pass the result as `dataKeys` to
 * `FieldEncryption`.
 *
 * @example
 * ```ts no-run
 * const client = new EnsealClient({ address: 'https://keys.internal:8200', token });
 * const fields = new FieldEncryption({ dataKeys: transitDataKeys(client, 'app-fields', { maxUses: 1000 }), schema });
 * await fields.ready();
 * ```
 */
export function transitDataKeys(
  client: TransitDataKeyClient,
  keyName: string,
  options: DataKeyCacheOptions = {},
): DataKeyCache {
  return new DataKeyCache(transitKeyProvider(client, keyName), options);
}
