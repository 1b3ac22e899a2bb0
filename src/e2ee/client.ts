/**
 * `E2eeClient`: end-to-end encrypted groups, messages and files for one device, over the service of
 * docs/e2ee-service.md. It ties the library's pieces together: MLS groups (mls.ts), the verified key directory
 * (directory.ts), the relay's frames (frame.ts), chunked file encryption (files.ts), identity recovery
 * (recovery.ts), and the encrypted, crash-safe state (state.ts).
 *
 * Rules it keeps:
 * - Nothing from the directory is used unproved: keys come from entries proved included in checkpoints that
 *   passed the pinned log policy and are consistent with every earlier one.
 * - One state change, one transaction: a group's new state, the key package it consumed, the inbox cursor and
 *   the epoch's file-wrapping key are written together.
 * - A transient failure (no answer, 429, 5xx) never deletes key material. A commit is confirmed only when the
 *   relay accepted it; on 409 it is discarded, the winning commit is processed and the change is retried. A
 *   commit whose answer was lost is kept as a pending next state and adopted when the relay shows it accepted.
 * - An application message advances the sending ratchet, so the new state is saved before the message leaves.
 */
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64Encode,
  base64UrlEncode,
  concatBytes,
  constantTimeEqual,
  hexEncode,
  invalidArgument,
  randomBytes,
  sha256,
  signingPublicKey,
  utf8Decode,
  utf8Encode,
  wipe,
  type Argon2Params,
} from '../crypto/index.js';
import type { ShamirParams } from '../keys/index.js';
import {
  E2eeApi,
  EpochConflictError,
  groupPathId,
  isTransientError,
  type DeviceAddress,
  type InboxMessage,
} from './api.js';
import {
  DirectoryVerifier,
  deviceCredential,
  logPolicyFrom,
  parseDeviceCredential,
  type PinnedLogPolicy,
  type VerifiedUser,
} from './directory.js';
import {
  FILE_EXPORTER_LABEL,
  decryptFileStream,
  encryptFileStream,
  generateFileKey,
  unwrapFileKey,
  wrapFileKey,
  type ByteSource,
} from './files.js';
import {
  checkDeliveryRecord,
  newDeliveryRecord,
  noteDelivery,
  openGaps,
  stillMissing,
  type DeliveryRecord,
  type OpenedGap,
} from './delivery-gaps.js';
import { decodeFrame, encodeFrame } from './frame.js';
import {
  encodeDeviceRecord,
  encodeDeviceRevocation,
  generateIdentityKey,
  signDeviceRecord,
  signDeviceRecordWith,
  signDeviceRevocationWith,
} from './identity.js';
import {
  MlsClient,
  encodeKeyPackageSecret,
  type MlsGroup,
  type MlsKeyPackage,
  type MlsSuite,
  type PendingCommit,
} from './mls.js';
import {
  backupIdentityKey,
  combineIdentityShares,
  restoreIdentityKey,
  splitIdentityKey,
} from './recovery.js';
import { safetyNumber, verifySafetyNumberPayload, type SafetyNumber } from './safety-number.js';
import { rawDeviceSigner, type DeviceSigner } from './signer.js';
import type { EncryptedState, StateTransaction } from './state.js';
import {
  directoryEntryBody,
  monitorUserEntries,
  signMlsKeyBindingWith,
  signUserIdentity,
  type DirectoryEntry,
  type MlsKeyBinding,
} from './transparency.js';
import type { E2eeTransport } from './transport.js';
import { Writer } from './wire.js';

/** One-time key packages a device keeps published; below {@link KEY_PACKAGE_LOW_WATER} it tops up. */
export const KEY_PACKAGE_TARGET = 10;
/** The count of unused one-time key packages under which a device publishes more. */
export const KEY_PACKAGE_LOW_WATER = 3;
const LOGIN_CONTEXT = utf8Encode('enseal e2ee device login v1\n');
const FILE_WRAP_EPOCHS_KEPT = 8;

/** Something the client noticed that the user should see. */
export type E2eeWarning =
  | {
      readonly kind: 'unexpected-device';
      readonly user: string;
      readonly device: string;
      readonly addedAt: number;
    }
  | { readonly kind: 'expected-device-revoked'; readonly user: string; readonly device: string }
  | {
      readonly kind: 'message-rejected';
      readonly groupId: string;
      readonly seq: number;
      readonly code: string;
    }
  | ({ readonly kind: 'messages-missing' } & MissingMessages)
  | {
      /** Members were added, but sending them the group's past failed (they read from now on). */
      readonly kind: 'history-not-shared';
      readonly groupId: string;
      readonly code: string;
    }
  | {
      /** The relay named another sender than the one MLS authenticated; the event names the authenticated one. */
      readonly kind: 'sender-mismatch';
      readonly groupId: string;
      readonly seq: number;
      readonly claimed: DeviceAddress;
      readonly sender: DeviceAddress;
    };

/** What {@link E2eeClient.sync} delivered. */
export type E2eeEvent =
  | { readonly kind: 'joined'; readonly groupId: string; readonly seq: number }
  | {
      readonly kind: 'commit';
      readonly groupId: string;
      readonly epoch: number;
      readonly removed: boolean;
      readonly seq: number;
    }
  | {
      readonly kind: 'message';
      readonly groupId: string;
      readonly seq: number;
      readonly sender: DeviceAddress;
      readonly data: Uint8Array;
    }
  | {
      readonly kind: 'file';
      readonly groupId: string;
      readonly seq: number;
      readonly sender: DeviceAddress;
      readonly file: SharedFile;
    }
  | { readonly kind: 'rejected'; readonly groupId: string; readonly seq: number; readonly code: string }
  | {
      /** Past messages of a group this device just joined, shared by the member that added it. */
      readonly kind: 'history';
      readonly groupId: string;
      readonly seq: number;
      readonly sender: DeviceAddress;
      readonly entries: readonly HistoryEntry[];
    }
  | ({ readonly kind: 'missing' } & MissingMessages);

/** Messages of `sender` in `epoch` (indexes `from` to `to`) that were not delivered: the relay dropped them. */
export interface MissingMessages {
  readonly code: typeof ErrorCode.E2EE_MISSING_MESSAGES;
  readonly groupId: string;
  readonly sender: DeviceAddress;
  readonly epoch: number;
  readonly from: number;
  readonly to: number;
}

/** A file shared in a group, as its file message describes it. */
export interface SharedFile {
  readonly blobId: string;
  readonly epoch: number;
  /** Ciphertext size in bytes. */
  readonly size: number;
  readonly name: string;
}

function missingCommits(group: string, have: number, wanted: number): EnsealError {
  return new EnsealError(
    ErrorCode.E2EE_MISSING_COMMITS,
    `group ${group}: a message of epoch ${wanted} arrived, but the relay delivered no commits past epoch ${have}; the group state is unchanged`,
  );
}

/** Options shared by the constructors. */
export interface E2eeClientOptions {
  readonly transport: E2eeTransport;
  readonly state: EncryptedState;
  readonly suite?: MlsSuite;
  /** Called for every warning (a device added behind the user's back, a rejected message). */
  readonly onWarning?: (warning: E2eeWarning) => void;
  /**
   * The device key, held outside the state (in a browser, a non-extractable WebCrypto key). Given at
   * register, requestDevice or recover, the client keeps only its public key in the state, and
   * {@link E2eeClient.open} then needs the same signer again. Without it the client generates a raw Ed25519
   * device key and keeps it sealed in the state.
   */
  readonly deviceSigner?: DeviceSigner;
}

/** A device's own keys, as stored (sealed) in the state. */
interface DeviceRecordJson {
  user: string;
  device: string;
  /** The raw device private key; empty when the key is held by an external {@link DeviceSigner}. */
  deviceKey: string;
  /** With an external signer: its public key, and the marker. */
  devicePublic?: string;
  deviceKeyHeld?: 'signer';
  mlsKey: string;
  identityPublic: string;
  /** Present on the device that holds the identity private key (the first one, or a recovered one). */
  identityKey?: string;
  /** Whether the directory accepted this device yet. */
  enrolled: boolean;
}

interface ContactJson {
  identityKey: string;
  verified: boolean;
}

interface PendingCommitJson {
  epoch: number;
  commitHash: string;
  next: string;
}

/** What a new device hands to an existing one to be enrolled (text, via QR code or copy and paste). */
export interface DeviceRequest {
  readonly user: string;
  readonly device: string;
  readonly deviceKey: Uint8Array;
  readonly mlsBinding: Uint8Array;
}

/** The device-key fields of a new device record: a fresh raw key, or only the public key of `signer`. */
function newDeviceKey(
  signer: DeviceSigner | undefined,
): Pick<DeviceRecordJson, 'deviceKey' | 'devicePublic' | 'deviceKeyHeld'> {
  if (signer === undefined) return { deviceKey: b64(generateIdentityKey().privateKey) };
  checkSigner(signer);
  return { deviceKey: '', devicePublic: b64(signer.publicKey), deviceKeyHeld: 'signer' };
}

