/**
 * Users, devices and the chain that links them. A user has an Ed25519 identity key (its public half is what
 * safety numbers and the directory vouch for) and optionally a recovery key. Each device has its own Ed25519
 * signing key, introduced by a signed device record; the signer is the identity key, the recovery key, or a
 * device of the same user that was valid when it signed. Revocations are signed the same way.
 *
 * Every signature covers a domain-separated, canonical encoding (wire.ts), so a device record cannot be
 * replayed as a revocation, nor a record of one user as another's.
 */
import {
  EnsealError,
  ErrorCode,
  concatBytes,
  generateSigningKeyPair,
  hexEncode,
  invalidArgument,
  sign,
  signingPublicKey,
  utf8Encode,
  verify,
} from '../crypto/index.js';
import type { DeviceSigner } from './signer.js';
import { Reader, Writer } from './wire.js';

const DEVICE_CONTEXT = utf8Encode('enseal e2ee device record v1\n');
const REVOCATION_CONTEXT = utf8Encode('enseal e2ee device revocation v1\n');
const LOGIN_CONTEXT = utf8Encode('enseal e2ee device login v1\n');

/** Who signed a device record or revocation. */
export type SignerKind = 'identity' | 'recovery' | 'device';
const SIGNER_CODES: Record<SignerKind, number> = { identity: 1, recovery: 2, device: 3 };
const SIGNER_KINDS: Record<number, SignerKind> = { 1: 'identity', 2: 'recovery', 3: 'device' };

/** An Ed25519 key pair as this module uses it. */
export interface Ed25519KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A fresh Ed25519 key pair for a user identity, a recovery key or a device. */
export function generateIdentityKey(): Ed25519KeyPair {
  const { privateKey, publicKey } = generateSigningKeyPair('ed25519');
  return { privateKey, publicKey };
}

/** A device introduced into a user's chain. */
export interface DeviceRecord {
  readonly userId: string;
  readonly deviceId: string;
  /** The device's Ed25519 signing key (it signs later records and its MLS key-package bindings). */
  readonly deviceKey: Uint8Array;
  /** POSIX seconds. */
  readonly createdAt: number;
  readonly signer: SignerKind;
  /** The signing device's id when `signer` is 'device'; empty otherwise. */
  readonly signerDeviceId: string;
  readonly signature: Uint8Array;
}

/** The withdrawal of a device. */
export interface DeviceRevocation {
  readonly userId: string;
  readonly deviceId: string;
  readonly revokedAt: number;
  readonly signer: SignerKind;
  readonly signerDeviceId: string;
  readonly signature: Uint8Array;
}

function checkName(name: string, what: string, max: number): void {
  if (typeof name !== 'string' || name.length === 0 || utf8Encode(name).length > max) {
    throw invalidArgument(what, `must be 1 to ${max} bytes of text`);
  }
}

function checkTime(t: number, what: string): void {
  if (!Number.isSafeInteger(t) || t < 0) throw invalidArgument(what, 'must be POSIX seconds');
}

function deviceTbs(r: Omit<DeviceRecord, 'signature'>): Uint8Array {
  return new Writer()
    .raw(DEVICE_CONTEXT)
    .string8(r.userId)
    .string8(r.deviceId)
    .raw(r.deviceKey)
    .u64(r.createdAt)
    .u8(SIGNER_CODES[r.signer])
    .string8(r.signerDeviceId)
    .finish();
}

function revocationTbs(r: Omit<DeviceRevocation, 'signature'>): Uint8Array {
  return new Writer()
    .raw(REVOCATION_CONTEXT)
    .string8(r.userId)
    .string8(r.deviceId)
    .u64(r.revokedAt)
    .u8(SIGNER_CODES[r.signer])
    .string8(r.signerDeviceId)
    .finish();
}

/** The signer of a record: the kind, and (for a device) which one, with its private key. */
export interface RecordSigner {
  readonly kind: SignerKind;
  readonly privateKey: Uint8Array;
  readonly deviceId?: string;
}

function signerFields(signer: Omit<RecordSigner, 'privateKey'>): {
  signer: SignerKind;
  signerDeviceId: string;
} {
  if (!Object.hasOwn(SIGNER_CODES, signer.kind)) throw invalidArgument('signer.kind', 'is unknown');
  if (signer.kind === 'device') {
    checkName(signer.deviceId ?? '', 'signer.deviceId', 64);
    return { signer: 'device', signerDeviceId: signer.deviceId! };
  }
  return { signer: signer.kind, signerDeviceId: '' };
}

