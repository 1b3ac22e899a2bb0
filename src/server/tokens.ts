/**
 * Tokens: bearer credentials that carry policies and a TTL. Only a SHA-256 hash of each token is stored
 * (tokens are 256-bit random values, so a fast hash is enough), so a store dump yields no usable credential.
 * Each record is authenticated under a keyring subkey bound to its hash (`KeyManager.records`), so a store
 * writer without the unseal shares cannot mint a token, raise a token's policies or extend its TTL.
 *
 * A child token lives at most as long as its parent, and is valid only while every ancestor is: lookups walk
 * the parent chain, so revoking or expiring a parent ends its descendants at once. Lookups are cached for
 * one second per node; a revocation on another node therefore takes effect everywhere within a second.
 */
import {
  base64UrlEncode,
  EnsealError,
  ErrorCode,
  hexEncode,
  invalidArgument,
  randomBytes,
  sha256,
  utf8Decode,
  utf8Encode,
} from '../crypto/index.js';
import type { CallContext, KeyManager, RecordAuthenticator } from '../kms/index.js';
import type { StoreTransaction } from '../store/index.js';

const PREFIX = 'token/';
const KIND = 'token';
const TOKEN_PREFIX = 'ens.';
const CACHE_MS = 1000;
/** Deepest parent chain followed at lookup; a deeper one is refused (child tokens rarely nest past 3). */
const MAX_DEPTH = 32;
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
  /** The parent's accessor. */
  readonly parent?: string;
  /**
   * A device token's binding (e2ee): the token acts only for this user and device, only on e2ee routes. Part
   * of the authenticated record, so a store writer cannot rebind it.
   */
  readonly device?: { readonly user: string; readonly device: string };
}

/** What is stored: the info, and the parent's record name so the chain can be walked. */
interface TokenRecord extends TokenInfo {
  readonly parentHash?: string;
}

export interface CreateTokenOptions {
  readonly policies: readonly string[];
  readonly ttlMs: number;
  readonly displayName?: string;
  /** The creating token: the child's TTL is capped at the parent's remaining TTL. */
  readonly parent?: { readonly token: string; readonly info: TokenInfo };
  /** Binds the token to one e2ee device (see {@link TokenInfo.device}). */
  readonly device?: { readonly user: string; readonly device: string };
}

function hashOf(token: string): string {
  return hexEncode(sha256(utf8Encode(token)));
}

export class TokenStore {
  readonly #km: KeyManager;
  readonly #clock: () => number;
  readonly #cache = new Map<string, { info: TokenInfo | undefined; at: number }>();

  constructor(km: KeyManager, clock: () => number = Date.now) {
    this.#km = km;
    this.#clock = clock;
  }

