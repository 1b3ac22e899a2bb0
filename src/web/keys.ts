/**
 * The two keys a browser device keeps as non-extractable WebCrypto CryptoKeys in IndexedDB: the AES-256-GCM
 * state key that seals every client-state record ({@link webStateCipher}) and the Ed25519 device key that signs
 * logins, device records, revocations and the MLS key binding ({@link WebCryptoDeviceSigner}). The page can use
 * them but never read them: `exportKey` rejects, so a script in the page cannot copy a key out.
 *
 * Non-extractable is not encrypted at rest: Chromium writes a stored CryptoKey's key bytes into the profile's
 * IndexedDB files unencrypted (the browser test finds a known imported key there), so a copy of the profile
 * opens the state and can sign as the device. Against that, rely on disk encryption, open the state with
 * `{ passphrase }` (Argon2id) instead of this cipher, or derive both keys from a passkey at each start
 * (./passkey.ts, nothing stored), at the cost of asking the user at each start.
 *
 * Two keys are not non-extractable, and cannot be: the user identity key (it must exist as bytes to be backed
 * up under a passphrase or split into Shamir shares for recovery) and the MLS signature and HPKE keys (ts-mls
 * signs and decrypts with raw bytes). Both live only inside the encrypted state, sealed by the non-extractable
 * state key, and in memory while the client runs. Safari cannot store CryptoKeys in IndexedDB in some versions;
 * there `webStateCipher` fails with ERR_STORE.
 */
import { EnsealError, ErrorCode, decryptFailed, signingPublicKey, wipe } from '../crypto/index.js';
import { stateRecordAad, type DeviceSigner, type StateCipher } from '../e2ee/index.js';
import { STORE_META, databaseOf, loadOrStoreKey, request, type DatabaseLike } from './idb.js';

const STATE_KEY = 'state-key';
/** The metadata entry of a state sealed under a passkey (./passkey.ts); its presence forbids a stored key. */
export const PASSKEY_META = 'passkey';
const DEVICE_KEY = 'device-key';
const NONCE = 12;
/** PKCS #8 PrivateKeyInfo of an Ed25519 key (RFC 8410), before its 32-byte seed. */
const ED25519_PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

export function subtle(): SubtleCrypto {
  const s = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (s === undefined)
    throw new EnsealError(
      ErrorCode.UNSUPPORTED,
      'WebCrypto is not available: serve the page over https (or from localhost), a secure context',
    );
  return s;
}

/** Bytes as WebCrypto takes them (a view over an ArrayBuffer). */
export function buf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

/** The state cipher over a CryptoKey; `key` is exposed so a test can show that it cannot be exported. */
export interface WebStateCipher extends StateCipher {
  readonly key: CryptoKey;
}

/**
 * The state cipher of a browser: AES-256-GCM under a non-extractable CryptoKey created on first use and kept in
 * the database's `keys` store. Records are `nonce (12 random bytes) || ciphertext || tag` with the record's name
 * bound as associated data, the layout of the raw-key cipher.
 */
export async function webStateCipher(db: DatabaseLike): Promise<WebStateCipher> {
  const s = subtle();
  const handle = databaseOf(db);
  const passkey = await request<unknown>(
    handle.transaction(STORE_META, 'readonly').objectStore(STORE_META).get(PASSKEY_META),
    'reading metadata',
  );
  if (passkey !== undefined)
    throw new EnsealError(
      ErrorCode.INVALID_STATE,
      'this client state is sealed under a passkey, not a stored key: unlock it with passkeyStateCipher.unlock (or openBrowserClientState with { unlock: "passkey" })',
    );
  const key = await loadOrStoreKey<CryptoKey>(handle, STATE_KEY, () =>
    s.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']),
  );
  if (!(key instanceof CryptoKey) || key.algorithm.name !== 'AES-GCM' || key.extractable)
    throw new EnsealError(ErrorCode.MALFORMED, 'the stored state key is not a non-extractable AES-GCM key');
  return aesGcmStateCipher(key);
}

/**
 * The state cipher over a non-extractable AES-GCM CryptoKey, wherever the key comes from: records are
 * `nonce (12 random bytes) || ciphertext || tag` with the record's name bound as associated data, the layout of
 * the raw-key cipher.
 */
