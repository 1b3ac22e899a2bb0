/**
 * The routes of docs/e2ee-service.md as typed calls over an {@link E2eeTransport}. Bodies are decoded and
 * shape-checked here, so the client above never sees unchecked JSON; the service's `{"errors": [...]}` becomes an
 * {@link EnsealError} with the service's code, and a commit that lost its epoch becomes an
 * {@link EpochConflictError} carrying the relay's current epoch.
 */
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64Encode,
  base64UrlEncode,
  malformed,
  utf8Decode,
  type ErrorCode as Code,
} from '../crypto/index.js';
import { INBOX_MEDIA_TYPE, decodeInboxAnswer } from './inbox-wire.js';
import type { E2eeRequest, E2eeResponse, E2eeTransport } from './transport.js';

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** The relay refused a commit because another one already took its epoch (HTTP 409). */
export class EpochConflictError extends EnsealError {
  /** The group's current epoch on the relay. */
  readonly epoch: number;
  constructor(epoch: number) {
    super(ErrorCode.INVALID_STATE, `another commit won this epoch; the group is at epoch ${epoch}`);
    this.epoch = epoch;
    this.name = 'EpochConflictError';
  }
}

/** True for failures worth retrying later (no answer, 429, 5xx): they never justify deleting key material. */
export function isTransientError(err: unknown): boolean {
  return (
    err instanceof EnsealError &&
    (err.code === ErrorCode.IO || err.code === ErrorCode.STORE || err.code === ErrorCode.RATE_LIMITED)
  );
}

function codeFor(status: number, message: string): Code {
  const m = /^(ERR_[A-Z0-9_]+):/.exec(message);
  if (m && KNOWN_CODES.has(m[1]!)) return m[1] as Code;
  if (status === 429) return ErrorCode.RATE_LIMITED;
  if (status === 503) return ErrorCode.SEALED;
  if (status === 401 || status === 403) return ErrorCode.PERMISSION_DENIED;
  if (status === 404) return ErrorCode.KEY_NOT_FOUND;
  return status >= 500 ? ErrorCode.STORE : ErrorCode.INVALID_ARGUMENT;
}

function parseJson(res: E2eeResponse): unknown {
  if (res.body.length === 0) return {};
  try {
    return JSON.parse(utf8Decode(res.body)) as unknown;
  } catch {
    throw malformed('e2ee service answer', 'not JSON');
  }
}

function errorFrom(res: E2eeResponse): EnsealError {
  let body: unknown;
  try {
    body = parseJson(res);
  } catch {
    body = undefined;
  }
  return errorOf(res.status, body);
}

/** The error of an answer's status and (parsed) `{"errors": [...]}` body. */
function errorOf(status: number, body: unknown): EnsealError {
  let message = `HTTP ${status}`;
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  if (Array.isArray(errors) && errors.every((e) => typeof e === 'string') && errors.length > 0)
    message = errors.join('; ');
  if (status === 409) {
    const epoch = (body as { epoch?: unknown } | undefined)?.epoch;
    if (typeof epoch === 'number' && Number.isSafeInteger(epoch)) return new EpochConflictError(epoch);
  }
  // The service's messages never carry secrets; they are safe to pass on.
  return new EnsealError(codeFor(status, message), message.replace(/^ERR_[A-Z0-9_]+: /, ''));
}

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed(what, 'expected an object');
  return v as Json;
}
function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw malformed(what, 'expected a string');
  return v;
}
function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw malformed(what, 'expected an integer');
  return v;
}
function b64(v: unknown, what: string): Uint8Array {
  return base64Decode(str(v, what), what);
}
function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw malformed(what, 'expected an array');
  return v;
}

/** A user or device as the relay names them. */
export interface DeviceAddress {
  readonly user: string;
  readonly device: string;
}

/** One entry of `GET /v1/e2ee/users/:user`. */
export interface UserEntryJson {
  readonly index: number;
  readonly entry: Uint8Array;
  readonly proof: readonly Uint8Array[];
}

/** `GET /v1/e2ee/users/:user`. */
export interface UserEntriesJson {
  readonly user: string;
  readonly checkpoint: string;
  readonly entries: readonly UserEntryJson[];
}

/** One claimed key package. */
export interface ClaimedKeyPackage {
  readonly device: string;
  readonly keyPackage: Uint8Array;
  readonly lastResort: boolean;
}

