/**
 * Seal and unseal: how the root key comes into memory and leaves it. Three ways to hold the root key:
 *
 * - `shamir`: the root key is split into N shares, any T of which rebuild it (default 5 and 3). Shares are
 *   handed to different people; unseal collects them one at a time, in any order, from different callers.
 * - `passphrase`: the root key is sealed under an Argon2id-derived key (the passphrase envelope).
 * - `dev`: the root key sits in a local file. Insecure, loudly labelled, for development only.
 *
 * Whatever the method, a rebuilt root key is accepted only if it opens the keyring; a wrong share therefore
 * shows up as a failed unseal, after which progress starts over.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import {
  aeadOpenWithNonce,
  aeadSealWithRandomNonce,
  base64Decode,
  base64Encode,
  constantTimeEqual,
  EnsealError,
  ErrorCode,
  invalidArgument,
  randomBytes,
  utf8Decode,
  utf8Encode,
  wipe,
  type Argon2Params,
} from '../crypto/index.js';
import { openWithPassphrase, sealWithPassphrase } from '../formats/index.js';
import {
  checkShamirParams,
  combineShares,
  DEFAULT_SHAMIR,
  parseShare,
  shareIndex,
  splitSecret,
} from '../keys/index.js';
import type { Store, StoreTransaction } from '../store/index.js';
import { Keyring } from './keyring.js';

export type SealType = 'shamir' | 'passphrase' | 'dev';

export const ROOT_KEY_BYTES = 32;
const SEAL_META = 'seal';
const KEYRING_META = 'keyring';
const PASSPHRASE_AAD = 'enseal/root-key/v1';
const DEV_FILE_BANNER =
  '# enseal DEVELOPMENT root key. INSECURE: anyone who can read this file can read every key in the store.\n' +
  '# Never use --dev (or this file) for real data; run `enseal operator init` instead.\n';

export interface SealConfig {
  readonly type: SealType;
  readonly shares?: number;
  readonly threshold?: number;
  /** Passphrase mode: the root key in a passphrase envelope. */
  readonly sealedRoot?: string;
  /** Dev mode: where the root key file lives. */
  readonly devKeyFile?: string;
  readonly createdAt: number;
}

export interface InitOptions {
  /** Default `shamir`. */
  type?: SealType;
  /** Shamir: shares to issue (default 5). */
  shares?: number;
  /** Shamir: shares needed to unseal (default 3). */
  threshold?: number;
  /** Passphrase mode: the passphrase. */
  passphrase?: string;
  /** Passphrase mode: Argon2id cost (default OWASP's 19 MiB, 2 passes). */
  passphraseParams?: Argon2Params;
  /** Dev mode: file that receives the root key (created with mode 0600). */
  devKeyFile?: string;
}

export interface InitResult {
  readonly type: SealType;
  /** Shamir mode: the unseal shares. Shown once; enseal keeps no copy. */
  readonly shares?: string[];
  readonly threshold?: number;
  readonly devKeyFile?: string;
}

export interface SealStatus {
  readonly initialized: boolean;
  readonly sealed: boolean;
  readonly type?: SealType;
  readonly shares?: number;
  readonly threshold?: number;
  /** Distinct shares received so far toward the current unseal. */
  readonly progress: number;
}

/** Proof of the current root key, required to rekey. */
export interface RootKeyProof {
  shares?: string[];
  passphrase?: string;
}

function invalidState(message: string): EnsealError {
  return new EnsealError(ErrorCode.INVALID_STATE, message);
}

function unsealFailed(): EnsealError {
  return new EnsealError(
    ErrorCode.UNSEAL_FAILED,
    'unseal failed: the shares or passphrase do not open this key manager; progress was reset, start again',
  );
}

export async function readSealConfig(tx: StoreTransaction): Promise<SealConfig | undefined> {
  const raw = await tx.getMeta(SEAL_META);
  return raw === undefined ? undefined : (JSON.parse(utf8Decode(raw)) as SealConfig);
}

export async function readSealedKeyring(
  tx: StoreTransaction,
  lock?: 'share' | 'update',
): Promise<Uint8Array> {
  const raw = await tx.getMeta(KEYRING_META, lock === undefined ? {} : { lock });
  if (raw === undefined) throw invalidState('the store has no keyring; it was not initialised');
  return raw;
}

export async function writeSealedKeyring(tx: StoreTransaction, sealed: Uint8Array): Promise<void> {
  await tx.putMeta(KEYRING_META, sealed);
}

const ROOT_AAD = utf8Encode('enseal/root-key/v1');

