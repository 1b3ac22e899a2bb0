/**
 * The client's side of the key directory: nothing the directory says is used until it is proved. A checkpoint
 * must pass the pinned {@link LogPolicy} (the log's key, the witnesses' keys, the quorum) and be consistent with
 * every checkpoint this device verified before (a {@link LogView}); every entry must be proved included in a
 * verified checkpoint; and a user's entries must form a valid chain: a signed `user-identity` first, devices
 * introduced by the identity key, the recovery key or an earlier valid device, MLS keys bound by their device.
 * The MLS authenticator answers from this verified view only.
 */
import { EnsealError, ErrorCode, constantTimeEqual } from '../crypto/index.js';
import { isTransientError, type E2eeApi, type UserEntriesJson } from './api.js';
import { ed25519CosignatureVerifier } from './cosignature.js';
import { verifyDeviceChain, type ChainEvent, type TrustedDevice } from './identity.js';
import { leafHash, verifyInclusion } from './merkle.js';
import type { MlsAuthenticator, MlsIdentity } from './mls.js';
import { SignatureType, noteVerifierFromKey, parseVerifierKey } from './signed-note.js';
import {
  LogView,
  verifyCheckpoint,
  verifyMlsKeyBinding,
  verifyRecoverySet,
  decodeDirectoryEntry,
  verifyUserIdentity,
  type DirectoryEntry,
  type LogPolicy,
  type RecoverySet,
  type VerifiedCheckpoint,
} from './transparency.js';
import { Reader, Writer } from './wire.js';

/** The log policy as configuration: verifier keys as text (C2SP vkey form). Pin it from your own config. */
export interface PinnedLogPolicy {
  readonly origin: string;
  /** The log's verifier key (`name+keyid+base64`). */
  readonly logKey: string;
  /** The witnesses' cosignature verifier keys. */
  readonly witnesses: readonly string[];
  readonly quorum: number;
}

/** The runtime policy of a pinned one. Throws ERR_MALFORMED / ERR_UNSUPPORTED for bad keys. */
export function logPolicyFrom(pinned: PinnedLogPolicy): LogPolicy {
  return {
    origin: pinned.origin,
    logVerifiers: [noteVerifierFromKey(pinned.logKey)],
    witnesses: pinned.witnesses.map((w) => {
      const k = parseVerifierKey(w);
      if (k.type !== SignatureType.COSIGNATURE_V1)
        throw new EnsealError(ErrorCode.UNSUPPORTED, `witness key ${k.name} is not a cosignature/v1 key`);
      return ed25519CosignatureVerifier(k.name, k.publicKey);
    }),
    quorum: pinned.quorum,
  };
}

/**
 * The MLS basic-credential identity of a device, as the directory checks it on upload:
 * `string8(user) || string8(device)`.
 */
export function deviceCredential(user: string, device: string): Uint8Array {
  return new Writer().string8(user).string8(device).finish();
}

/** The user and device named by a credential identity, or undefined when it is not one. */
export function parseDeviceCredential(identity: Uint8Array): { user: string; device: string } | undefined {
  try {
    const rd = new Reader(identity, 'MLS credential');
    const user = rd.string8(1, 255);
    const device = rd.string8(1, 255);
    rd.end();
    return { user, device };
  } catch {
    return undefined;
  }
}

/** A user as the verified directory knows them. */
export interface VerifiedUser {
  readonly userId: string;
  readonly identityKey: Uint8Array;
  /** Absent when the user has none. */
  readonly recoveryKey?: Uint8Array;
  /** Devices valid at the end of the chain. */
  readonly devices: ReadonlyMap<string, TrustedDevice>;
  /** The MLS signature key of each valid device (the last binding wins). */
  readonly mlsKeys: ReadonlyMap<string, Uint8Array>;
  readonly recoverySet?: RecoverySet;
  /** The proved entries, in log order. */
  readonly entries: readonly DirectoryEntry[];
  /** Size of the checkpoint the entries were proved against. */
  readonly checkpointSize: number;
}

