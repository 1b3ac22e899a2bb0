/**
 * A state key that is not stored in the browser profile at all: it is derived, at each start, from the output of
 * the WebAuthn PRF extension of a passkey. The authenticator (a platform authenticator, a security key, a phone)
 * evaluates a per-credential pseudo-random function on a salt kept in the database; the page turns that output
 * into a non-extractable AES-256-GCM CryptoKey with HKDF-SHA-256, zeroes the output, and seals the state with the
 * key, which lives in memory only while the page runs. The database keeps the credential id and the salt (plaintext
 * metadata: neither is secret), never the key, so a copy of the profile's files cannot open a record.
 *
 * The price: a user gesture (an authenticator touch, a fingerprint, a PIN) at each start, and a state that is lost
 * with the passkey (the identity backup recovers the user on a new device). A browser or authenticator without
 * PRF fails with ERR_UNSUPPORTED; nothing falls back to a stored key.
 */
import { EnsealError, ErrorCode, base64Decode, base64Encode, utf8Encode, wipe } from '../crypto/index.js';
import { STORE_META, completion, databaseOf, request, type DatabaseLike } from './idb.js';
import {
  PASSKEY_META,
  WebCryptoDeviceSigner,
  aesGcmStateCipher,
  buf,
  subtle,
  type WebStateCipher,
} from './keys.js';

/** HKDF-SHA-256 `info` of the state key (the salt is empty: the PRF output is already uniform). */
export const PASSKEY_STATE_KEY_INFO = 'enseal e2ee client state key from a passkey PRF v1';
/** HKDF-SHA-256 `info` of the device key's Ed25519 seed, from the same PRF output. */
export const PASSKEY_DEVICE_KEY_INFO = 'enseal e2ee device key from a passkey PRF v1';
const PRF_SALT = 32;
const DEFAULT_TIMEOUT_MS = 120_000;

/** What the database keeps about the passkey of its state: public values only. */
export interface PasskeyStateMeta {
  readonly v: 1;
  /** The credential id, base64. */
  readonly credentialId: string;
  /** The PRF input (32 random bytes), base64. */
  readonly salt: string;
  /** The relying party id the credential is scoped to, when one was given. */
  readonly rpId?: string;
}

/** Options of {@link passkeyStateCipher.create}. */
export interface PasskeyCreateOptions {
  /** The name the authenticator shows for the passkey (e.g. the user's account name). */
  readonly userName: string;
  readonly userDisplayName?: string;
  /** The relying party id; the page's host when absent. It must be the host or a registrable suffix of it. */
  readonly rpId?: string;
  /** The relying party name the authenticator shows; the rpId (or the host) when absent. */
  readonly rpName?: string;
  /** How long the authenticator may wait for the user, in milliseconds (a hint to the browser). */
  readonly timeoutMs?: number;
}

/** Options of {@link passkeyStateCipher.unlock}. */
export interface PasskeyUnlockOptions {
  readonly timeoutMs?: number;
}

/**
 * The state cipher of a passkey-sealed state, with the credential it came from and the device key derived from
 * the same PRF output (so a copy of the profile cannot sign as the device either).
 */
export interface PasskeyStateCipher extends WebStateCipher {
  readonly credentialId: Uint8Array;
  readonly deviceSigner: WebCryptoDeviceSigner;
}

function unsupported(detail: string, cause?: unknown): EnsealError {
  return new EnsealError(
    ErrorCode.UNSUPPORTED,
    `${detail}: the client state cannot be sealed under a passkey here (use the default stored key, or a passphrase)`,
    cause === undefined ? undefined : { cause },
  );
}

function credentials(): CredentialsContainer {
  const c = (globalThis as { navigator?: Navigator }).navigator?.credentials;
  if (
    c === undefined ||
    typeof (globalThis as { PublicKeyCredential?: unknown }).PublicKeyCredential !== 'function'
  )
    throw unsupported('this browser has no WebAuthn (navigator.credentials and PublicKeyCredential)');
  return c;
}

/** A WebAuthn rejection as an enseal error: the user or the authenticator said no, or the call was invalid. */
function webAuthnError(what: string, cause: unknown): EnsealError {
  const name = (cause as { name?: unknown } | null)?.name;
  if (name === 'NotAllowedError' || name === 'AbortError')
    return new EnsealError(
      ErrorCode.KEK_MISSING,
      `${what}: the passkey was not presented (cancelled, timed out, or not on any authenticator available here), so the client state stays locked`,
      { cause },
    );
  if (name === 'SecurityError')
    return new EnsealError(
      ErrorCode.INVALID_ARGUMENT,
      `${what}: the relying party id is not valid for this page's origin (it must be its host or a registrable suffix, over https)`,
      { cause },
    );
  if (name === 'NotSupportedError')
    return unsupported(`${what}: the authenticator refused the request`, cause);
  return new EnsealError(ErrorCode.UNSUPPORTED, `${what} failed`, { cause });
}

