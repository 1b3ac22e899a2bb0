/**
 * An in-process stand-in for the `/v1/e2ee` routes of docs/e2ee-service.md, as an E2eeTransport, so the client's
 * flows can be exercised before the real server exists. It keeps the contract's rules that the client depends on
 * (device tokens bound to one device, one-time key packages, first commit per epoch wins with 409 otherwise,
 * per-device queues, roster-checked blobs) and signs real checkpoints with a log key and one witness. It checks
 * few signatures: the client is the one that must not trust it. test/e2ee/e2ee-service.e2e.test.ts runs the same
 * flows against the real `enseal serve`.
 */
import {
  base64Decode,
  base64Encode,
  base64UrlEncode,
  randomBytes,
  utf8Decode,
  utf8Encode,
  verify,
} from '../../src/crypto/index.js';
import {
  MemoryLeafSource,
  Witness,
  addSignatures,
  consistencyProof,
  decodeDeviceRecord,
  decodeDeviceRevocation,
  decodeDirectoryEntry,
  ed25519CosignatureVerifier,
  ed25519Cosigner,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  encodeDirectoryEntry,
  formatAddCheckpointRequest,
  formatVerifierKey,
  generateIdentityKey,
  inclusionProof,
  leafHash,
  parseAddCheckpointRequest,
  parseNote,
  signCheckpoint,
  treeRoot,
  SignatureType,
  type E2eeRequest,
  type E2eeResponse,
  type E2eeTransport,
  type PinnedLogPolicy,
} from '../../src/e2ee/index.js';

export const FAKE_ORIGIN = 'fake.example/enseal-e2ee';
export const APP_TOKEN = 'app-token';
const LOGIN_CONTEXT = 'enseal e2ee device login v1\n';

interface Queued {
  seq: number;
  group_id: string;
  epoch: number;
  kind: 'commit' | 'welcome' | 'application';
  sender: { user: string; device: string };
  frame: string;
  received_at: string;
}

interface Group {
  epoch: number;
  roster: { user: string; device: string }[];
  commits: { epoch: number; frame: string; sender: { user: string; device: string } }[];
}

function json(status: number, body: unknown): E2eeResponse {
  return { status, contentType: 'application/json', body: utf8Encode(JSON.stringify(body)) };
}
function err(status: number, code: string, extra: Record<string, unknown> = {}): E2eeResponse {
  return json(status, { errors: [`${code}: refused`], ...extra });
}

function string8(s: string): Uint8Array {
  const b = utf8Encode(s);
  return Uint8Array.of(b.length, ...b);
}

