/**
 * PHC strings for password hashes: `$<id>$<params>$<salt>$<hash>`, parsed without regular expressions.
 *
 * Emitted, so that the common verifiers read them:
 * - Argon2id as argon2-cffi / libargon2 do: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, standard base64
 *   without padding.
 * - scrypt as passlib does: `$scrypt$ln=17,r=8,p=1$<salt>$<hash>`, standard base64 without padding.
 * - PBKDF2 as passlib does: `$pbkdf2-sha256$600000$<salt>$<hash>`, in passlib's "ab64" base64 ('.' instead
 *   of '+', no padding).
 *
 * Accepted on input: both base64 flavours, and `i=<n>` for PBKDF2 rounds. Every number is bounded, so a
 * hostile stored string cannot make verification allocate or spin without limit.
 */
import { base64Decode, base64Encode, malformed, unsupported } from '../crypto/index.js';

export type PhcAlgorithm = 'argon2id' | 'scrypt' | 'pbkdf2-sha256';

export interface PhcHash {
  algorithm: PhcAlgorithm;
  /** Numeric parameters: argon2id m,t,p (and v); scrypt ln,r,p; pbkdf2 i. */
  params: Record<string, number>;
  salt: Uint8Array;
  hash: Uint8Array;
}

const MAX_STRING = 1024;
const PARAM_LIMITS: Record<PhcAlgorithm, Record<string, [number, number]>> = {
  argon2id: { v: [16, 19], m: [8, 4 * 1024 * 1024], t: [1, 1024], p: [1, 255] },
  scrypt: { ln: [1, 24], r: [1, 64], p: [1, 64] },
  'pbkdf2-sha256': { i: [1, 100_000_000] },
};

function b64(bytes: Uint8Array, ab64: boolean): string {
  const s = base64Encode(bytes).replace(/=+$/, '');
  return ab64 ? s.replaceAll('+', '.') : s;
}

function unb64(text: string, what: string): Uint8Array {
  const std = text.replaceAll('.', '+');
  const padded = std + '='.repeat((4 - (std.length % 4)) % 4);
  const out = base64Decode(padded, what);
  if (out.length < 8 || out.length > 512) throw malformed('password hash', `${what} length out of range`);
  return out;
}

function parseNumber(name: string, text: string, [min, max]: [number, number]): number {
  if (text.length === 0 || text.length > 10) throw malformed('password hash', `invalid ${name}`);
  for (const ch of text) if (ch < '0' || ch > '9') throw malformed('password hash', `invalid ${name}`);
  const n = Number(text);
  if (n < min || n > max)
    throw unsupported(`password hash parameter ${name}=${n} is outside [${min}, ${max}]`);
  return n;
}

function parseParams(algorithm: PhcAlgorithm, fields: string[]): Record<string, number> {
  const limits = PARAM_LIMITS[algorithm];
  const params: Record<string, number> = {};
  for (const field of fields) {
    for (const pair of field.split(',')) {
      const eq = pair.indexOf('=');
      // passlib writes PBKDF2 rounds bare: `$pbkdf2-sha256$29000$…`.
      const [name, value] =
        eq < 0 && algorithm === 'pbkdf2-sha256' ? ['i', pair] : [pair.slice(0, eq), pair.slice(eq + 1)];
      const range = Object.hasOwn(limits, name) ? limits[name] : undefined;
      if (eq === 0 || range === undefined || Object.hasOwn(params, name)) {
        throw malformed('password hash', `unexpected parameter "${name}"`);
      }
      params[name] = parseNumber(name, value, range);
    }
  }
  for (const name of Object.keys(limits)) {
    if (!Object.hasOwn(params, name) && !(algorithm === 'argon2id' && name === 'v')) {
      throw malformed('password hash', `missing parameter ${name}`);
    }
  }
  return params;
}

/** Parses a PHC string; throws ERR_MALFORMED or ERR_UNSUPPORTED, never returns partial data. */
export function parsePhc(text: string): PhcHash {
  if (typeof text !== 'string' || text.length > MAX_STRING)
    throw malformed('password hash', 'not a PHC string');
  const parts = text.split('$');
  if (parts[0] !== '' || parts.length < 5 || parts.length > 6)
    throw malformed('password hash', 'not a PHC string');
  const algorithm = parts[1] as PhcAlgorithm;
  if (!Object.hasOwn(PARAM_LIMITS, algorithm)) throw unsupported(`unsupported password hash "${parts[1]}"`);
  const params = parseParams(algorithm, parts.slice(2, parts.length - 2));
  return {
    algorithm,
    params,
    salt: unb64(parts[parts.length - 2]!, 'salt'),
    hash: unb64(parts[parts.length - 1]!, 'hash'),
  };
}

/** Formats a hash as the PHC string its usual verifiers expect (see the module comment). */
export function formatPhc(h: PhcHash): string {
  const p = h.params;
  switch (h.algorithm) {
    case 'argon2id':
      return `$argon2id$v=19$m=${p.m},t=${p.t},p=${p.p}$${b64(h.salt, false)}$${b64(h.hash, false)}`;
    case 'scrypt':
      return `$scrypt$ln=${p.ln},r=${p.r},p=${p.p}$${b64(h.salt, false)}$${b64(h.hash, false)}`;
    case 'pbkdf2-sha256':
      return `$pbkdf2-sha256$${p.i}$${b64(h.salt, true)}$${b64(h.hash, true)}`;
  }
}
