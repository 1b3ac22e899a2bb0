/**
 * The MLS (RFC 9420) adapter: the only module that imports ts-mls (pinned to 1.6.4). It hides the library's
 * types behind a small API of bytes in, bytes out, and adds what 1.6.4 lacks:
 *
 * - No accept-all authentication. Every client is built with an {@link MlsAuthenticator} that asks the key
 *   directory whether a credential and signature key belong together; it is applied to key packages, commit
 *   paths, joined ratchet trees, and again to every leaf of a decoded group state (ts-mls would otherwise
 *   put its accept-all default back on decode).
 * - A cap on the size of every decoded message, welcome and state, before the decoder sees it, and a check
 *   that the decoder consumed all of it (no trailing bytes).
 * - "Path required" (RFC 9420 §12.4): a commit that covers Update, Remove, ExternalInit or
 *   GroupContextExtensions proposals, or no proposals at all, must carry an UpdatePath. 1.6.4 lets a
 *   GroupContextExtensions-only commit go without one.
 * - Distinct update-path keys (RFC 9420 §7.9, §12.4.2): the HPKE public keys of an UpdatePath (its nodes and
 *   its leaf) must differ from each other and from every key already in the tree.
 * - Successor credentials (RFC 9420 §5.3.1): a leaf replaced by a commit path or an Update proposal must keep
 *   an identity the authenticator accepts as the successor of the old one (by default: the same identity).
 * - Commit confirmation: a commit the client creates returns a {@link PendingCommit}. The secrets the new
 *   epoch makes obsolete are zeroed only by `confirm()`, once the relay accepted the commit; `discard()` keeps
 *   the old group usable, so losing a commit race never bricks the group.
 */
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeGroupState,
  decodeMlsMessage,
  encodeGroupState,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  makePskIndex,
  mlsExporter,
  processMessage,
  defaultCapabilities,
  defaultKeyRetentionConfig,
  defaultLifetimeConfig,
  defaultKeyPackageEqualityConfig,
  defaultPaddingConfig,
  type CiphersuiteImpl,
  type CiphersuiteName,
  type ClientConfig,
  type ClientState,
  type Credential,
  type IncomingMessageCallback,
  type KeyPackage,
  type LeafNode,
  type MLSMessage,
  type PrivateKeyPackage,
  type Proposal,
  type ProposalWithSender,
  type RatchetTree,
  type Commit,
} from 'ts-mls';
import { unprotectPrivateMessage } from 'ts-mls/messageProtection.js';
import { decryptSenderData } from 'ts-mls/privateMessage.js';
import { makeKeyPackageRef, verifyKeyPackage } from 'ts-mls/keyPackage.js';
import { decodeRatchetTree } from 'ts-mls/ratchetTree.js';
import {
  EnsealError,
  ErrorCode,
  constantTimeEqual,
  digest,
  generateSigningKeyPair,
  hexEncode,
  hmac,
  invalidArgument,
  runtimeName,
  sign,
  signingPublicKey,
  verify,
  wipe,
  type HashName,
} from '../crypto/index.js';
import { Reader, Writer } from './wire.js';

/** The suites the adapter offers: RFC 9420 suite 1 (the default) and the X-Wing hybrid post-quantum suite. */
export const MlsSuite = {
  /** RFC 9420 suite 1: X25519, AES-128-GCM, SHA-256, Ed25519. */
  X25519_AES128GCM_ED25519: 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519',
  /** X-Wing (ML-KEM-768 + X25519) hybrid KEM, AES-256-GCM, SHA-512, Ed25519 (private-use suite 0x0053). */
  XWING_AES256GCM_ED25519: 'MLS_256_XWING_AES256GCM_SHA512_Ed25519',
} as const;
export type MlsSuite = (typeof MlsSuite)[keyof typeof MlsSuite];

/** The extension type of `last_resort` key packages (the MLS extensions registry, 0x000A). */
export const LAST_RESORT_EXTENSION = 0x000a;
/**
 * A group context extension of this client (private-use range, RFC 9420 §17.3): present with the byte 1 when
 * the group lets members share past messages with members who join later. Being in the group context, every
 * member agrees on it, and no relay can switch it on. Every key package of this client lists it as supported.
 */
export const SHARED_HISTORY_EXTENSION = 0xf0a1;

/** Default upper bound on a decoded MLS message or welcome. */
export const MLS_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Default upper bound on a decoded group state. */
export const MLS_MAX_STATE_BYTES = 64 * 1024 * 1024;

/** A member as the key directory knows it: its identity (the basic credential) and its signature key. */
export interface MlsIdentity {
  readonly identity: Uint8Array;
  readonly signaturePublicKey: Uint8Array;
}

/** Decides who may be in a group. Both calls must be backed by the key directory, never accept-all. */
export interface MlsAuthenticator {
  /** True when the directory vouches that `signaturePublicKey` belongs to `identity` (and is not revoked). */
  authenticate(member: MlsIdentity): boolean | Promise<boolean>;
  /** True when `next` may replace `previous` in the same leaf. Default: the identity bytes are equal. */
  isSuccessor?(previous: MlsIdentity, next: MlsIdentity): boolean | Promise<boolean>;
}