function untrusted(detail: string): EnsealError {
  return new EnsealError(ErrorCode.E2EE_UNTRUSTED_IDENTITY, `directory: ${detail}`);
}

/**
 * Proves and checks a user's entries against a verified checkpoint. Throws ERR_E2EE_PROOF_INVALID for a missing
 * or wrong inclusion proof, ERR_E2EE_UNTRUSTED_IDENTITY for a broken chain (no identity first, a second identity,
 * a device not signed by the user, a forged MLS binding, an identity key other than `pinnedIdentityKey`).
 */
export function verifyUserEntries(
  userId: string,
  answer: UserEntriesJson,
  checkpoint: VerifiedCheckpoint,
  pinnedIdentityKey?: Uint8Array,
): VerifiedUser {
  if (answer.user !== userId) throw untrusted(`asked for user "${userId}", got another user's entries`);
  const { size, rootHash } = checkpoint.checkpoint;
  const leaves: DirectoryEntry[] = [];
  let last = -1;
  for (const e of answer.entries) {
    if (!Number.isSafeInteger(e.index) || e.index <= last || e.index >= size)
      throw new EnsealError(
        ErrorCode.E2EE_PROOF_INVALID,
        'directory: entries are out of order or beyond the checkpoint',
      );
    last = e.index;
    verifyInclusion(e.index, size, leafHash(e.entry), e.proof, rootHash);
    const leaf = decodeDirectoryEntry(e.entry);
    if (leaf.userId !== userId) throw untrusted('an entry belongs to another user');
    leaves.push(leaf);
  }
  const first = leaves[0];
  if (first === undefined)
    throw new EnsealError(ErrorCode.KEY_NOT_FOUND, `user "${userId}" is not in the directory`);
  if (first.kind !== 'user-identity') throw untrusted('the first entry of a user must be their identity');
  if (!verifyUserIdentity(userId, first.identity))
    throw untrusted('the user identity signature does not verify');
  const identity = first.identity;
  if (pinnedIdentityKey !== undefined && !constantTimeEqual(pinnedIdentityKey, identity.identityKey))
    throw untrusted(`the identity key of "${userId}" changed: verify their safety number again`);
  const events: ChainEvent[] = [];
  let recoverySet: RecoverySet | undefined;
  for (const leaf of leaves.slice(1)) {
    if (leaf.kind === 'user-identity') throw untrusted('a second identity for the same user');
    if (leaf.kind === 'device-added') events.push({ kind: 'add', record: leaf.record });
    else if (leaf.kind === 'device-revoked') events.push({ kind: 'revoke', revocation: leaf.revocation });
    else if (leaf.kind === 'recovery-set') {
      if (!verifyRecoverySet(userId, leaf.recovery, identity.identityKey))
        throw untrusted('a recovery set is not signed by the identity key');
      recoverySet = leaf.recovery;
    }
  }
  const devices = verifyDeviceChain(
    {
      userId,
      identityKey: identity.identityKey,
      ...(identity.recoveryKey ? { recoveryKey: identity.recoveryKey } : {}),
    },
    events,
  );
  const mlsKeys = new Map<string, Uint8Array>();
  for (const leaf of leaves) {
    if (leaf.kind !== 'mls-signature-key') continue;
    const device = devices.get(leaf.binding.deviceId);
    if (device === undefined) continue; // revoked since, or never valid: vouches for nothing
    if (!verifyMlsKeyBinding(userId, leaf.binding, device.deviceKey))
      throw untrusted(`the MLS key of device "${leaf.binding.deviceId}" is not signed by that device`);
    mlsKeys.set(leaf.binding.deviceId, leaf.binding.mlsSignatureKey);
  }
  return {
    userId,
    identityKey: identity.identityKey,
    ...(identity.recoveryKey ? { recoveryKey: identity.recoveryKey } : {}),
    devices,
    mlsKeys,
    ...(recoverySet ? { recoverySet } : {}),
    entries: leaves,
    checkpointSize: size,
  };
}