function checkSigner(signer: DeviceSigner): void {
  if (
    !(signer.publicKey instanceof Uint8Array) ||
    signer.publicKey.length !== 32 ||
    typeof signer.sign !== 'function'
  )
    throw invalidArgument('deviceSigner', 'must have a 32-byte Ed25519 publicKey and a sign method');
}

/** Whether a saved, not yet enrolled record was made for this user, device and way of keeping the key. */
function reusable(
  record: DeviceRecordJson | undefined,
  user: string,
  device: string,
  signer: DeviceSigner | undefined,
): record is DeviceRecordJson {
  if (record === undefined || record.user !== user || record.device !== device) return false;
  if (signer === undefined) return record.deviceKeyHeld === undefined;
  return (
    record.deviceKeyHeld === 'signer' &&
    constantTimeEqual(base64Decode(record.devicePublic ?? ''), signer.publicKey)
  );
}

/** The signer of the device in `record`: the given one (checked against the record) or its raw key. */
function deviceSignerFor(record: DeviceRecordJson, given: DeviceSigner | undefined): DeviceSigner {
  if (record.deviceKeyHeld === 'signer') {
    if (given === undefined)
      throw new EnsealError(
        ErrorCode.INVALID_STATE,
        `device "${record.device}" keeps its device key outside the client state (a non-extractable key): pass the same deviceSigner to open it`,
      );
    checkSigner(given);
    if (!constantTimeEqual(given.publicKey, base64Decode(record.devicePublic ?? '')))
      throw new EnsealError(
        ErrorCode.INVALID_STATE,
        `the deviceSigner given is not the key of device "${record.device}" (its public key differs): pass the signer this device was created with`,
      );
    return given;
  }
  if (given !== undefined)
    throw invalidArgument(
      'deviceSigner',
      'must not be given: this client state holds its own device key (it was created without a deviceSigner)',
    );
  return rawDeviceSigner(base64Decode(record.deviceKey));
}

/** The body of the `mls-signature-key` entry that publishes `binding`. */
function mlsBindingBody(userId: string, binding: MlsKeyBinding): Uint8Array {
  return directoryEntryBody({ kind: 'mls-signature-key', userId, binding });
}

function b64(bytes: Uint8Array): string {
  return base64Encode(bytes);
}

function gidName(groupId: Uint8Array): string {
  return base64UrlEncode(groupId);
}

function gidBytes(groupId: string | Uint8Array): Uint8Array {
  if (groupId instanceof Uint8Array) return groupId;
  try {
    return base64Decode(
      groupId.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (groupId.length % 4)) % 4),
    );
  } catch {
    throw invalidArgument('groupId', 'must be a group id (base64url)');
  }
}

/**
 * Where a message stands among its sender's (delivery-gaps.ts): `c` is its index in this epoch, `p` the sender's
 * count for the last earlier epoch it sent in (on the first message of an epoch only).
 */
interface Sequence {
  c?: number;
  p?: [number, number];
}

/** The application payload inside an MLS message: a message or a file reference. */
type Payload = Sequence &
  (
    | { t: 'm'; d: string }
    | { t: 'f'; b: string; k: string; e: number; s: number; n: string }
    | { t: 'h'; b: string; k: string; e: number; s: number; n: number }
  );

/** Past messages kept per group for sharing with newcomers (groups created with `history: 'shared'`). */
export const HISTORY_KEPT = 1000;
/** The largest history bundle a newcomer reads (its ciphertext), so a member cannot make others fetch gigabytes. */
const HISTORY_BUNDLE_MAX = 16 * 1024 * 1024;

/** One past message of a group, as this device keeps it (sealed in its state). */
interface HistoryJson {
  u: string;
  d: string;
  e: number;
  at: number;
  m?: string;
  f?: { b: string; e: number; s: number; n: string; k?: string };
  by?: DeviceAddress;
}

/** A message of a group's past, from {@link E2eeClient.history} or a `history` event. */
export interface HistoryEntry {
  /** Who sent it: MLS-authenticated when this device received it; the sharer's word when `sharedBy` is set. */
  readonly sender: DeviceAddress;
  readonly epoch: number;
  /** When this device (or the sharer) received or sent it, POSIX milliseconds. */
  readonly at: number;
  readonly data?: Uint8Array;
  readonly file?: SharedFile;
  /** The member that shared it with this device in a history bundle. */
  readonly sharedBy?: DeviceAddress;
}

function historyEntry(h: HistoryJson): HistoryEntry {
  return {
    sender: { user: h.u, device: h.d },
    epoch: h.e,
    at: h.at,
    ...(h.m === undefined ? {} : { data: base64Decode(h.m) }),
    ...(h.f === undefined ? {} : { file: { blobId: h.f.b, epoch: h.f.e, size: h.f.s, name: h.f.n } }),
    ...(h.by === undefined ? {} : { sharedBy: h.by }),
  };
}

/**
 * Checks one entry of a history bundle (another member wrote it: every field is checked).
 * @internal exported for tests
 */
export function checkHistoryJson(value: unknown): HistoryJson {
  const h = value as HistoryJson;
  const text = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && v.length <= max;
  const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const ok =
    typeof h === 'object' &&
    h !== null &&
    text(h.u, 255) &&
    text(h.d, 255) &&
    int(h.e) &&
    int(h.at) &&
    (h.m === undefined || typeof h.m === 'string') &&
    (h.f === undefined ||
      (typeof h.f === 'object' &&
        h.f !== null &&
        text(h.f.b, 128) &&
        int(h.f.e) &&
        int(h.f.s) &&
        typeof h.f.n === 'string' &&
        (h.f.k === undefined || typeof h.f.k === 'string'))) &&
    (h.m !== undefined) !== (h.f !== undefined);
  if (!ok) throw new EnsealError(ErrorCode.MALFORMED, 'history bundle: an entry is malformed');
  return h;
}

/** A sender's key in a delivery record (user and device names may hold any character, '/' included). */
function senderKey(a: DeviceAddress): string {
  return JSON.stringify([a.user, a.device]);
}

function senderOf(key: string): DeviceAddress {
  const [user, device] = JSON.parse(key) as [string, string];
  return { user, device };
}

/** What a sender remembers of its own messages in a group, to number the next one. */
interface SentJson {
  epoch: number;
  next: number;
  previous?: [number, number];
}

function encodePayload(p: Payload): Uint8Array {
  return utf8Encode(JSON.stringify(p));
}

function decodePayload(bytes: Uint8Array): Payload {
  let p: unknown;
  try {
    p = JSON.parse(utf8Decode(bytes));
  } catch {
    throw new EnsealError(ErrorCode.MALFORMED, 'group message: not a message of this client');
  }
  const o = p as Record<string, unknown>;
  const index = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  if (o?.c !== undefined && !index(o.c))
    throw new EnsealError(ErrorCode.MALFORMED, 'group message: bad sequence number');
  if (o?.p !== undefined && !(Array.isArray(o.p) && o.p.length === 2 && o.p.every(index)))
    throw new EnsealError(ErrorCode.MALFORMED, 'group message: bad previous-epoch count');
  if (o?.t === 'm' && typeof o.d === 'string') return o as unknown as Payload;
  if (
    o?.t === 'h' &&
    typeof o.b === 'string' &&
    typeof o.k === 'string' &&
    Number.isSafeInteger(o.e) &&
    Number.isSafeInteger(o.s) &&
    Number.isSafeInteger(o.n)
  )
    return o as unknown as Payload;
  if (
    o?.t === 'f' &&
    typeof o.b === 'string' &&
    typeof o.k === 'string' &&
    Number.isSafeInteger(o.e) &&
    Number.isSafeInteger(o.s) &&
    typeof o.n === 'string'
  )
    return o as unknown as Payload;
  throw new EnsealError(ErrorCode.MALFORMED, 'group message: not a message of this client');
}

/** The text a new device shows to an existing one: `enseal-device1:<base64>`. */
export function formatDeviceRequest(r: DeviceRequest): string {
  return (
    'enseal-device1:' +
    b64(new Writer().string8(r.user).string8(r.device).bytes8(r.deviceKey).bytes16(r.mlsBinding).finish())
  );
}

/** Parses {@link formatDeviceRequest}'s text. Throws ERR_MALFORMED. */
export function parseDeviceRequest(text: string): DeviceRequest {
  if (!text.startsWith('enseal-device1:'))
    throw new EnsealError(ErrorCode.MALFORMED, 'device request: expected enseal-device1:…');
  const bytes = base64Decode(text.slice('enseal-device1:'.length).trim(), 'device request');
  // Reader is private to wire.ts users; decode by hand with the same rules.
  let o = 0;
  const take = (n: number): Uint8Array => {
    if (o + n > bytes.length) throw new EnsealError(ErrorCode.MALFORMED, 'device request: truncated');
    const out = bytes.slice(o, o + n);
    o += n;
    return out;
  };
  const u8 = () => take(1)[0]!;
  const user = utf8Decode(take(u8()));
  const device = utf8Decode(take(u8()));
  const deviceKey = take(u8());
  const len = take(2);
  const mlsBinding = take((len[0]! << 8) | len[1]!);
  if (o !== bytes.length || deviceKey.length !== 32 || user.length === 0 || device.length === 0)
    throw new EnsealError(ErrorCode.MALFORMED, 'device request: malformed');
  return { user, device, deviceKey, mlsBinding };
}