/** One queued message of the inbox. */
export interface InboxMessage {
  readonly seq: number;
  readonly groupId: string;
  readonly epoch: number;
  readonly kind: 'commit' | 'welcome' | 'application';
  readonly sender: DeviceAddress;
  readonly frame: Uint8Array;
}

/** One message's outcome in {@link E2eeApi.postMessages}: queued with its seq, or refused on its own. */
export type PostedMessage = { readonly seq: number } | { readonly error: EnsealError };

/** An accepted commit from `GET /v1/e2ee/groups/:gid/commits`. */
export interface AcceptedCommit {
  readonly epoch: number;
  readonly frame: Uint8Array;
  readonly sender?: DeviceAddress;
}

function address(v: unknown, what: string): DeviceAddress {
  const o = obj(v, what);
  return { user: str(o.user, `${what}.user`), device: str(o.device, `${what}.device`) };
}

/** The group id as the relay's paths spell it (unpadded base64url). */
export function groupPathId(groupId: Uint8Array): string {
  return base64UrlEncode(groupId);
}

const enc = encodeURIComponent;

/** Typed calls of the `/v1/e2ee` routes. */
export class E2eeApi {
  readonly #transport: E2eeTransport;

  constructor(transport: E2eeTransport) {
    this.#transport = transport;
  }

