import { describe, expect, it } from 'vitest';
import { utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { KeyManager } from '../../src/kms/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
import { DAY, devManager, FakeClock, tempDir } from './helpers.js';
import { join } from 'node:path';
import { readFileSync, statSync } from 'node:fs';

describe('seal and unseal', () => {
  it('Shamir: 5 shares, threshold 3, any order, one at a time, with progress', async () => {
    const dir = tempDir();
    const km = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'db') }) });
    expect((await km.status()).initialized).toBe(false);
    const { shares } = await km.init();
    expect(shares).toHaveLength(5);
    expect(await asyncCodeOf(km.encrypt('k', utf8Encode('x')))).toBe('ERR_SEALED');
    expect(await asyncCodeOf(km.init())).toBe('ERR_INVALID_STATE');
    expect((await km.unseal(shares![4]!, { caller: 'alice' })).progress).toBe(1);
    expect((await km.unseal(shares![4]!)).progress).toBe(1); // the same share twice counts once
    expect((await km.unseal(shares![1]!, { caller: 'bob' })).progress).toBe(2);
    const done = await km.unseal(shares![2]!, { caller: 'carol' });
    expect(done.sealed).toBe(false);
    await km.createKey('k');
    const ct = await km.encrypt('k', utf8Encode('hello'));

    await km.seal();
    expect(await asyncCodeOf(km.decrypt('k', ct))).toBe('ERR_SEALED');
    for (const s of [shares![0]!, shares![3]!, shares![1]!]) await km.unseal(s);
    expect(utf8Decode(await km.decrypt('k', ct))).toBe('hello');
    await km.close();
  });

  it('a wrong share fails the unseal and resets progress', async () => {
    const dir = tempDir();
    const km = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'db') }) });
    const { shares } = await km.init({ shares: 3, threshold: 2 });
    const other = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'other') }) });
    const { shares: foreign } = await other.init({ shares: 3, threshold: 2 });
    await km.unseal(shares![0]!);
    // A share from another key manager with a different x-coordinate combines to garbage.
    const bad = foreign!.find((f) => f.slice(-4) !== shares![0]!.slice(-4))!;
    expect(await asyncCodeOf(km.unseal(bad))).toBe('ERR_UNSEAL_FAILED');
    expect((await km.status()).progress).toBe(0);
    expect(await asyncCodeOf(km.unseal('not a share'))).toBe('ERR_MALFORMED');
    await km.unseal(shares![2]!);
    expect((await km.unseal(shares![1]!)).sealed).toBe(false);
    // The failed attempts are recorded once the audit key is back.
    const entries = [];
    for await (const line of km.exportAudit()) entries.push(JSON.parse(line));
    expect(entries.find((e) => e.op === 'unseal').detail.failedAttemptsWhileSealed).toBeGreaterThan(0);
    await km.close();
    await other.close();
  });

  it('passphrase mode (Argon2id) and rekey to new shares without re-wrapping keys', async () => {
    const dir = tempDir();
    const km = await KeyManager.open({ store: SqliteStore.open({ path: join(dir, 'db') }) });
    const params = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
    await km.init({ type: 'passphrase', passphrase: 'correct horse battery', passphraseParams: params });
    expect(await asyncCodeOf(km.unsealWithPassphrase('wrong passphrase!!'))).toBe('ERR_UNSEAL_FAILED');
    await km.unsealWithPassphrase('correct horse battery');
    await km.createKey('k');
    const ct = await km.encrypt('k', utf8Encode('v'));
    expect(await asyncCodeOf(km.rekey({ passphrase: 'nope nope nope' }, { shares: 3, threshold: 2 }))).toBe(
      'ERR_UNSEAL_FAILED',
    );
    const { shares } = await km.rekey({ passphrase: 'correct horse battery' }, { shares: 3, threshold: 2 });
    await km.seal();
    expect(await asyncCodeOf(km.unsealWithPassphrase('correct horse battery'))).toBe('ERR_INVALID_STATE');
    await km.unseal(shares![0]!);
    await km.unseal(shares![2]!);
    expect(utf8Decode(await km.decrypt('k', ct))).toBe('v');
    // Root-key rotation keeps the shares working and every ciphertext readable.
    await km.rotateRootKey({ shares: [shares![1]!, shares![2]!] });
    await km.seal();
    await km.unseal(shares![1]!);
    await km.unseal(shares![0]!);
    expect(utf8Decode(await km.decrypt('k', ct))).toBe('v');
    await km.close();
  });

  it('dev mode keeps the unseal key in a 0600 file marked insecure', async () => {
    const { km, dir } = await devManager();
    const file = join(dir, 'dev-unseal.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/INSECURE/);
    await km.close();
  });
});

