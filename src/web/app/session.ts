/**
 * The web client's device session: the browser's sealed state, the device's non-extractable signing key, the
 * E2eeClient over same-origin fetch, and one queue that runs every state-changing operation in turn (the long
 * poll waits outside it, so a send never waits for the inbox).
 *
 * The log policy is pinned on first use from what this server announces. That is no weaker than the page
 * itself, which the same server delivers; a program that wants an independent pin passes its own policy.
 */
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import {
  E2eeClient,
  IndexedDbStateBackend,
  STORE_KEYS,
  STORE_RECORDS,
  formatDeviceRequest,
  openBrowserClientState,
  passkeyStateCipher,
  type E2eeClientOptions,
  type E2eeEvent,
  type E2eeWarning,
  type EncryptedState,
  type PinnedLogPolicy,
} from '../index.js';

/** The IndexedDB database the page keeps its device in. */
export const APP_DB = 'enseal-app';
const PENDING_ENROLMENT = 'app/pending-enrolment';
/** What an enrolment not approved yet fails with. */
const WAITING = new Set<string>([
  ErrorCode.E2EE_UNTRUSTED_IDENTITY,
  ErrorCode.E2EE_NOT_FOUND,
  ErrorCode.PERMISSION_DENIED,
  ErrorCode.KEY_NOT_FOUND,
]);

/** Where the page is in signing in. */
export type SessionPhase =
  | { readonly kind: 'signed-out' }
  | { readonly kind: 'enrolling'; readonly user: string; readonly request: string }
  | { readonly kind: 'ready'; readonly client: E2eeClient };

/**
 * What this browser's database holds before anything is unlocked: nothing yet (`'new'`: the user chooses how the
 * keys are kept when signing in), a state under a key stored in the profile, or a state sealed under a passkey.
 */
export type StoredStateKind = 'new' | 'stored-key' | 'passkey';

/** How {@link Session.open} gets the state key. */
export type SessionUnlock =
  { readonly unlock: 'stored-key' } | { readonly unlock: 'passkey'; readonly userName?: string };

/** Looks at the database without creating a key or a record: which kind of state is there. */
export async function peekState(): Promise<StoredStateKind> {
  const backend = await IndexedDbStateBackend.open(APP_DB);
  try {
    if (await passkeyStateCipher.isPasskeyState(backend)) return 'passkey';
    const count = (store: string) =>
      new Promise<number>((resolve, reject) => {
        const req = backend.db.transaction(store, 'readonly').objectStore(store).count();
        req.onsuccess = () => resolve(req.result);
        req.onerror = () =>
          reject(
            new EnsealError(ErrorCode.STORE, 'IndexedDB: counting entries failed', { cause: req.error }),
          );
      });
    return (await count(STORE_KEYS)) === 0 && (await count(STORE_RECORDS)) === 0 ? 'new' : 'stored-key';
  } finally {
    await backend.close();
  }
}

/** The log policy as this server announces it. */
export async function serverPolicy(): Promise<PinnedLogPolicy> {
  const res = await fetch('/v1/e2ee/log/key', { headers: { accept: 'application/json' } });
  if (!res.ok)
    throw new EnsealError(ErrorCode.IO, `the server does not offer end-to-end encryption (${res.status})`);
  const k = (await res.json()) as {
    origin?: unknown;
    verifier_key?: unknown;
    witnesses?: unknown;
    quorum?: unknown;
  };
  if (typeof k.origin !== 'string' || typeof k.verifier_key !== 'string')
    throw new EnsealError(ErrorCode.MALFORMED, 'the server announced no log key');
  return {
    origin: k.origin,
    logKey: k.verifier_key,
    witnesses: Array.isArray(k.witnesses) ? (k.witnesses as string[]) : [],
    quorum: typeof k.quorum === 'number' ? k.quorum : 0,
  };
}

/** One browser device. */
export class Session {
  readonly state: EncryptedState;
  readonly #options: E2eeClientOptions;
  #queue: Promise<unknown> = Promise.resolve();
  #client: E2eeClient | undefined;

  private constructor(state: EncryptedState, options: E2eeClientOptions) {
    this.state = state;
    this.#options = options;
  }

