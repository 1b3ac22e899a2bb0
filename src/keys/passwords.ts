/**
 * Password hashing and password-derived keys.
 *
 * Defaults follow the OWASP Password Storage Cheat Sheet: Argon2id with m = 19 MiB, t = 2, p = 1; scrypt with
 * N = 2^17, r = 8, p = 1; PBKDF2-HMAC-SHA256 with 600,000 iterations. The seeds' PBKDF2 with 100,000
 * iterations and a 16-byte salt verifies, and `needsRehash` reports it so it can be upgraded at next login.
 */
import {
  EnsealError,
  ErrorCode,
  argon2id,
  constantTimeEqual,
  invalidArgument,
  pbkdf2,
  randomBytes,
  scrypt,
  toBytes,
  type Argon2Params,
} from '../crypto/index.js';
import { formatPhc, parsePhc, type PhcAlgorithm, type PhcHash } from '../formats/index.js';

export interface PasswordPolicy {
  algorithm: PhcAlgorithm;
  argon2id: Argon2Params;
  scrypt: { logN: number; r: number; p: number };
  pbkdf2: { iterations: number };
}

export const DEFAULT_PASSWORD_POLICY: Readonly<PasswordPolicy> = Object.freeze({
  algorithm: 'argon2id',
  argon2id: Object.freeze({ memoryKiB: 19456, iterations: 2, parallelism: 1 }),
  scrypt: Object.freeze({ logN: 17, r: 8, p: 1 }),
  pbkdf2: Object.freeze({ iterations: 600_000 }),
});

const SALT_LENGTH = 16;
const HASH_LENGTH = 32;

async function compute(h: Omit<PhcHash, 'hash'>, password: Uint8Array, length: number): Promise<Uint8Array> {
  const p = h.params;
  switch (h.algorithm) {
    case 'argon2id':
      return argon2id(password, h.salt, { memoryKiB: p.m!, iterations: p.t!, parallelism: p.p! }, length);
    case 'scrypt':
      return scrypt(password, h.salt, { N: 2 ** p.ln!, r: p.r!, p: p.p! }, length);
    case 'pbkdf2-sha256':
      return pbkdf2('sha256', password, h.salt, p.i!, length);
  }
}

function paramsFor(policy: PasswordPolicy): Record<string, number> {
  switch (policy.algorithm) {
    case 'argon2id':
      return { m: policy.argon2id.memoryKiB, t: policy.argon2id.iterations, p: policy.argon2id.parallelism };
    case 'scrypt':
      return { ln: policy.scrypt.logN, r: policy.scrypt.r, p: policy.scrypt.p };
    case 'pbkdf2-sha256':
      return { i: policy.pbkdf2.iterations };
    default:
      throw invalidArgument('algorithm', 'must be argon2id, scrypt or pbkdf2-sha256');
  }
}

/**
 * Hashes a password into a self-describing PHC string.
 *
 * @example
 * ```ts
 * const stored = await hashPassword('hunter2', { argon2id: { memoryKiB: 1024, iterations: 1, parallelism: 1 } });
 * await verifyPassword('hunter2', stored); // true
 * needsRehash(stored); // true: cheaper than the default policy
 * ```
 */
export async function hashPassword(
  password: string | Uint8Array,
  policy: Partial<PasswordPolicy> = {},
): Promise<string> {
  const full: PasswordPolicy = { ...DEFAULT_PASSWORD_POLICY, ...policy };
  const pw = toBytes('password', password);
  const base = { algorithm: full.algorithm, params: paramsFor(full), salt: randomBytes(SALT_LENGTH) };
  return formatPhc({ ...base, hash: await compute(base, pw, HASH_LENGTH) });
}

/** True when `password` matches the PHC string. Malformed or hostile strings throw, never match. */
export async function verifyPassword(password: string | Uint8Array, phc: string): Promise<boolean> {
  const parsed = parsePhc(phc);
  const actual = await compute(parsed, toBytes('password', password), parsed.hash.length);
  return constantTimeEqual(actual, parsed.hash);
}

/** Like {@link verifyPassword}, but throws ERR_PASSWORD_MISMATCH instead of returning false. */
export async function assertPassword(password: string | Uint8Array, phc: string): Promise<void> {
  if (!(await verifyPassword(password, phc))) {
    throw new EnsealError(ErrorCode.PASSWORD_MISMATCH, 'the password does not match');
  }
}

/** True when the stored hash uses another algorithm than the policy's or weaker parameters. */
export function needsRehash(phc: string, policy: Partial<PasswordPolicy> = {}): boolean {
  const full: PasswordPolicy = { ...DEFAULT_PASSWORD_POLICY, ...policy };
  const parsed = parsePhc(phc);
  if (
    parsed.algorithm !== full.algorithm ||
    parsed.salt.length < SALT_LENGTH ||
    parsed.hash.length < HASH_LENGTH
  ) {
    return true;
  }
  const want = paramsFor(full);
  return Object.entries(want).some(([name, value]) => (parsed.params[name] ?? 0) < value);
}

/**
 * A 32-byte key from a password with Argon2id, for sealing data under a passphrase. The salt must be random
 * and stored beside the data.
 */
export async function deriveKeyFromPassword(
  password: string | Uint8Array,
  salt: Uint8Array,
  params: Argon2Params = DEFAULT_PASSWORD_POLICY.argon2id,
): Promise<Uint8Array> {
  return argon2id(toBytes('password', password), salt, params, 32);
}
