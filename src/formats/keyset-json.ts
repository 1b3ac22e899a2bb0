/**
 * The JSON shape of a keyset's contents (what a sealed keyset decrypts to, and what an explicit plaintext
 * export returns), with a strict validator: keyset JSON is parsed from storage, so every field is checked
 * for type and range and anything unexpected is ERR_MALFORMED.
 */
import { base64UrlDecode, malformed } from '../crypto/index.js';

export type KeyPurpose = 'encrypt' | 'sign' | 'mac' | 'derive';
export type KeyStatus = 'enabled' | 'disabled' | 'destroyed';
export type KeyAlgorithm =
  | 'aes-256-gcm'
  | 'chacha20-poly1305'
  | 'xchacha20-poly1305'
  | 'aes-256-gcm-hkdf-commit'
  | 'ed25519'
  | 'ecdsa-p256'
  | 'hmac-sha256'
  | 'hkdf-sha256';

export const ALGORITHMS_BY_PURPOSE: Readonly<Record<KeyPurpose, readonly KeyAlgorithm[]>> = Object.freeze({
  encrypt: ['aes-256-gcm', 'chacha20-poly1305', 'xchacha20-poly1305', 'aes-256-gcm-hkdf-commit'],
  sign: ['ed25519', 'ecdsa-p256'],
  mac: ['hmac-sha256'],
  derive: ['hkdf-sha256'],
});

export interface KeyVersionJson {
  version: number;
  algorithm: KeyAlgorithm;
  status: KeyStatus;
  /** ISO 8601. */
  createdAt: string;
  /** Encryptions performed with this version. */
  uses: number;
  /** base64url key material; absent once destroyed. */
  key?: string;
}

export interface KeysetJson {
  enseal: 'keyset';
  v: 1;
  id: number;
  purpose: KeyPurpose;
  primary: number;
  autoRotate: boolean;
  /** Optional lower usage limit per version (encryptions). */
  usageLimit?: number;
  versions: KeyVersionJson[];
}

const PURPOSES: readonly KeyPurpose[] = ['encrypt', 'sign', 'mac', 'derive'];
const STATUSES: readonly KeyStatus[] = ['enabled', 'disabled', 'destroyed'];
const MAX_VERSIONS = 10_000;

function fail(detail: string): never {
  throw malformed('keyset', detail);
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail(`unexpected field "${k}" in ${where}`);
}

function validateVersion(raw: unknown, purpose: KeyPurpose): KeyVersionJson {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('version must be an object');
  const v = raw as Record<string, unknown>;
  onlyKeys(v, ['version', 'algorithm', 'status', 'createdAt', 'uses', 'key'], 'version');
  if (!isUint32(v.version) || v.version === 0) fail('version number must be in [1, 2^32-1]');
  if (!ALGORITHMS_BY_PURPOSE[purpose].includes(v.algorithm as KeyAlgorithm)) {
    fail(`algorithm not valid for purpose ${purpose}`);
  }
  if (!STATUSES.includes(v.status as KeyStatus)) fail('invalid status');
  if (typeof v.createdAt !== 'string' || Number.isNaN(Date.parse(v.createdAt))) fail('invalid createdAt');
  if (!isCount(v.uses)) fail('invalid uses');
  if (v.status === 'destroyed') {
    if (v.key !== undefined) fail('destroyed version must not carry key material');
  } else {
    if (typeof v.key !== 'string') fail('missing key material');
    if (base64UrlDecode(v.key, 'keyset key').length !== 32) fail('key material must be 32 bytes');
  }
  return v as unknown as KeyVersionJson;
}

/** Validates untrusted keyset JSON; throws ERR_MALFORMED with the first problem found. */
export function validateKeysetJson(raw: unknown): KeysetJson {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('must be an object');
  const k = raw as Record<string, unknown>;
  onlyKeys(k, ['enseal', 'v', 'id', 'purpose', 'primary', 'autoRotate', 'usageLimit', 'versions'], 'keyset');
  if (k.enseal !== 'keyset' || k.v !== 1) fail('not an enseal keyset v1');
  if (!isUint32(k.id)) fail('invalid id');
  if (!PURPOSES.includes(k.purpose as KeyPurpose)) fail('invalid purpose');
  if (typeof k.autoRotate !== 'boolean') fail('invalid autoRotate');
  if (k.usageLimit !== undefined && (!isCount(k.usageLimit) || k.usageLimit === 0))
    fail('invalid usageLimit');
  if (!Array.isArray(k.versions) || k.versions.length === 0 || k.versions.length > MAX_VERSIONS) {
    fail('versions must be a non-empty array');
  }
  const versions = k.versions.map((v) => validateVersion(v, k.purpose as KeyPurpose));
  const seen = new Set<number>();
  for (const v of versions) {
    if (seen.has(v.version)) fail(`duplicate version ${v.version}`);
    seen.add(v.version);
  }
  const primary = versions.find((v) => v.version === k.primary);
  if (primary === undefined || primary.status !== 'enabled') fail('primary must name an enabled version');
  return k as unknown as KeysetJson;
}
