/**
 * Public-key encryption with HPKE (RFC 9180) through @hpke/core, the default way enseal encrypts to someone's
 * public key. One-shot sealed payloads carry a small self-describing header:
 *
 * ```
 * version(1)=0x01 | mode(1) | kem_id(u16) | kdf_id(u16) | aead_id(u16) | enc(Nenc) | ciphertext || tag
 * ```
 *
 * The header is the first part of the HPKE `aad` (followed by the caller's associated data), so no header
 * field can change without the open failing. Mode 0x00 is Base; 0x02 is Auth, where the sender's static key
 * authenticates the message (RFC 9180 §5.1.3). Text form: `hpke1.` + base64url.
 *
 * The default suite is DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM: X25519 for small, fast, safe
 * keys; AES-256-GCM because WebCrypto (and so every browser and Node) implements it natively. ChaCha20-Poly1305
 * is offered for platforms without AES hardware.
 */
import type { CipherSuite } from '@hpke/core';
import {
  EnsealError,
  ErrorCode,
  assertBytes,
  base64UrlDecode,
  base64UrlEncode,
  concatBytes,
  decryptFailed,
  malformed,
  toBytes,
  unsupported,
  x25519GenerateKeyPair,
  x25519PublicKey,
} from '../crypto/index.js';

export type HpkeSuiteName = 'x25519-hkdf-sha256-aes-256-gcm' | 'x25519-hkdf-sha256-chacha20-poly1305';

const VERSION = 0x01;
const MODE_BASE = 0x00;
const MODE_AUTH = 0x02;
const KEM_X25519 = 0x0020;
const KDF_SHA256 = 0x0001;
const AEAD_IDS: Record<HpkeSuiteName, number> = {
  'x25519-hkdf-sha256-aes-256-gcm': 0x0002,
  'x25519-hkdf-sha256-chacha20-poly1305': 0x0003,
};
const NENC = 32;
const HEADER = 8 + NENC;
const TEXT_PREFIX = 'hpke1.';
const EMPTY = new Uint8Array(0);

/** The suite for an AEAD id. @hpke/* are imported on first use, so importing this layer does not load them. */
async function suiteFor(aeadId: number): Promise<CipherSuite> {
  const { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } = await import('@hpke/core');
  const aead =
    aeadId === 0x0002
      ? new Aes256Gcm()
      : aeadId === 0x0003
        ? new (await import('@hpke/chacha20poly1305')).Chacha20Poly1305()
        : undefined;
  if (aead === undefined) throw unsupported(`unsupported HPKE AEAD id 0x${aeadId.toString(16)}`);
  return new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead });
}

export interface HpkeKeyPair {
  /** Raw 32-byte X25519 public key: give this to senders. */
  publicKey: Uint8Array;
  /** Raw 32-byte X25519 private key: keep it secret. */
  privateKey: Uint8Array;
}

/** A new X25519 key pair for HPKE. */
export function generateHpkeKeyPair(): HpkeKeyPair {
  return x25519GenerateKeyPair();
}

export interface HpkeSealOptions {
  /** HPKE `info`: binds the message to an application context. */
  info?: string | Uint8Array;
  /** Associated data, authenticated but not encrypted. */
  aad?: string | Uint8Array;
  /** Sender key pair for Auth mode; omitted = Base mode. */
  sender?: HpkeKeyPair;
  suite?: HpkeSuiteName;
}

export interface HpkeOpenOptions {
  info?: string | Uint8Array;
  aad?: string | Uint8Array;
  /** Required to open Auth-mode messages: the expected sender's public key. */
  senderPublicKey?: Uint8Array;
}

function bytesOf(name: string, value: string | Uint8Array | undefined): Uint8Array {
  return value === undefined ? EMPTY : toBytes(name, value);
}

function header(mode: number, aeadId: number, enc: Uint8Array): Uint8Array {
  const h = new Uint8Array(HEADER);
  h[0] = VERSION;
  h[1] = mode;
  h[2] = KEM_X25519 >> 8;
  h[3] = KEM_X25519 & 0xff;
  h[4] = KDF_SHA256 >> 8;
  h[5] = KDF_SHA256 & 0xff;
  h[6] = aeadId >> 8;
  h[7] = aeadId & 0xff;
  h.set(enc, 8);
  return h;
}

async function keyPairOf(suite: CipherSuite, pair: HpkeKeyPair): Promise<CryptoKeyPair> {
  assertBytes('privateKey', pair.privateKey, 32);
  return {
    privateKey: await suite.kem.deserializePrivateKey(pair.privateKey),
    publicKey: await suite.kem.deserializePublicKey(x25519PublicKey(pair.privateKey)),
  };
}

async function publicKeyOf(suite: CipherSuite, raw: Uint8Array, name: string): Promise<CryptoKey> {
  assertBytes(name, raw, 32);
  try {
    return await suite.kem.deserializePublicKey(raw);
  } catch (cause) {
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, `${name} is not a valid X25519 public key`, { cause });
  }
}