/**
 * One device's end-to-end client.
 *
 * @example
 * ```ts no-run
 * const state = await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) });
 * const transport = new FetchTransport({ address: 'https://chat.example.com' });
 * const alice = await E2eeClient.register({ transport, state, user: 'alice', device: 'laptop',
 *   applicationToken, policy });
 * const group = await alice.createGroup();
 * await alice.addMembers(group, ['bob']);
 * await alice.send(group, utf8Encode('hello'));
 * for (const event of await alice.sync()) console.log(event.kind);
 * ```
 */
export class E2eeClient {
  readonly user: string;
  readonly device: string;
  readonly api: E2eeApi;
  readonly state: EncryptedState;
  readonly directory: DirectoryVerifier;
  readonly mls: MlsClient;
  readonly #policy: PinnedLogPolicy;
  readonly #record: DeviceRecordJson;
  readonly #signer: DeviceSigner;
  readonly #contacts = new Map<string, Uint8Array>();
  readonly #onWarning: (w: E2eeWarning) => void;
  #token: { token: string; expiresAt: number } | undefined;
  #openedGaps: { groupId: string; gap: OpenedGap }[] = [];

  private constructor(
    options: E2eeClientOptions,
    record: DeviceRecordJson,
    policy: PinnedLogPolicy,
    directory: DirectoryVerifier,
    mls: MlsClient,
    contacts: Map<string, Uint8Array>,
  ) {
    this.user = record.user;
    this.device = record.device;
    this.api = new E2eeApi(options.transport);
    this.state = options.state;
    this.#record = record;
    this.#signer = deviceSignerFor(record, options.deviceSigner);
    this.#policy = policy;
    this.directory = directory;
    this.mls = mls;
    this.#contacts = contacts;
    this.#onWarning = options.onWarning ?? (() => undefined);
  }