export function aesGcmStateCipher(key: CryptoKey): WebStateCipher {
  const s = subtle();
  return {
    key,
    async seal(name, plaintext) {
      const nonce = crypto.getRandomValues(new Uint8Array(NONCE));
      const ct = await s.encrypt(
        { name: 'AES-GCM', iv: nonce, additionalData: buf(stateRecordAad(name)) },
        key,
        buf(plaintext),
      );
      const out = new Uint8Array(NONCE + ct.byteLength);
      out.set(nonce);
      out.set(new Uint8Array(ct), NONCE);
      return out;
    },
    async open(name, sealed) {
      if (sealed.length < NONCE + 16) throw decryptFailed();
      try {
        return new Uint8Array(
          await s.decrypt(
            { name: 'AES-GCM', iv: buf(sealed.slice(0, NONCE)), additionalData: buf(stateRecordAad(name)) },
            key,
            buf(sealed.slice(NONCE)),
          ),
        );
      } catch {
        throw decryptFailed();
      }
    },
  };
}

function unsupportedEd25519(cause: unknown): EnsealError {
  return new EnsealError(
    ErrorCode.UNSUPPORTED,
    "this browser's WebCrypto cannot create Ed25519 keys (Chromium 137+, Firefox 129+ and Safari 17+ can), so the device key cannot be held non-extractable here: update the browser",
    { cause },
  );
}

/**
 * The device key of a browser: a non-extractable Ed25519 CryptoKey pair created on first use and kept in the
 * database's `keys` store. Pass it as `deviceSigner` to {@link E2eeClient}.
 *
 * @example
 * ```ts no-run
 * const backend = await IndexedDbStateBackend.open('enseal-alice');
 * const deviceSigner = await WebCryptoDeviceSigner.loadOrCreate(backend);
 * ```
 */
export class WebCryptoDeviceSigner implements DeviceSigner {
  readonly publicKey: Uint8Array;
  /** The private half: usable for signing, never exportable. */
  readonly privateKey: CryptoKey;

  private constructor(privateKey: CryptoKey, publicKey: Uint8Array) {
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** Loads the device key of `db`, creating it (non-extractable) the first time. */
  static async loadOrCreate(db: DatabaseLike): Promise<WebCryptoDeviceSigner> {
    const s = subtle();
    const pair = await loadOrStoreKey<CryptoKeyPair>(databaseOf(db), DEVICE_KEY, async () => {
      try {
        return await s.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
      } catch (cause) {
        throw unsupportedEd25519(cause);
      }
    });
    if (
      !(pair?.privateKey instanceof CryptoKey) ||
      pair.privateKey.algorithm.name !== 'Ed25519' ||
      pair.privateKey.extractable
    )
      throw new EnsealError(
        ErrorCode.MALFORMED,
        'the stored device key is not a non-extractable Ed25519 key',
      );
    const publicKey = new Uint8Array(await s.exportKey('raw', pair.publicKey));
    return new WebCryptoDeviceSigner(pair.privateKey, publicKey);
  }

  /**
   * The device key whose 32-byte Ed25519 seed is `seed` (a passkey-sealed state derives it from the PRF output,
   * so it is stored nowhere), imported non-extractable. `seed` and the key's PKCS #8 encoding are zeroed once
   * imported.
   */
  static async fromSeed(seed: Uint8Array): Promise<WebCryptoDeviceSigner> {
    if (!(seed instanceof Uint8Array) || seed.length !== 32)
      throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'the device key seed must be 32 bytes');
    const pkcs8 = new Uint8Array(ED25519_PKCS8_PREFIX.length + 32);
    pkcs8.set(ED25519_PKCS8_PREFIX);
    pkcs8.set(seed, ED25519_PKCS8_PREFIX.length);
    try {
      const publicKey = signingPublicKey('ed25519', seed);
      let privateKey: CryptoKey;
      try {
        privateKey = await subtle().importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
      } catch (cause) {
        throw unsupportedEd25519(cause);
      }
      return new WebCryptoDeviceSigner(privateKey, publicKey);
    } finally {
      wipe(pkcs8);
      wipe(seed);
    }
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await subtle().sign({ name: 'Ed25519' }, this.privateKey, buf(message)));
  }
}
