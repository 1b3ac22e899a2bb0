/**
 * The e2ee client's pieces that need no server: relay frames, the encrypted state (and its crash safety in
 * SQLite), streamed file encryption in bounded memory, identity recovery, and the typed rejections of the
 * directory verification (missing or forged proofs, substituted key packages, devices not signed by their user)
 * and of replayed messages.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ErrorCode,
  randomBytes,
  sha256,
  signingPublicKey,
  utf8Decode,
  utf8Encode,
} from '../../src/crypto/index.js';
import {
  DirectoryVerifier,
  E2eeApi,
  EncryptedState,
  MemoryStateBackend,
  MlsClient,
  decodeFrame,
  decryptFileStream,
  deviceCredential,
  encodeDeviceRecord,
  encodeDirectoryEntry,
  encodeFrame,
  encryptFileStream,
  frameBucket,
  generateFileKey,
  generateIdentityKey,
  formatVerifierKey,
  SignatureType,
  logPolicyFrom,
  backupIdentityKey,
  combineIdentityShares,
  restoreIdentityKey,
  signDeviceRecord,
  signMlsKeyBinding,
  splitIdentityKey,
  unwrapFileKey,
  verifyUserEntries,
  wrapFileKey,
  type UserEntriesJson,
} from '../../src/e2ee/index.js';
import { SqliteStateBackend } from '../../src/client/index.js';
import { buildOnce } from '../helpers/cli.js';
import { asyncCodeOf, codeOf } from '../helpers/errors.js';
import { APP_TOKEN, FakeE2eeService } from '../helpers/e2ee-fake-service.js';

/** The child process runs the built package (npm test builds it first). */
const DIST = fileURLToPath(new URL('../../dist', import.meta.url));
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'e2ee-state-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('relay frames', () => {
  it('pads to buckets and decodes strictly', () => {
    expect(frameBucket(0)).toBe(256);
    expect(frameBucket(252)).toBe(256);
    expect(frameBucket(253)).toBe(512);
    expect(frameBucket(4 * 1024 * 1024 - 4)).toBe(4 * 1024 * 1024);
    expect(codeOf(() => frameBucket(4 * 1024 * 1024 - 3))).toBe(ErrorCode.INVALID_ARGUMENT);
    const f = encodeFrame(utf8Encode('hello'));
    expect(f.length).toBe(256);
    expect(utf8Decode(decodeFrame(f))).toBe('hello');
    const padded = f.slice();
    padded[200] = 1;
    expect(codeOf(() => decodeFrame(padded))).toBe(ErrorCode.MALFORMED);
    expect(codeOf(() => decodeFrame(f.subarray(0, 255)))).toBe(ErrorCode.MALFORMED);
    const overrun = f.slice();
    overrun[2] = 1; // length 256 + 5
    expect(codeOf(() => decodeFrame(overrun))).toBe(ErrorCode.MALFORMED);
  });

  it('round-trips any message and never crashes on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (m) => {
        expect(decodeFrame(encodeFrame(m))).toEqual(m);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 1024 }), (junk) => {
        const c = codeOf(() => decodeFrame(junk));
        expect(['no error', ErrorCode.MALFORMED]).toContain(c);
      }),
    );
  });
});

