/** Kind 5 (`user-identity`) directory entries, entries built from client bodies, and a user's replayed directory. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, utf8Encode } from '../../src/crypto/index.js';
import {
  MlsClient,
  SignatureType,
  decodeDirectoryEntry,
  formatVerifierKey,
  parseVerifierKey,
  directoryEntryBody,
  directoryEntryFromBody,
  encodeDeviceRecord,
  encodeDirectoryEntry,
  generateIdentityKey,
  mlsIdentityOf,
  monitorUserEntries,
  signDeviceRecord,
  signDeviceRevocation,
  signMlsKeyBinding,
  signRecoverySet,
  signUserIdentity,
  userDirectory,
  verifyUserIdentity,
  type DirectoryEntry,
} from '../../src/e2ee/index.js';
import { asyncCodeOf, codeOf } from '../helpers/errors.js';

const identity = generateIdentityKey();
const recovery = generateIdentityKey();
const phone = generateIdentityKey();
const mlsKey = generateIdentityKey();

function aliceEntries(): DirectoryEntry[] {
  const record = signDeviceRecord(
    { userId: 'alice', deviceId: 'phone', deviceKey: phone.publicKey, createdAt: 10 },
    { kind: 'identity', privateKey: identity.privateKey },
  );
  return [
    {
      kind: 'user-identity',
      userId: 'alice',
      time: 10,
      identity: signUserIdentity('alice', identity.privateKey, recovery.publicKey),
    },
    { kind: 'device-added', userId: 'alice', time: 10, record },
    {
      kind: 'mls-signature-key',
      userId: 'alice',
      time: 10,
      binding: signMlsKeyBinding('alice', 'phone', mlsKey.publicKey, phone.privateKey),
    },
  ];
}

describe('user-identity entries (kind 5)', () => {
  it('round-trip with and without a recovery key, and verify only for their user', () => {
    for (const rk of [recovery.publicKey, undefined]) {
      const id = signUserIdentity('alice', identity.privateKey, rk);
      expect(verifyUserIdentity('alice', id)).toBe(true);
      expect(verifyUserIdentity('bob', id)).toBe(false);
      const bytes = encodeDirectoryEntry({ kind: 'user-identity', userId: 'alice', time: 7, identity: id });
      expect(bytes[1]).toBe(5);
      const back = decodeDirectoryEntry(bytes);
      expect(back).toEqual({ kind: 'user-identity', userId: 'alice', time: 7, identity: id });
    }
    const id = signUserIdentity('alice', identity.privateKey);
    const forged = { ...id, recoveryKey: recovery.publicKey };
    expect(verifyUserIdentity('alice', forged)).toBe(false);
    expect(codeOf(() => signUserIdentity('alice', identity.privateKey, new Uint8Array(31)))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
  });

  it('are built from client bodies strictly', () => {
    const bytes = encodeDirectoryEntry(aliceEntries()[0]!);
    const body = bytes.slice(2 + 1 + 5 + 8);
    const e = directoryEntryFromBody('user-identity', 'alice', 10, body);
    expect(encodeDirectoryEntry(e)).toEqual(bytes);
    expect(codeOf(() => directoryEntryFromBody('user-identity', 'alice', 10, body.slice(1)))).toBe(
      ErrorCode.MALFORMED,
    );
    expect(
      codeOf(() => directoryEntryFromBody('user-identity', 'alice', 10, Uint8Array.of(...body, 0))),
    ).toBe(ErrorCode.MALFORMED);
    const record = aliceEntries()[1]! as Extract<DirectoryEntry, { kind: 'device-added' }>;
    const added = directoryEntryFromBody('device-added', 'alice', 10, encodeDeviceRecord(record.record));
    expect(added).toEqual(record);
    // A record of alice cannot be filed under bob.
    expect(
      codeOf(() => directoryEntryFromBody('device-added', 'bob', 10, encodeDeviceRecord(record.record))),
    ).toBe(ErrorCode.MALFORMED);
    expect(codeOf(() => directoryEntryFromBody('nope' as never, 'alice', 10, body))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
  });

  it('directoryEntryBody gives back the body directoryEntryFromBody reads, for every kind', () => {
    const entries: DirectoryEntry[] = [
      ...aliceEntries(),
      {
        kind: 'user-identity',
        userId: 'alice',
        time: 10,
        identity: signUserIdentity('alice', identity.privateKey),
      },
      {
        kind: 'device-revoked',
        userId: 'alice',
        time: 10,
        revocation: signDeviceRevocation(
          { userId: 'alice', deviceId: 'phone', revokedAt: 11 },
          { kind: 'identity', privateKey: identity.privateKey },
        ),
      },
      {
        kind: 'recovery-set',
        userId: 'alice',
        time: 10,
        recovery: signRecoverySet('alice', 1, [recovery.publicKey], identity.privateKey),
      },
    ];
    for (const e of entries) {
      const { time: _time, ...content } = e;
      const rebuilt = directoryEntryFromBody(e.kind, 'alice', 10, directoryEntryBody(content));
      expect(encodeDirectoryEntry(rebuilt)).toEqual(encodeDirectoryEntry(e));
    }
  });

  it('random and mutated bodies of every kind give typed errors, never a crash', () => {
    const kinds = [
      'device-added',
      'device-revoked',
      'mls-signature-key',
      'recovery-set',
      'user-identity',
    ] as const;
    const bodies = aliceEntries().map((e) => encodeDirectoryEntry(e));
    const ok = ['no error', ErrorCode.MALFORMED, ErrorCode.UNSUPPORTED];
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(),
        fc.nat(255),
        (kind, junk, at, v) => {
          expect(ok).toContain(codeOf(() => directoryEntryFromBody(kind, 'alice', 1, junk)));
          const m = bodies[at % bodies.length]!.slice();
          m[at % m.length] = v;
          expect(ok).toContain(codeOf(() => decodeDirectoryEntry(m)));
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('userDirectory', () => {
  it('replays identity, devices and MLS bindings', () => {
    const dir = userDirectory('alice', aliceEntries());
    expect(dir.keys.identityKey).toEqual(identity.publicKey);
    expect(dir.keys.recoveryKey).toEqual(recovery.publicKey);
    expect([...dir.devices.keys()]).toEqual(['phone']);
    expect(dir.mlsKeys.get('phone')).toEqual(mlsKey.publicKey);
    expect(monitorUserEntries('alice', aliceEntries(), new Set(['phone'])).unexpectedDevices).toEqual([]);
  });

  it('refuses a missing or second identity, a foreign entry and a bad binding', () => {
    const es = aliceEntries();
    const untrusted = ErrorCode.E2EE_UNTRUSTED_IDENTITY;
    expect(codeOf(() => userDirectory('alice', es.slice(1)))).toBe(untrusted);
    expect(codeOf(() => userDirectory('alice', [...es, es[0]!]))).toBe(untrusted);
    expect(codeOf(() => userDirectory('bob', es))).toBe(untrusted);
    const wrongKey = signMlsKeyBinding('alice', 'phone', mlsKey.publicKey, mlsKey.privateKey);
    expect(
      codeOf(() =>
        userDirectory('alice', [
          ...es,
          { kind: 'mls-signature-key', userId: 'alice', time: 1, binding: wrongKey },
        ]),
      ),
    ).toBe(untrusted);
    const badId = {
      ...es[0]!,
      identity: { ...(es[0] as { identity: object }).identity, signature: new Uint8Array(64) },
    };
    expect(codeOf(() => userDirectory('alice', [badId as DirectoryEntry, ...es.slice(1)]))).toBe(untrusted);
  });

  it('drops a revoked device and its MLS key', () => {
    const revocation = signDeviceRevocation(
      { userId: 'alice', deviceId: 'phone', revokedAt: 20 },
      { kind: 'recovery', privateKey: recovery.privateKey },
    );
    const dir = userDirectory('alice', [
      ...aliceEntries(),
      { kind: 'device-revoked', userId: 'alice', time: 20, revocation },
    ]);
    expect(dir.devices.size).toBe(0);
    expect(dir.mlsKeys.size).toBe(0);
  });
});

describe('verifier keys', () => {
  it('parse when the base64 key itself holds a "+"', () => {
    for (let i = 0; i < 200; i++) {
      const k = generateIdentityKey();
      const vkey = formatVerifierKey('log.example/x', SignatureType.ED25519, k.publicKey);
      if (!vkey.split('+').slice(2).join('+').includes('+')) continue;
      expect(parseVerifierKey(vkey).publicKey).toEqual(k.publicKey);
      return;
    }
    throw new Error('no key with a "+" in 200 tries');
  });
});

describe('MlsClient.inspectKeyPackage', () => {
  it('returns the identity and signature key of a valid package and refuses a tampered one', async () => {
    const client = await MlsClient.create({ authenticator: { authenticate: () => false } });
    const kp = await client.generateKeyPackage({
      identity: mlsIdentityOf('alice', 'phone'),
      signaturePrivateKey: mlsKey.privateKey,
    });
    const seen = await client.inspectKeyPackage(kp.message);
    expect(seen.identity).toEqual(mlsIdentityOf('alice', 'phone'));
    expect(seen.signaturePublicKey).toEqual(mlsKey.publicKey);
    expect(seen.lastResort).toBe(false);
    const bad = kp.message.slice();
    bad[bad.length - 3]! ^= 1;
    expect(['ERR_E2EE_MLS_REJECTED', 'ERR_MALFORMED']).toContain(
      await asyncCodeOf(client.inspectKeyPackage(bad)),
    );
    expect(await asyncCodeOf(client.inspectKeyPackage(utf8Encode('junk')))).toBe(ErrorCode.MALFORMED);
  });
});
