/**
 * The key directory's transparency log. Every change to the directory is one leaf of an RFC 9162 Merkle tree:
 * a device added or revoked, a device's MLS signature key (the key its KeyPackages are signed with), or a
 * user's recovery set. The log publishes C2SP checkpoints signed by its key and cosigned by witnesses.
 *
 * Clients hold a {@link LogView}: the last verified checkpoint per log origin. A new checkpoint must carry the
 * log's signature and a quorum of witness cosignatures, and must be consistent with the one held (a
 * consistency proof, in either direction). Two checkpoints that cannot both be true (same size, different
 * roots; or a failed consistency proof) raise a {@link SplitViewError} that carries both as evidence. An
 * entry is used only after its inclusion in a verified checkpoint is proved.
 *
 * Kinds: device-added (1), device-revoked (2), mls-signature-key (3), recovery-set (4), user-identity (5).
 *
 * Leaf encoding (version 1): u8 version || u8 kind || opaque8 userId || u64 time || kind-specific body, with
 * the body's signed statements in the canonical encodings of identity.ts. The decoder is strict.
 */
import {
  EnsealError,
  ErrorCode,
  constantTimeEqual,
  invalidArgument,
  malformed,
  sign,
  signingPublicKey,
  utf8Encode,
  verify,
} from '../crypto/index.js';
import { openCheckpoint, signCheckpoint, type Checkpoint } from './checkpoint.js';
import type { CosignatureVerifier } from './cosignature.js';
import type { DeviceSigner } from './signer.js';
import {
  decodeDeviceRecord,
  decodeDeviceRevocation,
  encodeDeviceRecord,
  encodeDeviceRevocation,
  verifyDeviceChain,
  type ChainEvent,
  type DeviceRecord,
  type DeviceRevocation,
  type TrustedDevice,
  type UserKeys,
} from './identity.js';
import {
  MemoryLeafSource,
  consistencyProof,
  emptyRoot,
  inclusionProof,
  leafHash,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  type LeafHashSource,
} from './merkle.js';
import type { NoteSigner, NoteVerifier } from './signed-note.js';
import { Reader, Writer } from './wire.js';

/** The version byte of directory entries this code writes and reads. */
export const DIRECTORY_ENTRY_VERSION = 1;
/** Entries larger than this are refused before decoding. */
export const DIRECTORY_ENTRY_MAX_BYTES = 16 * 1024;

const KIND_CODES = {
  'device-added': 1,
  'device-revoked': 2,
  'mls-signature-key': 3,
  'recovery-set': 4,
  'user-identity': 5,
} as const;
type KindName = keyof typeof KIND_CODES;
const KIND_NAMES: Record<number, KindName> = {
  1: 'device-added',
  2: 'device-revoked',
  3: 'mls-signature-key',
  4: 'recovery-set',
  5: 'user-identity',
};

const MLS_BINDING_CONTEXT = utf8Encode('enseal e2ee mls signature key v1\n');
const RECOVERY_SET_CONTEXT = utf8Encode('enseal e2ee recovery set v1\n');
const USER_IDENTITY_CONTEXT = utf8Encode('enseal e2ee user identity v1\n');