  /**
   * Writes a new token inside `tx` (used by `create`, and by `init` for the root token, whose record must be
   * written in the initialising transaction). `ttlMs` 0 means no expiry, allowed only for root tokens.
   */
  async createIn(
    tx: StoreTransaction,
    records: RecordAuthenticator,
    options: CreateTokenOptions,
  ): Promise<{ token: string; info: TokenInfo }> {
    const { policies, ttlMs } = options;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 0 || ttlMs > MAX_TOKEN_TTL_MS) {
      throw invalidArgument('ttl', `must be between 1 second and ${MAX_TOKEN_TTL_MS / 1000} seconds`);
    }
    if (ttlMs === 0 && !policies.includes('root'))
      throw invalidArgument('ttl', 'is required for non-root tokens');
    const now = this.#clock();
    let expiresAt = ttlMs === 0 ? 0 : now + ttlMs;
    const parent = options.parent;
    if (parent !== undefined && parent.info.expiresAt !== 0) {
      // Vault caps a child's TTL at what is left of its parent's.
      expiresAt = expiresAt === 0 ? parent.info.expiresAt : Math.min(expiresAt, parent.info.expiresAt);
    }
    const token = TOKEN_PREFIX + base64UrlEncode(randomBytes(32));
    const hash = hashOf(token);
    const record: TokenRecord = {
      accessor: hash.slice(0, 16),
      policies: [...new Set(policies)].sort(),
      displayName: (options.displayName ?? 'token').slice(0, 128),
      createdAt: now,
      expiresAt,
      ...(parent ? { parent: parent.info.accessor, parentHash: hashOf(parent.token) } : {}),
      ...(options.device ? { device: { user: options.device.user, device: options.device.device } } : {}),
    };
    await tx.putMeta(PREFIX + hash, utf8Encode(records.seal(KIND, hash, JSON.stringify(record))));
    const { parentHash: _, ...info } = record;
    return { token, info };
  }

  /** Creates a token, audited in the same transaction. */
  async create(
    options: CreateTokenOptions,
    ctx: CallContext = {},
  ): Promise<{ token: string; info: TokenInfo }> {
    return this.#km.changeRecords('token.create', ctx, async (tx, records) => {
      const out = await this.createIn(tx, records, options);
      return {
        result: out,
        detail: {
          accessor: out.info.accessor,
          policies: out.info.policies.join(','),
          ...(out.info.parent ? { parent: out.info.parent } : {}),
        },
      };
    });
  }

  /** The token's info, or undefined when it (or any ancestor) is unknown, revoked, expired or tampered with. */
  async lookup(token: string): Promise<TokenInfo | undefined> {
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX) || token.length > 100) return undefined;
    const hash = hashOf(token);
    const now = this.#clock();
    const cached = this.#cache.get(hash);
    let info: TokenInfo | undefined;
    if (cached !== undefined && now - cached.at < CACHE_MS) {
      info = cached.info;
    } else {
      info = await this.#km.readRecords((tx, records) => this.#validChain(tx, records, hash, now));
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(hash, { info, at: now });
    }
    if (info === undefined || (info.expiresAt !== 0 && info.expiresAt <= now)) return undefined;
    return info;
  }

  /**
   * Every live token's info (never a token or its hash), oldest first: records that are expired, tampered
   * with or whose parent chain is broken are left out, as a lookup would refuse them.
   */
  async list(): Promise<TokenInfo[]> {
    const now = this.#clock();
    const out = await this.#km.readRecords(async (tx, records) => {
      const found: TokenInfo[] = [];
      for (const key of await tx.listMeta(PREFIX)) {
        const info = await this.#validChain(tx, records, key.slice(PREFIX.length), now);
        if (info !== undefined) found.push(info);
      }
      return found;
    });
    return out.sort((a, b) => a.createdAt - b.createdAt || a.accessor.localeCompare(b.accessor));
  }

  /** The record `hash` if it and every ancestor are present, authentic and unexpired. */
  async #validChain(
    tx: StoreTransaction,
    records: RecordAuthenticator,
    hash: string,
    now: number,
  ): Promise<TokenInfo | undefined> {
    let first: TokenInfo | undefined;
    let next: string | undefined = hash;
    for (let depth = 0; next !== undefined; depth++) {
      if (depth > MAX_DEPTH) return undefined;
      const record = await this.#read(tx, records, next);
      if (record === undefined) return undefined;
      if (record.expiresAt !== 0 && record.expiresAt <= now) return undefined;
      if (first === undefined) {
        const { parentHash: _, ...info } = record;
        first = info;
      }
      next = record.parentHash;
    }
    return first;
  }

  async #read(
    tx: StoreTransaction,
    records: RecordAuthenticator,
    hash: string,
  ): Promise<TokenRecord | undefined> {
    const raw = await tx.getMeta(PREFIX + hash);
    if (raw === undefined) return undefined;
    try {
      const record = JSON.parse(records.open(KIND, hash, utf8Decode(raw))) as TokenRecord;
      if (record.accessor !== hash.slice(0, 16)) throw new Error('accessor mismatch');
      return record;
    } catch (err) {
      if (!(err instanceof EnsealError && err.code === ErrorCode.RECORD_TAMPERED)) throw err;
      this.#km.reportTampered(KIND, hash.slice(0, 16));
      return undefined;
    }
  }

  /**
   * Deletes, inside `tx`, every token bound to the e2ee device `user`/`device` (it was revoked). Returns how
   * many went. Other nodes' caches forget them within a second.
   */
  async revokeDeviceIn(
    tx: StoreTransaction,
    records: RecordAuthenticator,
    user: string,
    device: string,
  ): Promise<number> {
    let n = 0;
    for (const key of await tx.listMeta(PREFIX)) {
      const record = await this.#read(tx, records, key.slice(PREFIX.length));
      if (record?.device?.user === user && record.device.device === device) {
        await tx.deleteMeta(key);
        n++;
      }
    }
    this.#cache.clear();
    return n;
  }

  /** Revokes a token and every token it created, audited in the same transaction. Returns how many went. */
  async revoke(token: string, ctx: CallContext = {}): Promise<number> {
    const info = await this.lookup(token);
    if (info === undefined) return 0;
    const n = await this.#km.changeRecords('token.revoke', ctx, async (tx) => {
      const all = await tx.listMeta(PREFIX);
      const parents = new Map<string, string | undefined>();
      for (const key of all) {
        const raw = await tx.getMeta(key);
        if (raw === undefined) continue;
        try {
          const body = JSON.parse(utf8Decode(raw)) as { body?: unknown };
          const record = JSON.parse(String(body.body)) as TokenRecord;
          parents.set(key.slice(PREFIX.length), record.parentHash);
        } catch {
          parents.set(key.slice(PREFIX.length), undefined);
        }
      }
      // Descendants fail at lookup anyway (their chain is broken); deleting them keeps the store tidy.
      const doomed = new Set([hashOf(token)]);
      let grew = true;
      while (grew) {
        grew = false;
        for (const [hash, parent] of parents) {
          if (parent !== undefined && doomed.has(parent) && !doomed.has(hash)) {
            doomed.add(hash);
            grew = true;
          }
        }
      }
      for (const hash of doomed) await tx.deleteMeta(PREFIX + hash);
      return { result: doomed.size, detail: { accessor: info.accessor, revoked: doomed.size } };
    });
    // Cached descendants would otherwise live on for up to a second on this node.
    this.#cache.clear();
    return n;
  }
}
