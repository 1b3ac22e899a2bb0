/**
 * A minimal TLS record codec for probing: it encodes a ClientHello offering exactly the protocol version,
 * cipher suites, groups and compression methods a probe asks for, and decodes the server's first answer
 * (ServerHello, HelloRetryRequest, Alert, or an SSLv2 SERVER-HELLO) without completing the handshake.
 *
 * Why by hand: Node's TLS stack (OpenSSL 3) cannot offer SSLv2/SSLv3, RC4, DES/3DES, export, IDEA or SEED
 * suites, so it cannot tell whether a server still accepts them, and those are exactly the suites behind the
 * F and C grade caps. Which suite a server picks is visible in its plaintext ServerHello, so offering a set
 * and reading the answer is enough; no key exchange is ever finished. testssl.sh and sslscan probe the same
 * way. Everything decoded here comes from an untrusted peer: every length is checked against the bytes
 * present, and anything that does not parse is a typed MALFORMED error, never an exception of another kind.
 */
import { malformed } from '../../crypto/index.js';

/** Wire versions. */
export const Version = {
  SSL2: 0x0002,
  SSL3: 0x0300,
  TLS10: 0x0301,
  TLS11: 0x0302,
  TLS12: 0x0303,
  TLS13: 0x0304,
} as const;

/** Named groups (RFC 8446 §4.2.7, RFC 7919). */
export const Group = {
  secp256r1: 0x0017,
  secp384r1: 0x0018,
  secp521r1: 0x0019,
  x25519: 0x001d,
  x448: 0x001e,
  ffdhe2048: 0x0100,
  ffdhe3072: 0x0101,
  ffdhe4096: 0x0102,
} as const;

const ContentType = { alert: 21, handshake: 22 } as const;
const HandshakeType = { clientHello: 1, serverHello: 2 } as const;
const Ext = {
  serverName: 0,
  supportedGroups: 10,
  ecPointFormats: 11,
  signatureAlgorithms: 13,
  supportedVersions: 43,
  pskKeyExchangeModes: 45,
  keyShare: 51,
  renegotiationInfo: 0xff01,
} as const;

/** Every signature scheme a server might need, old ones included, so a suite is never refused for that. */
const SIGNATURE_SCHEMES = [
  0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b, 0x0401, 0x0501,
  0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602, 0x0203, 0x0201, 0x0202,
];

const DEFAULT_GROUPS = [
  Group.x25519,
  Group.secp256r1,
  Group.secp384r1,
  Group.secp521r1,
  Group.x448,
  Group.ffdhe2048,
  Group.ffdhe3072,
  Group.ffdhe4096,
];

/** SHA-256("HelloRetryRequest"): the ServerHello random that marks a HelloRetryRequest (RFC 8446 §4.1.3). */
const HRR_RANDOM = Uint8Array.from(
  'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c'
    .match(/../g)!
    .map((h) => parseInt(h, 16)),
);

export interface ClientHelloOptions {
  /** The version to offer: SSL3 to TLS12 as legacy_version, or TLS13 through supported_versions. */
  readonly version: number;
  readonly suites: readonly number[];
  /** SNI host name; omitted for IP literals, as RFC 6066 requires. */
  readonly serverName?: string;
  /** supported_groups; defaults to the common ECDHE and FFDHE groups. */
  readonly groups?: readonly number[];
  /** Offer DEFLATE besides null compression, to detect CRIME-prone servers (TLS 1.2 and older). */
  readonly offerCompression?: boolean;
}