  static async #build(
    options: E2eeClientOptions,
    record: DeviceRecordJson,
    policy: PinnedLogPolicy,
  ): Promise<E2eeClient> {
    const state = options.state;
    const contacts = new Map<string, Uint8Array>();
    for (const name of await state.list('contact/')) {
      const c = await state.getJson<ContactJson>(name);
      if (c) contacts.set(name.slice('contact/'.length), base64Decode(c.identityKey));
    }
    if (record.identityPublic !== '') contacts.set(record.user, base64Decode(record.identityPublic));
    const log = await state.getJson<{ note: string }>('log');
    const directory = new DirectoryVerifier(logPolicyFrom(policy), log?.note, (u) => contacts.get(u));
    const holder: { client?: E2eeClient } = {};
    const mls = await MlsClient.create({
      ...(options.suite ? { suite: options.suite } : {}),
      authenticator: directory.authenticator(async (u) => {
        if (holder.client === undefined)
          throw new EnsealError(ErrorCode.INVALID_STATE, 'client is not ready');
        await holder.client.verifyUser(u);
      }),
    });
    holder.client = new E2eeClient(options, record, policy, directory, mls, contacts);
    return holder.client;
  }

  /**
   * Registers a new user with this device as its first device: generates the identity key, the device key and
   * the device's MLS signature key, publishes them (with an application token whose policy allows creating
   * `e2ee/users/<user>`), logs in and publishes key packages. The keys are saved before anything is sent, so a
   * failed attempt can simply be repeated with the same state.
   */
  static async register(
    options: E2eeClientOptions & {
      user: string;
      device: string;
      applicationToken: string;
      policy: PinnedLogPolicy;
    },
  ): Promise<E2eeClient> {
    const state = options.state;
    let record = await state.getJson<DeviceRecordJson>('device');
    if (record?.enrolled)
      throw new EnsealError(ErrorCode.KEY_EXISTS, 'this state already holds an enrolled device');
    if (!reusable(record, options.user, options.device, options.deviceSigner)) {
      const identity = generateIdentityKey();
      record = {
        user: options.user,
        device: options.device,
        ...newDeviceKey(options.deviceSigner),
        mlsKey: b64(generateIdentityKey().privateKey),
        identityPublic: b64(identity.publicKey),
        identityKey: b64(identity.privateKey),
        enrolled: false,
      };
      await state.transaction().putJson('device', record).putJson('policy', options.policy).commit();
    }
    const client = await E2eeClient.#build(options, record, options.policy);
    const identityPriv = base64Decode(record.identityKey!);
    const now = Math.floor(Date.now() / 1000);
    const identity = signUserIdentity(options.user, identityPriv);
    const deviceRecord = signDeviceRecord(
      {
        userId: options.user,
        deviceId: options.device,
        deviceKey: client.#signer.publicKey,
        createdAt: now,
      },
      { kind: 'identity', privateKey: identityPriv },
    );
    const binding = await signMlsKeyBindingWith(
      options.user,
      options.device,
      client.#mlsPublic(),
      client.#signer,
    );
    await client.api.registerUser(
      options.applicationToken,
      options.user,
      directoryEntryBody({ kind: 'user-identity', userId: options.user, identity }),
      encodeDeviceRecord(deviceRecord),
      mlsBindingBody(options.user, binding),
    );
    await client.#markEnrolled([options.device]);
    await client.login();
    await client.publishKeyPackages();
    return client;
  }

  /** Opens the device kept in `state`. Throws ERR_KEY_NOT_FOUND when the state holds none. */
  static async open(options: E2eeClientOptions): Promise<E2eeClient> {
    const record = await options.state.getJson<DeviceRecordJson>('device');
    const policy = await options.state.getJson<PinnedLogPolicy>('policy');
    if (record === undefined || policy === undefined)
      throw new EnsealError(
        ErrorCode.KEY_NOT_FOUND,
        'no e2ee device in this state: register or request a device first',
      );
    return E2eeClient.#build(options, record, policy);
  }

  /**
   * A new device of an existing user: generates its keys, saves them, and returns the request an existing device
   * must approve ({@link E2eeClient.approveDevice}). Then call {@link E2eeClient.completeEnrolment} on this device.
   */
  static async requestDevice(
    options: E2eeClientOptions & {
      user: string;
      device: string;
      policy: PinnedLogPolicy;
      identityPublicKey?: Uint8Array;
    },
  ): Promise<{ client: E2eeClient; request: DeviceRequest }> {
    const state = options.state;
    let record = await state.getJson<DeviceRecordJson>('device');
    if (record?.enrolled)
      throw new EnsealError(ErrorCode.KEY_EXISTS, 'this state already holds an enrolled device');
    if (!reusable(record, options.user, options.device, options.deviceSigner)) {
      record = {
        user: options.user,
        device: options.device,
        ...newDeviceKey(options.deviceSigner),
        mlsKey: b64(generateIdentityKey().privateKey),
        identityPublic: options.identityPublicKey === undefined ? '' : b64(options.identityPublicKey),
        enrolled: false,
      };
      await state.transaction().putJson('device', record).putJson('policy', options.policy).commit();
    }
    const client = await E2eeClient.#build(options, record, options.policy);
    const binding = await signMlsKeyBindingWith(
      options.user,
      options.device,
      client.#mlsPublic(),
      client.#signer,
    );
    return {
      client,
      request: {
        user: options.user,
        device: options.device,
        deviceKey: client.#signer.publicKey.slice(),
        mlsBinding: mlsBindingBody(options.user, binding),
      },
    };
  }

  #mlsPrivate(): Uint8Array {
    return base64Decode(this.#record.mlsKey);
  }

  #mlsPublic(): Uint8Array {
    return signingPublicKey('ed25519', this.#mlsPrivate());
  }

  /** This device as the relay names it. */
  get address(): DeviceAddress {
    return { user: this.user, device: this.device };
  }

  async #markEnrolled(devices: readonly string[]): Promise<void> {
    this.#record.enrolled = true;
    const expected = new Set((await this.state.getJson<string[]>('expected-devices')) ?? []);
    for (const d of devices) expected.add(d);
    await this.state
      .transaction()
      .putJson('device', this.#record)
      .putJson('expected-devices', [...expected])
      .commit();
  }

  // -------------------------------------------------------------- tokens

  /** Proves possession of the device key and gets a device token. */
  async login(): Promise<string> {
    const challenge = await this.api.challenge(this.user, this.device);
    const msg = new Writer()
      .raw(LOGIN_CONTEXT)
      .string8(this.#policy.origin)
      .string8(this.user)
      .string8(this.device)
      .raw(challenge)
      .finish();
    const signature = await this.#signer.sign(msg);
    const { token, expiresAt } = await this.api.login(this.user, this.device, challenge, signature);
    const t = Date.parse(expiresAt);
    this.#token = { token, expiresAt: Number.isFinite(t) ? t : Date.now() + 30 * 60_000 };
    return token;
  }

  async #tok(): Promise<string> {
    if (this.#token === undefined || this.#token.expiresAt - Date.now() < 60_000) return this.login();
    return this.#token.token;
  }

  /** Runs `call` with a device token, logging in again once if the token was refused. */
  async #authed<T>(call: (token: string) => Promise<T>): Promise<T> {
    const token = await this.#tok();
    try {
      return await call(token);
    } catch (err) {
      if (
        err instanceof EnsealError &&
        (err.code === ErrorCode.PERMISSION_DENIED || err.code === ErrorCode.TOKEN_EXPIRED)
      ) {
        return call(await this.login());
      }
      throw err;
    }
  }

  // ---------------------------------------------------------- directory

  /**
   * Fetches and proves a user's directory entries (and persists the newer checkpoint). A contact's identity key is
   * pinned at first sight; a later change is ERR_E2EE_UNTRUSTED_IDENTITY until the user re-verifies them.
   */
  async verifyUser(user: string): Promise<VerifiedUser> {
    const verified = await this.#authed((t) => this.directory.fetchUser(user, this.api, t));
    const tx = this.state.transaction().putJson('log', { note: this.directory.latestNote });
    if (!this.#contacts.has(user)) {
      this.#contacts.set(user, verified.identityKey);
      tx.putJson(`contact/${user}`, {
        identityKey: b64(verified.identityKey),
        verified: false,
      } satisfies ContactJson);
    }
    await tx.commit();
    return verified;
  }

  /**
   * Monitors this user's own entries: every device the local device did not enrol or acknowledge is reported as
   * an `unexpected-device` warning (and returned), so a device added behind the user's back is seen.
   */
  async monitor(): Promise<E2eeWarning[]> {
    const me = await this.verifyUser(this.user);
    const expected = new Set((await this.state.getJson<string[]>('expected-devices')) ?? []);
    const entries = me.entries.filter((e): e is DirectoryEntry => e.kind !== 'user-identity');
    const report = monitorUserEntries(this.user, entries, expected);
    const warnings: E2eeWarning[] = [
      ...report.unexpectedDevices.map((d) => ({
        kind: 'unexpected-device' as const,
        user: this.user,
        device: d.deviceId,
        addedAt: d.addedAt,
      })),
      ...report.revokedExpected.map((d) => ({
        kind: 'expected-device-revoked' as const,
        user: this.user,
        device: d,
      })),
    ];
    for (const w of warnings) this.#onWarning(w);
    return warnings;
  }

  /** Marks a device of this user as known (after the user confirmed it), so monitoring stops reporting it. */
  async acknowledgeDevice(device: string): Promise<void> {
    await this.#markEnrolled([device]);
  }

  /** This user's valid devices, proved from the directory. */
  async devices(): Promise<{ device: string; addedBy: string; createdAt: number; current: boolean }[]> {
    const me = await this.verifyUser(this.user);
    return [...me.devices.values()].map((d) => ({
      device: d.deviceId,
      addedBy: d.addedBy,
      createdAt: d.createdAt,
      current: d.deviceId === this.device,
    }));
  }

  /**
   * Approves a new device of this user (run on an existing device): signs its record with this device's key and
   * publishes it with the new device's MLS key binding. Afterwards, {@link E2eeClient.addMembers} with this
   * user's id adds the new device to a group.
   */
  async approveDevice(request: DeviceRequest): Promise<void> {
    if (request.user !== this.user) throw invalidArgument('request', 'is for another user');
    const record = await signDeviceRecordWith(
      {
        userId: this.user,
        deviceId: request.device,
        deviceKey: request.deviceKey,
        createdAt: Math.floor(Date.now() / 1000),
      },
      { kind: 'device', deviceId: this.device },
      this.#signer,
    );
    await this.#authed((t) =>
      this.api.addDevice(t, this.user, encodeDeviceRecord(record), request.mlsBinding),
    );
    await this.#markEnrolled([request.device]);
  }

  /** Finishes enrolment on the new device once approved: checks the directory lists it, logs in, publishes. */
  async completeEnrolment(): Promise<void> {
    // Unless it was given, the identity key of this user is whatever the directory proves: pin it now.
    const me = await this.#authed((t) => this.directory.fetchUser(this.user, this.api, t));
    if (!me.devices.has(this.device))
      throw new EnsealError(ErrorCode.E2EE_UNTRUSTED_IDENTITY, 'this device is not in the directory yet');
    if (this.#record.identityPublic !== '' && !this.isOwnIdentityKey(me.identityKey))
      throw new EnsealError(
        ErrorCode.E2EE_UNTRUSTED_IDENTITY,
        'the directory shows another identity key for this user',
      );
    this.#contacts.set(this.user, me.identityKey);
    this.#record.identityPublic = b64(me.identityKey);
    await this.state.transaction().putJson('log', { note: this.directory.latestNote }).commit();
    await this.#markEnrolled([...me.devices.keys()]);
    await this.publishKeyPackages();
  }

  /** Revokes a device of this user (signed by this device), ending its tokens and its place in new groups. */
  async revokeDevice(device: string): Promise<void> {
    const rev = await signDeviceRevocationWith(
      { userId: this.user, deviceId: device, revokedAt: Math.floor(Date.now() / 1000) },
      { kind: 'device', deviceId: this.device },
      this.#signer,
    );
    await this.#authed((t) => this.api.revokeDevice(t, this.user, encodeDeviceRevocation(rev)));
  }

  // ------------------------------------------------------- key packages

  async #newKeyPackage(lastResort: boolean): Promise<MlsKeyPackage> {
    return this.mls.generateKeyPackage({
      identity: deviceCredential(this.user, this.device),
      signaturePrivateKey: this.#mlsPrivate(),
      lastResort,
    });
  }

  /**
   * Publishes one-time key packages up to {@link KEY_PACKAGE_TARGET} (and a last-resort one if none is kept).
   * Their secrets are saved before they are published, so a failure leaves at most unused secrets behind.
   */
  async publishKeyPackages(target = KEY_PACKAGE_TARGET): Promise<number> {
    const names = await this.state.list('kp/');
    let oneTime = 0;
    let hasLastResort = false;
    for (const n of names) {
      if (n.startsWith('kp/lr/')) hasLastResort = true;
      else oneTime++;
    }
    const fresh: MlsKeyPackage[] = [];
    for (let i = oneTime; i < target; i++) fresh.push(await this.#newKeyPackage(false));
    const lastResort = hasLastResort ? undefined : await this.#newKeyPackage(true);
    if (fresh.length === 0 && lastResort === undefined) return 0;
    const tx = this.state.transaction();
    for (const kp of fresh) tx.put(`kp/${kp.ref}`, encodeKeyPackageSecret(kp));
    if (lastResort) tx.put(`kp/lr/${lastResort.ref}`, encodeKeyPackageSecret(lastResort));
    await tx.commit();
    await this.#authed((t) =>
      this.api.publishKeyPackages(
        t,
        this.user,
        this.device,
        fresh.map((k) => k.message),
        lastResort?.message,
      ),
    );
    return fresh.length;
  }

  // -------------------------------------------------------------- groups

  async #loadGroup(groupId: Uint8Array): Promise<MlsGroup> {
    const bytes = await this.state.get(`group/${gidName(groupId)}`);
    if (bytes === undefined)
      throw new EnsealError(ErrorCode.KEY_NOT_FOUND, 'this device is not in that group');
    return this.mls.decodeGroup(bytes, { allowUntrusted: true });
  }

  /** Ids of the groups this device is in. */
  async groups(): Promise<string[]> {
    return (await this.state.list('group/')).map((n) => n.slice('group/'.length));
  }

  /** Puts a group's state (and its epoch's file-wrapping key) into a transaction. */
  async #stage(tx: StateTransaction, group: MlsGroup): Promise<void> {
    const name = gidName(group.groupId);
    tx.put(`group/${name}`, group.encode());
    const epoch = Number(group.epoch);
    tx.put(`wrap/${name}/${epoch}`, await group.exportSecret(FILE_EXPORTER_LABEL, new Uint8Array(0), 32));
    if (epoch >= FILE_WRAP_EPOCHS_KEPT) tx.delete(`wrap/${name}/${epoch - FILE_WRAP_EPOCHS_KEPT}`);
  }

  #roster(group: MlsGroup): DeviceAddress[] {
    const out: DeviceAddress[] = [];
    for (const m of group.members()) {
      const id = parseDeviceCredential(m.identity);
      if (id) out.push(id);
    }
    return out;
  }

  /**
   * Creates a group with this device as its only member; returns its id (base64url). With `history: 'shared'`
   * the group's MLS context says that members keep past messages (sealed in their state, at most
   * {@link HISTORY_KEPT}) and share them with members they add; every member sees that setting, and it cannot be
   * changed later. The default keeps no history: a newcomer reads only what is sent after it joined.
   */
  async createGroup(options: { history?: 'shared' | 'none' } = {}): Promise<string> {
    const groupId = randomBytes(32);
    const group = await this.mls.createGroup(groupId, await this.#newKeyPackage(false), {
      sharedHistory: options.history === 'shared',
    });
    await this.#authed((t) => this.api.createGroup(t, groupId, [this.address]));
    const tx = this.state.transaction().putJson(`recv/${gidName(groupId)}`, newDeliveryRecord(0));
    await this.#stage(tx, group);
    await tx.commit();
    return gidName(groupId);
  }

  /**
   * Makes a commit and gets it accepted: builds it with `make` from the current state, posts it, confirms it on
   * 200. On 409 the commit is discarded, the relay's winning commits are processed, and `make` runs again on the
   * new state. On a transient failure the unconfirmed next state is kept aside (and adopted if the relay turns
   * out to have accepted it), and the error is thrown.
   */
  async #commit(
    groupId: Uint8Array,
    make: (group: MlsGroup) => Promise<{ pending: PendingCommit; recipients: DeviceAddress[] } | undefined>,
  ): Promise<MlsGroup | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const group = await this.#catchUp(groupId, await this.#loadGroup(groupId));
      const made = await make(group);
      if (made === undefined) return group;
      const { pending, recipients } = made;
      const epoch = Number(group.epoch);
      const frame = encodeFrame(pending.commit);
      try {
        await this.#authed((t) =>
          this.api.postCommit(t, groupId, {
            epoch,
            commit: frame,
            roster: this.#roster(pending.next),
            ...(pending.welcome === undefined
              ? {}
              : { welcome: { frame: encodeFrame(pending.welcome), recipients } }),
          }),
        );
      } catch (err) {
        if (err instanceof EpochConflictError) {
          pending.discard();
          continue;
        }
        if (isTransientError(err)) {
          // The relay may have accepted it and the answer got lost: keep the next state to adopt it then.
          const aside: PendingCommitJson = {
            epoch,
            commitHash: hexEncode(sha256(frame)),
            next: b64(pending.next.encode()),
          };
          pending.discard();
          await this.state
            .transaction()
            .putJson(`pending/${gidName(groupId)}`, aside)
            .commit();
        } else {
          pending.discard();
        }
        throw err;
      }
      const next = pending.confirm();
      const tx = this.state.transaction().delete(`pending/${gidName(groupId)}`);
      await this.#stage(tx, next);
      await tx.commit();
      return next;
    }
    throw new EnsealError(ErrorCode.INVALID_STATE, 'the group kept changing under this commit; try again');
  }

  /** Processes the relay's accepted commits after the group's epoch (catching up after a lost race or offline). */
  async #catchUp(groupId: Uint8Array, group: MlsGroup): Promise<MlsGroup> {
    const commits = await this.#authed((t) => this.api.commitsAfter(t, groupId, Number(group.epoch)));
    let g = group;
    for (const c of commits.sort((a, b) => a.epoch - b.epoch)) {
      if (c.epoch !== Number(g.epoch)) continue;
      g = await this.#applyCommit(groupId, g, c.frame);
      if (g.removed) break;
    }
    return g;
  }

  /** Applies one accepted commit frame (adopting this device's own pending one), persisting the result. */
  async #applyCommit(
    groupId: Uint8Array,
    group: MlsGroup,
    frame: Uint8Array,
    extra?: (tx: StateTransaction) => void,
  ): Promise<MlsGroup> {
    const name = gidName(groupId);
    const aside = await this.state.getJson<PendingCommitJson>(`pending/${name}`);
    let next: MlsGroup;
    if (
      aside !== undefined &&
      aside.epoch === Number(group.epoch) &&
      aside.commitHash === hexEncode(sha256(frame))
    ) {
      next = await this.mls.decodeGroup(base64Decode(aside.next), { allowUntrusted: true });
      group.retire();
    } else {
      const result = await group.process(decodeFrame(frame));
      next = result.group;
    }
    const tx = this.state.transaction().delete(`pending/${name}`);
    extra?.(tx);
    if (next.removed) {
      tx.delete(`group/${name}`);
    } else {
      await this.#stage(tx, next);
    }
    await tx.commit();
    return next;
  }

  /**
   * Adds users to a group: every valid device of each user that is not in it yet, from key packages claimed from
   * the directory and checked against the verified directory (a package whose credential or key the directory
   * does not vouch for is ERR_E2EE_UNTRUSTED_IDENTITY). Adding this user's own id adds its other devices.
   */
  async addMembers(groupIdText: string, users: readonly string[]): Promise<number> {
    const groupId = gidBytes(groupIdText);
    let added = 0;
    const next = await this.#commit(groupId, async (group) => {
      const present = new Set(this.#roster(group).map((a) => `${a.user}/${a.device}`));
      const packages: Uint8Array[] = [];
      const recipients: DeviceAddress[] = [];
      for (const user of users) {
        const verified = await this.verifyUser(user);
        const claimed = await this.#authed((t) => this.api.claimKeyPackages(t, user));
        for (const c of claimed) {
          if (present.has(`${user}/${c.device}`) || !verified.devices.has(c.device)) continue;
          const kp = await this.mls.decodeKeyPackage(c.keyPackage); // authenticates against the directory
          const id = parseDeviceCredential(
            kp.leafNode.credential.credentialType === 'basic'
              ? kp.leafNode.credential.identity
              : new Uint8Array(0),
          );
          if (id === undefined || id.user !== user || id.device !== c.device)
            throw new EnsealError(
              ErrorCode.E2EE_UNTRUSTED_IDENTITY,
              `a key package claimed for ${user}/${c.device} names another device`,
            );
          packages.push(c.keyPackage);
          recipients.push({ user, device: c.device });
        }
      }
      added = packages.length;
      if (packages.length === 0) return undefined;
      return { pending: await group.addMembers(packages), recipients };
    });
    if (added > 0 && next?.sharedHistory === true) {
      // The members are in: a failure to send the past must not look like a failed add (a retry would add
      // nobody), so it is reported and the call still succeeds.
      try {
        await this.#shareHistory(groupId, next);
      } catch (err) {
        const code = err instanceof EnsealError ? err.code : ErrorCode.IO;
        this.#onWarning({ kind: 'history-not-shared', groupId: gidName(groupId), code });
      }
    }
    return added;
  }

  /**
   * Sends this device's history of a group to everyone in its current epoch: the entries (file keys included) in
   * one blob under a fresh key, wrapped under this epoch's exporter secret, so only the members of this epoch,
   * the newcomers among them, can open it. The relay sees one more blob.
   */
  async #shareHistory(groupId: Uint8Array, group: MlsGroup): Promise<void> {
    const name = gidName(groupId);
    const entries: HistoryJson[] = [];
    for (const rec of await this.state.list(`hist/${name}/`)) {
      const h = await this.state.getJson<HistoryJson>(rec);
      if (h === undefined) continue;
      if (h.f !== undefined) {
        const file = await this.state.getJson<{ key: string }>(`file/${h.f.b}`);
        if (file === undefined) continue; // its key is gone: nobody could open it
        entries.push({ ...h, f: { ...h.f, k: file.key } });
      } else entries.push(h);
    }
    if (entries.length === 0) return;
    const epoch = Number(group.epoch);
    const bundle = utf8Encode(JSON.stringify(entries));
    const { blobId, size, fileKey } = await this.#uploadBlob(groupId, [bundle]);
    const wrapKey = await group.exportSecret(FILE_EXPORTER_LABEL, new Uint8Array(0), 32);
    try {
      const wrapped = wrapFileKey(wrapKey, fileKey, { groupId, epoch, blobId, size });
      await this.#sendPayload(groupId, {
        t: 'h',
        b: blobId,
        k: b64(wrapped),
        e: epoch,
        s: size,
        n: entries.length,
      });
    } finally {
      wipe(fileKey, wrapKey);
      wipe(bundle);
    }
  }

  /** The past messages of a group this device keeps (groups with shared history only), oldest first. */
  async history(groupIdText: string): Promise<HistoryEntry[]> {
    const name = gidName(gidBytes(groupIdText));
    const out: HistoryEntry[] = [];
    for (const rec of await this.state.list(`hist/${name}/`)) {
      const h = await this.state.getJson<HistoryJson>(rec);
      if (h !== undefined) out.push(historyEntry(h));
    }
    return out;
  }

  /** Adds entries to a group's kept history in `tx`, dropping the oldest beyond {@link HISTORY_KEPT}. */
  async #keepHistory(tx: StateTransaction, name: string, entries: readonly HistoryJson[]): Promise<void> {
    const counter = (await this.state.getJson<{ first: number; next: number }>(`histc/${name}`)) ?? {
      first: 0,
      next: 0,
    };
    for (const h of entries) {
      tx.putJson(`hist/${name}/${String(counter.next).padStart(12, '0')}`, h);
      counter.next++;
    }
    while (counter.next - counter.first > HISTORY_KEPT) {
      tx.delete(`hist/${name}/${String(counter.first).padStart(12, '0')}`);
      counter.first++;
    }
    tx.putJson(`histc/${name}`, counter);
  }

  /** Removes users (all their devices) or single devices (`user/device`) from a group. */
  async removeMembers(groupIdText: string, members: readonly string[]): Promise<number> {
    const groupId = gidBytes(groupIdText);
    let removed = 0;
    await this.#commit(groupId, async (group) => {
      const leaves = group
        .members()
        .filter((m) => {
          const id = parseDeviceCredential(m.identity);
          if (id === undefined || m.leafIndex === group.ownLeafIndex) return false;
          return members.includes(id.user) || members.includes(`${id.user}/${id.device}`);
        })
        .map((m) => m.leafIndex);
      removed = leaves.length;
      if (leaves.length === 0) return undefined;
      return { pending: await group.removeMembers(leaves), recipients: [] };
    });
    return removed;
  }

  /** A fresh path for this device in the group (post-compromise security), as an empty commit. */
  async updateKeys(groupIdText: string): Promise<void> {
    await this.#commit(gidBytes(groupIdText), async (group) => ({
      pending: await group.update(),
      recipients: [],
    }));
  }

  /** The group's members as the relay names them. */
  async members(groupIdText: string): Promise<DeviceAddress[]> {
    return this.#roster(await this.#loadGroup(gidBytes(groupIdText)));
  }

  async #sendPayload(groupId: Uint8Array, payload: Payload): Promise<number> {
    const group = await this.#catchUp(groupId, await this.#loadGroup(groupId));
    if (group.removed)
      throw new EnsealError(ErrorCode.INVALID_STATE, 'this device was removed from the group');
    const epoch = Number(group.epoch);
    const sentName = `sent/${gidName(groupId)}`;
    const sent = await this.state.getJson<SentJson>(sentName);
    let numbered: SentJson;
    if (sent?.epoch === epoch) numbered = sent;
    else {
      const previous =
        sent === undefined ? undefined : sent.next > 0 ? [sent.epoch, sent.next] : sent.previous;
      numbered = { epoch, next: 0, ...(previous ? { previous: previous as [number, number] } : {}) };
    }
    const sequence: Sequence = {
      c: numbered.next,
      ...(numbered.next === 0 && numbered.previous ? { p: numbered.previous } : {}),
    };
    const { message, group: next } = await group.encrypt(encodePayload({ ...payload, ...sequence }));
    // The sending ratchet and the message count moved: save them before the message leaves, so no key is
    // ever used twice and no index is given twice.
    const tx = this.state.transaction().putJson(sentName, { ...numbered, next: numbered.next + 1 });
    await this.#stage(tx, next);
    if (group.sharedHistory && payload.t !== 'h') {
      const own = this.address;
      const at = Date.now();
      await this.#keepHistory(tx, gidName(groupId), [
        payload.t === 'm'
          ? { u: own.user, d: own.device, e: epoch, at, m: payload.d }
          : {
              u: own.user,
              d: own.device,
              e: epoch,
              at,
              f: { b: payload.b, e: payload.e, s: payload.s, n: payload.n },
            },
      ]);
    }
    await tx.commit();
    return this.#authed((t) => this.api.postMessage(t, groupId, epoch, encodeFrame(message)));
  }

  /** Sends an application message to the group; returns the relay's sequence number. */
  async send(groupIdText: string, data: Uint8Array): Promise<number> {
    return this.#sendPayload(gidBytes(groupIdText), { t: 'm', d: b64(data) });
  }

  /** The group's epoch authenticator (hex): equal on every member's device when they share one view of the group. */
  async epochAuthenticator(groupIdText: string): Promise<{ epoch: number; authenticator: string }> {
    const group = await this.#loadGroup(gidBytes(groupIdText));
    return { epoch: Number(group.epoch), authenticator: hexEncode(group.epochAuthenticator()) };
  }

  // ----------------------------------------------------------------- inbox

  /**
   * Fetches the inbox and processes it in order: welcomes (joining with the matching key package, which is then
   * deleted in the same transaction), commits, application messages. Each message's state change and the cursor
   * move together; a message that fails its checks is reported as `rejected` and skipped, while a transient
   * failure stops the sync with everything processed so far saved. Acknowledges what was processed.
   */
  async sync(options: { waitSeconds?: number } = {}): Promise<E2eeEvent[]> {
    const before = await this.#cursor();
    const messages = await this.fetchInbox(options);
    const events = await this.process(messages.sort((a, b) => a.seq - b.seq));
    const after = await this.#cursor();
    if (after > before) await this.#authed((t) => this.api.ack(t, after));
    const remaining = (await this.state.list('kp/')).filter((n) => !n.startsWith('kp/lr/')).length;
    if (remaining < KEY_PACKAGE_LOW_WATER) await this.publishKeyPackages();
    return events;
  }

  async #cursor(): Promise<number> {
    return (await this.state.getJson<{ seq: number }>('cursor'))?.seq ?? 0;
  }

  /** The queued messages after this device's cursor, unprocessed (for apps that schedule processing). */
  async fetchInbox(options: { waitSeconds?: number } = {}): Promise<InboxMessage[]> {
    const cursor = await this.#cursor();
    return this.#authed((t) => this.api.inbox(t, cursor, options.waitSeconds ?? 0));
  }

  /**
   * Processes inbox messages in the order given (application messages of one epoch may come in any order; commits
   * must come in the relay's order). Stops at a transient failure, with everything before it saved; a message that
   * fails its checks is reported as `rejected` (and a replayed one fails them).
   */
  async process(messages: readonly InboxMessage[]): Promise<E2eeEvent[]> {
    const events: E2eeEvent[] = [];
    this.#openedGaps = [];
    try {
      await this.#processAll(messages, events);
    } finally {
      events.push(...(await this.#missingEvents()));
    }
    return events;
  }

  async #processAll(messages: readonly InboxMessage[], events: E2eeEvent[]): Promise<void> {
    for (const m of messages) {
      try {
        const e = await this.#processInbox(m);
        if (e) events.push(e);
      } catch (err) {
        if (isTransientError(err)) break;
        const code = err instanceof EnsealError ? err.code : ErrorCode.MALFORMED;
        events.push({ kind: 'rejected', groupId: m.groupId, seq: m.seq, code });
        this.#onWarning({ kind: 'message-rejected', groupId: m.groupId, seq: m.seq, code });
        const seq = Math.max(await this.#cursor(), m.seq);
        await this.state.transaction().putJson('cursor', { seq }).commit();
      }
    }
  }

  /** The delivery record of a group; a group joined before records existed starts at the current epoch. */
  async #deliveryRecord(name: string, epoch: number): Promise<DeliveryRecord> {
    const stored = await this.state.getJson<unknown>(`recv/${name}`);
    return stored === undefined ? newDeliveryRecord(epoch) : checkDeliveryRecord(stored);
  }

  /** The gaps opened during one process() call that later messages of the same call did not close. */
  async #missingEvents(): Promise<E2eeEvent[]> {
    const out: E2eeEvent[] = [];
    const opened = this.#openedGaps;
    this.#openedGaps = [];
    for (const { groupId, gap } of opened) {
      const stored = await this.state.getJson<unknown>(`recv/${groupId}`);
      if (stored === undefined) continue;
      for (const [from, to] of stillMissing(checkDeliveryRecord(stored), gap)) {
        const sender = senderOf(gap.sender);
        const missing = {
          code: ErrorCode.E2EE_MISSING_MESSAGES,
          groupId,
          sender,
          epoch: gap.epoch,
          from,
          to,
        };
        out.push({ kind: 'missing', ...missing });
        this.#onWarning({ kind: 'messages-missing', ...missing });
      }
    }
    return out;
  }

  /**
   * Application messages of a group that other members sent but the relay never delivered (as far as this
   * device can tell: a message dropped after its sender's last delivered one shows only when the sender sends
   * again).
   */
  async missingMessages(
    groupIdText: string,
  ): Promise<{ sender: DeviceAddress; epoch: number; from: number; to: number }[]> {
    const name = gidName(gidBytes(groupIdText));
    const stored = await this.state.getJson<unknown>(`recv/${name}`);
    if (stored === undefined) return [];
    return openGaps(checkDeliveryRecord(stored)).map((g) => ({
      sender: senderOf(g.sender),
      epoch: g.epoch,
      from: g.from,
      to: g.to,
    }));
  }

  async #processInbox(m: InboxMessage): Promise<E2eeEvent | undefined> {
    const seq = Math.max(await this.#cursor(), m.seq);
    const cursor = (tx: StateTransaction) => tx.putJson('cursor', { seq });
    const groupId = gidBytes(m.groupId);
    const name = gidName(groupId);
    if (m.kind === 'welcome') {
      const welcome = decodeFrame(m.frame);
      const refs = this.mls.welcomeKeyPackageRefs(welcome);
      for (const ref of refs) {
        const kpName =
          (await this.state.get(`kp/${ref}`)) !== undefined
            ? `kp/${ref}`
            : (await this.state.get(`kp/lr/${ref}`)) !== undefined
              ? `kp/lr/${ref}`
              : undefined;
        if (kpName === undefined) continue;
        const kp = await this.mls.decodeKeyPackageSecret((await this.state.get(kpName))!);
        const group = await this.mls.joinFromWelcome(welcome, kp);
        const tx = this.state.transaction();
        if (!kp.lastResort) tx.delete(kpName);
        cursor(tx);
        tx.putJson(`recv/${name}`, newDeliveryRecord(Number(group.epoch)));
        await this.#stage(tx, group);
        await tx.commit();
        return { kind: 'joined', groupId: name, seq: m.seq };
      }
      throw new EnsealError(ErrorCode.KEY_NOT_FOUND, 'welcome for a key package this device does not hold');
    }
    const stored = await this.state.get(`group/${name}`);
    if (stored === undefined) {
      await cursor(this.state.transaction()).commit();
      return undefined; // a group this device left or never joined
    }
    let group = await this.mls.decodeGroup(stored, { allowUntrusted: true });
    if (m.kind === 'commit') {
      if (m.epoch < Number(group.epoch)) {
        await cursor(this.state.transaction()).commit();
        return undefined; // already applied while catching up
      }
      if (m.epoch > Number(group.epoch)) group = await this.#catchUp(groupId, group);
      if (m.epoch < Number(group.epoch)) {
        await cursor(this.state.transaction()).commit();
        return undefined; // applied while catching up
      }
      if (m.epoch > Number(group.epoch)) throw missingCommits(name, Number(group.epoch), m.epoch);
      const next = await this.#applyCommit(groupId, group, m.frame, cursor);
      return { kind: 'commit', groupId: name, epoch: Number(next.epoch), removed: next.removed, seq: m.seq };
    }
    // A message from a later epoch needs the commits in between first; a relay that withholds them is named
    // for what it did, not reported as an undecryptable message. (The relay's epoch only decides whether to
    // ask; MLS decides whether the message is accepted.)
    if (m.epoch > Number(group.epoch)) {
      group = await this.#catchUp(groupId, group);
      if (m.epoch > Number(group.epoch)) throw missingCommits(name, Number(group.epoch), m.epoch);
    }
    const epoch = Number(group.epoch);
    const result = await group.process(decodeFrame(m.frame));
    if (result.kind !== 'application')
      throw new EnsealError(ErrorCode.E2EE_MLS_REJECTED, 'expected an application message');
    const sender = parseDeviceCredential(result.sender.identity);
    if (sender === undefined)
      throw new EnsealError(ErrorCode.E2EE_UNTRUSTED_IDENTITY, 'the sender has no device credential');
    if (sender.user !== m.sender.user || sender.device !== m.sender.device)
      this.#onWarning({ kind: 'sender-mismatch', groupId: name, seq: m.seq, claimed: m.sender, sender });
    const payload = decodePayload(result.plaintext);
    const tx = this.state.transaction();
    cursor(tx);
    await this.#stage(tx, result.group);
    if (payload.c !== undefined) {
      const record = await this.#deliveryRecord(name, epoch);
      const opened = noteDelivery(record, senderKey(sender), epoch, payload.c, payload.p);
      tx.putJson(`recv/${name}`, record);
      for (const g of opened) this.#openedGaps.push({ groupId: name, gap: g });
    }
    const shared = result.group.sharedHistory;
    if (payload.t === 'm') {
      if (shared)
        await this.#keepHistory(tx, name, [
          { u: sender.user, d: sender.device, e: epoch, at: Date.now(), m: payload.d },
        ]);
      await tx.commit();
      return { kind: 'message', groupId: name, seq: m.seq, sender, data: base64Decode(payload.d) };
    }
    if (payload.t === 'h') {
      const entries = await this.#importHistory(tx, groupId, result.group, epoch, payload, sender);
      await tx.commit();
      return entries === undefined
        ? undefined
        : { kind: 'history', groupId: name, seq: m.seq, sender, entries };
    }
    // A file: unwrap its key now, while this epoch's wrapping key is at hand, and keep it sealed in the state.
    const file: SharedFile = { blobId: payload.b, epoch: payload.e, size: payload.s, name: payload.n };
    const wrapKey =
      payload.e === Number(result.group.epoch)
        ? await result.group.exportSecret(FILE_EXPORTER_LABEL, new Uint8Array(0), 32)
        : await this.state.get(`wrap/${name}/${payload.e}`);
    if (wrapKey === undefined)
      throw new EnsealError(
        ErrorCode.KEY_NOT_FOUND,
        'the file was shared in an epoch this device has no key for',
      );
    const fileKey = unwrapFileKey(wrapKey, base64Decode(payload.k), {
      groupId,
      epoch: payload.e,
      blobId: payload.b,
      size: payload.s,
    });
    tx.putJson(`file/${payload.b}`, { key: b64(fileKey), ...file, groupId: name });
    wipe(fileKey);
    if (shared)
      await this.#keepHistory(tx, name, [
        {
          u: sender.user,
          d: sender.device,
          e: epoch,
          at: Date.now(),
          f: { b: file.blobId, e: file.epoch, s: file.size, n: file.name },
        },
      ]);
    await tx.commit();
    return { kind: 'file', groupId: name, seq: m.seq, sender, file };
  }

  /**
   * Reads a history bundle into `tx`, when it is meant for this device: the group shares history (its MLS
   * context says so, whatever the relay claims) and this device joined in the bundle's epoch. Members who were
   * there before ignore it (undefined). The bundle is fetched and checked before anything is saved, so a failed
   * fetch leaves the message to be processed again.
   */
  async #importHistory(
    tx: StateTransaction,
    groupId: Uint8Array,
    group: MlsGroup,
    epoch: number,
    payload: { b: string; k: string; e: number; s: number; n: number },
    sender: DeviceAddress,
  ): Promise<HistoryEntry[] | undefined> {
    const name = gidName(groupId);
    if (!group.sharedHistory)
      throw new EnsealError(ErrorCode.E2EE_MLS_REJECTED, 'a history bundle in a group that keeps no history');
    const record = await this.#deliveryRecord(name, epoch);
    if (payload.e !== epoch || record.since !== epoch) return undefined;
    if (payload.s > HISTORY_BUNDLE_MAX)
      throw new EnsealError(ErrorCode.MALFORMED, 'history bundle: larger than this client reads');
    const wrapKey = await group.exportSecret(FILE_EXPORTER_LABEL, new Uint8Array(0), 32);
    const key = unwrapFileKey(wrapKey, base64Decode(payload.k), {
      groupId,
      epoch,
      blobId: payload.b,
      size: payload.s,
    });
    wipe(wrapKey);
    const parts: Uint8Array[] = [];
    try {
      for await (const part of this.#readBlob(payload.b, key, payload.s)) parts.push(part);
    } finally {
      wipe(key);
    }
    const bytes = concatBytes(...parts);
    wipe(...parts);
    let raw: unknown;
    try {
      raw = JSON.parse(utf8Decode(bytes));
    } catch {
      throw new EnsealError(ErrorCode.MALFORMED, 'history bundle: not a history bundle');
    } finally {
      wipe(bytes);
    }
    if (!Array.isArray(raw) || raw.length > HISTORY_KEPT || raw.length !== payload.n)
      throw new EnsealError(ErrorCode.MALFORMED, 'history bundle: wrong number of entries');
    const kept: HistoryJson[] = [];
    for (const value of raw) {
      const h = checkHistoryJson(value);
      const entry: HistoryJson = { u: h.u, d: h.d, e: h.e, at: h.at, by: sender };
      if (h.m !== undefined) entry.m = h.m;
      if (h.f !== undefined) {
        entry.f = { b: h.f.b, e: h.f.e, s: h.f.s, n: h.f.n };
        if (h.f.k !== undefined && (await this.state.get(`file/${h.f.b}`)) === undefined)
          tx.putJson(`file/${h.f.b}`, {
            key: h.f.k,
            blobId: h.f.b,
            epoch: h.f.e,
            size: h.f.s,
            name: h.f.n,
            groupId: name,
          });
      }
      kept.push(entry);
    }
    await this.#keepHistory(tx, name, kept);
    return kept.map(historyEntry);
  }

  // ------------------------------------------------------------------ files

  /** Seals `source` under a fresh file key into a new blob of the group; the caller wipes the key. */
  async #uploadBlob(
    groupId: Uint8Array,
    source: ByteSource,
  ): Promise<{ blobId: string; size: number; fileKey: Uint8Array }> {
    const fileKey = generateFileKey();
    try {
      const blobId = await this.#authed((t) => this.api.createBlob(t, groupId));
      let n = 0;
      let size = 0;
      for await (const part of encryptFileStream(fileKey, source)) {
        await this.#authed((t) => this.api.putChunk(t, blobId, n, part));
        n++;
        size += part.length;
      }
      await this.#authed((t) => this.api.completeBlob(t, blobId, n));
      return { blobId, size, fileKey };
    } catch (err) {
      wipe(fileKey);
      throw err;
    }
  }

  /** A blob's plaintext, streamed and verified, given its key and expected ciphertext size. */
  async *#readBlob(blobId: string, key: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
    const info = await this.#authed((t) => this.api.blobInfo(t, blobId));
    const api = this.api;
    const authed = this.#authed.bind(this);
    async function* parts(): AsyncGenerator<Uint8Array> {
      let total = 0;
      for (let n = 0; n < info.chunks; n++) {
        const part = await authed((t) => api.getChunk(t, blobId, n));
        total += part.length;
        if (total > size) break;
        yield part;
      }
      if (total !== size) throw new EnsealError(ErrorCode.DECRYPT_FAILED, 'decryption failed');
    }
    yield* decryptFileStream(key, parts());
  }

  /**
   * Shares a file in a group, streamed in constant memory: a fresh file key seals it in age STREAM chunks that are
   * uploaded as relay blob parts, and the key, wrapped under the current epoch's exported secret, goes to the
   * group in a file message. Members removed before this epoch cannot open it.
   */
  async shareFile(groupIdText: string, source: ByteSource, name = ''): Promise<SharedFile> {
    const groupId = gidBytes(groupIdText);
    const group = await this.#catchUp(groupId, await this.#loadGroup(groupId));
    const epoch = Number(group.epoch);
    const wrapKey = await group.exportSecret(FILE_EXPORTER_LABEL, new Uint8Array(0), 32);
    let fileKey: Uint8Array | undefined;
    try {
      const uploaded = await this.#uploadBlob(groupId, source);
      fileKey = uploaded.fileKey;
      const { blobId, size } = uploaded;
      const wrapped = wrapFileKey(wrapKey, fileKey, { groupId, epoch, blobId, size });
      const file: SharedFile = { blobId, epoch, size, name };
      await this.state
        .transaction()
        .putJson(`file/${blobId}`, { key: b64(fileKey), ...file, groupId: gidName(groupId) })
        .commit();
      await this.#sendPayload(groupId, { t: 'f', b: blobId, k: b64(wrapped), e: epoch, s: size, n: name });
      return file;
    } finally {
      wipe(wrapKey);
      if (fileKey) wipe(fileKey);
    }
  }

  /** Streams a shared file's plaintext (constant memory; every chunk verified before it is released). */
  async *fetchFile(blobId: string): AsyncGenerator<Uint8Array> {
    const rec = await this.state.getJson<{ key: string; size: number }>(`file/${blobId}`);
    if (rec === undefined)
      throw new EnsealError(ErrorCode.KEY_NOT_FOUND, 'no key for that file on this device');
    const key = base64Decode(rec.key);
    try {
      yield* this.#readBlob(blobId, key, rec.size);
    } finally {
      wipe(key);
    }
  }

  // ---------------------------------------------------------- verification

  /**
   * The safety number between this user and `user` (60 digits, 12 groups, QR payload), from identity keys proved
   * by the directory. Compare it in person, then call {@link E2eeClient.markVerified}.
   */
  async safetyNumber(user: string): Promise<SafetyNumber> {
    const them = await this.verifyUser(user);
    return safetyNumber(
      { userId: this.user, identityKey: base64Decode(this.#record.identityPublic) },
      { userId: user, identityKey: them.identityKey },
    );
  }

  /**
   * Marks a contact verified: with the QR payload scanned from their screen (checked in constant time), or after
   * comparing the digits by eye (no payload). Returns false, and changes nothing, when the payload differs.
   */
  async markVerified(user: string, scannedPayload?: Uint8Array): Promise<boolean> {
    const sn = await this.safetyNumber(user);
    if (scannedPayload !== undefined && !verifySafetyNumberPayload(sn, scannedPayload)) return false;
    const key = this.#contacts.get(user)!;
    await this.state
      .transaction()
      .putJson(`contact/${user}`, { identityKey: b64(key), verified: true } satisfies ContactJson)
      .commit();
    return true;
  }

  /** Contacts this device knows, with whether their safety number was verified. */
  async contacts(): Promise<{ user: string; verified: boolean; fingerprint: string }[]> {
    const out: { user: string; verified: boolean; fingerprint: string }[] = [];
    for (const name of await this.state.list('contact/')) {
      const c = (await this.state.getJson<ContactJson>(name))!;
      out.push({
        user: name.slice('contact/'.length),
        verified: c.verified,
        fingerprint: hexEncode(sha256(base64Decode(c.identityKey))).slice(0, 16),
      });
    }
    return out;
  }

  // -------------------------------------------------------------- recovery

  #identityPrivate(): Uint8Array {
    if (this.#record.identityKey === undefined)
      throw new EnsealError(
        ErrorCode.KEY_NOT_FOUND,
        'this device does not hold the identity key (only the first or a recovered device does)',
      );
    return base64Decode(this.#record.identityKey);
  }

  /** A passphrase backup of the identity key (ciphertext only); store it with {@link E2eeClient.storeRecoveryBlob}. */
  backupIdentity(passphrase: string, params?: Argon2Params): Promise<string> {
    return backupIdentityKey(this.user, this.#identityPrivate(), passphrase, params);
  }

  /** Uploads a recovery backup (ciphertext) to the service. */
  async storeRecoveryBlob(backup: string): Promise<void> {
    await this.#authed((t) => this.api.putRecoveryBlob(t, this.user, utf8Encode(backup)));
  }

  /** Splits the identity key into Shamir shares for other devices or trusted contacts. */
  splitIdentity(params: ShamirParams): Promise<string[]> {
    return splitIdentityKey(this.#identityPrivate(), params);
  }

  /**
   * Recovers a user on a new device from a passphrase backup or from shares: the key is checked against the
   * directory's identity key, then a new device is signed by it and enrolled (with an application token).
   */
  static async recover(
    options: E2eeClientOptions & {
      user: string;
      device: string;
      applicationToken: string;
      policy: PinnedLogPolicy;
      passphrase?: string;
      backup?: string;
      shares?: readonly string[];
    },
  ): Promise<E2eeClient> {
    const api = new E2eeApi(options.transport);
    const directory = new DirectoryVerifier(logPolicyFrom(options.policy));
    const me = await directory.fetchUser(options.user, api, options.applicationToken);
    let identityPriv: Uint8Array;
    if (options.shares !== undefined) {
      identityPriv = await combineIdentityShares(options.shares, me.identityKey);
    } else {
      if (options.passphrase === undefined) throw invalidArgument('passphrase', 'or shares are required');
      const backup =
        options.backup ?? utf8Decode(await api.getRecoveryBlob(options.applicationToken, options.user));
      identityPriv = await restoreIdentityKey(options.user, backup, options.passphrase, me.identityKey);
    }
    const record: DeviceRecordJson = {
      user: options.user,
      device: options.device,
      ...newDeviceKey(options.deviceSigner),
      mlsKey: b64(generateIdentityKey().privateKey),
      identityPublic: b64(me.identityKey),
      identityKey: b64(identityPriv),
      enrolled: false,
    };
    await options.state
      .transaction()
      .putJson('device', record)
      .putJson('policy', options.policy)
      .putJson('log', { note: directory.latestNote })
      .commit();
    const client = await E2eeClient.#build(options, record, options.policy);
    const deviceRecord = signDeviceRecord(
      {
        userId: options.user,
        deviceId: options.device,
        deviceKey: client.#signer.publicKey,
        createdAt: Math.floor(Date.now() / 1000),
      },
      { kind: 'identity', privateKey: identityPriv },
    );
    const binding = await signMlsKeyBindingWith(
      options.user,
      options.device,
      client.#mlsPublic(),
      client.#signer,
    );
    await api.addDevice(
      options.applicationToken,
      options.user,
      encodeDeviceRecord(deviceRecord),
      mlsBindingBody(options.user, binding),
    );
    await client.#markEnrolled([...me.devices.keys(), options.device]);
    await client.login();
    await client.publishKeyPackages();
    return client;
  }

  /** True when `key` is this user's identity key as this device knows it. */
  isOwnIdentityKey(key: Uint8Array): boolean {
    return constantTimeEqual(key, base64Decode(this.#record.identityPublic));
  }

  /** The group id in path form, for callers holding raw bytes. */
  static groupIdText(groupId: Uint8Array): string {
    return groupPathId(groupId);
  }
}