describe('named keys', () => {
  it('encrypts and decrypts with every symmetric type, binding associated data', async () => {
    const { km } = await devManager();
    for (const type of ['aes256-gcm96', 'chacha20-poly1305', 'xchacha20-poly1305'] as const) {
      await km.createKey(type, { type });
      const aad = utf8Encode('row 7');
      const ct = await km.encrypt(type, utf8Encode('secret'), { associatedData: aad });
      expect(ct).toMatch(/^vault:v1:/);
      expect(utf8Decode(await km.decrypt(type, ct, { associatedData: aad }))).toBe('secret');
      expect(await asyncCodeOf(km.decrypt(type, ct))).toBe('ERR_DECRYPT_FAILED');
      expect(await asyncCodeOf(km.decrypt(type, ct, { associatedData: utf8Encode('row 8') }))).toBe(
        'ERR_DECRYPT_FAILED',
      );
    }
    expect(await asyncCodeOf(km.createKey('aes256-gcm96'))).toBe('ERR_KEY_EXISTS');
    expect(await asyncCodeOf(km.encrypt('missing', utf8Encode('x')))).toBe('ERR_KEY_NOT_FOUND');
    await km.close();
  });

  it('enforces purpose: encryption keys cannot sign, signing keys cannot encrypt', async () => {
    const { km } = await devManager();
    await km.createKey('enc');
    await km.createKey('sig', { type: 'ed25519' });
    await km.createKey('mac', { type: 'hmac' });
    expect(await asyncCodeOf(km.sign('enc', utf8Encode('m')))).toBe('ERR_KEY_USAGE');
    expect(await asyncCodeOf(km.encrypt('sig', utf8Encode('m')))).toBe('ERR_KEY_USAGE');
    expect(await asyncCodeOf(km.hmac('sig', utf8Encode('m')))).toBe('ERR_KEY_USAGE');
    expect(await asyncCodeOf(km.encrypt('mac', utf8Encode('m')))).toBe('ERR_KEY_USAGE');
    expect(await asyncCodeOf(km.createKey('d', { type: 'ed25519', derived: true }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    await km.close();
  });

  it('signs and verifies with ed25519, ecdsa-p256 and rsa-2048; HMACs with hmac keys', async () => {
    const { km } = await devManager();
    const msg = utf8Encode('approve payment 42');
    for (const type of ['ed25519', 'ecdsa-p256', 'rsa-2048'] as const) {
      const info = await km.createKey(type, { type });
      expect(info.versions[0]!.publicKey).toBeTruthy();
      expect(info.autoRotatePeriodMs).toBe(90 * DAY);
      const sig = await km.sign(type, msg);
      expect(await km.verify(type, msg, sig)).toBe(true);
      expect(await km.verify(type, utf8Encode('approve payment 43'), sig)).toBe(false);
    }
    const rsaSig = await km.sign('rsa-2048', msg, { scheme: 'pkcs1v15' });
    expect(await km.verify('rsa-2048', msg, rsaSig, { scheme: 'pkcs1v15' })).toBe(true);
    await km.createKey('h', { type: 'hmac' });
    const mac = await km.hmac('h', msg);
    expect(await km.verifyHmac('h', msg, mac)).toBe(true);
    expect(await km.verifyHmac('h', utf8Encode('other'), mac)).toBe(false);
    await km.close();
  });

  it('rotates, honours min decryption/encryption versions, and trims', async () => {
    const { km } = await devManager();
    await km.createKey('k');
    const v1 = await km.encrypt('k', utf8Encode('one'));
    await km.rotateKey('k');
    const v2 = await km.encrypt('k', utf8Encode('two'));
    expect(v2).toMatch(/^vault:v2:/);
    expect(utf8Decode(await km.decrypt('k', v1))).toBe('one');
    const rewrapped = await km.rewrap('k', v1);
    expect(rewrapped).toMatch(/^vault:v2:/);
    expect(utf8Decode(await km.decrypt('k', rewrapped))).toBe('one');

    await km.updateKeyConfig('k', { minDecryptionVersion: 2 });
    expect(await asyncCodeOf(km.decrypt('k', v1))).toBe('ERR_DECRYPT_FAILED');
    expect(await asyncCodeOf(km.encrypt('k', utf8Encode('x'), { keyVersion: 1 }))).toBe('ERR_NOT_ALLOWED');
    expect(await asyncCodeOf(km.trimKey('k', 3))).toBe('ERR_NOT_ALLOWED');
    const trimmed = await km.trimKey('k', 2);
    expect(trimmed.versions.map((v) => v.version)).toEqual([2]);
    expect(await asyncCodeOf(km.updateKeyConfig('k', { minDecryptionVersion: 1 }))).toBe('ERR_NOT_ALLOWED');
    expect(utf8Decode(await km.decrypt('k', v2))).toBe('two');
    await km.close();
  });

  it('one-way switches cannot be turned off', async () => {
    const { km } = await devManager();
    await km.createKey('k', { exportable: true });
    expect(await asyncCodeOf(km.updateKeyConfig('k', { exportable: false }))).toBe('ERR_NOT_ALLOWED');
    await km.updateKeyConfig('k', { allowPlaintextBackup: true });
    expect(await asyncCodeOf(km.updateKeyConfig('k', { allowPlaintextBackup: false }))).toBe(
      'ERR_NOT_ALLOWED',
    );
    expect((await km.exportKey('k')).map((e) => e.version)).toEqual([1]);
    // Raising min_decryption_version leaves the newer versions exportable and refuses the retired one by name.
    await km.rotateKey('k');
    await km.updateKeyConfig('k', { minDecryptionVersion: 2 });
    expect((await km.exportKey('k')).map((e) => e.version)).toEqual([2]);
    expect(await asyncCodeOf(km.exportKey('k', 1))).toBe('ERR_NOT_ALLOWED');
    expect(await asyncCodeOf(km.exportKey('k', 9))).toBe('ERR_DECRYPT_FAILED');
    await km.createKey('locked');
    expect(await asyncCodeOf(km.exportKey('locked'))).toBe('ERR_EXPORT_FORBIDDEN');
    await km.close();
  });

  it('data keys: plaintext+wrapped and wrapped-only', async () => {
    const { km } = await devManager();
    await km.createKey('dk');
    const withPlain = await km.generateDataKey('dk', { bits: 256 });
    expect(withPlain.plaintext).toHaveLength(32);
    expect(await km.decrypt('dk', withPlain.ciphertext)).toEqual(withPlain.plaintext);
    const wrappedOnly = await km.generateDataKey('dk', { plaintext: false, bits: 512 });
    expect(wrappedOnly.plaintext).toBeUndefined();
    expect(await km.decrypt('dk', wrappedOnly.ciphertext)).toHaveLength(64);
    expect(await asyncCodeOf(km.generateDataKey('dk', { bits: 100 as 128 }))).toBe('ERR_INVALID_ARGUMENT');
    await km.close();
  });

  it('derived keys: a distinct key per context, and crypto-shredding of one context', async () => {
    const { km } = await devManager();
    await km.createKey('tenants', { derived: true });
    const alice = utf8Encode('subject:alice');
    const bob = utf8Encode('subject:bob');
    const a = await km.encrypt('tenants', utf8Encode('alice data'), { context: alice });
    const b = await km.encrypt('tenants', utf8Encode('bob data'), { context: bob });
    expect(await asyncCodeOf(km.decrypt('tenants', a, { context: bob }))).toBe('ERR_DECRYPT_FAILED');
    expect(await asyncCodeOf(km.encrypt('tenants', utf8Encode('x')))).toBe('ERR_INVALID_ARGUMENT');
    expect(utf8Decode(await km.decrypt('tenants', a, { context: alice }))).toBe('alice data');

    expect(await km.deleteContext('tenants', alice)).toBe(true);
    expect(await asyncCodeOf(km.decrypt('tenants', a, { context: alice }))).toBe('ERR_DECRYPT_FAILED');
    expect(utf8Decode(await km.decrypt('tenants', b, { context: bob }))).toBe('bob data');
    // A new encryption for the shredded subject gets a fresh secret; the old data stays unreadable.
    await km.encrypt('tenants', utf8Encode('new'), { context: alice });
    expect(await asyncCodeOf(km.decrypt('tenants', a, { context: alice }))).toBe('ERR_DECRYPT_FAILED');
    await km.close();
  });

  it('deletion needs deletion_allowed and a cancellable waiting period during which the key serves nothing', async () => {
    const clock = new FakeClock();
    const { km } = await devManager({ clock: clock.fn, cacheTtlMs: 0 });
    await km.createKey('old');
    const ct = await km.encrypt('old', utf8Encode('x'));
    expect(await asyncCodeOf(km.scheduleKeyDeletion('old'))).toBe('ERR_NOT_ALLOWED');
    await km.updateKeyConfig('old', { deletionAllowed: true });
    expect(await asyncCodeOf(km.scheduleKeyDeletion('old', { waitMs: DAY }))).toBe('ERR_INVALID_ARGUMENT');
    const at = await km.scheduleKeyDeletion('old');
    expect(Date.parse(at) - clock.now).toBe(7 * DAY);
    expect(await asyncCodeOf(km.decrypt('old', ct))).toBe('ERR_KEY_PENDING_DELETION');
    expect(await asyncCodeOf(km.rotateKey('old'))).toBe('ERR_KEY_PENDING_DELETION');
    await km.cancelKeyDeletion('old');
    expect(utf8Decode(await km.decrypt('old', ct))).toBe('x');

    await km.scheduleKeyDeletion('old');
    clock.advance(6 * DAY);
    expect((await km.runScheduledTasks()).purged).toEqual([]);
    clock.advance(DAY + 1);
    expect((await km.runScheduledTasks()).purged).toEqual(['old']);
    expect(await asyncCodeOf(km.decrypt('old', ct))).toBe('ERR_KEY_NOT_FOUND');
    await km.close();
  });

  it('rotation policies: the scheduler rotates by age, and the next date is visible', async () => {
    const clock = new FakeClock();
    const { km } = await devManager({ clock: clock.fn, cacheTtlMs: 0 });
    const enc = await km.createKey('enc');
    const sig = await km.createKey('sig', { type: 'ecdsa-p256' });
    await km.createKey('manual', { autoRotatePeriodMs: 0 });
    expect(Date.parse(enc.nextRotation!) - clock.now).toBe(365 * DAY);
    expect(Date.parse(sig.nextRotation!) - clock.now).toBe(90 * DAY);
    expect((await km.readKey('manual')).nextRotation).toBeNull();
    expect(await asyncCodeOf(km.updateKeyConfig('enc', { autoRotatePeriodMs: 1000 }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );

    clock.advance(91 * DAY);
    expect((await km.runScheduledTasks()).rotated).toEqual(['sig']);
    expect((await km.readKey('sig')).latestVersion).toBe(2);
    clock.advance(275 * DAY);
    expect((await km.runScheduledTasks()).rotated.sort()).toEqual(['enc', 'sig']);
    expect((await km.runScheduledTasks()).rotated).toEqual([]);
    await km.close();
  });

  it('rotates by use before the AES-GCM bound, and the count survives restarts', async () => {
    const dir = tempDir();
    const { km, store } = await devManager({ dir, reservationBlock: 64 });
    await km.createKey('busy');
    // Lower the bound through the stored policy to exercise the mechanism without 2^31 encryptions.
    await store.transaction(async (tx) => {
      const row = (await tx.getKey('busy'))!;
      // The settings record is authenticated, so the change is sealed with the keyring's record key.
      const records = km.records();
      const policy = JSON.parse(records.open('key-settings', 'busy', row.doc)) as object;
      const doc = records.seal(
        'key-settings',
        'busy',
        JSON.stringify({ ...policy, maxEncryptionsPerVersion: 200 }),
      );
      await tx.updateKey({ ...row, doc });
    });
    await km.readKey('busy');
    const cts = [];
    for (let i = 0; i < 450; i++) cts.push(await km.encrypt('busy', utf8Encode(`m${i}`)));
    const versions = new Set(cts.map((c) => c.split(':')[1]));
    expect([...versions]).toEqual(['v1', 'v2', 'v3']);
    for (const [i, c] of cts.entries()) expect(utf8Decode(await km.decrypt('busy', c))).toBe(`m${i}`);
    await km.close();

    // After a restart the node continues from the stored reservation, never from zero.
    const again = await KeyManager.open({
      store: SqliteStore.open({ path: join(dir, 'enseal.db') }),
      reservationBlock: 64,
    });
    await again.unsealDev();
    for (let i = 0; i < 150; i++) cts.push(await again.encrypt('busy', utf8Encode('later')));
    const perVersion = new Map<string, number>();
    for (const c of cts) perVersion.set(c.split(':')[1]!, (perVersion.get(c.split(':')[1]!) ?? 0) + 1);
    expect([...perVersion.keys()]).toEqual(['v1', 'v2', 'v3', 'v4']);
    for (const n of perVersion.values()) expect(n).toBeLessThanOrEqual(200);
    await again.close();
  });

  it('rejects hostile names, versions and contexts with clear errors', async () => {
    const { km } = await devManager();
    for (const name of ['', '../etc/passwd', 'a/b', 'a..b', '.hidden', 'x'.repeat(129), 'tab\t', 'é']) {
      expect(await asyncCodeOf(km.createKey(name))).toBe('ERR_INVALID_ARGUMENT');
    }
    await km.createKey('d', { derived: true });
    expect(await asyncCodeOf(km.encrypt('d', utf8Encode('x'), { context: '%%%' }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(await asyncCodeOf(km.encrypt('d', utf8Encode('x'), { context: new Uint8Array(2000) }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    for (const ct of [
      'vault:v0:AAAA',
      'vault:v:AAAA',
      'vault:v1',
      'vault:v99999999999:AA==',
      'vault:v1:***',
      'v1:AAAA',
    ]) {
      expect(await asyncCodeOf(km.decrypt('d', ct, { context: 'YQ==' }))).toBe('ERR_MALFORMED');
    }
    await km.close();
  });
});

describe('two nodes on one store', () => {
  it('a node with a stale keyring wraps under the current term after another node rotated the keyring', async () => {
    const dir = tempDir();
    const path = join(dir, 'shared.db');
    const a = await KeyManager.open({ store: SqliteStore.open({ path }), cacheTtlMs: 0 });
    await a.init({ type: 'dev', devKeyFile: join(dir, 'dev.key') });
    await a.unsealDev();
    const b = await KeyManager.open({ store: SqliteStore.open({ path }), cacheTtlMs: 0 });
    await b.unsealDev();
    await a.createKey('k');
    const before = await b.encrypt('k', utf8Encode('before'));
    const { rewrapped } = await a.rotateKeyring();
    expect(rewrapped).toBe(1);
    // b still holds the old keyring in memory; its next key version must be readable by everyone.
    await b.rotateKey('k');
    await b.createKey('k2', { derived: true });
    const after = await b.encrypt('k2', utf8Encode('after'), { context: utf8Encode('c') });
    await a.rotateKeyring();
    const fresh = await KeyManager.open({ store: SqliteStore.open({ path }) });
    await fresh.unsealDev();
    expect(utf8Decode(await fresh.decrypt('k', before))).toBe('before');
    expect(utf8Decode(await fresh.decrypt('k2', after, { context: utf8Encode('c') }))).toBe('after');
    expect((await fresh.readKey('k')).latestVersion).toBe(2);

    // Root-key rotation on one node seals the others (their root key no longer opens the keyring).
    await a.rotateRootKey({});
    expect(await asyncCodeOf(b.rotateKey('k'))).toBe('ERR_SEALED');
    await new Promise((r) => setTimeout(r, 20));
    expect((await b.status()).sealed).toBe(true);
    await b.unsealDev();
    expect(utf8Decode(await b.decrypt('k', before))).toBe('before');
    for (const km of [a, b, fresh]) await km.close();
  });
});