export class FakeE2eeService implements E2eeTransport {
  readonly #logKey = generateIdentityKey();
  readonly #signer = ed25519NoteSigner(FAKE_ORIGIN, this.#logKey.privateKey);
  readonly #cosigner = ed25519Cosigner('witness.example/w0', generateIdentityKey().privateKey);
  readonly #witness = new Witness({
    cosigner: this.#cosigner,
    logs: new Map([[FAKE_ORIGIN, [ed25519NoteVerifier(FAKE_ORIGIN, this.#signer.publicKey)]]]),
  });
  #witnessSize = 0;
  readonly leaves = new MemoryLeafSource();
  readonly entries: Uint8Array[] = [];
  readonly #byUser = new Map<string, number[]>();
  #note = '';
  readonly #challenges = new Map<string, string>();
  readonly #tokens = new Map<string, { user: string; device: string }>();
  readonly #kps = new Map<string, { oneTime: string[]; lastResort?: string }>();
  readonly #groups = new Map<string, Group>();
  readonly #queues = new Map<string, Queued[]>();
  #seq = 0;
  readonly #blobs = new Map<string, { group: string; chunks: Map<number, Uint8Array>; complete?: number }>();
  readonly #recovery = new Map<string, string>();
  /** Commits refused with 409 (lost epoch races). */
  conflicts = 0;
  /** Every request, for tests that look at what the relay saw. */
  readonly seen: E2eeRequest[] = [];
  /** Set to make the next request fail as if the network dropped it (after the service processed it, if `after`). */
  failNext: { after: boolean; path: RegExp } | undefined;

  get policy(): PinnedLogPolicy {
    return {
      origin: FAKE_ORIGIN,
      logKey: formatVerifierKey(FAKE_ORIGIN, SignatureType.ED25519, this.#signer.publicKey),
      witnesses: [
        formatVerifierKey(this.#cosigner.name, SignatureType.COSIGNATURE_V1, this.#cosigner.publicKey),
      ],
      quorum: 1,
    };
  }

  /** Verifier of the witness (tests of quorum). */
  get witnessVerifier() {
    return ed25519CosignatureVerifier(this.#cosigner.name, this.#cosigner.publicKey);
  }

  /** Every byte the service stores, for searching it for plaintexts and keys. */
  dump(): Uint8Array {
    const parts: string[] = [
      JSON.stringify([...this.#queues.values()]),
      JSON.stringify([...this.#groups.values()]),
    ];
    for (const b of this.#blobs.values()) for (const c of b.chunks.values()) parts.push(base64Encode(c));
    parts.push(JSON.stringify([...this.#recovery.values()]), JSON.stringify([...this.#kps.values()]));
    const bytes = [utf8Encode(parts.join('\n')), ...this.entries];
    for (const b of this.#blobs.values()) bytes.push(...b.chunks.values());
    let n = 0;
    for (const b of bytes) n += b.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const b of bytes) {
      out.set(b, o);
      o += b.length;
    }
    return out;
  }

  async #append(leaf: Uint8Array, user: string): Promise<number> {
    const index = this.entries.length;
    this.entries.push(leaf);
    this.leaves.append(leafHash(leaf));
    const list = this.#byUser.get(user) ?? [];
    list.push(index);
    this.#byUser.set(user, list);
    await this.#sign();
    return index;
  }

  async #sign(): Promise<void> {
    const size = this.entries.length;
    const cp = { origin: FAKE_ORIGIN, size, rootHash: await treeRoot(this.leaves, size), extensions: [] };
    const note = signCheckpoint(cp, [this.#signer]);
    const proof = this.#witnessSize === 0 ? [] : await consistencyProof(this.leaves, this.#witnessSize, size);
    const lines = await this.#witness.addCheckpoint(
      parseAddCheckpointRequest(
        formatAddCheckpointRequest({ oldSize: this.#witnessSize, proof, checkpoint: note }),
      ),
    );
    this.#witnessSize = size;
    this.#note = addSignatures(note, parseNote(`x\n\n${lines}`).signatures);
  }

  #validDevices(user: string): Map<string, Uint8Array> {
    const devices = new Map<string, Uint8Array>();
    for (const i of this.#byUser.get(user) ?? []) {
      const leaf = decodeDirectoryEntry(this.entries[i]!);
      if (leaf.kind === 'device-added') devices.set(leaf.record.deviceId, leaf.record.deviceKey);
      if (leaf.kind === 'device-revoked') devices.delete(leaf.revocation.deviceId);
    }
    return devices;
  }

  #push(user: string, device: string, m: Omit<Queued, 'seq' | 'received_at'>): void {
    const key = `${user}/${device}`;
    const q = this.#queues.get(key) ?? [];
    q.push({ ...m, seq: ++this.#seq, received_at: new Date().toISOString() });
    this.#queues.set(key, q);
  }

  /** Appends a device record directly, as a compromised server would (tests of monitoring). */
  async injectLeaf(leaf: Uint8Array, user: string): Promise<void> {
    await this.#append(leaf, user);
  }

  async request(req: E2eeRequest): Promise<E2eeResponse> {
    this.seen.push(req);
    const fail = this.failNext;
    if (fail && fail.path.test(req.path)) {
      this.failNext = undefined;
      if (fail.after) await this.#handle(req);
      const { EnsealError, ErrorCode } = await import('../../src/crypto/index.js');
      throw new EnsealError(ErrorCode.IO, 'cannot reach the fake service');
    }
    return this.#handle(req);
  }

  async #handle(req: E2eeRequest): Promise<E2eeResponse> {
    const url = new URL(req.path, 'https://fake.example');
    const p = url.pathname.split('/').slice(3).map(decodeURIComponent); // after /v1/e2ee
    const body = (req.json ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const who = req.token === undefined ? undefined : this.#tokens.get(req.token);
    const app = req.token === APP_TOKEN;
    const route = `${req.method} ${p.map((s, i) => (i % 2 === 1 && p[0] !== 'log' && p[0] !== 'auth' ? ':' : s)).join('/')}`;
    switch (route) {
      case 'POST auth/challenge': {
        const c = base64Encode(randomBytes(32));
        this.#challenges.set(`${body.user}/${body.device}`, c);
        return json(200, { challenge: c, expires_at: new Date(Date.now() + 60_000).toISOString() });
      }
      case 'POST auth/login': {
        const key = `${body.user}/${body.device}`;
        const c = this.#challenges.get(key);
        this.#challenges.delete(key);
        const deviceKey = this.#validDevices(body.user).get(body.device);
        if (c === undefined || c !== body.challenge || deviceKey === undefined)
          return err(403, 'ERR_PERMISSION_DENIED');
        const msg = new Uint8Array([
          ...utf8Encode(LOGIN_CONTEXT),
          ...string8(FAKE_ORIGIN),
          ...string8(body.user),
          ...string8(body.device),
          ...base64Decode(c),
        ]);
        if (!verify('ed25519', deviceKey, msg, base64Decode(body.signature)))
          return err(403, 'ERR_PERMISSION_DENIED');
        const token = base64Encode(randomBytes(16));
        this.#tokens.set(token, { user: body.user, device: body.device });
        return json(200, { token, expires_at: new Date(Date.now() + 3600_000).toISOString() });
      }
      case 'GET log/checkpoint':
        return { status: 200, contentType: 'text/plain', body: utf8Encode(this.#note) };
      case 'GET log/proof/consistency': {
        const from = Number(url.searchParams.get('from'));
        const to = Number(url.searchParams.get('to'));
        return json(200, { proof: (await consistencyProof(this.leaves, from, to)).map(base64Encode) });
      }
    }
    if (p[0] === 'users') {
      const user = p[1]!;
      const sameUser = who !== undefined && who.user === user;
      if (req.method === 'POST' && p.length === 2) {
        if (!app) return err(403, 'ERR_PERMISSION_DENIED');
        if (this.#byUser.has(user)) return err(400, 'ERR_KEY_EXISTS');
        const ib = base64Decode(body.identity);
        const time = Math.floor(Date.now() / 1000);
        const idLeaf = new Uint8Array([1, 5, ...string8(user), 0, 0, 0, 0, ...u32(time), ...ib]);
        decodeDirectoryEntry(idLeaf);
        await this.#append(idLeaf, user);
        await this.#appendDevice(
          user,
          base64Decode(body.device_record),
          base64Decode(body.mls_binding),
          time,
        );
        return json(200, { indexes: [], checkpoint: this.#note });
      }
      if (req.method === 'GET' && p.length === 2) {
        if (!app && who === undefined) return err(403, 'ERR_PERMISSION_DENIED');
        const size = this.entries.length;
        const entries = [];
        for (const index of this.#byUser.get(user) ?? []) {
          entries.push({
            index,
            entry: base64Encode(this.entries[index]!),
            proof: (await inclusionProof(this.leaves, index, size)).map(base64Encode),
          });
        }
        if (entries.length === 0) return err(404, 'ERR_KEY_NOT_FOUND');
        return json(200, { user, checkpoint: this.#note, entries });
      }
      if (req.method === 'POST' && p[2] === 'devices' && p.length === 3) {
        if (!app && !sameUser) return err(403, 'ERR_PERMISSION_DENIED');
        await this.#appendDevice(
          user,
          base64Decode(body.device_record),
          base64Decode(body.mls_binding),
          Math.floor(Date.now() / 1000),
        );
        return json(200, { indexes: [], checkpoint: this.#note });
      }
      if (req.method === 'POST' && p[2] === 'revocations') {
        if (!app && !sameUser) return err(403, 'ERR_PERMISSION_DENIED');
        const revocation = decodeDeviceRevocation(base64Decode(body.revocation));
        await this.#append(
          encodeDirectoryEntry({
            kind: 'device-revoked',
            userId: user,
            time: revocation.revokedAt,
            revocation,
          }),
          user,
        );
        for (const [t, w] of this.#tokens)
          if (w.user === user && w.device === revocation.deviceId) this.#tokens.delete(t);
        return json(200, { index: this.entries.length - 1, checkpoint: this.#note });
      }
      if (p[2] === 'recovery-blob') {
        // As the service: written only by a device of the user, read also with an application token.
        if (req.method === 'PUT') {
          if (!sameUser) return err(403, 'ERR_PERMISSION_DENIED');
          const size = base64Decode(body.blob).length;
          if (size === 0 || size > 16 * 1024) return err(400, 'ERR_INVALID_ARGUMENT');
          this.#recovery.set(user, body.blob);
          return json(200, { size });
        }
        if (!app && !sameUser) return err(403, 'ERR_PERMISSION_DENIED');
        const blob = this.#recovery.get(user);
        return blob === undefined ? err(404, 'ERR_E2EE_NOT_FOUND') : json(200, { blob });
      }
      if (req.method === 'POST' && p[2] === 'devices' && p[4] === 'key-packages') {
        if (who === undefined || who.user !== user || who.device !== p[3])
          return err(403, 'ERR_PERMISSION_DENIED');
        const kp = this.#kps.get(`${user}/${p[3]}`) ?? { oneTime: [] };
        kp.oneTime.push(...(body.key_packages as string[]));
        if (body.last_resort) kp.lastResort = body.last_resort;
        this.#kps.set(`${user}/${p[3]}`, kp);
        return json(200, { stored: body.key_packages.length });
      }
      if (req.method === 'POST' && p[2] === 'key-packages' && p[3] === 'claim') {
        if (who === undefined) return err(403, 'ERR_PERMISSION_DENIED');
        const out = [];
        for (const device of this.#validDevices(user).keys()) {
          const kp = this.#kps.get(`${user}/${device}`);
          if (!kp) continue;
          const one = kp.oneTime.shift();
          if (one) out.push({ device, key_package: one, last_resort: false });
          else if (kp.lastResort) out.push({ device, key_package: kp.lastResort, last_resort: true });
        }
        return json(200, { key_packages: out });
      }
    }
    if (who === undefined) return err(403, 'ERR_PERMISSION_DENIED');
    const member = (g: Group | undefined) =>
      g !== undefined && g.roster.some((r) => r.user === who.user && r.device === who.device);
    if (req.method === 'POST' && p[0] === 'groups' && p.length === 1) {
      if (
        !body.roster.some(
          (r: { user: string; device: string }) => r.user === who.user && r.device === who.device,
        )
      )
        return err(400, 'ERR_INVALID_ARGUMENT');
      this.#groups.set(body.group_id, { epoch: 0, roster: body.roster, commits: [] });
      return json(200, { epoch: 0 });
    }
    if (p[0] === 'groups') {
      const gid = p[1]!;
      const g = this.#groups.get(gid);
      if (!member(g)) return err(403, 'ERR_PERMISSION_DENIED');
      if (req.method === 'POST' && p[2] === 'commits') {
        if (body.epoch !== g!.epoch) {
          this.conflicts++;
          return err(409, 'ERR_INVALID_STATE', { epoch: g!.epoch });
        }
        const old = g!.roster;
        g!.epoch = body.epoch + 1;
        g!.roster = body.roster;
        g!.commits.push({ epoch: body.epoch, frame: body.commit, sender: who });
        const all = new Map<string, { user: string; device: string }>();
        for (const r of [...old, ...body.roster]) all.set(`${r.user}/${r.device}`, r);
        const added = new Set(
          (body.welcome?.recipients ?? []).map(
            (r: { user: string; device: string }) => `${r.user}/${r.device}`,
          ),
        );
        for (const [k, r] of all) {
          if (r.user === who.user && r.device === who.device) continue;
          if (added.has(k)) continue;
          this.#push(r.user, r.device, {
            group_id: gid,
            epoch: body.epoch,
            kind: 'commit',
            sender: who,
            frame: body.commit,
          });
        }
        for (const r of body.welcome?.recipients ?? [])
          this.#push(r.user, r.device, {
            group_id: gid,
            epoch: body.epoch + 1,
            kind: 'welcome',
            sender: who,
            frame: body.welcome.frame,
          });
        return json(200, { epoch: g!.epoch, seq: this.#seq });
      }
      if (req.method === 'GET' && p[2] === 'commits') {
        const after = Number(url.searchParams.get('after_epoch'));
        return json(200, { commits: g!.commits.filter((c) => c.epoch >= after) });
      }
      if (req.method === 'POST' && p[2] === 'messages') {
        for (const r of g!.roster) {
          if (r.user === who.user && r.device === who.device) continue;
          this.#push(r.user, r.device, {
            group_id: gid,
            epoch: body.epoch,
            kind: 'application',
            sender: who,
            frame: body.frame,
          });
        }
        return json(200, { seq: this.#seq });
      }
      if (req.method === 'POST' && p[2] === 'blobs') {
        const id = base64UrlEncode(randomBytes(16));
        this.#blobs.set(id, { group: gid, chunks: new Map() });
        return json(200, { blob_id: id });
      }
    }
    if (p[0] === 'blobs') {
      const blob = this.#blobs.get(p[1]!);
      if (blob === undefined) return err(404, 'ERR_KEY_NOT_FOUND');
      if (!member(this.#groups.get(blob.group))) return err(403, 'ERR_PERMISSION_DENIED');
      if (req.method === 'PUT' && p[2] === 'chunks') {
        blob.chunks.set(Number(p[3]), req.bytes!.slice());
        return json(200, {});
      }
      if (req.method === 'POST' && p[2] === 'complete') {
        blob.complete = body.chunks;
        return json(200, {});
      }
      if (req.method === 'GET' && p.length === 2) {
        let size = 0;
        for (const c of blob.chunks.values()) size += c.length;
        return json(200, { chunks: blob.complete ?? 0, size });
      }
      if (req.method === 'GET' && p[2] === 'chunks') {
        const c = blob.chunks.get(Number(p[3]));
        return c === undefined
          ? err(404, 'ERR_KEY_NOT_FOUND')
          : { status: 200, contentType: 'application/octet-stream', body: c };
      }
    }
    if (req.method === 'GET' && p[0] === 'inbox') {
      const after = Number(url.searchParams.get('after'));
      const q = this.#queues.get(`${who.user}/${who.device}`) ?? [];
      return json(200, { messages: q.filter((m) => m.seq > after) });
    }
    if (req.method === 'POST' && p[0] === 'inbox' && p[1] === 'ack') {
      const key = `${who.user}/${who.device}`;
      this.#queues.set(
        key,
        (this.#queues.get(key) ?? []).filter((m) => m.seq > body.up_to),
      );
      return json(200, {});
    }
    return err(404, 'ERR_KEY_NOT_FOUND');
  }

  async #appendDevice(
    user: string,
    recordBytes: Uint8Array,
    binding: Uint8Array,
    time: number,
  ): Promise<void> {
    const record = decodeDeviceRecord(recordBytes);
    await this.#append(encodeDirectoryEntry({ kind: 'device-added', userId: user, time, record }), user);
    // binding body: string8 device || opaque8 key || 64-byte signature
    const dlen = binding[0]!;
    const deviceId = utf8Decode(binding.subarray(1, 1 + dlen));
    const klen = binding[1 + dlen]!;
    const mlsSignatureKey = binding.slice(2 + dlen, 2 + dlen + klen);
    const signature = binding.slice(2 + dlen + klen);
    await this.#append(
      encodeDirectoryEntry({
        kind: 'mls-signature-key',
        userId: user,
        time,
        binding: { deviceId, mlsSignatureKey, signature },
      }),
      user,
    );
  }
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}