/** Options of {@link MlsClient.create}. */
export interface MlsClientOptions {
  readonly authenticator: MlsAuthenticator;
  readonly suite?: MlsSuite;
  readonly maxMessageBytes?: number;
  readonly maxStateBytes?: number;
}

/** A key package and the private keys that go with it. Keep `secret` on the device; publish `message`. */
export interface MlsKeyPackage {
  /** The encoded MLSMessage (wire format `mls_key_package`) to publish in the directory. */
  readonly message: Uint8Array;
  /** The KeyPackageRef (RFC 9420 §5.2), hex. */
  readonly ref: string;
  readonly lastResort: boolean;
  readonly signaturePublicKey: Uint8Array;
  /** @internal the decoded package and its private keys. */
  readonly secret: { readonly publicPackage: KeyPackage; readonly privatePackage: PrivateKeyPackage };
}

/**
 * The bytes a device stores for a key package it published, private keys included: keep them encrypted at
 * rest, and delete them once the package was used (unless it is a last-resort package).
 */
export function encodeKeyPackageSecret(kp: MlsKeyPackage): Uint8Array {
  const p = kp.secret.privatePackage;
  return new Writer()
    .u8(1)
    .bytes16(kp.message)
    .bytes16(p.initPrivateKey)
    .bytes16(p.hpkePrivateKey)
    .bytes16(p.signaturePrivateKey)
    .finish();
}

/** A member of a group, by leaf index. */
export interface MlsMember extends MlsIdentity {
  readonly leafIndex: number;
}

function rejected(detail: string, cause?: unknown): EnsealError {
  return new EnsealError(
    ErrorCode.E2EE_MLS_REJECTED,
    `MLS: ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

function untrusted(detail: string): EnsealError {
  return new EnsealError(ErrorCode.E2EE_UNTRUSTED_IDENTITY, `MLS: ${detail}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

function identityOf(credential: Credential, signaturePublicKey: Uint8Array): MlsIdentity | undefined {
  if (credential.credentialType !== 'basic') return undefined;
  return { identity: credential.identity, signaturePublicKey };
}

const HASHES: Readonly<Record<string, HashName>> = {
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
};

/**
 * In Node, ts-mls's default primitives go through WebCrypto, and Node's WebCrypto pays for every call: a key
 * import (an Ed25519 private key parsed from PKCS#8 for each signature), argument normalisation and a hop to the
 * thread pool, which dominate the cost of a small message. So in Node the suite's hash, HMAC and Ed25519 run
 * through enseal's runtime seam instead (node:crypto, synchronously); the same primitives, the same bytes, and the
 * MLS vectors check both. Browsers keep ts-mls's defaults: their WebCrypto is fast, and the seam's Ed25519 there
 * is pure TypeScript.
 */
function withPlatformPrimitives(cs: CiphersuiteImpl): CiphersuiteImpl {
  if (runtimeName() !== 'node') return cs;
  const suite = getCiphersuiteFromName(cs.name);
  const hash = HASHES[suite.hash];
  const out: CiphersuiteImpl = { ...cs };
  if (hash !== undefined) {
    out.hash = {
      digest: async (data) => digest(hash, data),
      mac: async (key, data) => hmac(hash, key, data),
      verifyMac: async (key, mac, data) => {
        const expected = hmac(hash, key, data);
        return expected.length === mac.length && constantTimeEqual(expected, mac);
      },
    };
  }
  if (suite.signature === 'Ed25519') {
    out.signature = {
      sign: async (signKey, message) => sign('ed25519', signKey, message),
      verify: async (publicKey, message, signature) => verify('ed25519', publicKey, message, signature),
      keygen: async () => {
        const { privateKey, publicKey } = generateSigningKeyPair('ed25519');
        return { signKey: privateKey, publicKey };
      },
    };
  }
  return out;
}

/** Runs ts-mls code and turns its errors into typed ones; enseal errors pass through. */
async function guarded<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof EnsealError) throw err;
    throw rejected(`${what} was rejected`, err);
  }
}

/**
 * The entry point: one per device and suite. Holds the suite's implementation, the authenticator and the
 * size limits, and creates or restores groups.
 */
export class MlsClient {
  readonly suite: MlsSuite;
  readonly maxMessageBytes: number;
  readonly maxStateBytes: number;
  /** @internal */
  readonly cs: CiphersuiteImpl;
  /** @internal */
  readonly config: ClientConfig;
  /** @internal */
  readonly authenticator: MlsAuthenticator;