/**
 * Protects `root` with a fresh unseal key: Shamir shares of it, a passphrase, or a dev file. Returns the
 * seal configuration to store and what the operator must keep.
 */
async function protectRootKey(
  root: Uint8Array,
  options: InitOptions,
  now: number,
): Promise<{ config: SealConfig; result: InitResult }> {
  const type = options.type ?? 'shamir';
  if (type === 'shamir') {
    const params = {
      shares: options.shares ?? DEFAULT_SHAMIR.shares,
      threshold: options.threshold ?? DEFAULT_SHAMIR.threshold,
    };
    checkShamirParams(params);
    const unsealKey = randomBytes(ROOT_KEY_BYTES);
    const shares = await splitSecret(unsealKey, params);
    const sealedRoot = sealRootWith(unsealKey, root);
    wipe(unsealKey);
    return {
      config: { type, ...params, sealedRoot, createdAt: now },
      result: { type, shares, threshold: params.threshold },
    };
  }
  if (type === 'passphrase') {
    if (typeof options.passphrase !== 'string' || options.passphrase.length < 12) {
      throw invalidArgument('passphrase', 'must be at least 12 characters');
    }
    return {
      config: { type, sealedRoot: await sealRootWithPassphrase(options, root), createdAt: now },
      result: { type },
    };
  }
  if (type === 'dev') {
    const file = options.devKeyFile;
    if (typeof file !== 'string' || file.length === 0)
      throw invalidArgument('devKeyFile', 'is required in dev mode');
    const unsealKey = randomBytes(ROOT_KEY_BYTES);
    await writeFile(file, DEV_FILE_BANNER + base64Encode(unsealKey) + '\n', { mode: 0o600, flag: 'w' });
    await chmod(file, 0o600);
    const sealedRoot = sealRootWith(unsealKey, root);
    wipe(unsealKey);
    return {
      config: { type, sealedRoot, devKeyFile: file, createdAt: now },
      result: { type, devKeyFile: file },
    };
  }
  throw invalidArgument('type', 'must be shamir, passphrase or dev');
}

function sealRootWith(unsealKey: Uint8Array, root: Uint8Array): string {
  return base64Encode(aeadSealWithRandomNonce('aes-256-gcm', unsealKey, root, ROOT_AAD));
}

async function sealRootWithPassphrase(options: InitOptions, root: Uint8Array): Promise<string> {
  return sealWithPassphrase(options.passphrase!, root, {
    aad: PASSPHRASE_AAD,
    ...(options.passphraseParams ? { params: options.passphraseParams } : {}),
  });
}

/** The unseal key from a proof (shares or dev file); undefined in passphrase mode, which has none. */
async function unsealKeyFrom(config: SealConfig, proof: RootKeyProof): Promise<Uint8Array | undefined> {
  if (config.type === 'shamir') {
    const shares = (proof.shares ?? []).map((s) => parseShare(s, ROOT_KEY_BYTES));
    if (new Set(shares.map(shareIndex)).size < config.threshold!) throw unsealFailed();
    return combineShares(shares);
  }
  if (config.type === 'dev') return readDevUnsealKey(config.devKeyFile!);
  return undefined;
}

/** Recovers the root key from a proof; UNSEAL_FAILED when the proof does not open it. */
async function recoverRoot(config: SealConfig, proof: RootKeyProof): Promise<Uint8Array> {
  try {
    if (config.type === 'passphrase') {
      return await openWithPassphrase(proof.passphrase ?? '', config.sealedRoot!, { aad: PASSPHRASE_AAD });
    }
    const unsealKey = (await unsealKeyFrom(config, proof))!;
    try {
      return aeadOpenWithNonce('aes-256-gcm', unsealKey, base64Decode(config.sealedRoot!), ROOT_AAD);
    } finally {
      wipe(unsealKey);
    }
  } catch (err) {
    if (err instanceof EnsealError && err.code === ErrorCode.KEK_MISSING) throw err;
    throw unsealFailed();
  }
}

/** Re-protects a new root key under the same unseal key (root-key rotation keeps the shares). */
async function resealRoot(config: SealConfig, proof: RootKeyProof, root: Uint8Array): Promise<SealConfig> {
  if (config.type === 'passphrase') {
    return { ...config, sealedRoot: await sealRootWithPassphrase({ passphrase: proof.passphrase! }, root) };
  }
  const unsealKey = (await unsealKeyFrom(config, proof))!;
  try {
    return { ...config, sealedRoot: sealRootWith(unsealKey, root) };
  } finally {
    wipe(unsealKey);
  }
}