describe('encrypted client state', () => {
  it('seals every record under the state key, bound to its name', async () => {
    const backend = new MemoryStateBackend();
    const key = randomBytes(32);
    const state = await EncryptedState.open(backend, { key });
    await state
      .transaction()
      .put('group/a', utf8Encode('group secret state'))
      .putJson('cursor', { seq: 3 })
      .commit();
    expect(utf8Decode((await state.get('group/a'))!)).toBe('group secret state');
    for (const v of backend.dump()) expect(Buffer.from(v).includes(Buffer.from('group secret'))).toBe(false);
    // A record moved to another name does not open.
    const sealed = (await backend.get('group/a'))!;
    await backend.commit(new Map([['group/b', sealed]]), []);
    expect(await asyncCodeOf(state.get('group/b'))).toBe(ErrorCode.DECRYPT_FAILED);
    // The wrong key is refused before anything is written.
    expect(await asyncCodeOf(EncryptedState.open(backend, { key: randomBytes(32) }))).toBe(
      ErrorCode.DECRYPT_FAILED,
    );
  });

  it('derives the key from a passphrase (Argon2id, salt kept in plaintext metadata)', async () => {
    const backend = new MemoryStateBackend();
    const params = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
    const a = await EncryptedState.open(backend, { passphrase: 'correct horse', params });
    await a.transaction().putJson('x', 1).commit();
    const b = await EncryptedState.open(backend, { passphrase: 'correct horse' });
    expect(await b.getJson('x')).toBe(1);
    expect(await asyncCodeOf(EncryptedState.open(backend, { passphrase: 'wrong horse' }))).toBe(
      ErrorCode.DECRYPT_FAILED,
    );
  });

  it('SQLite: a transaction that fails midway leaves the previous state whole', async () => {
    const path = join(tempDir(), 'state.db');
    let failOn: string | undefined;
    const backend = new SqliteStateBackend({
      path,
      beforeWrite: (name) => {
        if (name === failOn) throw new Error('simulated crash');
      },
    });
    const state = await EncryptedState.open(backend, { key: new Uint8Array(32).fill(7) });
    await state
      .transaction()
      .put('group/g', utf8Encode('epoch 1'))
      .put('kp/k1', utf8Encode('kp secret'))
      .putJson('cursor', { seq: 1 })
      .commit();
    failOn = 'cursor';
    await expect(
      state
        .transaction()
        .put('group/g', utf8Encode('epoch 2'))
        .delete('kp/k1')
        .putJson('cursor', { seq: 2 })
        .commit(),
    ).rejects.toThrow('simulated crash');
    expect(utf8Decode((await state.get('group/g'))!)).toBe('epoch 1');
    expect(utf8Decode((await state.get('kp/k1'))!)).toBe('kp secret');
    expect(await state.getJson('cursor')).toEqual({ seq: 1 });
    failOn = undefined;
    await state
      .transaction()
      .put('group/g', utf8Encode('epoch 2'))
      .delete('kp/k1')
      .putJson('cursor', { seq: 2 })
      .commit();
    expect(await state.get('kp/k1')).toBeUndefined();
    await state.close();
  });

  it('SQLite: a process killed inside the transaction leaves the previous state whole', async () => {
    buildOnce();
    const path = join(tempDir(), 'state.db');
    const key = new Uint8Array(32).fill(9);
    const state = await EncryptedState.open(new SqliteStateBackend({ path }), { key });
    await state
      .transaction()
      .put('group/g', utf8Encode('epoch 1'))
      .put('kp/k1', utf8Encode('kp'))
      .putJson('cursor', { seq: 1 })
      .commit();
    await state.close();
    const script = `
      import { SqliteStateBackend } from ${JSON.stringify(DIST + '/client/index.js')};
      import { EncryptedState } from ${JSON.stringify(DIST + '/e2ee/index.js')};
      const backend = new SqliteStateBackend({ path: ${JSON.stringify(path)}, beforeWrite: (n) => { if (n === 'cursor') process.kill(process.pid, 'SIGKILL'); } });
      const state = await EncryptedState.open(backend, { key: new Uint8Array(32).fill(9) });
      await state.transaction().put('group/g', new TextEncoder().encode('epoch 2')).delete('kp/k1').putJson('cursor', { seq: 2 }).commit();
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: process.cwd(),
      encoding: 'utf8',
    });
    expect(child.signal).toBe('SIGKILL');
    const after = await EncryptedState.open(new SqliteStateBackend({ path }), { key });
    expect(utf8Decode((await after.get('group/g'))!)).toBe('epoch 1');
    expect(await after.get('kp/k1')).toBeDefined();
    expect(await after.getJson('cursor')).toEqual({ seq: 1 });
    await after.close();
    expect(readFileSync(path).includes(Buffer.from('epoch 1'))).toBe(false);
  });
});

describe('streamed files', () => {
  it('round-trips 20 MiB in bounded memory and rejects tampering', async () => {
    const key = generateFileKey();
    const total = 20 * 1024 * 1024;
    const block = 256 * 1024;
    // A deterministic generated input, never held whole.
    async function* input(): AsyncGenerator<Uint8Array> {
      for (let o = 0; o < total; o += block) {
        const b = new Uint8Array(block);
        for (let i = 0; i < block; i += 4096) b[i] = (o + i) & 0xff;
        b[0] = (o / block) & 0xff;
        yield b;
      }
    }
    const hashIn: Uint8Array[] = [];
    async function* tee(): AsyncGenerator<Uint8Array> {
      for await (const b of input()) {
        hashIn.push(sha256(b));
        yield b;
      }
    }
    const hashOut: Uint8Array[] = [];
    let pending = new Uint8Array(0);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const base = process.memoryUsage();
    let peak = 0;
    let n = 0;
    const samples: number[] = [];
    for await (const plain of decryptFileStream(key, encryptFileStream(key, tee()))) {
      const joined = new Uint8Array(pending.length + plain.length);
      joined.set(pending);
      joined.set(plain, pending.length);
      let o = 0;
      for (; o + block <= joined.length; o += block) hashOut.push(sha256(joined.subarray(o, o + block)));
      pending = joined.slice(o);
      if (++n % 16 === 0) {
        // What is still referenced mid-stream, after a full collection: it must not grow with the input.
        gc();
        const m = process.memoryUsage();
        const used = m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers;
        samples.push(used);
        peak = Math.max(peak, used);
      }
    }
    expect(pending.length).toBe(0);
    expect(hashOut).toEqual(hashIn);
    // What stays referenced is a few parts and chunks (about 4 MiB here, with short peaks while a part is
    // handed over), far below the 20 MiB input or its ciphertext, and it does not grow along the stream.
    expect(n).toBeGreaterThan(300);
    expect(peak).toBeLessThan(16 * 1024 * 1024);
    const half = samples.length >> 1;
    expect(Math.min(...samples.slice(half))).toBeLessThanOrEqual(
      Math.min(...samples.slice(0, half)) + 1024 * 1024,
    );

    const parts: Uint8Array[] = [];
    for await (const p of encryptFileStream(key, [randomBytes(200_000)], 64 * 1024)) parts.push(p);
    const drain = async (ps: Uint8Array[]) => {
      for await (const _ of decryptFileStream(key, ps)) void _;
    };
    expect(await asyncCodeOf(drain(parts.slice(0, -1)))).toBe(ErrorCode.DECRYPT_FAILED); // truncated
    expect(await asyncCodeOf(drain([parts[1]!, parts[0]!, ...parts.slice(2)]))).toBe(
      ErrorCode.DECRYPT_FAILED,
    ); // reordered
    const bad = parts.map((p) => p.slice());
    bad[1]![10]! ^= 1;
    expect(await asyncCodeOf(drain(bad))).toBe(ErrorCode.DECRYPT_FAILED);
    expect(await asyncCodeOf(drain(parts))).toBe('no error');
  }, 120_000);

  it('binds the wrapped file key to its group, epoch, blob and size', () => {
    const wrapKey = randomBytes(32);
    const fileKey = generateFileKey();
    const ctx = { groupId: randomBytes(32), epoch: 4, blobId: 'b1', size: 100 };
    const wrapped = wrapFileKey(wrapKey, fileKey, ctx);
    expect(unwrapFileKey(wrapKey, wrapped, ctx)).toEqual(fileKey);
    expect(codeOf(() => unwrapFileKey(wrapKey, wrapped, { ...ctx, epoch: 5 }))).toBe(
      ErrorCode.DECRYPT_FAILED,
    );
    expect(codeOf(() => unwrapFileKey(wrapKey, wrapped, { ...ctx, blobId: 'b2' }))).toBe(
      ErrorCode.DECRYPT_FAILED,
    );
    expect(codeOf(() => unwrapFileKey(randomBytes(32), wrapped, ctx))).toBe(ErrorCode.DECRYPT_FAILED);
  });
});

describe('identity recovery', () => {
  const params = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
  it('passphrase backup round trip, checked against the directory key', async () => {
    const id = generateIdentityKey();
    const backup = await backupIdentityKey('alice', id.privateKey, 'long passphrase here', params);
    expect(backup).not.toContain(Buffer.from(id.privateKey).toString('base64'));
    expect(await restoreIdentityKey('alice', backup, 'long passphrase here', id.publicKey)).toEqual(
      id.privateKey,
    );
    expect(await asyncCodeOf(restoreIdentityKey('alice', backup, 'wrong passphrase', id.publicKey))).toBe(
      ErrorCode.DECRYPT_FAILED,
    );
    expect(
      await asyncCodeOf(restoreIdentityKey('mallory', backup, 'long passphrase here', id.publicKey)),
    ).toBe(ErrorCode.DECRYPT_FAILED);
    const other = generateIdentityKey();
    expect(
      await asyncCodeOf(restoreIdentityKey('alice', backup, 'long passphrase here', other.publicKey)),
    ).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
  });

  it('Shamir shares: any threshold rebuild it; too few or foreign shares are refused', async () => {
    const id = generateIdentityKey();
    const shares = await splitIdentityKey(id.privateKey, { shares: 5, threshold: 3 });
    expect(await combineIdentityShares([shares[4]!, shares[0]!, shares[2]!], id.publicKey)).toEqual(
      id.privateKey,
    );
    expect(await asyncCodeOf(combineIdentityShares([shares[0]!, shares[1]!], id.publicKey))).toBe(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
    );
    const foreign = await splitIdentityKey(generateIdentityKey().privateKey, { shares: 3, threshold: 2 });
    expect(await asyncCodeOf(combineIdentityShares([shares[0]!, foreign[1]!], id.publicKey))).toBe(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
    );
    expect(await asyncCodeOf(combineIdentityShares([shares[0]!, shares[0]!], id.publicKey))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
  });
});

describe('directory verification', () => {
  async function registered() {
    const fake = new FakeE2eeService();
    const api = new E2eeApi(fake);
    const { E2eeClient } = await import('../../src/e2ee/index.js');
    const state = await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) });
    const alice = await E2eeClient.register({
      transport: fake,
      state,
      user: 'alice',
      device: 'laptop',
      applicationToken: APP_TOKEN,
      policy: fake.policy,
    });
    return { fake, api, alice };
  }

  it('accepts a proved chain and rejects a missing or forged inclusion proof', async () => {
    const { fake, api } = await registered();
    const verifier = new DirectoryVerifier(logPolicyFrom(fake.policy));
    const answer = await api.userEntries(APP_TOKEN, 'alice');
    const cp = await verifier.accept(answer.checkpoint, api, APP_TOKEN);
    const user = verifyUserEntries('alice', answer, cp);
    expect([...user.devices.keys()]).toEqual(['laptop']);
    expect(user.mlsKeys.get('laptop')).toHaveLength(32);

    const noProof: UserEntriesJson = {
      ...answer,
      entries: answer.entries.map((e, i) => (i === 1 ? { ...e, proof: [] } : e)),
    };
    expect(codeOf(() => verifyUserEntries('alice', noProof, cp))).toBe(ErrorCode.E2EE_PROOF_INVALID);
    const forged: UserEntriesJson = {
      ...answer,
      entries: answer.entries.map((e, i) =>
        i === 2 ? { ...e, entry: e.entry.map((b, j) => (j === e.entry.length - 1 ? b ^ 1 : b)) } : e,
      ),
    };
    expect(codeOf(() => verifyUserEntries('alice', forged, cp))).toBe(ErrorCode.E2EE_PROOF_INVALID);
    expect(codeOf(() => verifyUserEntries('bob', answer, cp))).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
    // A checkpoint without the witness quorum is not accepted at all.
    const other = formatVerifierKey(
      'witness.example/w1',
      SignatureType.COSIGNATURE_V1,
      generateIdentityKey().publicKey,
    );
    const strict = new DirectoryVerifier(
      logPolicyFrom({ ...fake.policy, witnesses: [...fake.policy.witnesses, other], quorum: 2 }),
    );
    expect(await asyncCodeOf(strict.accept(answer.checkpoint, api, APP_TOKEN))).toBe(ErrorCode.E2EE_QUORUM);
    // A checkpoint signed by another log key is refused as well.
    const otherLog = formatVerifierKey(
      fake.policy.origin,
      SignatureType.ED25519,
      generateIdentityKey().publicKey,
    );
    const wrongLog = new DirectoryVerifier(logPolicyFrom({ ...fake.policy, logKey: otherLog }));
    expect(await asyncCodeOf(wrongLog.accept(answer.checkpoint, api, APP_TOKEN))).toBe(ErrorCode.E2EE_QUORUM);
  });

  it('rejects a device that the user did not sign, even when the log includes it', async () => {
    const { fake, api } = await registered();
    const rogue = generateIdentityKey();
    const record = signDeviceRecord(
      { userId: 'alice', deviceId: 'rogue', deviceKey: rogue.publicKey, createdAt: 1_800_000_000 },
      { kind: 'identity', privateKey: generateIdentityKey().privateKey }, // not alice's identity key
    );
    await fake.injectLeaf(
      encodeDirectoryEntry({ kind: 'device-added', userId: 'alice', time: 1, record }),
      'alice',
    );
    const verifier = new DirectoryVerifier(logPolicyFrom(fake.policy));
    expect(await asyncCodeOf(verifier.fetchUser('alice', api, APP_TOKEN))).toBe(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
    );
    void encodeDeviceRecord;
  });

  it('rejects a substituted key package: the MLS key is not the one the directory binds', async () => {
    const { fake, api } = await registered();
    const verifier = new DirectoryVerifier(logPolicyFrom(fake.policy));
    await verifier.fetchUser('alice', api, APP_TOKEN);
    const mls = await MlsClient.create({ authenticator: verifier.authenticator() });
    // The server (or anyone) makes a key package in alice's name with a key of its own.
    const forged = await mls.generateKeyPackage({ identity: deviceCredential('alice', 'laptop') });
    expect(await asyncCodeOf(mls.decodeKeyPackage(forged.message))).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
    // …or names a device that does not exist.
    const ghost = await mls.generateKeyPackage({ identity: deviceCredential('alice', 'ghost') });
    expect(await asyncCodeOf(mls.decodeKeyPackage(ghost.message))).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
    void signMlsKeyBinding;
    void signingPublicKey;
  });

  it('rejects replayed messages and accepts reordered ones within an epoch', async () => {
    const vouch = { authenticate: () => true };
    const mls = await MlsClient.create({ authenticator: vouch });
    const a = await mls.createGroup(
      randomBytes(32),
      await mls.generateKeyPackage({ identity: utf8Encode('a/1') }),
    );
    const bkp = await mls.generateKeyPackage({ identity: utf8Encode('b/1') });
    const pending = await a.addMembers([bkp.message]);
    let ga = pending.confirm();
    let gb = await mls.joinFromWelcome(pending.welcome!, bkp);
    const sent: Uint8Array[] = [];
    for (const text of ['one', 'two', 'three']) {
      const r = await ga.encrypt(utf8Encode(text));
      sent.push(r.message);
      ga = r.group;
    }
    const got: string[] = [];
    for (const i of [2, 0, 1]) {
      const r = await gb.process(sent[i]!);
      if (r.kind === 'application') got.push(utf8Decode(r.plaintext));
      gb = r.group;
    }
    expect(got).toEqual(['three', 'one', 'two']);
    expect(await asyncCodeOf(gb.process(sent[0]!))).toBe(ErrorCode.E2EE_MLS_REJECTED);
  });
});
