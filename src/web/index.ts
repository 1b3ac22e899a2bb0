/**
 * The browser build of the e2ee layer (`enseal/e2ee` under the `browser` export condition, and the ES module
 * file `enseal serve` serves): everything of the e2ee layer, plus the client state in IndexedDB sealed by a
 * non-extractable WebCrypto AES-GCM key (stored in the profile by default, or derived at each start from a
 * passkey's PRF output and stored nowhere), and a non-extractable WebCrypto Ed25519 device key. Which keys are
 * not non-extractable, and why, is said in ./keys.ts and docs/e2ee.md.
 */
import { EnsealError, ErrorCode } from '../crypto/index.js';
import { EncryptedState, FetchTransport, type E2eeTransport } from '../e2ee/index.js';
import { IndexedDbStateBackend, type IndexedDbStateOptions } from './idb.js';
import { WebCryptoDeviceSigner, webStateCipher, type WebStateCipher } from './keys.js';
import { passkeyStateCipher, type PasskeyCreateOptions, type PasskeyStateCipher } from './passkey.js';

export * from '../e2ee/index.js';
export {
  IndexedDbStateBackend,
  STORE_KEYS,
  STORE_META,
  STORE_RECORDS,
  type DatabaseLike,
  type IndexedDbStateOptions,
} from './idb.js';
export { WebCryptoDeviceSigner, aesGcmStateCipher, webStateCipher, type WebStateCipher } from './keys.js';
export {
  PASSKEY_DEVICE_KEY_INFO,
  PASSKEY_STATE_KEY_INFO,
  passkeyStateCipher,
  type PasskeyCreateOptions,
  type PasskeyStateCipher,
  type PasskeyStateMeta,
  type PasskeyUnlockOptions,
} from './passkey.js';

/** Options of {@link openBrowserClientState}. */
export interface BrowserClientStateOptions extends IndexedDbStateOptions {
  /**
   * Where the state key comes from. `'stored-key'` (the default): a non-extractable CryptoKey kept in the
   * database, no prompt, but readable from a copy of the profile. `'passkey'`: derived at each start from a
   * passkey's PRF output and stored nowhere, as is the device key then; an authenticator prompt at each start,
   * and the state is lost with the passkey (recover through the identity backup). A state created one way does not open the other way (ERR_INVALID_STATE or ERR_KEY_NOT_FOUND).
   */
  readonly unlock?: 'stored-key' | 'passkey';
  /** The passkey to create when `unlock` is `'passkey'` and the state is new (`userName` is required then). */
  readonly passkey?: PasskeyCreateOptions;
  /** How long an unlock waits for the authenticator, in milliseconds. */
  readonly timeoutMs?: number;
}

/** What {@link openBrowserClientState} opens. */
export interface BrowserClientState {
  readonly state: EncryptedState;
  readonly deviceSigner: WebCryptoDeviceSigner;
  readonly backend: IndexedDbStateBackend;
  /** The transport given, or a {@link FetchTransport} to the page's own origin. */
  readonly transport: E2eeTransport;
}

/**
 * Opens (creating on first use) a browser device's client state: the IndexedDB database `dbName`, its
 * non-extractable state key (stored, or from a passkey with `{ unlock: 'passkey' }`) and device key, and the
 * encrypted state over them. Give `state`, `transport` and
 * `deviceSigner` to `E2eeClient.register`, `requestDevice`, `recover` or `open`.
 *
 * @example
 * ```ts no-run
 * const { state, deviceSigner, transport } = await openBrowserClientState('enseal-alice');
 * const client = await E2eeClient.open({ state, transport, deviceSigner });
 * ```
 */
export async function openBrowserClientState(
  dbName: string,
  transport?: E2eeTransport,
  options: BrowserClientStateOptions = {},
): Promise<BrowserClientState> {
  const backend = await IndexedDbStateBackend.open(dbName, options);
  try {
    // A passkey-sealed state's device key comes from the passkey too; the default one is stored.
    let cipher: WebStateCipher;
    let deviceSigner: WebCryptoDeviceSigner;
    if (options.unlock === 'passkey') {
      let sealed: PasskeyStateCipher;
      if (await passkeyStateCipher.isPasskeyState(backend))
        sealed = await passkeyStateCipher.unlock(backend, {
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        });
      else if (options.passkey === undefined)
        throw new EnsealError(
          ErrorCode.KEY_NOT_FOUND,
          'this client state has no passkey yet: pass { passkey: { userName } } to create one',
        );
      else sealed = await passkeyStateCipher.create(backend, options.passkey);
      cipher = sealed;
      deviceSigner = sealed.deviceSigner;
    } else if (options.unlock === undefined || options.unlock === 'stored-key') {
      cipher = await webStateCipher(backend);
      deviceSigner = await WebCryptoDeviceSigner.loadOrCreate(backend);
    } else {
      throw new EnsealError(ErrorCode.INVALID_ARGUMENT, "unlock must be 'stored-key' or 'passkey'");
    }
    const state = await EncryptedState.open(backend, { cipher });
    return {
      state,
      deviceSigner,
      backend,
      transport: transport ?? new FetchTransport({ address: globalThis.location.origin }),
    };
  } catch (e) {
    await backend.close();
    throw e;
  }
}