/** Signs a device record introducing `deviceKey` as `deviceId` of `userId`. */
export function signDeviceRecord(
  fields: { userId: string; deviceId: string; deviceKey: Uint8Array; createdAt: number },
  signer: RecordSigner,
): DeviceRecord {
  const tbs = deviceRecordFields(fields, signer);
  return { ...tbs, signature: sign('ed25519', signer.privateKey, deviceTbs(tbs)) };
}

function deviceRecordFields(
  fields: { userId: string; deviceId: string; deviceKey: Uint8Array; createdAt: number },
  signer: Omit<RecordSigner, 'privateKey'>,
): Omit<DeviceRecord, 'signature'> {
  checkName(fields.userId, 'userId', 255);
  checkName(fields.deviceId, 'deviceId', 64);
  checkTime(fields.createdAt, 'createdAt');
  if (!(fields.deviceKey instanceof Uint8Array) || fields.deviceKey.length !== 32) {
    throw invalidArgument('deviceKey', 'must be a 32-byte Ed25519 public key');
  }
  return { ...fields, deviceKey: fields.deviceKey.slice(), ...signerFields(signer) };
}

/**
 * {@link signDeviceRecord} with a device key that signs on request (a non-extractable browser key): `signer`
 * names the signing device, `key` signs.
 */
export async function signDeviceRecordWith(
  fields: { userId: string; deviceId: string; deviceKey: Uint8Array; createdAt: number },
  signer: { readonly kind: 'device'; readonly deviceId: string },
  key: DeviceSigner,
): Promise<DeviceRecord> {
  const tbs = deviceRecordFields(fields, signer);
  return { ...tbs, signature: await key.sign(deviceTbs(tbs)) };
}

/** Signs the revocation of `deviceId`. */
export function signDeviceRevocation(
  fields: { userId: string; deviceId: string; revokedAt: number },
  signer: RecordSigner,
): DeviceRevocation {
  const tbs = revocationFields(fields, signer);
  return { ...tbs, signature: sign('ed25519', signer.privateKey, revocationTbs(tbs)) };
}

function revocationFields(
  fields: { userId: string; deviceId: string; revokedAt: number },
  signer: Omit<RecordSigner, 'privateKey'>,
): Omit<DeviceRevocation, 'signature'> {
  checkName(fields.userId, 'userId', 255);
  checkName(fields.deviceId, 'deviceId', 64);
  checkTime(fields.revokedAt, 'revokedAt');
  return { ...fields, ...signerFields(signer) };
}

/** {@link signDeviceRevocation} with a device key that signs on request. */
export async function signDeviceRevocationWith(
  fields: { userId: string; deviceId: string; revokedAt: number },
  signer: { readonly kind: 'device'; readonly deviceId: string },
  key: DeviceSigner,
): Promise<DeviceRevocation> {
  const tbs = revocationFields(fields, signer);
  return { ...tbs, signature: await key.sign(revocationTbs(tbs)) };
}

/** Canonical bytes of a signed device record. */
export function encodeDeviceRecord(r: DeviceRecord): Uint8Array {
  return concatBytes(deviceTbs(r).slice(DEVICE_CONTEXT.length), r.signature);
}

/** Canonical bytes of a signed revocation. */
export function encodeDeviceRevocation(r: DeviceRevocation): Uint8Array {
  return concatBytes(revocationTbs(r).slice(REVOCATION_CONTEXT.length), r.signature);
}

function readSigner(rd: Reader): { signer: SignerKind; signerDeviceId: string } {
  const code = rd.u8();
  const signer = SIGNER_KINDS[code];
  if (signer === undefined) throw new EnsealError(ErrorCode.MALFORMED, 'device record: unknown signer kind');
  const signerDeviceId = signer === 'device' ? rd.string8(1, 64) : rd.string8(0, 0);
  return { signer, signerDeviceId };
}

/** Decodes a device record (strict: exact length, known signer kind). Throws ERR_MALFORMED. */
export function decodeDeviceRecord(bytes: Uint8Array): DeviceRecord {
  const rd = new Reader(bytes, 'device record');
  const userId = rd.string8(1, 255);
  const deviceId = rd.string8(1, 64);
  const deviceKey = rd.raw(32);
  const createdAt = rd.u64();
  const s = readSigner(rd);
  const signature = rd.raw(64);
  rd.end();
  return { userId, deviceId, deviceKey, createdAt, ...s, signature };
}