async function readDevUnsealKey(file: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new EnsealError(ErrorCode.KEK_MISSING, `dev unseal key file ${file} cannot be read`, { cause });
  }
  const line = text.split('\n').find((l) => l.length > 0 && !l.startsWith('#'));
  try {
    const key = base64Decode(line ?? '');
    if (key.length === ROOT_KEY_BYTES) return key;
  } catch {
    // fall through to the one error below
  }
  throw new EnsealError(ErrorCode.MALFORMED, `dev unseal key file ${file} does not hold a key`);
}

/**
 * Holds the seal state of one node: the keyring while unsealed, the shares received so far while sealed.
 * Each node of a cluster is unsealed on its own, as with Vault.
 */
export class SealState {
  readonly #store: Store;
  readonly #clock: () => number;
  #root: Uint8Array | undefined;
  #keyring: Keyring | undefined;
  /** The stored form of #keyring, to notice cheaply when another node changed it. */
  #sealedKeyring: Uint8Array | undefined;
  #shares = new Map<number, Uint8Array>();
  /** Failed unseal attempts while sealed; recorded in the audit log once the audit key is back. */
  failedAttempts = 0;

  constructor(store: Store, clock: () => number) {
    this.#store = store;
    this.#clock = clock;
  }

  get keyring(): Keyring | undefined {
    return this.#keyring;
  }

  get rootKey(): Uint8Array | undefined {
    return this.#root;
  }

  async status(): Promise<SealStatus> {
    const config = await this.#store.transaction((tx) => readSealConfig(tx));
    if (config === undefined) return { initialized: false, sealed: true, progress: 0 };
    return {
      initialized: true,
      sealed: this.#keyring === undefined,
      type: config.type,
      ...(config.shares === undefined ? {} : { shares: config.shares, threshold: config.threshold! }),
      progress: this.#shares.size,
    };
  }