/** A device's MLS signature key, signed by the device's own key: KeyPackages signed with it are the device's. */
export interface MlsKeyBinding {
  readonly deviceId: string;
  readonly mlsSignatureKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** The user's recovery set: `threshold` of these public keys (devices or trusted contacts) can recover. */
export interface RecoverySet {
  readonly threshold: number;
  readonly members: readonly Uint8Array[];
  /** Signed by the user's identity key. */
  readonly signature: Uint8Array;
}

/**
 * A user's identity key (and recovery key, if any), self-signed by the identity key: the first entry of every
 * user in the log, and the anchor of the user's device chain.
 */
export interface UserIdentity {
  /** 32-byte Ed25519 public key. */
  readonly identityKey: Uint8Array;
  /** 32-byte Ed25519 public key, or undefined when the user has no recovery key. */
  readonly recoveryKey?: Uint8Array;
  readonly signature: Uint8Array;
}

/** One change to the directory, as a log leaf. */
export type DirectoryEntry =
  | {
      readonly kind: 'device-added';
      readonly userId: string;
      readonly time: number;
      readonly record: DeviceRecord;
    }
  | {
      readonly kind: 'device-revoked';
      readonly userId: string;
      readonly time: number;
      readonly revocation: DeviceRevocation;
    }
  | {
      readonly kind: 'mls-signature-key';
      readonly userId: string;
      readonly time: number;
      readonly binding: MlsKeyBinding;
    }
  | {
      readonly kind: 'recovery-set';
      readonly userId: string;
      readonly time: number;
      readonly recovery: RecoverySet;
    }
  | {
      readonly kind: 'user-identity';
      readonly userId: string;
      readonly time: number;
      readonly identity: UserIdentity;
    };

function bindingTbs(userId: string, deviceId: string, key: Uint8Array): Uint8Array {
  return new Writer().raw(MLS_BINDING_CONTEXT).string8(userId).string8(deviceId).bytes8(key).finish();
}

function recoveryTbs(userId: string, threshold: number, members: readonly Uint8Array[]): Uint8Array {
  const w = new Writer().raw(RECOVERY_SET_CONTEXT).string8(userId).u8(threshold).u8(members.length);
  for (const m of members) w.raw(m);
  return w.finish();
}

function identityTbs(
  userId: string,
  identityKey: Uint8Array,
  recoveryKey: Uint8Array | undefined,
): Uint8Array {
  return new Writer()
    .raw(USER_IDENTITY_CONTEXT)
    .string8(userId)
    .bytes8(identityKey)
    .bytes8(recoveryKey ?? new Uint8Array(0))
    .finish();
}

/**
 * Signs a user's identity entry (kind 5) with the identity key: `recoveryKey` is the public half of the
 * user's recovery key, if the user has one.
 */
export function signUserIdentity(
  userId: string,
  identityPrivateKey: Uint8Array,
  recoveryKey?: Uint8Array,
): UserIdentity {
  if (recoveryKey !== undefined && (!(recoveryKey instanceof Uint8Array) || recoveryKey.length !== 32))
    throw invalidArgument('recoveryKey', 'must be a 32-byte Ed25519 public key');
  const identityKey = signingPublicKey('ed25519', identityPrivateKey);
  return {
    identityKey,
    ...(recoveryKey === undefined ? {} : { recoveryKey: recoveryKey.slice() }),
    signature: sign('ed25519', identityPrivateKey, identityTbs(userId, identityKey, recoveryKey)),
  };
}

/** Verifies a user's identity entry: self-signed by its identity key, for this user. */
export function verifyUserIdentity(userId: string, identity: UserIdentity): boolean {
  return verify(
    'ed25519',
    identity.identityKey,
    identityTbs(userId, identity.identityKey, identity.recoveryKey),
    identity.signature,
  );
}

/** Signs the binding of a device's MLS signature key with the device's Ed25519 key. */
export function signMlsKeyBinding(
  userId: string,
  deviceId: string,
  mlsSignatureKey: Uint8Array,
  devicePrivateKey: Uint8Array,
): MlsKeyBinding {
  checkMlsSignatureKey(mlsSignatureKey);
  return {
    deviceId,
    mlsSignatureKey: mlsSignatureKey.slice(),
    signature: sign('ed25519', devicePrivateKey, bindingTbs(userId, deviceId, mlsSignatureKey)),
  };
}

function checkMlsSignatureKey(mlsSignatureKey: Uint8Array): void {
  if (
    !(mlsSignatureKey instanceof Uint8Array) ||
    mlsSignatureKey.length === 0 ||
    mlsSignatureKey.length > 255
  ) {
    throw invalidArgument('mlsSignatureKey', 'must be 1 to 255 bytes');
  }
}

/** {@link signMlsKeyBinding} with a device key that signs on request (a non-extractable browser key). */
export async function signMlsKeyBindingWith(
  userId: string,
  deviceId: string,
  mlsSignatureKey: Uint8Array,
  deviceKey: DeviceSigner,
): Promise<MlsKeyBinding> {
  checkMlsSignatureKey(mlsSignatureKey);
  return {
    deviceId,
    mlsSignatureKey: mlsSignatureKey.slice(),
    signature: await deviceKey.sign(bindingTbs(userId, deviceId, mlsSignatureKey)),
  };
}

/** Verifies a binding against the device's key. */
export function verifyMlsKeyBinding(userId: string, binding: MlsKeyBinding, deviceKey: Uint8Array): boolean {
  return verify(
    'ed25519',
    deviceKey,
    bindingTbs(userId, binding.deviceId, binding.mlsSignatureKey),
    binding.signature,
  );
}

/** Signs a recovery set with the user's identity key. */
export function signRecoverySet(
  userId: string,
  threshold: number,
  members: readonly Uint8Array[],
  identityPrivateKey: Uint8Array,
): RecoverySet {
  if (members.length === 0 || members.length > 32) throw invalidArgument('members', 'must hold 1 to 32 keys');
  for (const m of members)
    if (!(m instanceof Uint8Array) || m.length !== 32)
      throw invalidArgument('members', 'must be 32-byte keys');
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > members.length)
    throw invalidArgument('threshold', 'must be between 1 and the number of members');
  return {
    threshold,
    members: members.map((m) => m.slice()),
    signature: sign('ed25519', identityPrivateKey, recoveryTbs(userId, threshold, members)),
  };
}