  private constructor(options: MlsClientOptions, cs: CiphersuiteImpl) {
    this.suite = options.suite ?? MlsSuite.X25519_AES128GCM_ED25519;
    this.maxMessageBytes = options.maxMessageBytes ?? MLS_MAX_MESSAGE_BYTES;
    this.maxStateBytes = options.maxStateBytes ?? MLS_MAX_STATE_BYTES;
    this.cs = cs;
    this.authenticator = options.authenticator;
    const authenticator = options.authenticator;
    this.config = {
      keyRetentionConfig: defaultKeyRetentionConfig,
      lifetimeConfig: defaultLifetimeConfig,
      keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
      paddingConfig: defaultPaddingConfig,
      authService: {
        async validateCredential(credential, signaturePublicKey) {
          const id = identityOf(credential, signaturePublicKey);
          return id !== undefined && (await authenticator.authenticate(id)) === true;
        },
      },
    };
  }

  /** Creates a client for a suite (default: suite 1). Throws ERR_UNSUPPORTED when the runtime lacks it. */
  static async create(options: MlsClientOptions): Promise<MlsClient> {
    if (typeof options?.authenticator?.authenticate !== 'function') {
      throw invalidArgument(
        'authenticator',
        'is required: MLS membership must be vouched for by the key directory',
      );
    }
    const suite = options.suite ?? MlsSuite.X25519_AES128GCM_ED25519;
    if (!Object.values(MlsSuite).includes(suite))
      throw new EnsealError(ErrorCode.UNSUPPORTED, `unsupported MLS suite ${suite}`);
    for (const [name, v] of [
      ['maxMessageBytes', options.maxMessageBytes],
      ['maxStateBytes', options.maxStateBytes],
    ] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 1024))
        throw invalidArgument(name, 'must be an integer ≥ 1024');
    }
    let cs: CiphersuiteImpl;
    try {
      cs = withPlatformPrimitives(await getCiphersuiteImpl(getCiphersuiteFromName(suite as CiphersuiteName)));
    } catch (err) {
      throw new EnsealError(ErrorCode.UNSUPPORTED, `MLS suite ${suite} is not available in this runtime`, {
        cause: err,
      });
    }
    return new MlsClient(options, cs);
  }

  /**
   * Generates a key package for `identity`. The signature key is the device's MLS signing key (Ed25519); a
   * fresh one is generated when none is given. A last-resort package carries the `last_resort` extension and
   * may be used more than once by the directory when no other package is left.
   */
  async generateKeyPackage(options: {
    identity: Uint8Array;
    signaturePrivateKey?: Uint8Array;
    lastResort?: boolean;
    lifetimeSeconds?: number;
  }): Promise<MlsKeyPackage> {
    if (!(options.identity instanceof Uint8Array) || options.identity.length === 0) {
      throw invalidArgument('identity', 'must be non-empty bytes');
    }
    const signKey = options.signaturePrivateKey ?? generateSigningKeyPair('ed25519').privateKey;
    const publicKey = signingPublicKey('ed25519', signKey);
    const lastResort = options.lastResort === true;
    const lifetimeSeconds = options.lifetimeSeconds ?? 90 * 24 * 3600;
    if (!Number.isSafeInteger(lifetimeSeconds) || lifetimeSeconds <= 0) {
      throw invalidArgument('lifetimeSeconds', 'must be a positive integer');
    }
    const now = BigInt(Math.floor(Date.now() / 1000));
    const capabilities = defaultCapabilities();
    capabilities.extensions = [...capabilities.extensions, SHARED_HISTORY_EXTENSION];
    if (lastResort && !capabilities.extensions.includes(LAST_RESORT_EXTENSION)) {
      capabilities.extensions = [...capabilities.extensions, LAST_RESORT_EXTENSION];
    }
    const credential: Credential = { credentialType: 'basic', identity: options.identity.slice() };
    const { publicPackage, privatePackage } = await guarded('key package generation', () =>
      generateKeyPackageWithKey(
        credential,
        capabilities,
        { notBefore: now - 3600n, notAfter: now + BigInt(lifetimeSeconds) },
        lastResort ? [{ extensionType: LAST_RESORT_EXTENSION, extensionData: new Uint8Array(0) }] : [],
        { signKey, publicKey },
        this.cs,
      ),
    );
    const message = encodeMlsMessage({
      version: 'mls10',
      wireformat: 'mls_key_package',
      keyPackage: publicPackage,
    });
    const ref = hexEncode(await makeKeyPackageRef(publicPackage, this.cs.hash));
    return {
      message,
      ref,
      lastResort,
      signaturePublicKey: publicKey,
      secret: { publicPackage, privatePackage },
    };
  }

  /**
   * Restores a key package and its private keys from {@link encodeKeyPackageSecret} (the device keeps them
   * until a welcome uses them). Throws ERR_MALFORMED.
   */
  async decodeKeyPackageSecret(bytes: Uint8Array): Promise<MlsKeyPackage> {
    const rd = new Reader(bytes, 'MLS key package secret');
    if (rd.u8() !== 1)
      throw new EnsealError(ErrorCode.UNSUPPORTED, 'MLS key package secret: unknown version');
    const message = rd.bytes16(1);
    const initPrivateKey = rd.bytes16(1);
    const hpkePrivateKey = rd.bytes16(1);
    const signaturePrivateKey = rd.bytes16(1);
    rd.end();
    const msg = this.decodeMessage(message, 'key package');
    if (msg.wireformat !== 'mls_key_package')
      throw new EnsealError(ErrorCode.MALFORMED, 'MLS key package secret: not a key package');
    const kp = msg.keyPackage;
    if (kp.cipherSuite !== this.suite) throw rejected('key package is for another cipher suite');
    const lastResort = kp.extensions.some((e) => e.extensionType === LAST_RESORT_EXTENSION);
    const ref = hexEncode(await makeKeyPackageRef(kp, this.cs.hash));
    return {
      message,
      ref,
      lastResort,
      signaturePublicKey: kp.leafNode.signaturePublicKey,
      secret: { publicPackage: kp, privatePackage: { initPrivateKey, hpkePrivateKey, signaturePrivateKey } },
    };
  }

  /** Decodes a published key package, checks its signature-key binding with the authenticator, and returns it. */
  async decodeKeyPackage(bytes: Uint8Array): Promise<KeyPackage> {
    const msg = this.decodeMessage(bytes, 'key package');
    if (msg.wireformat !== 'mls_key_package') throw rejected('expected a key package');
    const kp = msg.keyPackage;
    if (kp.cipherSuite !== this.suite) throw rejected('key package is for another cipher suite');
    const id = identityOf(kp.leafNode.credential, kp.leafNode.signaturePublicKey);
    if (id === undefined || !(await this.authenticator.authenticate(id))) {
      throw untrusted('the key package is not vouched for by the key directory');
    }
    return kp;
  }

  /**
   * Decodes a published key package and verifies its own signature (by the leaf's signature key) without
   * asking the authenticator: what a directory needs to check an upload against the device's bound MLS key.
   * Throws ERR_MALFORMED or ERR_E2EE_MLS_REJECTED (another suite, a bad signature).
   */
  async inspectKeyPackage(bytes: Uint8Array): Promise<MlsIdentity & { lastResort: boolean; ref: string }> {
    const msg = this.decodeMessage(bytes, 'key package');
    if (msg.wireformat !== 'mls_key_package') throw rejected('expected a key package');
    const kp = msg.keyPackage;
    if (kp.cipherSuite !== this.suite) throw rejected('key package is for another cipher suite');
    const id = identityOf(kp.leafNode.credential, kp.leafNode.signaturePublicKey);
    if (id === undefined) throw rejected('key package has no basic credential');
    const valid = await verifyKeyPackage(kp, this.cs.signature).catch(() => false);
    if (!valid) throw rejected('key package signature does not verify');
    return {
      ...id,
      lastResort: kp.extensions.some((e) => e.extensionType === LAST_RESORT_EXTENSION),
      ref: hexEncode(await makeKeyPackageRef(kp, this.cs.hash)),
    };
  }

  /** Creates a one-member group; `sharedHistory` sets {@link SHARED_HISTORY_EXTENSION} in its context. */
  async createGroup(
    groupId: Uint8Array,
    keyPackage: MlsKeyPackage,
    options: { sharedHistory?: boolean } = {},
  ): Promise<MlsGroup> {
    if (!(groupId instanceof Uint8Array) || groupId.length === 0 || groupId.length > 255) {
      throw invalidArgument('groupId', 'must be 1 to 255 bytes');
    }
    const state = await guarded('group creation', () =>
      createGroup(
        groupId,
        keyPackage.secret.publicPackage,
        keyPackage.secret.privatePackage,
        options.sharedHistory === true
          ? [{ extensionType: SHARED_HISTORY_EXTENSION, extensionData: new Uint8Array([1]) }]
          : [],
        this.cs,
        this.config,
      ),
    );
    return new MlsGroup(this, state);
  }

  /**
   * Joins a group from a welcome. The ratchet tree travels inside the welcome (this adapter's commits put it
   * there) or is given separately as an encoded `ratchet_tree`. The ratchet tree's leaves are checked with the
   * authenticator by ts-mls; throws ERR_E2EE_MLS_REJECTED or ERR_E2EE_UNTRUSTED_IDENTITY.
   */
  async joinFromWelcome(
    welcome: Uint8Array,
    keyPackage: MlsKeyPackage,
    ratchetTree?: Uint8Array,
  ): Promise<MlsGroup> {
    const msg = this.decodeMessage(welcome, 'welcome');
    if (msg.wireformat !== 'mls_welcome') throw rejected('expected a welcome');
    let tree: RatchetTree | undefined;
    if (ratchetTree !== undefined) {
      if (!(ratchetTree instanceof Uint8Array)) throw invalidArgument('ratchetTree', 'must be bytes');
      if (ratchetTree.length > this.maxStateBytes)
        throw rejected(`ratchet tree is larger than ${this.maxStateBytes} bytes`);
      let decoded;
      try {
        decoded = decodeRatchetTree(ratchetTree, 0);
      } catch (err) {
        throw new EnsealError(ErrorCode.MALFORMED, 'MLS ratchet tree: could not be decoded', { cause: err });
      }
      if (decoded === undefined || decoded[1] !== ratchetTree.length) {
        throw new EnsealError(ErrorCode.MALFORMED, 'MLS ratchet tree: could not be decoded');
      }
      tree = decoded[0];
    }
    const state = await guarded('welcome', () =>
      joinGroup(
        msg.welcome,
        keyPackage.secret.publicPackage,
        keyPackage.secret.privatePackage,
        makePskIndex(undefined, {}),
        this.cs,
        tree,
        undefined,
        this.config,
      ),
    );
    const group = new MlsGroup(this, state);
    await group.checkMembers();
    return group;
  }

  /**
   * Restores a group from {@link MlsGroup.encode}. The state's size is capped, this client's authenticator is
   * installed (never ts-mls's default), and every member is authenticated again: a member the directory no
   * longer vouches for makes this throw ERR_E2EE_UNTRUSTED_IDENTITY unless `allowUntrusted` is set, in which
   * case {@link MlsGroup.untrustedMembers} lists them for removal.
   */
  async decodeGroup(bytes: Uint8Array, options: { allowUntrusted?: boolean } = {}): Promise<MlsGroup> {
    if (!(bytes instanceof Uint8Array)) throw invalidArgument('state', 'must be bytes');
    if (bytes.length > this.maxStateBytes)
      throw rejected(`group state is larger than ${this.maxStateBytes} bytes`);
    let decoded;
    try {
      decoded = decodeGroupState(bytes, 0);
    } catch (err) {
      throw new EnsealError(ErrorCode.MALFORMED, 'MLS group state: could not be decoded', { cause: err });
    }
    if (decoded === undefined || decoded[1] !== bytes.length) {
      throw new EnsealError(ErrorCode.MALFORMED, 'MLS group state: could not be decoded');
    }
    const state: ClientState = { ...decoded[0], clientConfig: this.config };
    if (state.groupContext.cipherSuite !== this.suite)
      throw rejected('group state is for another cipher suite');
    const group = new MlsGroup(this, state);
    const bad = await group.checkMembers(options.allowUntrusted === true);
    group.untrusted = bad;
    return group;
  }

  /**
   * The KeyPackageRefs (hex) a welcome is addressed to, so a device can pick the key package it needs before
   * joining. Throws ERR_MALFORMED or ERR_E2EE_MLS_REJECTED for something that is not a welcome.
   */
  welcomeKeyPackageRefs(welcome: Uint8Array): string[] {
    const msg = this.decodeMessage(welcome, 'welcome');
    if (msg.wireformat !== 'mls_welcome') throw rejected('expected a welcome');
    return msg.welcome.secrets.map((s) => hexEncode(s.newMember));
  }

  /** @internal Decodes one MLSMessage under the size cap, requiring that all bytes were consumed. */
  decodeMessage(bytes: Uint8Array, what: string): MLSMessage {
    if (!(bytes instanceof Uint8Array)) throw invalidArgument(what, 'must be bytes');
    if (bytes.length > this.maxMessageBytes)
      throw rejected(`${what} is larger than ${this.maxMessageBytes} bytes`);
    let decoded;
    try {
      decoded = decodeMlsMessage(bytes, 0);
    } catch (err) {
      throw new EnsealError(ErrorCode.MALFORMED, `MLS ${what}: could not be decoded`, { cause: err });
    }
    if (decoded === undefined)
      throw new EnsealError(ErrorCode.MALFORMED, `MLS ${what}: could not be decoded`);
    if (decoded[1] !== bytes.length)
      throw new EnsealError(ErrorCode.MALFORMED, `MLS ${what}: trailing bytes`);
    return decoded[0];
  }
}