/**
 * The verified directory of one device: the log view under the pinned policy and the users it has proved. Its
 * {@link DirectoryVerifier.authenticator} vouches for an MLS member only when a proved, valid device of that user
 * is bound to exactly that signature key.
 */
export class DirectoryVerifier {
  readonly view: LogView;
  readonly #users = new Map<string, VerifiedUser>();
  readonly #pins: (user: string) => Uint8Array | undefined;

  /**
   * @param policy the pinned policy
   * @param latestNote the last checkpoint this device verified (persisted), to resume the view
   * @param pins the identity key this device already trusts for a user (contacts), if any
   */
  constructor(
    policy: LogPolicy,
    latestNote?: string,
    pins: (user: string) => Uint8Array | undefined = () => undefined,
  ) {
    this.view = new LogView(policy, latestNote);
    this.#pins = pins;
  }

  /** The note of the largest checkpoint verified, to persist. */
  get latestNote(): string | undefined {
    return this.view.latest?.note;
  }

  /**
   * Verifies `note` under the policy and its consistency with the held checkpoint (fetching the proof), and
   * returns it verified. Throws ERR_E2EE_QUORUM, ERR_E2EE_SPLIT_VIEW (with evidence) or ERR_E2EE_PROOF_INVALID.
   */
  async accept(note: string, api: E2eeApi, token: string): Promise<VerifiedCheckpoint> {
    const next = verifyCheckpoint(note, this.view.policy);
    const held = this.view.latest;
    let proof: Uint8Array[] = [];
    if (
      held !== undefined &&
      held.checkpoint.size > 0 &&
      next.checkpoint.size > 0 &&
      held.checkpoint.size !== next.checkpoint.size
    ) {
      const [a, b] = [held.checkpoint.size, next.checkpoint.size].sort((x, y) => x - y) as [number, number];
      proof = await api.consistencyProof(token, a, b);
    }
    this.view.update(note, proof);
    return next;
  }

  /** Fetches, proves and checks a user's entries; remembers the result for the authenticator. */
  async fetchUser(userId: string, api: E2eeApi, token: string): Promise<VerifiedUser> {
    const answer = await api.userEntries(token, userId);
    const cp = await this.accept(answer.checkpoint, api, token);
    const user = verifyUserEntries(userId, answer, cp, this.#pins(userId));
    this.#users.set(userId, user);
    return user;
  }

  /** A user proved earlier in this session. */
  user(userId: string): VerifiedUser | undefined {
    return this.#users.get(userId);
  }

  /** True when `member` is a valid device of a proved user, bound to exactly that MLS signature key. */
  vouches(member: MlsIdentity): boolean {
    const id = parseDeviceCredential(member.identity);
    if (id === undefined) return false;
    const key = this.#users.get(id.user)?.mlsKeys.get(id.device);
    return (
      key !== undefined &&
      key.length === member.signaturePublicKey.length &&
      constantTimeEqual(key, member.signaturePublicKey)
    );
  }

  /**
   * The authenticator for {@link MlsClient.create}: answers from proved users; an unknown user is fetched and
   * proved first through `fetch` (when given).
   */
  authenticator(fetch?: (user: string) => Promise<unknown>): MlsAuthenticator {
    return {
      authenticate: async (member) => {
        const id = parseDeviceCredential(member.identity);
        if (id === undefined) return false;
        if (this.vouches(member)) return true;
        if (fetch === undefined) return false;
        // Unknown user, or a device newer than the entries proved so far: prove the user's entries again.
        try {
          await fetch(id.user);
        } catch (err) {
          if (isTransientError(err)) throw err; // no answer is not a verdict: let the caller retry later
          return false;
        }
        return this.vouches(member);
      },
    };
  }
}