/** Decodes a revocation. Throws ERR_MALFORMED. */
export function decodeDeviceRevocation(bytes: Uint8Array): DeviceRevocation {
  const rd = new Reader(bytes, 'device revocation');
  const userId = rd.string8(1, 255);
  const deviceId = rd.string8(1, 64);
  const revokedAt = rd.u64();
  const s = readSigner(rd);
  const signature = rd.raw(64);
  rd.end();
  return { userId, deviceId, revokedAt, ...s, signature };
}

/** The trust anchors of a user: the identity key, and the recovery key if one was set. */
export interface UserKeys {
  readonly userId: string;
  readonly identityKey: Uint8Array;
  readonly recoveryKey?: Uint8Array;
}

/** One step of a user's chain, in log order. */
export type ChainEvent =
  | { readonly kind: 'add'; readonly record: DeviceRecord }
  | { readonly kind: 'revoke'; readonly revocation: DeviceRevocation };

/** A device the chain vouches for. */
export interface TrustedDevice {
  readonly deviceId: string;
  readonly deviceKey: Uint8Array;
  readonly addedBy: SignerKind;
  readonly createdAt: number;
}

function untrusted(detail: string): EnsealError {
  return new EnsealError(ErrorCode.E2EE_UNTRUSTED_IDENTITY, `device chain: ${detail}`);
}

/**
 * Verifies a user's device chain in order and returns the devices valid at its end. Each record must be
 * signed by the identity key, the recovery key, or a device already valid at that point; a device id is
 * introduced once; a revoked device signs nothing afterwards. Throws ERR_E2EE_UNTRUSTED_IDENTITY.
 */
export function verifyDeviceChain(user: UserKeys, events: readonly ChainEvent[]): Map<string, TrustedDevice> {
  const valid = new Map<string, TrustedDevice>();
  const seen = new Set<string>();
  const signerKey = (kind: SignerKind, deviceId: string): Uint8Array => {
    if (kind === 'identity') return user.identityKey;
    if (kind === 'recovery') {
      if (user.recoveryKey === undefined) throw untrusted('signed by a recovery key, but the user has none');
      return user.recoveryKey;
    }
    const d = valid.get(deviceId);
    if (d === undefined) throw untrusted(`signed by device "${deviceId}", which is not valid at that point`);
    return d.deviceKey;
  };
  for (const e of events) {
    if (e.kind === 'add') {
      const r = e.record;
      if (r.userId !== user.userId) throw untrusted('a record belongs to another user');
      if (seen.has(r.deviceId)) throw untrusted(`device "${r.deviceId}" is introduced twice`);
      if (!verify('ed25519', signerKey(r.signer, r.signerDeviceId), deviceTbs(r), r.signature)) {
        throw untrusted(`the record of device "${r.deviceId}" has a bad signature`);
      }
      seen.add(r.deviceId);
      valid.set(r.deviceId, {
        deviceId: r.deviceId,
        deviceKey: r.deviceKey,
        addedBy: r.signer,
        createdAt: r.createdAt,
      });
    } else {
      const r = e.revocation;
      if (r.userId !== user.userId) throw untrusted('a revocation belongs to another user');
      if (!valid.has(r.deviceId)) throw untrusted(`revocation of device "${r.deviceId}", which is not valid`);
      if (!verify('ed25519', signerKey(r.signer, r.signerDeviceId), revocationTbs(r), r.signature)) {
        throw untrusted(`the revocation of device "${r.deviceId}" has a bad signature`);
      }
      valid.delete(r.deviceId);
    }
  }
  return valid;
}

/** The public key of a private Ed25519 key (for callers that keep only the private half). */
export function identityPublicKey(privateKey: Uint8Array): Uint8Array {
  return signingPublicKey('ed25519', privateKey);
}

/** A stable hex fingerprint of a key, for logs and UIs (not a safety number). */
export function keyFingerprint(publicKey: Uint8Array): string {
  return hexEncode(publicKey);
}

/**
 * What a device signs with its device key to log in to the directory's service: `"enseal e2ee device login
 * v1\n" || string8(origin) || string8(user) || string8(device) || challenge`, where origin is the log's.
 */
export function deviceLoginMessage(
  origin: string,
  userId: string,
  deviceId: string,
  challenge: Uint8Array,
): Uint8Array {
  if (!(challenge instanceof Uint8Array) || challenge.length !== 32)
    throw invalidArgument('challenge', 'must be 32 bytes');
  return new Writer()
    .raw(LOGIN_CONTEXT)
    .string8(origin)
    .string8(userId)
    .string8(deviceId)
    .raw(challenge)
    .finish();
}