/** The outcome of a commit this device created, until the relay accepts or refuses it. */
export interface PendingCommit {
  /** The commit to send to the relay (an encoded MLSMessage). */
  readonly commit: Uint8Array;
  /** The welcome for added members (an encoded MLSMessage), when members were added. */
  readonly welcome: Uint8Array | undefined;
  /** The group in the next epoch. Use it only after {@link PendingCommit.confirm}. */
  readonly next: MlsGroup;
  /** The relay accepted the commit: zero the secrets of the old epoch and return the next group. */
  confirm(): MlsGroup;
  /** The relay refused the commit (another one won the epoch): keep using the old group. */
  discard(): void;
}

/** What processing a message produced. */
export type MlsIncoming =
  | {
      readonly kind: 'application';
      readonly plaintext: Uint8Array;
      readonly authenticatedData: Uint8Array;
      /**
       * The member that sent it, as MLS authenticated it (the leaf named in the sender data, whose signature key
       * verified the message), never as the relay claims.
       */
      readonly sender: MlsMember;
      readonly group: MlsGroup;
    }
  | { readonly kind: 'commit'; readonly group: MlsGroup; readonly removed: boolean }
  | { readonly kind: 'proposal'; readonly group: MlsGroup };

/** One group at one epoch. Immutable: every operation returns the group's next value. */
export class MlsGroup {
  readonly #client: MlsClient;
  readonly #state: ClientState;
  #retired = false;
  /** @internal leaf indexes the directory no longer vouches for (set by decodeGroup with allowUntrusted). */
  untrusted: readonly number[] = [];

