/**
 * The browser build of the e2ee layer (`enseal/e2ee` under the `browser` export condition, and the ES module
 * file `enseal serve` serves): everything of the e2ee layer, plus the client state in IndexedDB sealed by a
 * non-extractable WebCrypto AES-GCM key, and a non-extractable WebCrypto Ed25519 device key. Which keys are not
 * non-extractable, and why, is said in ./keys.ts and docs/e2ee.md.
 */
import { EncryptedState, FetchTransport, type E2eeTransport } from '../e2ee/index.js';
import { IndexedDbStateBackend, type IndexedDbStateOptions } from './idb.js';
import { WebCryptoDeviceSigner, webStateCipher } from './keys.js';

export * from '../e2ee/index.js';
export {
  IndexedDbStateBackend,
  STORE_KEYS,
  STORE_META,
  STORE_RECORDS,
  type DatabaseLike,
  type IndexedDbStateOptions,
} from './idb.js';
export { WebCryptoDeviceSigner, webStateCipher, type WebStateCipher } from './keys.js';

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
 * non-extractable state key and device key, and the encrypted state over them. Give `state`, `transport` and
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
  options: IndexedDbStateOptions = {},
): Promise<BrowserClientState> {
  const backend = await IndexedDbStateBackend.open(dbName, options);
  try {
    const cipher = await webStateCipher(backend);
    const deviceSigner = await WebCryptoDeviceSigner.loadOrCreate(backend);
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
