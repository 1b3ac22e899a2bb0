/** Device chains and safety numbers. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/crypto/index.js';
import {
  decodeDeviceRecord,
  decodeDeviceRevocation,
  encodeDeviceRecord,
  encodeDeviceRevocation,
  generateIdentityKey,
  safetyNumber,
  signDeviceRecord,
  signDeviceRevocation,
  verifyDeviceChain,
  verifySafetyNumberPayload,
  type ChainEvent,
} from '../../src/e2ee/index.js';
import { codeOf } from '../helpers/errors.js';

function user() {
  const identity = generateIdentityKey();
  const recovery = generateIdentityKey();
  return {
    identity,
    recovery,
    keys: { userId: 'alice', identityKey: identity.publicKey, recoveryKey: recovery.publicKey },
  };
}

describe('device chain', () => {
  it('accepts devices signed by the identity key, an existing device, or the recovery key', () => {
    const u = user();
    const phone = generateIdentityKey();
    const laptop = generateIdentityKey();
    const tablet = generateIdentityKey();
    const events: ChainEvent[] = [
      {
        kind: 'add',
        record: signDeviceRecord(
          { userId: 'alice', deviceId: 'phone', deviceKey: phone.publicKey, createdAt: 1 },
          { kind: 'identity', privateKey: u.identity.privateKey },
        ),
      },
      {
        kind: 'add',
        record: signDeviceRecord(
          { userId: 'alice', deviceId: 'laptop', deviceKey: laptop.publicKey, createdAt: 2 },
          { kind: 'device', deviceId: 'phone', privateKey: phone.privateKey },
        ),
      },
      {
        kind: 'revoke',
        revocation: signDeviceRevocation(
          { userId: 'alice', deviceId: 'phone', revokedAt: 3 },
          { kind: 'device', deviceId: 'laptop', privateKey: laptop.privateKey },
        ),
      },
      {
        kind: 'add',
        record: signDeviceRecord(
          { userId: 'alice', deviceId: 'tablet', deviceKey: tablet.publicKey, createdAt: 4 },
          { kind: 'recovery', privateKey: u.recovery.privateKey },
        ),
      },
    ];
    const valid = verifyDeviceChain(u.keys, events);
    expect([...valid.keys()].sort()).toEqual(['laptop', 'tablet']);
    // A revoked device signs nothing afterwards.
    const late: ChainEvent = {
      kind: 'add',
      record: signDeviceRecord(
        { userId: 'alice', deviceId: 'rogue', deviceKey: generateIdentityKey().publicKey, createdAt: 5 },
        { kind: 'device', deviceId: 'phone', privateKey: phone.privateKey },
      ),
    };
    expect(codeOf(() => verifyDeviceChain(u.keys, [...events, late]))).toBe(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
    );
  });

  it('rejects forged, replayed and cross-user records', () => {
    const u = user();
    const phone = generateIdentityKey();
    const rec = signDeviceRecord(
      { userId: 'alice', deviceId: 'phone', deviceKey: phone.publicKey, createdAt: 1 },
      { kind: 'identity', privateKey: u.identity.privateKey },
    );
    // Signed by a stranger's identity key.
    const forged = signDeviceRecord(
      { userId: 'alice', deviceId: 'x', deviceKey: phone.publicKey, createdAt: 1 },
      { kind: 'identity', privateKey: generateIdentityKey().privateKey },
    );
    expect(codeOf(() => verifyDeviceChain(u.keys, [{ kind: 'add', record: forged }]))).toBe(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
    );
    expect(
      codeOf(() =>
        verifyDeviceChain(u.keys, [
          { kind: 'add', record: rec },
          { kind: 'add', record: rec },
        ]),
      ),
    ).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
    expect(
      codeOf(() => verifyDeviceChain({ ...u.keys, userId: 'bob' }, [{ kind: 'add', record: rec }])),
    ).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
    const tampered = { ...rec, deviceId: 'phone2' };
    expect(codeOf(() => verifyDeviceChain(u.keys, [{ kind: 'add', record: tampered }]))).toBe(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
    );
    const noRecovery = { userId: 'alice', identityKey: u.identity.publicKey };
    const byRecovery = signDeviceRecord(
      { userId: 'alice', deviceId: 'r', deviceKey: phone.publicKey, createdAt: 1 },
      { kind: 'recovery', privateKey: u.recovery.privateKey },
    );
    expect(codeOf(() => verifyDeviceChain(noRecovery, [{ kind: 'add', record: byRecovery }]))).toBe(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
    );
  });

  it('round-trips records and rejects hostile bytes with a typed error', () => {
    const u = user();
    const rec = signDeviceRecord(
      { userId: 'alice', deviceId: 'phone', deviceKey: generateIdentityKey().publicKey, createdAt: 7 },
      { kind: 'identity', privateKey: u.identity.privateKey },
    );
    const bytes = encodeDeviceRecord(rec);
    expect(decodeDeviceRecord(bytes)).toEqual(rec);
    const rev = signDeviceRevocation(
      { userId: 'alice', deviceId: 'phone', revokedAt: 9 },
      { kind: 'recovery', privateKey: u.recovery.privateKey },
    );
    expect(decodeDeviceRevocation(encodeDeviceRevocation(rev))).toEqual(rev);
    expect(codeOf(() => decodeDeviceRecord(bytes.slice(0, -1)))).toBe(ErrorCode.MALFORMED);
    expect(codeOf(() => decodeDeviceRecord(Uint8Array.of(...bytes, 0)))).toBe(ErrorCode.MALFORMED);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(255), (junk, at, v) => {
        expect(['no error', ErrorCode.MALFORMED]).toContain(codeOf(() => decodeDeviceRecord(junk)));
        const m = bytes.slice();
        m[at % m.length] = v;
        expect(['no error', ErrorCode.MALFORMED]).toContain(codeOf(() => decodeDeviceRecord(m)));
      }),
    );
  });
});

describe('safety numbers', () => {
  const a = { userId: 'alice', identityKey: generateIdentityKey().publicKey };
  const b = { userId: 'bob', identityKey: generateIdentityKey().publicKey };

  it('are 60 digits in 12 groups, order-independent and stable', () => {
    const ab = safetyNumber(a, b);
    const ba = safetyNumber(b, a);
    expect(ab.digits).toMatch(/^\d{60}$/);
    expect(ab.groups).toHaveLength(12);
    expect(ab.groups.join('')).toBe(ab.digits);
    expect(ba.digits).toBe(ab.digits);
    expect(ba.qrPayload).toEqual(ab.qrPayload);
    expect(ab.qrPayload).toHaveLength(65);
    expect(ab.qrPayload[0]).toBe(1);
    expect(verifySafetyNumberPayload(ab, ba.qrPayload)).toBe(true);
  });

  it('change with either identity key and reject foreign payloads', () => {
    const ab = safetyNumber(a, b);
    const ac = safetyNumber(a, { userId: 'bob', identityKey: generateIdentityKey().publicKey });
    expect(ac.digits).not.toBe(ab.digits);
    // Alice's half is the same in both: the numbers share one 30-digit half.
    const halves = (s: string) => [s.slice(0, 30), s.slice(30)];
    expect(halves(ab.digits).some((h) => halves(ac.digits).includes(h))).toBe(true);
    expect(verifySafetyNumberPayload(ab, ac.qrPayload)).toBe(false);
    const v2 = ab.qrPayload.slice();
    v2[0] = 2;
    expect(codeOf(() => verifySafetyNumberPayload(ab, v2))).toBe(ErrorCode.MALFORMED);
    expect(codeOf(() => verifySafetyNumberPayload(ab, ab.qrPayload.slice(1)))).toBe(ErrorCode.MALFORMED);
  });
});