async function readMeta(db: IDBDatabase): Promise<PasskeyStateMeta | undefined> {
  const raw = await request<unknown>(
    db.transaction(STORE_META, 'readonly').objectStore(STORE_META).get(PASSKEY_META),
    'reading metadata',
  );
  if (raw === undefined) return undefined;
  try {
    const m = JSON.parse(String(raw)) as PasskeyStateMeta;
    if (m.v !== 1 || typeof m.credentialId !== 'string' || typeof m.salt !== 'string')
      throw new Error('fields');
    if (base64Decode(m.salt).length !== PRF_SALT) throw new Error('salt length');
    return m;
  } catch (cause) {
    throw new EnsealError(ErrorCode.MALFORMED, 'client state: the passkey metadata is unreadable', { cause });
  }
}

/** The PRF output of an assertion or a registration, or undefined when the authenticator gave none. */
function prfFirst(credential: PublicKeyCredential): Uint8Array | undefined {
  const first = (credential.getClientExtensionResults() as { prf?: { results?: { first?: BufferSource } } })
    .prf?.results?.first;
  if (first === undefined) return undefined;
  return first instanceof ArrayBuffer
    ? new Uint8Array(first)
    : new Uint8Array(first.buffer, first.byteOffset, first.byteLength);
}

async function evaluate(meta: PasskeyStateMeta, timeoutMs: number, what: string): Promise<Uint8Array> {
  const c = credentials();
  let assertion: Credential | null;
  try {
    assertion = await c.get({
      publicKey: {
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        ...(meta.rpId === undefined ? {} : { rpId: meta.rpId }),
        allowCredentials: [{ type: 'public-key', id: buf(base64Decode(meta.credentialId)) }],
        // PRF outputs differ with and without user verification: always ask for it, so the output is stable.
        userVerification: 'required',
        timeout: timeoutMs,
        extensions: { prf: { eval: { first: buf(base64Decode(meta.salt)) } } },
      },
    });
  } catch (cause) {
    throw webAuthnError(what, cause);
  }
  if (assertion === null) throw webAuthnError(what, { name: 'NotAllowedError' });
  const out = prfFirst(assertion as PublicKeyCredential);
  if (out === undefined)
    throw unsupported(
      `${what}: the authenticator returned no PRF output for this passkey (it lacks the PRF extension)`,
    );
  return out;
}

/**
 * The state cipher from a PRF output: HKDF-SHA-256 (empty salt, {@link PASSKEY_STATE_KEY_INFO}) to a
 * non-extractable AES-256-GCM CryptoKey, and the device key (HKDF with {@link PASSKEY_DEVICE_KEY_INFO} to an
 * Ed25519 seed, imported non-extractable). `prfOutput` is zeroed once imported. A wrong output gives a cipher
 * under which `EncryptedState.open` fails with ERR_DECRYPT_FAILED.
 */
async function fromPrfOutput(
  prfOutput: Uint8Array,
  credentialId: Uint8Array = new Uint8Array(0),
): Promise<PasskeyStateCipher> {
  if (!(prfOutput instanceof Uint8Array) || prfOutput.length < 32)
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'the PRF output must be at least 32 bytes');
  const s = subtle();
  let base: CryptoKey;
  try {
    base = await s.importKey('raw', buf(prfOutput), 'HKDF', false, ['deriveKey', 'deriveBits']);
  } finally {
    wipe(prfOutput);
  }
  const key = await s.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: buf(utf8Encode(PASSKEY_STATE_KEY_INFO)) },
    base,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
  const seed = new Uint8Array(
    await s.deriveBits(
      {
        name: 'HKDF',
        hash: 'SHA-256',
        salt: new Uint8Array(0),
        info: buf(utf8Encode(PASSKEY_DEVICE_KEY_INFO)),
      },
      base,
      256,
    ),
  );
  const deviceSigner = await WebCryptoDeviceSigner.fromSeed(seed); // zeroes seed
  return { ...aesGcmStateCipher(key), credentialId: credentialId.slice(), deviceSigner };
}

/**
 * Creates the passkey of a new client state and returns its cipher: one `navigator.credentials.create` with the
 * PRF extension (one authenticator prompt, two when the authenticator evaluates PRF only at sign-in). Only the
 * credential id and the PRF salt are written, as metadata, and only once the key is derived. A state that
 * already has records or a passkey is refused (ERR_INVALID_STATE): its key cannot change this way.
 */