  /** @internal */
  constructor(client: MlsClient, state: ClientState) {
    this.#client = client;
    this.#state = state;
  }

  /** @internal the ts-mls state, for tests and benches of the adapter itself. */
  get state(): ClientState {
    this.#live();
    return this.#state;
  }

  #live(): void {
    if (this.#retired) {
      throw new EnsealError(
        ErrorCode.INVALID_STATE,
        'this MLS group value was superseded by a newer epoch or discarded',
      );
    }
  }

  /** @internal */
  retire(): void {
    this.#retired = true;
  }

  get groupId(): Uint8Array {
    return this.#state.groupContext.groupId.slice();
  }

  get epoch(): bigint {
    return this.#state.groupContext.epoch;
  }

  /** This device's leaf index. */
  get ownLeafIndex(): number {
    return this.#state.privatePath.leafIndex;
  }

  /** Whether this device was removed from the group by the last commit it processed. */
  get removed(): boolean {
    return this.#state.groupActiveState.kind === 'removedFromGroup';
  }

  /** Members whose credential the directory no longer vouches for (only after decodeGroup with allowUntrusted). */
  /** Whether the group context lets members share past messages with newcomers ({@link SHARED_HISTORY_EXTENSION}). */
  get sharedHistory(): boolean {
    return this.#state.groupContext.extensions.some(
      (e) =>
        e.extensionType === SHARED_HISTORY_EXTENSION &&
        e.extensionData.length === 1 &&
        e.extensionData[0] === 1,
    );
  }

  untrustedMembers(): readonly number[] {
    return this.untrusted;
  }

  /** The members, by leaf index. */
  members(): MlsMember[] {
    const out: MlsMember[] = [];
    const tree = this.#state.ratchetTree;
    for (let i = 0; i < tree.length; i += 2) {
      const node = tree[i];
      if (node?.nodeType !== 'leaf') continue;
      const id = identityOf(node.leaf.credential, node.leaf.signaturePublicKey);
      if (id !== undefined) out.push({ leafIndex: i / 2, ...id });
    }
    return out;
  }

  /** The epoch authenticator (RFC 9420 §8.7): equal for every member in the same epoch; compare out of band. */
  epochAuthenticator(): Uint8Array {
    this.#live();
    return this.#state.keySchedule.epochAuthenticator.slice();
  }

  /** MLS-Exporter(label, context, length) of RFC 9420 §8.5. */
  async exportSecret(label: string, context: Uint8Array, length: number): Promise<Uint8Array> {
    this.#live();
    if (typeof label !== 'string') throw invalidArgument('label', 'must be a string');
    if (!Number.isSafeInteger(length) || length < 1 || length > 255 * 64)
      throw invalidArgument('length', 'out of range');
    return mlsExporter(this.#state.keySchedule.exporterSecret, label, context, length, this.#client.cs);
  }

  /** The group state, to store on the device (it holds secrets: keep it encrypted at rest). */
  encode(): Uint8Array {
    this.#live();
    return encodeGroupState(this.#state);
  }

  /** Adds members from their published key packages, in one commit. */
  async addMembers(keyPackages: readonly Uint8Array[]): Promise<PendingCommit> {
    this.#live();
    const proposals: Proposal[] = [];
    for (const bytes of keyPackages) {
      proposals.push({
        proposalType: 'add',
        add: { keyPackage: await this.#client.decodeKeyPackage(bytes) },
      });
    }
    if (proposals.length === 0) throw invalidArgument('keyPackages', 'must not be empty');
    return this.#commit(proposals);
  }

  /** Removes members by leaf index, in one commit (with a full update path, as RFC 9420 requires). */
  async removeMembers(leafIndexes: readonly number[]): Promise<PendingCommit> {
    this.#live();
    if (leafIndexes.length === 0) throw invalidArgument('leafIndexes', 'must not be empty');
    const proposals: Proposal[] = leafIndexes.map((removed) => {
      if (!Number.isSafeInteger(removed) || removed < 0)
        throw invalidArgument('leafIndex', 'must be a leaf index');
      if (removed === this.ownLeafIndex)
        throw invalidArgument('leafIndex', 'cannot remove this device by its own commit');
      return { proposalType: 'remove', remove: { removed } };
    });
    return this.#commit(proposals);
  }

  /** An empty commit with a full update path: fresh keys on this device's path (post-compromise security). */
  async update(): Promise<PendingCommit> {
    this.#live();
    return this.#commit([]);
  }

  async #commit(extraProposals: Proposal[]): Promise<PendingCommit> {
    const client = this.#client;
    const result = await guarded('commit', () =>
      createCommit(
        { state: this.#state, cipherSuite: client.cs },
        { extraProposals, ratchetTreeExtension: true },
      ),
    );
    const next = new MlsGroup(client, result.newState);
    const commit = encodeMlsMessage(result.commit);
    const welcome =
      result.welcome === undefined
        ? undefined
        : encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: result.welcome });
    let settled = false;
    const settle = (): void => {
      if (settled)
        throw new EnsealError(ErrorCode.INVALID_STATE, 'this commit was already confirmed or discarded');
      settled = true;
    };
    return {
      commit,
      welcome,
      next,
      confirm: () => {
        settle();
        this.#live();
        this.retire();
        wipe(...result.consumed);
        return next;
      },
      discard: () => {
        settle();
        next.retire();
      },
    };
  }

  /** Encrypts an application message for the group. */
  async encrypt(
    plaintext: Uint8Array,
    authenticatedData: Uint8Array = new Uint8Array(0),
  ): Promise<{ message: Uint8Array; group: MlsGroup }> {
    this.#live();
    if (!(plaintext instanceof Uint8Array)) throw invalidArgument('plaintext', 'must be bytes');
    const result = await guarded('application message', () =>
      createApplicationMessage(this.#state, plaintext, this.#client.cs, authenticatedData),
    );
    const message = encodeMlsMessage({
      version: 'mls10',
      wireformat: 'mls_private_message',
      privateMessage: result.privateMessage,
    });
    const group = new MlsGroup(this.#client, result.newState);
    this.retire();
    wipe(...result.consumed);
    return { message, group };
  }

  /**
   * Processes a message from the relay: an application message, a proposal, or another member's commit.
   * Commits go through the adapter's RFC 9420 checks before ts-mls applies them. On any failure the group
   * is unchanged and the error is typed (ERR_MALFORMED, ERR_E2EE_MLS_REJECTED, ERR_E2EE_UNTRUSTED_IDENTITY).
   */
  async process(bytes: Uint8Array): Promise<MlsIncoming> {
    this.#live();
    const client = this.#client;
    const msg = client.decodeMessage(bytes, 'message');
    if (msg.wireformat !== 'mls_private_message' && msg.wireformat !== 'mls_public_message') {
      throw rejected(`cannot process a ${msg.wireformat} in a group`);
    }
    const groupId =
      msg.wireformat === 'mls_private_message'
        ? msg.privateMessage.groupId
        : msg.publicMessage.content.groupId;
    if (!sameBytes(groupId, this.#state.groupContext.groupId)) throw rejected('message is for another group');

    const commit = await this.#peekCommit(msg);
    const sender = await this.#applicationSender(msg);
    let refused: string | undefined;
    const callback: IncomingMessageCallback = (incoming) => {
      if (incoming.kind === 'commit' && commit !== undefined) {
        refused = commitPathViolation(incoming.proposals, commit.commit);
      }
      return refused === undefined ? 'accept' : 'reject';
    };
    if (commit !== undefined) await this.#checkCommit(commit.commit, commit.sender);

    const result = await guarded('message', () =>
      processMessage(msg, this.#state, makePskIndex(this.#state, {}), callback, client.cs),
    );
    // A refused commit leaves the old state in use: nothing it returned may be wiped.
    if (refused !== undefined) throw rejected(refused);
    const group = new MlsGroup(client, result.newState);
    this.retire();
    wipe(...result.consumed);
    if (result.kind === 'applicationMessage') {
      // processMessage verified the signature with the key of the leaf the sender data names, so that leaf is
      // the sender; an application message is always private (RFC 9420 §6.2), so `sender` is set here.
      if (sender === undefined) throw rejected('an application message must be a private message');
      const aad =
        msg.wireformat === 'mls_private_message' ? msg.privateMessage.authenticatedData : new Uint8Array(0);
      return { kind: 'application', plaintext: result.message, authenticatedData: aad, sender, group };
    }
    if (commit === undefined) return { kind: 'proposal', group };
    return { kind: 'commit', group, removed: group.removed };
  }

  /**
   * The member named by a private application message's sender data (decrypted with the epoch's sender-data
   * secret, which changes no state). Undefined for any other message.
   */
  async #applicationSender(msg: MLSMessage): Promise<MlsMember | undefined> {
    if (msg.wireformat !== 'mls_private_message') return undefined;
    const pm = msg.privateMessage;
    if (pm.contentType !== 'application' || pm.epoch !== this.#state.groupContext.epoch) return undefined;
    const data = await guarded('message', () =>
      decryptSenderData(pm, this.#state.keySchedule.senderDataSecret, this.#client.cs),
    );
    if (data === undefined) throw rejected('the sender data does not decrypt');
    const node = this.#state.ratchetTree[data.leafIndex * 2];
    if (node?.nodeType !== 'leaf') throw rejected('the sender data names an empty leaf');
    const id = identityOf(node.leaf.credential, node.leaf.signaturePublicKey);
    if (id === undefined) throw rejected('the sender has no basic credential');
    return { leafIndex: data.leafIndex, ...id };
  }

  /** Reads the Commit out of a handshake message without changing any state (decrypting a private one). */
  async #peekCommit(msg: MLSMessage): Promise<{ commit: Commit; sender: number | undefined } | undefined> {
    if (msg.wireformat === 'mls_public_message') {
      const c = msg.publicMessage.content;
      if (c.contentType !== 'commit') return undefined;
      return { commit: c.commit, sender: c.sender.senderType === 'member' ? c.sender.leafIndex : undefined };
    }
    if (msg.wireformat !== 'mls_private_message') return undefined;
    const pm = msg.privateMessage;
    if (pm.contentType !== 'commit' || pm.epoch !== this.#state.groupContext.epoch) return undefined;
    const s = this.#state;
    const opened = await guarded('commit', () =>
      unprotectPrivateMessage(
        s.keySchedule.senderDataSecret,
        pm,
        s.secretTree,
        s.ratchetTree,
        s.groupContext,
        s.clientConfig.keyRetentionConfig,
        this.#client.cs,
      ),
    );
    // The peek's `consumed` secrets still belong to the state's secret tree, which processes the message
    // next: they are not wiped here.
    const c = opened.content.content;
    if (c.contentType !== 'commit') throw rejected('content type does not match the message header');
    return { commit: c.commit, sender: c.sender.senderType === 'member' ? c.sender.leafIndex : undefined };
  }

  async #checkCommit(commit: Commit, sender: number | undefined): Promise<void> {
    const tree = this.#state.ratchetTree;
    const path = commit.path;
    if (path !== undefined) {
      // RFC 9420 §12.4.2: the path's keys must be fresh: distinct from each other and from the tree's.
      const seen = new Set<string>();
      for (const node of tree) {
        if (node === undefined) continue;
        seen.add(hexEncode(node.nodeType === 'leaf' ? node.leaf.hpkePublicKey : node.parent.hpkePublicKey));
      }
      for (const key of [path.leafNode.hpkePublicKey, ...path.nodes.map((n) => n.hpkePublicKey)]) {
        const k = hexEncode(key);
        if (seen.has(k)) throw rejected('update path reuses an HPKE public key (RFC 9420 §12.4.2)');
        seen.add(k);
      }
      if (sender !== undefined) await this.#checkSuccessor(sender, path.leafNode);
    }
    for (const p of commit.proposals) {
      if (p.proposalOrRefType !== 'proposal' || p.proposal.proposalType !== 'update' || sender === undefined)
        continue;
      await this.#checkSuccessor(sender, p.proposal.update.leafNode);
    }
  }

  async #checkSuccessor(leafIndex: number, next: LeafNode): Promise<void> {
    const node = this.#state.ratchetTree[leafIndex * 2];
    if (node?.nodeType !== 'leaf') return;
    const previous = identityOf(node.leaf.credential, node.leaf.signaturePublicKey);
    const successor = identityOf(next.credential, next.signaturePublicKey);
    if (previous === undefined || successor === undefined)
      throw untrusted('only basic credentials are accepted');
    const auth = this.#client.authenticator;
    const ok = auth.isSuccessor
      ? await auth.isSuccessor(previous, successor)
      : sameBytes(previous.identity, successor.identity);
    if (!ok) throw untrusted('the new credential is not a valid successor of the old one (RFC 9420 §5.3.1)');
    if (!(await auth.authenticate(successor)))
      throw untrusted('the new credential is not vouched for by the key directory');
  }

  /** @internal Authenticates every leaf; throws, or returns the failing leaf indexes when `report` is set. */
  async checkMembers(report = false): Promise<number[]> {
    const bad: number[] = [];
    const tree = this.#state.ratchetTree;
    for (let i = 0; i < tree.length; i += 2) {
      const node = tree[i];
      if (node?.nodeType !== 'leaf') continue;
      const id = identityOf(node.leaf.credential, node.leaf.signaturePublicKey);
      if (id === undefined || !(await this.#client.authenticator.authenticate(id))) bad.push(i / 2);
    }
    if (bad.length > 0 && !report) {
      throw untrusted(`members at leaves ${bad.join(', ')} are not vouched for by the key directory`);
    }
    return bad;
  }
}

/**
 * RFC 9420 §12.4: the path field is required when the commit covers Update, Remove, ExternalInit or
 * GroupContextExtensions proposals, or when it covers none. Returns why the commit violates that, if it does.
 * @internal exported for tests
 */
export function commitPathViolation(
  proposals: readonly ProposalWithSender[],
  commit: Commit,
): string | undefined {
  if (commit.path !== undefined) return undefined;
  if (proposals.length === 0) return 'an empty commit must carry an update path (RFC 9420 §12.4)';
  for (const p of proposals) {
    const t = p.proposal.proposalType;
    if (t === 'update' || t === 'remove' || t === 'external_init' || t === 'group_context_extensions') {
      return `a commit with a ${t} proposal must carry an update path (RFC 9420 §12.4)`;
    }
  }
  return undefined;
}