/** Verifies a recovery set against the user's identity key. */
export function verifyRecoverySet(userId: string, set: RecoverySet, identityKey: Uint8Array): boolean {
  return verify('ed25519', identityKey, recoveryTbs(userId, set.threshold, set.members), set.signature);
}

/** The canonical leaf bytes of an entry. */
/** An entry without its header fields' time: what a client signs and sends before the server stamps it. */
export type DirectoryEntryContent = DirectoryEntry extends infer E
  ? E extends DirectoryEntry
    ? Omit<E, 'time'>
    : never
  : never;

/** Writes the kind-specific part of an entry (everything after the header). */
function writeBody(w: Writer, e: DirectoryEntryContent): Writer {
  switch (e.kind) {
    case 'device-added':
      if (e.record.userId !== e.userId) throw invalidArgument('entry', 'record belongs to another user');
      return w.bytes16(encodeDeviceRecord(e.record));
    case 'device-revoked':
      if (e.revocation.userId !== e.userId)
        throw invalidArgument('entry', 'revocation belongs to another user');
      return w.bytes16(encodeDeviceRevocation(e.revocation));
    case 'mls-signature-key':
      return w.string8(e.binding.deviceId).bytes8(e.binding.mlsSignatureKey).raw(e.binding.signature);
    case 'recovery-set':
      w.u8(e.recovery.threshold).u8(e.recovery.members.length);
      for (const m of e.recovery.members) w.raw(m);
      return w.raw(e.recovery.signature);
    case 'user-identity':
      return w
        .bytes8(e.identity.identityKey)
        .bytes8(e.identity.recoveryKey ?? new Uint8Array(0))
        .raw(e.identity.signature);
  }
}

export function encodeDirectoryEntry(e: DirectoryEntry): Uint8Array {
  if (!Object.hasOwn(KIND_CODES, e.kind)) throw invalidArgument('entry.kind', 'is unknown');
  if (!Number.isSafeInteger(e.time) || e.time < 0)
    throw invalidArgument('entry.time', 'must be POSIX seconds');
  const w = new Writer().u8(DIRECTORY_ENTRY_VERSION).u8(KIND_CODES[e.kind]).string8(e.userId).u64(e.time);
  return writeBody(w, e).finish();
}

/**
 * The body of an entry as a client sends it and {@link directoryEntryFromBody} reads it: the kind's body bytes
 * for `mls-signature-key`, `recovery-set` and `user-identity`, the encoded record for `device-added` and
 * `device-revoked`. The server adds the header (version, kind, user, its own time).
 */
export function directoryEntryBody(e: DirectoryEntryContent): Uint8Array {
  if (!Object.hasOwn(KIND_CODES, e.kind)) throw invalidArgument('entry.kind', 'is unknown');
  if (e.kind === 'device-added') return encodeDeviceRecord(e.record);
  if (e.kind === 'device-revoked') return encodeDeviceRevocation(e.revocation);
  return writeBody(new Writer(), e).finish();
}