async function create(db: DatabaseLike, options: PasskeyCreateOptions): Promise<PasskeyStateCipher> {
  const handle = databaseOf(db);
  if (typeof options?.userName !== 'string' || options.userName.length === 0)
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'userName must be a non-empty string');
  if ((await readMeta(handle)) !== undefined)
    throw new EnsealError(
      ErrorCode.INVALID_STATE,
      'this client state already has a passkey: unlock it with passkeyStateCipher.unlock',
    );
  const records = await request(
    handle.transaction('records', 'readonly').objectStore('records').count(),
    'counting records',
  );
  if (records > 0)
    throw new EnsealError(
      ErrorCode.INVALID_STATE,
      'this client state is already sealed under another key: a passkey can only seal a new, empty state',
    );
  const c = credentials();
  const salt = crypto.getRandomValues(new Uint8Array(PRF_SALT));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let created: Credential | null;
  try {
    created = await c.create({
      publicKey: {
        rp: {
          name: options.rpName ?? options.rpId ?? globalThis.location.hostname,
          ...(options.rpId === undefined ? {} : { id: options.rpId }),
        },
        user: {
          id: crypto.getRandomValues(new Uint8Array(16)),
          name: options.userName,
          displayName: options.userDisplayName ?? options.userName,
        },
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        pubKeyCredParams: [
          { type: 'public-key', alg: -8 },
          { type: 'public-key', alg: -7 },
          { type: 'public-key', alg: -257 },
        ],
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
        timeout: timeoutMs,
        extensions: { prf: { eval: { first: salt } } },
      },
    });
  } catch (cause) {
    throw webAuthnError('creating the passkey', cause);
  }
  if (created === null) throw webAuthnError('creating the passkey', { name: 'NotAllowedError' });
  const credential = created as PublicKeyCredential;
  // A browser that ignored the extension returns no `prf`; an authenticator without it, `enabled: false`. Some
  // browsers leave `enabled` out and answer only at sign-in: `evaluate` then fails with ERR_UNSUPPORTED if not.
  const ext = (credential.getClientExtensionResults() as { prf?: { enabled?: boolean } }).prf;
  if (ext === undefined || ext.enabled === false)
    throw unsupported(
      'this browser or authenticator does not support the WebAuthn PRF extension (the new passkey cannot derive a key)',
    );
  const meta: PasskeyStateMeta = {
    v: 1,
    credentialId: base64Encode(new Uint8Array(credential.rawId)),
    salt: base64Encode(salt),
    ...(options.rpId === undefined ? {} : { rpId: options.rpId }),
  };
  const output = prfFirst(credential) ?? (await evaluate(meta, timeoutMs, 'evaluating the new passkey'));
  const cipher = await fromPrfOutput(output, new Uint8Array(credential.rawId));
  const tx = handle.transaction(STORE_META, 'readwrite', { durability: 'strict' });
  const done = completion(tx, 'writing the passkey metadata');
  const store = tx.objectStore(STORE_META);
  const written = new Promise<boolean>((resolve, reject) => {
    const get = store.get(PASSKEY_META);
    get.onerror = () =>
      reject(new EnsealError(ErrorCode.STORE, 'IndexedDB: reading metadata failed', { cause: get.error }));
    get.onsuccess = () => {
      if (get.result !== undefined) return resolve(true);
      store.put(JSON.stringify(meta), PASSKEY_META);
      resolve(false);
    };
  });
  const [raced] = await Promise.all([written, done]);
  if (raced)
    throw new EnsealError(
      ErrorCode.INVALID_STATE,
      'another tab created a passkey for this client state at the same time: unlock it with passkeyStateCipher.unlock',
    );
  return cipher;
}

/**
 * Unlocks a passkey-sealed client state: one `navigator.credentials.get` for its credential with the PRF
 * extension, then the key derived as at creation. Without the passkey (cancelled, timed out, not on any
 * authenticator here) it fails with ERR_KEK_MISSING; an authenticator that gives no PRF output, with
 * ERR_UNSUPPORTED; a state with no passkey, with ERR_KEY_NOT_FOUND.
 */
async function unlock(db: DatabaseLike, options: PasskeyUnlockOptions = {}): Promise<PasskeyStateCipher> {
  const meta = await readMeta(databaseOf(db));
  if (meta === undefined)
    throw new EnsealError(
      ErrorCode.KEY_NOT_FOUND,
      'this client state has no passkey: create one with passkeyStateCipher.create (on a new state)',
    );
  const output = await evaluate(meta, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'unlocking the client state');
  return fromPrfOutput(output, base64Decode(meta.credentialId));
}

/** Whether the state in `db` is sealed under a passkey (it has passkey metadata). */
async function isPasskeyState(db: DatabaseLike): Promise<boolean> {
  return (await readMeta(databaseOf(db))) !== undefined;
}

/**
 * The state cipher of a browser whose state key is derived from a passkey at each start, not stored.
 *
 * @example
 * ```ts no-run
 * const backend = await IndexedDbStateBackend.open('enseal-alice');
 * const cipher = (await passkeyStateCipher.isPasskeyState(backend))
 *   ? await passkeyStateCipher.unlock(backend)
 *   : await passkeyStateCipher.create(backend, { userName: 'alice' });
 * const state = await EncryptedState.open(backend, { cipher });
 * ```
 */
export const passkeyStateCipher = Object.freeze({ create, unlock, isPasskeyState, fromPrfOutput });