  /** Creates the root key and an empty keyring. Refuses a store that is already initialised. */
  async init(
    options: InitOptions,
    seed?: (tx: StoreTransaction, keyring: Keyring) => Promise<void>,
  ): Promise<InitResult> {
    const now = this.#clock();
    const root = randomBytes(ROOT_KEY_BYTES);
    const keyring = Keyring.create(now);
    try {
      const { config, result } = await protectRootKey(root, options, now);
      await this.#store.transaction(async (tx) => {
        if ((await readSealConfig(tx)) !== undefined)
          throw invalidState('the key manager is already initialised');
        await tx.putMeta(SEAL_META, utf8Encode(JSON.stringify(config)));
        await writeSealedKeyring(tx, keyring.seal(root));
        await seed?.(tx, keyring);
      });
      return result;
    } finally {
      keyring.wipe();
      wipe(root);
    }
  }

  /** Adds one share. Returns the status; when the threshold is reached the node is unsealed (or fails). */
  async submitShare(text: string): Promise<SealStatus> {
    const config = await this.#requireConfig('shamir');
    if (this.#keyring !== undefined) return this.status();
    const share = parseShare(text, ROOT_KEY_BYTES);
    const index = shareIndex(share);
    const seen = this.#shares.get(index);
    if (seen !== undefined) {
      // The same share twice is harmless (a retry); two different shares with one index cannot both be real.
      if (constantTimeEqual(seen, share)) return this.status();
      this.#fail();
    }
    this.#shares.set(index, share);
    if (this.#shares.size >= config.threshold!) {
      const parts = [...this.#shares.values()];
      const unsealKey = await combineShares(parts).catch(() => undefined);
      this.#resetShares();
      if (unsealKey === undefined) this.#fail();
      let root: Uint8Array;
      try {
        root = aeadOpenWithNonce('aes-256-gcm', unsealKey, base64Decode(config.sealedRoot!), ROOT_AAD);
      } catch {
        this.#fail();
      } finally {
        wipe(unsealKey);
      }
      await this.#openWith(root);
    }
    return this.status();
  }

  #fail(): never {
    this.#resetShares();
    this.failedAttempts += 1;
    throw unsealFailed();
  }

  async unsealWithPassphrase(passphrase: string): Promise<SealStatus> {
    const config = await this.#requireConfig('passphrase');
    if (this.#keyring !== undefined) return this.status();
    let root: Uint8Array;
    try {
      root = await recoverRoot(config, { passphrase });
    } catch {
      this.#fail();
    }
    await this.#openWith(root);
    return this.status();
  }

  async unsealDev(): Promise<SealStatus> {
    const config = await this.#requireConfig('dev');
    if (this.#keyring !== undefined) return this.status();
    await this.#openWith(await recoverRoot(config, {}));
    return this.status();
  }

  async #openWith(root: Uint8Array): Promise<void> {
    const sealed = await this.#store.transaction((tx) => readSealedKeyring(tx));
    try {
      this.#keyring = Keyring.open(root, sealed);
      this.#sealedKeyring = sealed;
      this.#root = root;
    } catch {
      wipe(root);
      this.failedAttempts += 1;
      throw unsealFailed();
    }
  }

  /** Re-reads the keyring from the store (another node may have rotated it). */
  async reloadKeyring(): Promise<Keyring> {
    const sealed = await this.#store.transaction((tx) => readSealedKeyring(tx));
    return this.keyringFor(sealed);
  }

  /**
   * The keyring stored as `sealed`: the cached one when nothing changed, else freshly opened. Throws
   * DECRYPT_FAILED when our root key no longer opens it (another node rotated the root key).
   */
  keyringFor(sealed: Uint8Array): Keyring {
    if (this.#root === undefined) throw new EnsealError(ErrorCode.SEALED, 'the key manager is sealed');
    const cached = this.#sealedKeyring;
    if (
      this.#keyring !== undefined &&
      cached !== undefined &&
      cached.length === sealed.length &&
      constantTimeEqual(cached, sealed)
    ) {
      return this.#keyring;
    }
    // Old term keys are not wiped here: in-flight operations may still hold the old object.
    const next = Keyring.open(this.#root, sealed);
    this.#keyring = next;
    this.#sealedKeyring = new Uint8Array(sealed);
    return next;
  }

  /** Wipes the root key, the keyring and any shares from memory. */
  seal(): void {
    this.#keyring?.wipe();
    this.#keyring = undefined;
    this.#sealedKeyring = undefined;
    if (this.#root !== undefined) wipe(this.#root);
    this.#root = undefined;
    this.#resetShares();
  }

  #resetShares(): void {
    for (const s of this.#shares.values()) wipe(s);
    this.#shares.clear();
  }

  async #requireConfig(type: SealType): Promise<SealConfig> {
    const config = await this.#store.transaction((tx) => readSealConfig(tx));
    if (config === undefined) throw invalidState('the key manager is not initialised; run init first');
    if (config.type !== type)
      throw invalidState(`this key manager is sealed with ${config.type}, not ${type}`);
    return config;
  }

  /** Checks a proof of the current root key without changing any state; returns the seal config. */
  async checkProof(proof: RootKeyProof): Promise<SealConfig> {
    const config = await this.#store.transaction((tx) => readSealConfig(tx));
    if (config === undefined || this.#root === undefined) {
      throw new EnsealError(ErrorCode.SEALED, 'the key manager is sealed');
    }
    const candidate = await recoverRoot(config, proof);
    const ok = candidate.length === this.#root.length && constantTimeEqual(candidate, this.#root);
    wipe(candidate);
    if (!ok) throw unsealFailed();
    return config;
  }

  /**
   * Rekey: a new unseal key with new protection (new shares, a new passphrase, or a switch of method) for
   * the same root key, so other unsealed nodes are unaffected. Needs proof of the current unseal key.
   */
  async rekey(proof: RootKeyProof, next: InitOptions): Promise<InitResult> {
    await this.checkProof(proof);
    const { config, result } = await protectRootKey(this.#root!, next, this.#clock());
    await this.#store.transaction((tx) => tx.putMeta(SEAL_META, utf8Encode(JSON.stringify(config))));
    return result;
  }

  /**
   * Root-key rotation: a new root key, the keyring re-sealed under it and the new root under the same unseal
   * key, in one transaction, while this node keeps serving. Other nodes notice that their root key no
   * longer opens the keyring, seal themselves, and need to be unsealed again.
   */
  async rotateRootKey(proof: RootKeyProof): Promise<void> {
    const config = await this.checkProof(proof);
    const root = randomBytes(ROOT_KEY_BYTES);
    const nextConfig = await resealRoot(config, proof, root);
    await this.#store
      .transaction(async (tx) => {
        // Re-seal whatever keyring is current in the store (another node may have rotated its terms).
        const current = Keyring.open(this.#root!, await readSealedKeyring(tx, 'update'));
        await tx.putMeta(SEAL_META, utf8Encode(JSON.stringify(nextConfig)));
        const resealed = current.seal(root);
        current.wipe();
        await writeSealedKeyring(tx, resealed);
        return resealed;
      })
      .then((resealed) => {
        wipe(this.#root!);
        this.#root = root;
        this.#sealedKeyring = undefined;
        this.keyringFor(resealed);
      });
  }
}