class Writer {
  private readonly parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >> 8).u8(v);
  }
  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.parts.push(b[i]! & 0xff);
    return this;
  }
  /** Appends `body` preceded by its length in `size` bytes. */
  vec(size: 1 | 2 | 3, body: ArrayLike<number>): this {
    const n = body.length;
    if (size === 3) this.u8(n >> 16);
    if (size >= 2) this.u8(n >> 8);
    this.u8(n);
    return this.bytes(body);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const u16list = (values: readonly number[]) =>
  new Writer().bytes(values.flatMap((v) => [v >> 8, v & 0xff])).done();

function extension(type: number, body: Uint8Array): number[] {
  return [...new Writer().u16(type).vec(2, body).done()];
}

function random(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

function extensions(o: ClientHelloOptions): number[] {
  const out: number[] = [];
  if (o.serverName !== undefined && o.serverName.length > 0) {
    const name = new TextEncoder().encode(o.serverName);
    const entry = new Writer().u8(0).vec(2, name).done();
    out.push(...extension(Ext.serverName, new Writer().vec(2, entry).done()));
  }
  const groups = o.groups ?? DEFAULT_GROUPS;
  out.push(...extension(Ext.supportedGroups, new Writer().vec(2, u16list(groups)).done()));
  out.push(...extension(Ext.ecPointFormats, Uint8Array.of(1, 0)));
  out.push(...extension(Ext.signatureAlgorithms, new Writer().vec(2, u16list(SIGNATURE_SCHEMES)).done()));
  if (o.version === Version.TLS13) {
    out.push(...extension(Ext.supportedVersions, Uint8Array.of(2, 0x03, 0x04)));
    out.push(...extension(Ext.pskKeyExchangeModes, Uint8Array.of(1, 1)));
    // One X25519 share of random bytes when X25519 is offered: any 32 bytes are a valid X25519 public value,
    // and the probe never needs the shared secret. Otherwise an empty list asks for a HelloRetryRequest,
    // which names the chosen suite and group just as well.
    const shares = groups.includes(Group.x25519)
      ? new Writer().u16(Group.x25519).vec(2, random(32)).done()
      : new Uint8Array(0);
    out.push(...extension(Ext.keyShare, new Writer().vec(2, shares).done()));
  } else {
    out.push(...extension(Ext.renegotiationInfo, Uint8Array.of(0)));
  }
  return out;
}

/** A complete ClientHello record (one TLS record; every option set here stays far below 2^14 bytes). */
export function encodeClientHello(o: ClientHelloOptions): Uint8Array {
  const legacyVersion = o.version === Version.TLS13 ? Version.TLS12 : o.version;
  const compression = o.offerCompression && o.version !== Version.TLS13 ? [1, 0] : [0];
  const body = new Writer()
    .u16(legacyVersion)
    .bytes(random(32))
    .vec(1, random(32))
    .vec(2, u16list(o.suites))
    .vec(1, compression)
    .vec(2, extensions(o))
    .done();
  const handshake = new Writer().u8(HandshakeType.clientHello).vec(3, body).done();
  const recordVersion = o.version === Version.SSL3 ? Version.SSL3 : Version.TLS10;
  return new Writer().u8(ContentType.handshake).u16(recordVersion).vec(2, handshake).done();
}

/**
 * An SSLv2 CLIENT-HELLO offering the seven SSLv2 cipher kinds. Only a server that still speaks SSLv2
 * answers it with an SSLv2 SERVER-HELLO.
 */
export function encodeSsl2ClientHello(): Uint8Array {
  const specs = [0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700c0];
  const challenge = random(16);
  const body = new Writer()
    .u8(1) // CLIENT-HELLO
    .u16(Version.SSL2)
    .u16(specs.length * 3)
    .u16(0) // session id length
    .u16(challenge.length)
    .bytes(specs.flatMap((s) => [s >> 16, (s >> 8) & 0xff, s & 0xff]))
    .bytes(challenge)
    .done();
  return new Writer()
    .u16(0x8000 | body.length)
    .bytes(body)
    .done();
}

export interface ServerHello {
  readonly kind: 'server-hello';
  /** The negotiated version: supported_versions when present (TLS 1.3), else legacy_version. */
  readonly version: number;
  readonly cipherSuite: number;
  readonly compression: number;
  /** True for a TLS 1.3 HelloRetryRequest (it still names the chosen suite). */
  readonly helloRetry: boolean;
  /** Extension types the server sent. */
  readonly extensions: readonly number[];
  /** The server echoed renegotiation_info (RFC 5746): secure renegotiation is supported. */
  readonly secureRenegotiation: boolean;
  /** The group named by key_share in a TLS 1.3 ServerHello or HelloRetryRequest. */
  readonly keyShareGroup?: number;
}

export interface Alert {
  readonly kind: 'alert';
  readonly level: number;
  readonly description: number;
}

export interface Ssl2ServerHello {
  readonly kind: 'ssl2-server-hello';
  readonly cipherSpecs: readonly number[];
}

export type ServerAnswer = ServerHello | Alert | Ssl2ServerHello;

/** No answer worth reading is this large: a ServerHello is well under 1 KiB; a record is at most 16 KiB + 2 KiB. */
const MAX_RECORD = 18_432;
const MAX_BUFFER = 65_536;
const WHAT = 'TLS server answer';

class Reader {
  private pos = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly what: string,
  ) {}
  get remaining(): number {
    return this.b.length - this.pos;
  }
  u8(): number {
    if (this.remaining < 1) throw malformed(WHAT, `${this.what} is truncated`);
    return this.b[this.pos++]!;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  bytes(n: number): Uint8Array {
    if (this.remaining < n) throw malformed(WHAT, `${this.what} is truncated`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function decodeServerHello(body: Uint8Array): ServerHello {
  const r = new Reader(body, 'ServerHello');
  const legacyVersion = r.u16();
  const serverRandom = r.bytes(32);
  r.bytes(r.u8()); // session id
  const cipherSuite = r.u16();
  const compression = r.u8();
  const extensions: number[] = [];
  let version = legacyVersion;
  let secureRenegotiation = false;
  let keyShareGroup: number | undefined;
  if (r.remaining > 0) {
    const ext = new Reader(r.bytes(r.u16()), 'ServerHello extensions');
    while (ext.remaining > 0) {
      const type = ext.u16();
      const data = new Reader(ext.bytes(ext.u16()), `extension ${type}`);
      extensions.push(type);
      if (type === Ext.supportedVersions) version = data.u16();
      else if (type === Ext.renegotiationInfo) secureRenegotiation = true;
      else if (type === Ext.keyShare) keyShareGroup = data.u16();
    }
  }
  if (version >> 8 !== 3 || (version & 0xff) > 4) {
    throw malformed(WHAT, `ServerHello names unknown version 0x${version.toString(16)}`);
  }
  const helloRetry = serverRandom.every((v, i) => v === HRR_RANDOM[i]);
  return {
    kind: 'server-hello',
    version,
    cipherSuite,
    compression,
    helloRetry,
    extensions,
    secureRenegotiation,
    ...(keyShareGroup !== undefined ? { keyShareGroup } : {}),
  };
}

function decodeSsl2(buf: Uint8Array): Ssl2ServerHello | undefined {
  const length = ((buf[0]! & 0x7f) << 8) | buf[1]!;
  if (buf.length < 2 + length) return undefined;
  const r = new Reader(buf.subarray(2, 2 + length), 'SSLv2 SERVER-HELLO');
  if (r.u8() !== 4) throw malformed(WHAT, 'SSLv2 record is not a SERVER-HELLO');
  r.u8(); // session id hit
  r.u8(); // certificate type
  if (r.u16() !== Version.SSL2) throw malformed(WHAT, 'SSLv2 SERVER-HELLO has another version');
  const certLength = r.u16();
  const specsLength = r.u16();
  r.u16(); // connection id length
  r.bytes(certLength);
  if (specsLength % 3 !== 0) throw malformed(WHAT, 'SSLv2 cipher specs length is not a multiple of 3');
  const specs = r.bytes(specsLength);
  const cipherSpecs: number[] = [];
  for (let i = 0; i < specs.length; i += 3)
    cipherSpecs.push((specs[i]! << 16) | (specs[i + 1]! << 8) | specs[i + 2]!);
  return { kind: 'ssl2-server-hello', cipherSpecs };
}

/** The first bytes of a non-TLS answer as text when printable (an HTTP status line, an SSH banner), else hex. */
function describeBytes(bytes: Uint8Array): string {
  const text = String.fromCharCode(...bytes);
  if (/^[\x20-\x7e\r\n\t]+$/.test(text)) return `it answered "${text.replace(/[\r\n\t]+/g, ' ').trim()}…"`;
  return `first bytes ${Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ')}`;
}

/**
 * Decodes the first answer in `buf` (everything received so far). Returns undefined while more bytes are
 * needed; throws MALFORMED when the bytes cannot be a TLS or SSLv2 answer.
 * `expectSsl2` reads an SSLv2 two-byte record header instead of a TLS record header.
 */
export function decodeServerAnswer(buf: Uint8Array, expectSsl2 = false): ServerAnswer | undefined {
  if (buf.length > MAX_BUFFER) throw malformed(WHAT, 'no ServerHello in the first 64 KiB');
  if (buf.length === 0) return undefined;
  if (expectSsl2 && (buf[0]! & 0x80) !== 0) {
    if (buf.length < 2) return undefined;
    return decodeSsl2(buf);
  }
  const handshake: number[] = [];
  let pos = 0;
  for (;;) {
    if (buf.length - pos < 5) return undefined;
    const type = buf[pos]!;
    const major = buf[pos + 1]!;
    const length = (buf[pos + 3]! << 8) | buf[pos + 4]!;
    if (type !== ContentType.handshake && type !== ContentType.alert) {
      throw malformed(WHAT, `not a TLS record (${describeBytes(buf.subarray(pos, pos + 32))})`);
    }
    if (major !== 3) throw malformed(WHAT, `record version ${major}.${buf[pos + 2]!} is not TLS`);
    if (length === 0 || length > MAX_RECORD) throw malformed(WHAT, `record length ${length} is out of range`);
    if (buf.length - pos - 5 < length) return undefined;
    const fragment = buf.subarray(pos + 5, pos + 5 + length);
    pos += 5 + length;
    if (type === ContentType.alert) {
      // An alert that interrupts a half-received handshake message still answers the probe.
      if (fragment.length < 2) throw malformed(WHAT, 'alert record is shorter than 2 bytes');
      return { kind: 'alert', level: fragment[0]!, description: fragment[1]! };
    }
    for (const b of fragment) handshake.push(b);
    if (handshake.length < 4) continue;
    const msgType = handshake[0]!;
    const msgLength = (handshake[1]! << 16) | (handshake[2]! << 8) | handshake[3]!;
    if (msgType !== HandshakeType.serverHello) {
      throw malformed(WHAT, `first handshake message is type ${msgType}, not ServerHello`);
    }
    if (msgLength > MAX_RECORD) throw malformed(WHAT, `ServerHello length ${msgLength} is out of range`);
    if (handshake.length < 4 + msgLength) continue;
    return decodeServerHello(Uint8Array.from(handshake.slice(4, 4 + msgLength)));
  }
}

/** Alert descriptions worth naming in messages (RFC 8446 §6). */
export function alertName(description: number): string {
  const names: Record<number, string> = {
    0: 'close_notify',
    10: 'unexpected_message',
    20: 'bad_record_mac',
    40: 'handshake_failure',
    42: 'bad_certificate',
    47: 'illegal_parameter',
    50: 'decode_error',
    51: 'decrypt_error',
    70: 'protocol_version',
    71: 'insufficient_security',
    80: 'internal_error',
    86: 'inappropriate_fallback',
    109: 'missing_extension',
    110: 'unsupported_extension',
    112: 'unrecognized_name',
    120: 'no_application_protocol',
  };
  return names[description] ?? `alert ${description}`;
}