  /**
   * Opens (or creates) this browser's state: by default under a key stored in the profile; with
   * `{ unlock: 'passkey' }`, under a key derived from a passkey (created for `userName` when the state is new).
   */
  static async open(
    onWarning: (w: E2eeWarning) => void,
    how: SessionUnlock = { unlock: 'stored-key' },
  ): Promise<Session> {
    const { state, deviceSigner, transport } =
      how.unlock === 'passkey'
        ? await openBrowserClientState(APP_DB, undefined, {
            unlock: 'passkey',
            ...(how.userName === undefined ? {} : { passkey: { userName: how.userName } }),
          })
        : await openBrowserClientState(APP_DB);
    return new Session(state, { transport, state, deviceSigner, onWarning });
  }

  /** The client once signed in. */
  get client(): E2eeClient {
    if (this.#client === undefined) throw new EnsealError(ErrorCode.INVALID_STATE, 'not signed in');
    return this.#client;
  }

  /** Runs `work` after every operation queued before it (one state change at a time). */
  serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** What the stored state holds: no device, an enrolment waiting for approval, or a device. */
  async phase(): Promise<SessionPhase> {
    const pending = await this.state.getJson<{ user: string; request: string }>(PENDING_ENROLMENT);
    let client: E2eeClient;
    try {
      client = await E2eeClient.open(this.#options);
    } catch (err) {
      if (err instanceof EnsealError && err.code === ErrorCode.KEY_NOT_FOUND) return { kind: 'signed-out' };
      throw err;
    }
    this.#client = client;
    if (pending !== undefined) return { kind: 'enrolling', ...pending };
    return { kind: 'ready', client };
  }

  async register(user: string, device: string, applicationToken: string): Promise<E2eeClient> {
    const policy = await serverPolicy();
    this.#client = await E2eeClient.register({ ...this.#options, user, device, applicationToken, policy });
    return this.#client;
  }

  /** Makes this device's keys and returns the request text an existing device approves. */
  async requestEnrolment(user: string, device: string): Promise<string> {
    const policy = await serverPolicy();
    const { client, request } = await E2eeClient.requestDevice({ ...this.#options, user, device, policy });
    const text = formatDeviceRequest(request);
    await this.state.transaction().putJson(PENDING_ENROLMENT, { user, request: text }).commit();
    this.#client = client;
    return text;
  }

  /**
   * Tries to finish a pending enrolment: true once the directory lists this device. Until the other device
   * approved it, the service refuses this device's login or the directory does not list it yet: false.
   */
  async tryCompleteEnrolment(): Promise<boolean> {
    try {
      await this.client.completeEnrolment();
    } catch (err) {
      if (err instanceof EnsealError && WAITING.has(err.code)) return false;
      throw err;
    }
    await this.state.transaction().delete(PENDING_ENROLMENT).commit();
    return true;
  }

  async recover(
    user: string,
    device: string,
    applicationToken: string,
    secret: { passphrase: string } | { shares: string[] },
  ): Promise<E2eeClient> {
    const policy = await serverPolicy();
    this.#client = await E2eeClient.recover({
      ...this.#options,
      user,
      device,
      applicationToken,
      policy,
      ...secret,
    });
    return this.#client;
  }

  /**
   * Delivers inbox events to `deliver` until `stop()` is true: long-polls outside the queue, then syncs inside
   * it. Errors go to `onError` and the loop backs off.
   */
  async pollLoop(
    deliver: (events: E2eeEvent[]) => Promise<void>,
    onError: (err: unknown) => void,
    onOnline: (online: boolean) => void,
    stop: () => boolean,
  ): Promise<void> {
    let delay = 1000;
    let first = true;
    while (!stop()) {
      try {
        // At start, whatever waited while the page was closed; then the long poll, which returns on arrival.
        const waiting = first ? 1 : (await this.client.fetchInbox({ waitSeconds: 10 })).length;
        first = false;
        onOnline(true);
        delay = 1000;
        if (waiting > 0) await this.serial(async () => deliver(await this.client.sync()));
      } catch (err) {
        onOnline(false);
        onError(err);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }
}