/** Decodes a leaf strictly (known version and kind, exact length, consistent user ids). Throws ERR_MALFORMED. */
export function decodeDirectoryEntry(bytes: Uint8Array): DirectoryEntry {
  if (!(bytes instanceof Uint8Array)) throw malformed('directory entry', 'expected bytes');
  if (bytes.length > DIRECTORY_ENTRY_MAX_BYTES) throw malformed('directory entry', 'too large');
  const rd = new Reader(bytes, 'directory entry');
  const version = rd.u8();
  if (version !== DIRECTORY_ENTRY_VERSION)
    throw new EnsealError(ErrorCode.UNSUPPORTED, `directory entry version ${version} is not supported`);
  const kind = KIND_NAMES[rd.u8()];
  if (kind === undefined) throw malformed('directory entry', 'unknown kind');
  const userId = rd.string8(1, 255);
  const time = rd.u64();
  let entry: DirectoryEntry;
  switch (kind) {
    case 'device-added': {
      const record = decodeDeviceRecord(rd.bytes16(1));
      if (record.userId !== userId) throw malformed('directory entry', 'record belongs to another user');
      entry = { kind, userId, time, record };
      break;
    }
    case 'device-revoked': {
      const revocation = decodeDeviceRevocation(rd.bytes16(1));
      if (revocation.userId !== userId)
        throw malformed('directory entry', 'revocation belongs to another user');
      entry = { kind, userId, time, revocation };
      break;
    }
    case 'mls-signature-key': {
      const deviceId = rd.string8(1, 64);
      const mlsSignatureKey = rd.bytes8(1);
      entry = { kind, userId, time, binding: { deviceId, mlsSignatureKey, signature: rd.raw(64) } };
      break;
    }
    case 'recovery-set': {
      const threshold = rd.u8();
      const n = rd.u8();
      if (n === 0 || n > 32 || threshold < 1 || threshold > n)
        throw malformed('directory entry', 'invalid recovery set');
      const members: Uint8Array[] = [];
      for (let i = 0; i < n; i++) members.push(rd.raw(32));
      entry = { kind, userId, time, recovery: { threshold, members, signature: rd.raw(64) } };
      break;
    }
    case 'user-identity': {
      const identityKey = rd.bytes8(32, 32);
      const recovery = rd.bytes8(0, 32);
      if (recovery.length !== 0 && recovery.length !== 32)
        throw malformed('directory entry', 'a recovery key must be 32 bytes or absent');
      const identity: UserIdentity = {
        identityKey,
        ...(recovery.length === 32 ? { recoveryKey: recovery } : {}),
        signature: rd.raw(64),
      };
      entry = { kind, userId, time, identity };
      break;
    }
  }
  rd.end();
  return entry;
}

/**
 * Builds and strictly decodes the entry of `kind` for `userId` at `time` from its body as a client sends it:
 * the kind's body bytes for `mls-signature-key`, `recovery-set` and `user-identity`, the encoded record for
 * `device-added` and `device-revoked`. Throws ERR_MALFORMED (or ERR_INVALID_ARGUMENT for a bad user or time).
 */
export function directoryEntryFromBody(
  kind: DirectoryEntry['kind'],
  userId: string,
  time: number,
  body: Uint8Array,
): DirectoryEntry {
  if (!Object.hasOwn(KIND_CODES, kind)) throw invalidArgument('kind', 'is unknown');
  if (typeof userId !== 'string' || userId.length === 0 || utf8Encode(userId).length > 255)
    throw invalidArgument('userId', 'must be 1 to 255 bytes of text');
  if (!Number.isSafeInteger(time) || time < 0) throw invalidArgument('time', 'must be POSIX seconds');
  if (!(body instanceof Uint8Array)) throw malformed('directory entry', 'expected bytes');
  if (body.length > DIRECTORY_ENTRY_MAX_BYTES) throw malformed('directory entry', 'too large');
  const w = new Writer().u8(DIRECTORY_ENTRY_VERSION).u8(KIND_CODES[kind]).string8(userId).u64(time);
  if (kind === 'device-added' || kind === 'device-revoked') w.bytes16(body);
  else w.raw(body);
  return decodeDirectoryEntry(w.finish());
}

/** The basic-credential identity of a device in MLS: `string8(userId) || string8(deviceId)`. */
export function mlsIdentityOf(userId: string, deviceId: string): Uint8Array {
  return new Writer().string8(userId).string8(deviceId).finish();
}