  async #send(req: E2eeRequest): Promise<E2eeResponse> {
    const res = await this.#transport.request(req);
    if (res.status >= 400) throw errorFrom(res);
    return res;
  }

  async #json(req: E2eeRequest): Promise<Json> {
    return obj(parseJson(await this.#send(req)), `answer of ${req.method} ${req.path.split('?')[0]}`);
  }

  // --------------------------------------------------------------- auth

  async challenge(user: string, device: string): Promise<Uint8Array> {
    const r = await this.#json({ method: 'POST', path: '/v1/e2ee/auth/challenge', json: { user, device } });
    return b64(r.challenge, 'challenge');
  }

  async login(
    user: string,
    device: string,
    challenge: Uint8Array,
    signature: Uint8Array,
  ): Promise<{ token: string; expiresAt: string }> {
    const r = await this.#json({
      method: 'POST',
      path: '/v1/e2ee/auth/login',
      json: { user, device, challenge: base64Encode(challenge), signature: base64Encode(signature) },
    });
    return { token: str(r.token, 'token'), expiresAt: typeof r.expires_at === 'string' ? r.expires_at : '' };
  }

  // ---------------------------------------------------------- directory

  async registerUser(
    token: string,
    user: string,
    identity: Uint8Array,
    deviceRecord: Uint8Array,
    mlsBinding: Uint8Array,
  ): Promise<void> {
    await this.#json({
      method: 'POST',
      path: `/v1/e2ee/users/${enc(user)}`,
      token,
      json: {
        identity: base64Encode(identity),
        device_record: base64Encode(deviceRecord),
        mls_binding: base64Encode(mlsBinding),
      },
    });
  }

  async addDevice(
    token: string,
    user: string,
    deviceRecord: Uint8Array,
    mlsBinding: Uint8Array,
  ): Promise<void> {
    await this.#json({
      method: 'POST',
      path: `/v1/e2ee/users/${enc(user)}/devices`,
      token,
      json: { device_record: base64Encode(deviceRecord), mls_binding: base64Encode(mlsBinding) },
    });
  }

  async revokeDevice(token: string, user: string, revocation: Uint8Array): Promise<void> {
    await this.#json({
      method: 'POST',
      path: `/v1/e2ee/users/${enc(user)}/revocations`,
      token,
      json: { revocation: base64Encode(revocation) },
    });
  }

  async userEntries(token: string, user: string): Promise<UserEntriesJson> {
    const r = await this.#json({ method: 'GET', path: `/v1/e2ee/users/${enc(user)}`, token });
    return {
      user: str(r.user, 'user'),
      checkpoint: str(r.checkpoint, 'checkpoint'),
      entries: arr(r.entries, 'entries').map((e, i) => {
        const o = obj(e, `entries[${i}]`);
        return {
          index: int(o.index, 'index'),
          entry: b64(o.entry, 'entry'),
          proof: arr(o.proof, 'proof').map((p) => b64(p, 'proof')),
        };
      }),
    };
  }

  async publishKeyPackages(
    token: string,
    user: string,
    device: string,
    keyPackages: readonly Uint8Array[],
    lastResort?: Uint8Array,
  ): Promise<void> {
    await this.#json({
      method: 'POST',
      path: `/v1/e2ee/users/${enc(user)}/devices/${enc(device)}/key-packages`,
      token,
      json: {
        key_packages: keyPackages.map(base64Encode),
        ...(lastResort === undefined ? {} : { last_resort: base64Encode(lastResort) }),
      },
    });
  }

  async claimKeyPackages(token: string, user: string): Promise<ClaimedKeyPackage[]> {
    const r = await this.#json({
      method: 'POST',
      path: `/v1/e2ee/users/${enc(user)}/key-packages/claim`,
      token,
      json: {},
    });
    return arr(r.key_packages, 'key_packages').map((e) => {
      const o = obj(e, 'key package');
      return {
        device: str(o.device, 'device'),
        keyPackage: b64(o.key_package, 'key_package'),
        lastResort: o.last_resort === true,
      };
    });
  }

  /** `PUT /v1/e2ee/users/:user/recovery-blob`: the user's recovery backup, ciphertext only. */
  async putRecoveryBlob(token: string, user: string, blob: Uint8Array): Promise<void> {
    await this.#json({
      method: 'PUT',
      path: `/v1/e2ee/users/${enc(user)}/recovery-blob`,
      token,
      json: { blob: base64Encode(blob) },
    });
  }

  async getRecoveryBlob(token: string, user: string): Promise<Uint8Array> {
    const r = await this.#json({ method: 'GET', path: `/v1/e2ee/users/${enc(user)}/recovery-blob`, token });
    return b64(r.blob, 'blob');
  }

  // ---------------------------------------------------------------- log

  async checkpoint(): Promise<string> {
    const res = await this.#send({ method: 'GET', path: '/v1/e2ee/log/checkpoint' });
    return utf8Decode(res.body);
  }

  async consistencyProof(token: string, from: number, to: number): Promise<Uint8Array[]> {
    const r = await this.#json({
      method: 'GET',
      path: `/v1/e2ee/log/proof/consistency?from=${from}&to=${to}`,
      token,
    });
    return arr(r.proof, 'proof').map((p) => b64(p, 'proof'));
  }

  async logEntries(token: string, start: number, end: number): Promise<Uint8Array[]> {
    const r = await this.#json({
      method: 'GET',
      path: `/v1/e2ee/log/entries?start=${start}&end=${end}`,
      token,
    });
    return arr(r.entries, 'entries').map((p) => b64(p, 'entry'));
  }

  // -------------------------------------------------------------- relay

  async createGroup(token: string, groupId: Uint8Array, roster: readonly DeviceAddress[]): Promise<void> {
    await this.#json({
      method: 'POST',
      path: '/v1/e2ee/groups',
      token,
      json: { group_id: groupPathId(groupId), roster },
    });
  }

  async postCommit(
    token: string,
    groupId: Uint8Array,
    body: {
      epoch: number;
      commit: Uint8Array;
      roster: readonly DeviceAddress[];
      welcome?: { frame: Uint8Array; recipients: readonly DeviceAddress[] };
    },
  ): Promise<{ epoch: number; seq: number }> {
    const r = await this.#json({
      method: 'POST',
      path: `/v1/e2ee/groups/${groupPathId(groupId)}/commits`,
      token,
      json: {
        epoch: body.epoch,
        commit: base64Encode(body.commit),
        roster: body.roster,
        ...(body.welcome === undefined
          ? {}
          : { welcome: { frame: base64Encode(body.welcome.frame), recipients: body.welcome.recipients } }),
      },
    });
    return { epoch: int(r.epoch, 'epoch'), seq: typeof r.seq === 'number' ? r.seq : 0 };
  }

  async postMessage(token: string, groupId: Uint8Array, epoch: number, frame: Uint8Array): Promise<number> {
    const r = await this.#json({
      method: 'POST',
      path: `/v1/e2ee/groups/${groupPathId(groupId)}/messages`,
      token,
      json: { epoch, frame: base64Encode(frame) },
    });
    return typeof r.seq === 'number' ? r.seq : 0;
  }

  /**
   * `POST /v1/e2ee/messages`: several application messages (for one group or several) in one request. The
   * answer has one entry per message, in order: its seq, or the error the relay gave that message alone (the
   * others are queued all the same). At most 64 messages and 8 MiB of frames per call.
   */
  async postMessages(
    token: string,
    messages: readonly { groupId: Uint8Array; epoch: number; frame: Uint8Array }[],
  ): Promise<PostedMessage[]> {
    const r = await this.#json({
      method: 'POST',
      path: '/v1/e2ee/messages',
      token,
      json: {
        messages: messages.map((m) => ({
          group_id: groupPathId(m.groupId),
          epoch: m.epoch,
          frame: base64Encode(m.frame),
        })),
      },
    });
    const results = arr(r.results, 'results');
    if (results.length !== messages.length) throw malformed('results', 'one result per message expected');
    return results.map((e, i) => {
      const o = obj(e, `results[${i}]`);
      if (o.seq !== undefined) return { seq: int(o.seq, 'seq') };
      const status = typeof o.status === 'number' && o.status >= 400 ? o.status : 400;
      return { error: errorOf(status, { errors: [str(o.error, 'error')] }) };
    });
  }

  async commitsAfter(token: string, groupId: Uint8Array, afterEpoch: number): Promise<AcceptedCommit[]> {
    const r = await this.#json({
      method: 'GET',
      path: `/v1/e2ee/groups/${groupPathId(groupId)}/commits?after_epoch=${afterEpoch}`,
      token,
    });
    return arr(r.commits, 'commits').map((e) => {
      const o = obj(e, 'commit');
      return {
        epoch: int(o.epoch, 'epoch'),
        frame: b64(o.frame ?? o.commit, 'frame'),
        ...(o.sender === undefined ? {} : { sender: address(o.sender, 'sender') }),
      };
    });
  }

  /**
   * `GET /v1/e2ee/inbox`: asks for the binary answer (docs/e2ee-service.md: frames as raw bytes, a third
   * fewer bytes than base64 JSON) and still reads a JSON answer, which is what a relay without it sends.
   */
  async inbox(token: string, after: number, waitSeconds = 0): Promise<InboxMessage[]> {
    const res = await this.#send({
      method: 'GET',
      path: `/v1/e2ee/inbox?after=${after}&wait=${waitSeconds}&format=binary`,
      token,
      timeoutMs: (waitSeconds + 30) * 1000,
    });
    if (res.contentType.split(';')[0]!.trim().toLowerCase() === INBOX_MEDIA_TYPE)
      return decodeInboxAnswer(res.body).map((m) => ({
        seq: m.seq,
        groupId: m.groupId,
        epoch: m.epoch,
        kind: m.kind,
        sender: { user: m.sender.user, device: m.sender.device },
        frame: m.frame,
      }));
    const r = obj(parseJson(res), 'answer of GET /v1/e2ee/inbox');
    return arr(r.messages, 'messages').map((e) => {
      const o = obj(e, 'message');
      const kind = str(o.kind, 'kind');
      if (kind !== 'commit' && kind !== 'welcome' && kind !== 'application')
        throw malformed('inbox message', 'unknown kind');
      return {
        seq: int(o.seq, 'seq'),
        groupId: str(o.group_id, 'group_id'),
        epoch: int(o.epoch, 'epoch'),
        kind,
        sender: address(o.sender, 'sender'),
        frame: b64(o.frame, 'frame'),
      };
    });
  }

  async ack(token: string, upTo: number): Promise<void> {
    await this.#json({ method: 'POST', path: '/v1/e2ee/inbox/ack', token, json: { up_to: upTo } });
  }

  // -------------------------------------------------------------- blobs

  async createBlob(token: string, groupId: Uint8Array): Promise<string> {
    const r = await this.#json({
      method: 'POST',
      path: `/v1/e2ee/groups/${groupPathId(groupId)}/blobs`,
      token,
      json: {},
    });
    return str(r.blob_id, 'blob_id');
  }

  async putChunk(token: string, blobId: string, n: number, bytes: Uint8Array): Promise<void> {
    await this.#send({ method: 'PUT', path: `/v1/e2ee/blobs/${enc(blobId)}/chunks/${n}`, token, bytes });
  }

  async completeBlob(token: string, blobId: string, chunks: number): Promise<void> {
    await this.#json({
      method: 'POST',
      path: `/v1/e2ee/blobs/${enc(blobId)}/complete`,
      token,
      json: { chunks },
    });
  }

  async blobInfo(token: string, blobId: string): Promise<{ chunks: number; size: number }> {
    const r = await this.#json({ method: 'GET', path: `/v1/e2ee/blobs/${enc(blobId)}`, token });
    return { chunks: int(r.chunks, 'chunks'), size: int(r.size, 'size') };
  }

  async getChunk(token: string, blobId: string, n: number): Promise<Uint8Array> {
    return (await this.#send({ method: 'GET', path: `/v1/e2ee/blobs/${enc(blobId)}/chunks/${n}`, token }))
      .body;
  }
}