/**
 * Encrypts `plaintext` to `recipientPublicKey`. Returns the binary sealed payload.
 *
 * @example
 * ```ts
 * const alice = generateHpkeKeyPair();
 * const sealed = await hpkeSeal(alice.publicKey, 'for alice only', { info: 'chat v1' });
 * utf8Decode(await hpkeOpen(alice.privateKey, sealed, { info: 'chat v1' })); // 'for alice only'
 * ```
 */
export async function hpkeSeal(
  recipientPublicKey: Uint8Array,
  plaintext: string | Uint8Array,
  options: HpkeSealOptions = {},
): Promise<Uint8Array> {
  const aeadId = AEAD_IDS[options.suite ?? 'x25519-hkdf-sha256-aes-256-gcm'];
  if (aeadId === undefined) throw unsupported(`unsupported HPKE suite "${options.suite}"`);
  const suite = await suiteFor(aeadId);
  const pt = toBytes('plaintext', plaintext);
  const params = {
    recipientPublicKey: await publicKeyOf(suite, recipientPublicKey, 'recipientPublicKey'),
    info: bytesOf('info', options.info),
    ...(options.sender ? { senderKey: await keyPairOf(suite, options.sender) } : {}),
  };
  const ctx = await suite.createSenderContext(params);
  const h = header(options.sender ? MODE_AUTH : MODE_BASE, aeadId, new Uint8Array(ctx.enc));
  const ct = new Uint8Array(await ctx.seal(pt, concatBytes(h, bytesOf('aad', options.aad))));
  return concatBytes(h, ct);
}

/** Parses the header of a sealed payload (unauthenticated until opened). */
export function parseHpkeHeader(sealed: Uint8Array): { mode: 'base' | 'auth'; aeadId: number } {
  if (!(sealed instanceof Uint8Array) || sealed.length < HEADER + 16)
    throw malformed('HPKE payload', 'too short');
  if (sealed[0] !== VERSION) throw unsupported(`unsupported HPKE payload version ${sealed[0]}`);
  const mode = sealed[1];
  if (mode !== MODE_BASE && mode !== MODE_AUTH) throw unsupported(`unsupported HPKE mode ${mode}`);
  const kem = (sealed[2]! << 8) | sealed[3]!;
  const kdf = (sealed[4]! << 8) | sealed[5]!;
  const aeadId = (sealed[6]! << 8) | sealed[7]!;
  if (kem !== KEM_X25519 || kdf !== KDF_SHA256 || !Object.values(AEAD_IDS).includes(aeadId)) {
    throw unsupported('unsupported HPKE suite');
  }
  return { mode: mode === MODE_AUTH ? 'auth' : 'base', aeadId };
}

/** Opens a payload made by {@link hpkeSeal}. Any failure to authenticate is ERR_DECRYPT_FAILED. */
export async function hpkeOpen(
  recipientPrivateKey: Uint8Array,
  sealed: Uint8Array,
  options: HpkeOpenOptions = {},
): Promise<Uint8Array> {
  const { mode, aeadId } = parseHpkeHeader(sealed);
  if (mode === 'auth' && options.senderPublicKey === undefined) {
    throw new EnsealError(
      ErrorCode.KEK_MISSING,
      'this message is sender-authenticated: pass senderPublicKey',
    );
  }
  if (mode === 'base' && options.senderPublicKey !== undefined) {
    // The caller expects an authenticated sender; a Base-mode message cannot prove one.
    throw decryptFailed();
  }
  const suite = await suiteFor(aeadId);
  const recipient = await keyPairOf(suite, { privateKey: recipientPrivateKey, publicKey: EMPTY });
  const h = sealed.subarray(0, HEADER);
  try {
    const ctx = await suite.createRecipientContext({
      recipientKey: recipient,
      enc: sealed.slice(8, HEADER),
      info: bytesOf('info', options.info),
      ...(options.senderPublicKey
        ? { senderPublicKey: await publicKeyOf(suite, options.senderPublicKey, 'senderPublicKey') }
        : {}),
    });
    return new Uint8Array(await ctx.open(sealed.slice(HEADER), concatBytes(h, bytesOf('aad', options.aad))));
  } catch (err) {
    if (err instanceof EnsealError && err.code === ErrorCode.INVALID_ARGUMENT) throw err;
    throw decryptFailed();
  }
}

export function hpkeToText(sealed: Uint8Array): string {
  return TEXT_PREFIX + base64UrlEncode(sealed);
}

export function hpkeFromText(text: string): Uint8Array {
  if (typeof text !== 'string' || !text.startsWith(TEXT_PREFIX))
    throw malformed('HPKE payload', `must start with "${TEXT_PREFIX}"`);
  return base64UrlDecode(text.slice(TEXT_PREFIX.length), 'HPKE payload');
}