/** A user's state as the log tells it: identity, device chain, MLS key bindings, recovery set. */
export interface UserDirectory {
  readonly keys: UserKeys;
  /** The device chain in log order, for {@link verifyDeviceChain}. */
  readonly events: readonly ChainEvent[];
  /** Devices valid at the end of the chain. */
  readonly devices: ReadonlyMap<string, TrustedDevice>;
  /** The latest MLS signature key bound by each valid device (the binding's signature verified). */
  readonly mlsKeys: ReadonlyMap<string, Uint8Array>;
  readonly recovery?: RecoverySet;
}

/**
 * Replays one user's entries (in log order, already proved included): the first must be the user's
 * `user-identity` entry and there must be only one; device records and revocations must form a valid chain;
 * MLS bindings and recovery sets must verify. Throws ERR_E2EE_UNTRUSTED_IDENTITY.
 */
export function userDirectory(userId: string, entries: readonly DirectoryEntry[]): UserDirectory {
  const bad = (detail: string) => new EnsealError(ErrorCode.E2EE_UNTRUSTED_IDENTITY, `user ${detail}`);
  const first = entries[0];
  if (first === undefined || first.kind !== 'user-identity' || first.userId !== userId)
    throw bad('entries must start with the user-identity entry');
  if (!verifyUserIdentity(userId, first.identity)) throw bad('identity entry has a bad signature');
  const keys: UserKeys = {
    userId,
    identityKey: first.identity.identityKey,
    ...(first.identity.recoveryKey ? { recoveryKey: first.identity.recoveryKey } : {}),
  };
  const events: ChainEvent[] = [];
  const bindings: MlsKeyBinding[] = [];
  let recovery: RecoverySet | undefined;
  for (const e of entries.slice(1)) {
    if (e.userId !== userId) throw bad('entries include another user');
    switch (e.kind) {
      case 'user-identity':
        throw bad('has a second identity entry');
      case 'device-added':
        events.push({ kind: 'add', record: e.record });
        break;
      case 'device-revoked':
        events.push({ kind: 'revoke', revocation: e.revocation });
        break;
      case 'mls-signature-key':
        // Checked against the device's key once the chain is known (a device id is introduced once, so its
        // key never changes); the latest binding of a device wins.
        bindings.push(e.binding);
        break;
      case 'recovery-set':
        if (!verifyRecoverySet(userId, e.recovery, keys.identityKey))
          throw bad('recovery set has a bad signature');
        recovery = e.recovery;
        break;
    }
  }
  const devices = verifyDeviceChain(keys, events);
  const mlsKeys = new Map<string, Uint8Array>();
  for (const binding of bindings) {
    const device = devices.get(binding.deviceId);
    if (device === undefined) continue; // revoked since (or never valid): its binding no longer counts
    if (!verifyMlsKeyBinding(userId, binding, device.deviceKey))
      throw bad(`MLS key binding of device "${binding.deviceId}" has a bad signature`);
    mlsKeys.set(binding.deviceId, binding.mlsSignatureKey);
  }
  return { keys, events, devices, mlsKeys, ...(recovery ? { recovery } : {}) };
}

/**
 * The log itself (the server's side, or a test's): appends entries and serves checkpoints and proofs. Leaf
 * hashes come from a {@link LeafHashSource}; a store can back it later.
 */
export class DirectoryLog {
  readonly origin: string;
  readonly #leaves: MemoryLeafSource;
  readonly #entries: Uint8Array[] = [];

  constructor(origin: string, leaves: MemoryLeafSource = new MemoryLeafSource()) {
    this.origin = origin;
    this.#leaves = leaves;
  }

  get size(): number {
    return this.#entries.length;
  }

  get source(): LeafHashSource {
    return this.#leaves;
  }

  /** Appends an entry; returns its index. */
  append(entry: DirectoryEntry): number {
    const bytes = encodeDirectoryEntry(entry);
    this.#leaves.append(leafHash(bytes));
    this.#entries.push(bytes);
    return this.#entries.length - 1;
  }

  entry(index: number): Uint8Array {
    const e = this.#entries[index];
    if (e === undefined) throw invalidArgument('index', 'is beyond the log');
    return e.slice();
  }

