/** Test clients of the e2ee routes: users with identity, device and MLS keys, and a raw request helper. */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { base64Encode, base64UrlEncode, randomBytes } from '../../src/crypto/index.js';
import {
  LogView,
  MlsClient,
  deviceLoginMessage,
  encodeDeviceRecord,
  encodeDeviceRevocation,
  encodeDirectoryEntry,
  generateIdentityKey,
  mlsIdentityOf,
  noteVerifierFromKey,
  signDeviceRecord,
  signDeviceRevocation,
  signMlsKeyBinding,
  signUserIdentity,
  type Ed25519KeyPair,
  type RecordSigner,
} from '../../src/e2ee/index.js';
import { sign } from '../../src/crypto/index.js';
import type { RunningServer } from '../../src/server/index.js';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
  bytes: Buffer;
}

/** One HTTPS request to a running server: JSON bodies, or raw bytes with a content type. */
export function requester(server: RunningServer) {
  const ca = server.caFile ? readFileSync(server.caFile) : undefined;
  return (
    method: string,
    path: string,
    options: { token?: string; body?: unknown; bytes?: Uint8Array; contentType?: string } = {},
  ) =>
    new Promise<Reply>((resolve, reject) => {
      const payload =
        options.bytes !== undefined
          ? Buffer.from(options.bytes)
          : options.body === undefined
            ? undefined
            : Buffer.from(JSON.stringify(options.body));
      const req = httpsRequest(
        new URL(path, server.url),
        {
          method,
          ...(ca ? { ca } : {}),
          headers: {
            ...(options.token ? { 'x-vault-token': options.token } : {}),
            ...(payload === undefined
              ? {}
              : {
                  'content-type': options.contentType ?? 'application/json',
                  'content-length': payload.length,
                }),
          },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => {
            const bytes = Buffer.concat(parts);
            const text = bytes.toString();
            let body: unknown;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              // text or binary
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, bytes });
          });
        },
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
}

export type Request = ReturnType<typeof requester>;

const mlsClient = MlsClient.create({ authenticator: { authenticate: () => true } });

/** A device of a test user: its device key, MLS key and (after login) its token. */
export interface TestDevice {
  readonly id: string;
  readonly key: Ed25519KeyPair;
  readonly mlsKey: Ed25519KeyPair;
  token?: string;
}

/** A test user and the bodies a client would send for it. */
export class TestUser {
  readonly identity = generateIdentityKey();
  readonly recovery = generateIdentityKey();
  readonly devices = new Map<string, TestDevice>();

  constructor(readonly name: string) {}

  device(id: string): TestDevice {
    let d = this.devices.get(id);
    if (d === undefined)
      this.devices.set(id, (d = { id, key: generateIdentityKey(), mlsKey: generateIdentityKey() }));
    return d;
  }

  /** The kind-5 body: an encoded identity entry minus its header. */
  identityBody(): string {
    const entry = encodeDirectoryEntry({
      kind: 'user-identity',
      userId: this.name,
      time: 0,
      identity: signUserIdentity(this.name, this.identity.privateKey, this.recovery.publicKey),
    });
    return base64Encode(entry.subarray(2 + 1 + Buffer.byteLength(this.name) + 8));
  }

  recordBody(id: string, signer?: RecordSigner): string {
    const d = this.device(id);
    return base64Encode(
      encodeDeviceRecord(
        signDeviceRecord(
          { userId: this.name, deviceId: id, deviceKey: d.key.publicKey, createdAt: 1 },
          signer ?? { kind: 'identity', privateKey: this.identity.privateKey },
        ),
      ),
    );
  }

  bindingBody(id: string): string {
    const d = this.device(id);
    const entry = encodeDirectoryEntry({
      kind: 'mls-signature-key',
      userId: this.name,
      time: 0,
      binding: signMlsKeyBinding(this.name, id, d.mlsKey.publicKey, d.key.privateKey),
    });
    return base64Encode(entry.subarray(2 + 1 + Buffer.byteLength(this.name) + 8));
  }

  revocationBody(id: string, signer?: RecordSigner): string {
    return base64Encode(
      encodeDeviceRevocation(
        signDeviceRevocation(
          { userId: this.name, deviceId: id, revokedAt: 2 },
          signer ?? { kind: 'identity', privateKey: this.identity.privateKey },
        ),
      ),
    );
  }

  async keyPackage(id: string, lastResort = false): Promise<string> {
    const kp = await (
      await mlsClient
    ).generateKeyPackage({
      identity: mlsIdentityOf(this.name, id),
      signaturePrivateKey: this.device(id).mlsKey.privateKey,
      lastResort,
    });
    return base64Encode(kp.message);
  }

  /** Enrols the user with `first` as its first device, using an application token. */
  async enrol(call: Request, appToken: string, first: string): Promise<Reply> {
    return call('POST', `/v1/e2ee/users/${this.name}`, {
      token: appToken,
      body: {
        identity: this.identityBody(),
        device_record: this.recordBody(first),
        mls_binding: this.bindingBody(first),
      },
    });
  }

  /** Logs a device in; returns the reply (and keeps the token on success). */
  async login(call: Request, origin: string, id: string, key?: Ed25519KeyPair): Promise<Reply> {
    const c = await call('POST', '/v1/e2ee/auth/challenge', { body: { user: this.name, device: id } });
    if (c.status !== 200) return c;
    const challenge = Buffer.from(c.body.challenge, 'base64');
    const signature = sign(
      'ed25519',
      (key ?? this.device(id).key).privateKey,
      deviceLoginMessage(origin, this.name, id, new Uint8Array(challenge)),
    );
    const r = await call('POST', '/v1/e2ee/auth/login', {
      body: { user: this.name, device: id, challenge: c.body.challenge, signature: base64Encode(signature) },
    });
    if (r.status === 200) this.device(id).token = r.body.token;
    return r;
  }
}

export const newGroupId = () => base64UrlEncode(randomBytes(16));

/** A log view that trusts the server's log key (no witnesses) and follows its checkpoints. */
export async function logView(call: Request): Promise<LogView> {
  const key = await call('GET', '/v1/e2ee/log/key');
  if (key.status !== 200) throw new Error(`log key: ${key.status} ${key.text}`);
  return new LogView({
    origin: key.body.origin,
    logVerifiers: [noteVerifierFromKey(key.body.verifier_key)],
    witnesses: [],
    quorum: 0,
  });
}
