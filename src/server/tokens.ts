/**
 * Tokens: bearer credentials that carry policies and a TTL. Only a SHA-256 hash of each token is stored
 * (tokens are 256-bit random values, so a fast hash is enough), so a store dump yields no usable credential.
 * Lookups are cached for one second per node; a revocation therefore takes effect everywhere within a second.
 */
import {
  base64UrlEncode,
  hexEncode,
  invalidArgument,
  randomBytes,
  sha256,
  utf8Decode,
  utf8Encode,
} from '../crypto/index.js';
import type { Store } from '../store/index.js';

const PREFIX = 'token/';
const TOKEN_PREFIX = 'ens.';
const CACHE_MS = 1000;
/** Longest TTL a token may ask for: 32 days, Vault's default max lease. */
export const MAX_TOKEN_TTL_MS = 32 * 24 * 60 * 60 * 1000;

export interface TokenInfo {
  /** A non-secret handle: the first 16 hex digits of the token's hash. */
  readonly accessor: string;
  readonly policies: readonly string[];
  readonly displayName: string;
  readonly createdAt: number;
  /** 0 for tokens that never expire (the root token). */
  readonly expiresAt: number;
  readonly parent?: string;
}

function hashOf(token: string): string {
  return hexEncode(sha256(utf8Encode(token)));
}

export class TokenStore {
  readonly #store: Store;
  readonly #clock: () => number;
  readonly #cache = new Map<string, { info: TokenInfo | undefined; at: number }>();

  constructor(store: Store, clock: () => number = Date.now) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Creates a token. `ttlMs` 0 means no expiry, allowed only for root tokens. */
  async create(options: {
    policies: readonly string[];
    ttlMs: number;
    displayName?: string;
    parent?: string;
  }): Promise<{ token: string; info: TokenInfo }> {
    const { policies, ttlMs } = options;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 0 || ttlMs > MAX_TOKEN_TTL_MS) {
      throw invalidArgument('ttl', `must be between 1 second and ${MAX_TOKEN_TTL_MS / 1000} seconds`);
    }
    if (ttlMs === 0 && !policies.includes('root'))
      throw invalidArgument('ttl', 'is required for non-root tokens');
    const token = TOKEN_PREFIX + base64UrlEncode(randomBytes(32));
    const hash = hashOf(token);
    const now = this.#clock();
    const info: TokenInfo = {
      accessor: hash.slice(0, 16),
      policies: [...new Set(policies)].sort(),
      displayName: (options.displayName ?? 'token').slice(0, 128),
      createdAt: now,
      expiresAt: ttlMs === 0 ? 0 : now + ttlMs,
      ...(options.parent ? { parent: options.parent } : {}),
    };
    await this.#store.transaction((tx) => tx.putMeta(PREFIX + hash, utf8Encode(JSON.stringify(info))));
    return { token, info };
  }

  /** The token's info, or undefined when it is unknown, revoked or expired. */
  async lookup(token: string): Promise<TokenInfo | undefined> {
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX) || token.length > 100) return undefined;
    const hash = hashOf(token);
    const now = this.#clock();
    const cached = this.#cache.get(hash);
    let info: TokenInfo | undefined;
    if (cached !== undefined && now - cached.at < CACHE_MS) {
      info = cached.info;
    } else {
      const raw = await this.#store.transaction((tx) => tx.getMeta(PREFIX + hash));
      info = raw === undefined ? undefined : (JSON.parse(utf8Decode(raw)) as TokenInfo);
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(hash, { info, at: now });
    }
    if (info === undefined || (info.expiresAt !== 0 && info.expiresAt <= now)) return undefined;
    return info;
  }

  /** Revokes a token and every token it created. Returns how many were revoked. */
  async revoke(token: string): Promise<number> {
    const info = await this.lookup(token);
    if (info === undefined) return 0;
    return this.#store.transaction(async (tx) => {
      const all = await tx.listMeta(PREFIX);
      const docs = new Map<string, TokenInfo>();
      for (const key of all) {
        const raw = await tx.getMeta(key);
        if (raw) docs.set(key, JSON.parse(utf8Decode(raw)) as TokenInfo);
      }
      const doomed = new Set([info.accessor]);
      let grew = true;
      while (grew) {
        grew = false;
        for (const d of docs.values()) {
          if (d.parent && doomed.has(d.parent) && !doomed.has(d.accessor)) {
            doomed.add(d.accessor);
            grew = true;
          }
        }
      }
      let n = 0;
      for (const [key, d] of docs) {
        if (doomed.has(d.accessor)) {
          await tx.deleteMeta(key);
          this.#cache.delete(key.slice(PREFIX.length));
          n++;
        }
      }
      return n;
    });
  }
}