  /** The checkpoint of the current tree, signed by `signers` (the log key first). */
  async checkpoint(signers: readonly NoteSigner[]): Promise<string> {
    const cp: Checkpoint = {
      origin: this.origin,
      size: this.size,
      rootHash: await treeRoot(this.#leaves, this.size),
      extensions: [],
    };
    return signCheckpoint(cp, signers);
  }

  inclusionProof(index: number, size = this.size): Promise<Uint8Array[]> {
    return inclusionProof(this.#leaves, index, size);
  }

  consistencyProof(size1: number, size2 = this.size): Promise<Uint8Array[]> {
    return consistencyProof(this.#leaves, size1, size2);
  }
}

/** The split-view evidence: two signed checkpoints of one origin that cannot both be true. */
export class SplitViewError extends EnsealError {
  readonly evidence: readonly [string, string];

  constructor(detail: string, a: string, b: string) {
    super(ErrorCode.E2EE_SPLIT_VIEW, `transparency log split view: ${detail}`);
    this.evidence = [a, b];
    this.name = 'SplitViewError';
  }
}

/** Which keys a client trusts for one log. */
export interface LogPolicy {
  readonly origin: string;
  /** The log's key(s); one valid signature is required. */
  readonly logVerifiers: readonly NoteVerifier[];
  readonly witnesses: readonly CosignatureVerifier[];
  /** How many distinct witnesses must have cosigned. */
  readonly quorum: number;
}

/** A checkpoint that passed the policy. */
export interface VerifiedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The signed note, kept as evidence. */
  readonly note: string;
  /** Names of the witnesses whose cosignatures verified. */
  readonly witnesses: readonly string[];
}

/** Verifies a signed checkpoint against a policy (log signature plus witness quorum). */
export function verifyCheckpoint(note: string, policy: LogPolicy): VerifiedCheckpoint {
  if (!Number.isInteger(policy.quorum) || policy.quorum < 0 || policy.quorum > policy.witnesses.length) {
    throw invalidArgument('quorum', 'must be between 0 and the number of witnesses');
  }
  // Unknown signatures are ignored; a known one that fails rejects the note (ERR_SIGNATURE_INVALID).
  const opened = openCheckpoint(note, [...policy.logVerifiers, ...policy.witnesses]);
  const cp = opened.checkpoint;
  if (cp.origin !== policy.origin) {
    throw new EnsealError(
      ErrorCode.E2EE_QUORUM,
      `checkpoint is for origin "${cp.origin}", not "${policy.origin}"`,
    );
  }
  if (cp.size === 0 && !constantTimeEqual(cp.rootHash, emptyRoot())) {
    throw malformed('checkpoint', 'an empty tree must have the empty root');
  }
  const logVerifiers: readonly NoteVerifier[] = policy.logVerifiers;
  const witnessVerifiers: readonly NoteVerifier[] = policy.witnesses;
  if (!opened.note.verified.some((v) => logVerifiers.includes(v.verifier))) {
    throw new EnsealError(ErrorCode.E2EE_QUORUM, 'checkpoint lacks a valid signature of the log');
  }
  const cosigners = new Set(
    opened.note.verified.map((v) => v.verifier).filter((v) => witnessVerifiers.includes(v)),
  );
  if (cosigners.size < policy.quorum) {
    throw new EnsealError(
      ErrorCode.E2EE_QUORUM,
      `checkpoint has ${cosigners.size} of the ${policy.quorum} witness cosignatures required`,
    );
  }
  return { checkpoint: cp, note, witnesses: [...cosigners].map((v) => v.name) };
}

/**
 * A client's view of one log: the largest verified checkpoint. Feed it every checkpoint the client sees, with
 * a consistency proof between it and the one held; use only entries proved to be in a verified checkpoint.
 */
export class LogView {
  readonly policy: LogPolicy;
  #latest: VerifiedCheckpoint | undefined;

  constructor(policy: LogPolicy, latest?: string) {
    this.policy = policy;
    if (latest !== undefined) this.#latest = verifyCheckpoint(latest, policy);
  }

  /** The last verified checkpoint, if any (persist its `note` to resume the view). */
  get latest(): VerifiedCheckpoint | undefined {
    return this.#latest;
  }

  /**
   * Verifies `note` and checks it against the held checkpoint: `proof` is the consistency proof from the
   * smaller of the two to the larger. Returns the checkpoint now held (the larger). Throws ERR_E2EE_QUORUM,
   * or SplitViewError (ERR_E2EE_SPLIT_VIEW) with both checkpoints when they contradict each other.
   */
  update(note: string, proof: readonly Uint8Array[] = []): VerifiedCheckpoint {
    const next = verifyCheckpoint(note, this.policy);
    const held = this.#latest;
    // The empty tree is consistent with every tree, so nothing needs proving from or to it.
    if (held === undefined || held.checkpoint.size === 0) {
      this.#latest = next;
      return next;
    }
    const a = held.checkpoint;
    const b = next.checkpoint;
    if (a.size === b.size) {
      if (!constantTimeEqual(a.rootHash, b.rootHash))
        throw new SplitViewError(`two roots for tree size ${a.size}`, held.note, note);
      return held;
    }
    if (b.size === 0) return held;
    const [small, large] = a.size < b.size ? [a, b] : [b, a];
    try {
      verifyConsistency(small.size, large.size, proof, small.rootHash, large.rootHash);
    } catch (err) {
      if (err instanceof EnsealError && err.code === ErrorCode.E2EE_PROOF_INVALID) {
        throw new SplitViewError(
          `sizes ${small.size} and ${large.size} are not consistent (${err.message})`,
          held.note,
          note,
        );
      }
      throw err;
    }
    if (b.size > a.size) this.#latest = next;
    return this.#latest!;
  }

  /**
   * Verifies that `entry` is leaf `index` of the held checkpoint and decodes it. Throws ERR_E2EE_PROOF_INVALID
   * (or ERR_INVALID_STATE when no checkpoint was verified yet).
   */
  verifyEntry(entry: Uint8Array, index: number, proof: readonly Uint8Array[]): DirectoryEntry {
    const held = this.#latest;
    if (held === undefined)
      throw new EnsealError(ErrorCode.INVALID_STATE, 'no verified checkpoint yet: update the log view first');
    verifyInclusion(index, held.checkpoint.size, leafHash(entry), proof, held.checkpoint.rootHash);
    return decodeDirectoryEntry(entry);
  }
}

/** What monitoring found in a user's entries. */
export interface MonitorReport {
  /** Devices added that the local device did not expect (and not revoked since): show them to the user. */
  readonly unexpectedDevices: readonly { readonly deviceId: string; readonly addedAt: number }[];
  /** Expected devices that were revoked. */
  readonly revokedExpected: readonly string[];
  /** MLS signature keys bound to devices the local device did not expect. */
  readonly unexpectedMlsKeys: readonly { readonly deviceId: string; readonly mlsSignatureKey: Uint8Array }[];
}

/**
 * Monitors a user's own entries (already proved included): reports devices and MLS keys the local device did
 * not expect. `expectedDevices` is the set of device ids this user knowingly enrolled.
 */
export function monitorUserEntries(
  userId: string,
  entries: readonly DirectoryEntry[],
  expectedDevices: ReadonlySet<string>,
): MonitorReport {
  const live = new Map<string, number>();
  const revoked = new Set<string>();
  const keys: { deviceId: string; mlsSignatureKey: Uint8Array }[] = [];
  for (const e of entries) {
    if (e.userId !== userId) continue;
    if (e.kind === 'device-added') live.set(e.record.deviceId, e.record.createdAt);
    else if (e.kind === 'device-revoked') {
      live.delete(e.revocation.deviceId);
      revoked.add(e.revocation.deviceId);
    } else if (e.kind === 'mls-signature-key' && !expectedDevices.has(e.binding.deviceId)) {
      keys.push({ deviceId: e.binding.deviceId, mlsSignatureKey: e.binding.mlsSignatureKey });
    }
  }
  return {
    unexpectedDevices: [...live]
      .filter(([id]) => !expectedDevices.has(id))
      .map(([deviceId, addedAt]) => ({ deviceId, addedAt })),
    revokedExpected: [...revoked].filter((id) => expectedDevices.has(id)),
    unexpectedMlsKeys: keys.filter((k) => live.has(k.deviceId)),
  };
}
