/** The directory log, the client's log view (quorum, consistency, split view), the witness, monitoring. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnsealError, ErrorCode, randomBytes } from '../../src/crypto/index.js';
import {
  DirectoryLog,
  LogView,
  SplitViewError,
  Witness,
  WitnessConflictError,
  addSignatures,
  decodeDirectoryEntry,
  ed25519CosignatureVerifier,
  ed25519Cosigner,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  encodeDirectoryEntry,
  formatAddCheckpointRequest,
  generateIdentityKey,
  leafHash,
  monitorUserEntries,
  parseAddCheckpointRequest,
  parseNote,
  signCheckpoint,
  signDeviceRecord,
  signDeviceRevocation,
  signMlsKeyBinding,
  signRecoverySet,
  verifyMlsKeyBinding,
  verifyRecoverySet,
  type DirectoryEntry,
  type LogPolicy,
} from '../../src/e2ee/index.js';
import { asyncCodeOf, codeOf } from '../helpers/errors.js';

const ORIGIN = 'directory.example/log';
const NOW = 1_800_000_000;

function fixture(witnessCount = 2, quorum = 2) {
  const logKey = generateIdentityKey();
  const logSigner = ed25519NoteSigner(ORIGIN, logKey.privateKey);
  const cosigners = Array.from({ length: witnessCount }, (_, i) =>
    ed25519Cosigner(`witness.example/w${i}`, generateIdentityKey().privateKey),
  );
  const witnesses = cosigners.map(
    (c) =>
      new Witness({
        cosigner: c,
        logs: new Map([[ORIGIN, [ed25519NoteVerifier(ORIGIN, logSigner.publicKey)]]]),
        now: () => NOW,
      }),
  );
  const policy: LogPolicy = {
    origin: ORIGIN,
    logVerifiers: [ed25519NoteVerifier(ORIGIN, logSigner.publicKey)],
    witnesses: cosigners.map((c) => ed25519CosignatureVerifier(c.name, c.publicKey, { now: () => NOW })),
    quorum,
  };
  const log = new DirectoryLog(ORIGIN);
  const held = new Map<string, number>();
  /** Signs the current tree and has every witness cosign it. */
  async function publish(): Promise<string> {
    let note = await log.checkpoint([logSigner]);
    for (const w of witnesses) {
      const old = held.get(w.name) ?? 0;
      const proof = old === 0 ? [] : await log.consistencyProof(old);
      const body = formatAddCheckpointRequest({
        oldSize: old,
        proof,
        checkpoint: await log.checkpoint([logSigner]),
      });
      const lines = await w.addCheckpoint(parseAddCheckpointRequest(body));
      note = addSignatures(note, parseNote(`x\n\n${lines}`).signatures);
      held.set(w.name, log.size);
    }
    return note;
  }
  return { logSigner, cosigners, witnesses, policy, log, publish };
}

const alice = generateIdentityKey();
const phone = generateIdentityKey();
function entries(): DirectoryEntry[] {
  const record = signDeviceRecord(
    { userId: 'alice', deviceId: 'phone', deviceKey: phone.publicKey, createdAt: 1 },
    { kind: 'identity', privateKey: alice.privateKey },
  );
  const laptop = signDeviceRecord(
    { userId: 'alice', deviceId: 'laptop', deviceKey: generateIdentityKey().publicKey, createdAt: 2 },
    { kind: 'device', deviceId: 'phone', privateKey: phone.privateKey },
  );
  return [
    { kind: 'device-added', userId: 'alice', time: 1, record },
    {
      kind: 'mls-signature-key',
      userId: 'alice',
      time: 1,
      binding: signMlsKeyBinding('alice', 'phone', randomBytes(32), phone.privateKey),
    },
    {
      kind: 'recovery-set',
      userId: 'alice',
      time: 2,
      recovery: signRecoverySet(
        'alice',
        2,
        [randomBytes(32), randomBytes(32), randomBytes(32)],
        alice.privateKey,
      ),
    },
    { kind: 'device-added', userId: 'alice', time: 2, record: laptop },
    {
      kind: 'device-revoked',
      userId: 'alice',
      time: 3,
      revocation: signDeviceRevocation(
        { userId: 'alice', deviceId: 'laptop', revokedAt: 3 },
        { kind: 'device', deviceId: 'phone', privateKey: phone.privateKey },
      ),
    },
  ];
}

describe('directory entries', () => {
  it('round-trip canonically and verify their signed statements', () => {
    for (const e of entries()) {
      const bytes = encodeDirectoryEntry(e);
      expect(decodeDirectoryEntry(bytes)).toEqual(e);
      expect(encodeDirectoryEntry(decodeDirectoryEntry(bytes))).toEqual(bytes);
    }
    const [, b, r] = entries() as [
      DirectoryEntry,
      DirectoryEntry & { kind: 'mls-signature-key' },
      DirectoryEntry & { kind: 'recovery-set' },
    ];
    expect(verifyMlsKeyBinding('alice', b.binding, phone.publicKey)).toBe(true);
    expect(verifyMlsKeyBinding('bob', b.binding, phone.publicKey)).toBe(false);
    expect(verifyRecoverySet('alice', r.recovery, alice.publicKey)).toBe(true);
  });

  it('reject unknown versions, kinds, trailing bytes and random input with typed errors', () => {
    const bytes = encodeDirectoryEntry(entries()[0]!);
    expect(codeOf(() => decodeDirectoryEntry(Uint8Array.of(2, ...bytes.slice(1))))).toBe(
      ErrorCode.UNSUPPORTED,
    );
    expect(codeOf(() => decodeDirectoryEntry(Uint8Array.of(1, 9, ...bytes.slice(2))))).toBe(
      ErrorCode.MALFORMED,
    );
    expect(codeOf(() => decodeDirectoryEntry(Uint8Array.of(...bytes, 0)))).toBe(ErrorCode.MALFORMED);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.nat(255), (junk, at, v) => {
        const ok = ['no error', ErrorCode.MALFORMED, ErrorCode.UNSUPPORTED];
        expect(ok).toContain(codeOf(() => decodeDirectoryEntry(junk)));
        const m = bytes.slice();
        m[at % m.length] = v;
        expect(ok).toContain(codeOf(() => decodeDirectoryEntry(m)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('log view', () => {
  it('follows a growing log with consistency and inclusion proofs', async () => {
    const f = fixture();
    const view = new LogView(f.policy);
    const es = entries();
    f.log.append(es[0]!);
    f.log.append(es[1]!);
    const cp1 = await f.publish();
    expect(view.update(cp1).checkpoint.size).toBe(2);
    for (const e of es.slice(2)) f.log.append(e);
    const cp2 = await f.publish();
    const held = view.update(cp2, await f.log.consistencyProof(2));
    expect(held.checkpoint.size).toBe(5);
    expect(held.witnesses).toHaveLength(2);
    // An older checkpoint is accepted with a proof from it to the held one, and does not replace it.
    expect(view.update(cp1, await f.log.consistencyProof(2)).checkpoint.size).toBe(5);
    const e = view.verifyEntry(f.log.entry(3), 3, await f.log.inclusionProof(3));
    expect(e.kind).toBe('device-added');
    expect(codeOf(() => view.verifyEntry(f.log.entry(3), 2, [])).valueOf()).toBe(
      ErrorCode.E2EE_PROOF_INVALID,
    );
    // Resuming from the persisted note.
    expect(new LogView(f.policy, view.latest!.note).latest!.checkpoint.size).toBe(5);
  });

  it('requires the log signature and the witness quorum', async () => {
    const f = fixture(3, 2);
    f.log.append(entries()[0]!);
    const logOnly = await f.log.checkpoint([f.logSigner]);
    expect(codeOf(() => new LogView(f.policy).update(logOnly))).toBe(ErrorCode.E2EE_QUORUM);
    const full = await f.publish();
    expect(new LogView(f.policy).update(full).witnesses).toHaveLength(3);
    // Witness lines without the log's signature.
    const stranger = ed25519NoteSigner(ORIGIN, generateIdentityKey().privateKey);
    const note = parseNote(full);
    const swapped = addSignatures(
      signCheckpoint(
        {
          origin: ORIGIN,
          size: 1,
          rootHash: leafHash(f.log.entry(0)),
          extensions: [],
        },
        [stranger],
      ),
      note.signatures.slice(1),
    );
    expect(codeOf(() => new LogView(f.policy).update(swapped))).toBe(ErrorCode.E2EE_QUORUM);
  });

  it('detects a split view and carries both checkpoints as evidence', async () => {
    const f = fixture(1, 0);
    const es = entries();
    f.log.append(es[0]!);
    const view = new LogView(f.policy);
    view.update(await f.log.checkpoint([f.logSigner]));
    // The log signs another tree of the same size for someone else.
    const other = new DirectoryLog(ORIGIN);
    other.append(es[1]!);
    const fork = await other.checkpoint([f.logSigner]);
    let err: unknown;
    try {
      view.update(fork);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SplitViewError);
    expect((err as SplitViewError).code).toBe(ErrorCode.E2EE_SPLIT_VIEW);
    expect((err as SplitViewError).evidence[1]).toBe(fork);
    // A larger fork with a proof that does not hold is a split view too.
    other.append(es[2]!);
    const bigger = await other.checkpoint([f.logSigner]);
    expect(codeOf(() => view.update(bigger, [randomBytes(32)]))).toBe(ErrorCode.E2EE_SPLIT_VIEW);
  });
});

describe('witness', () => {
  it('cosigns consistent checkpoints and refuses rollback, bad proofs and unknown logs', async () => {
    const f = fixture(1, 1);
    const w = f.witnesses[0]!;
    const es = entries();
    f.log.append(es[0]!);
    f.log.append(es[1]!);
    const cp2 = await f.log.checkpoint([f.logSigner]);
    expect(await w.addCheckpoint({ oldSize: 0, proof: [], checkpoint: cp2 })).toMatch(
      /^— witness\.example\/w0 /,
    );
    f.log.append(es[2]!);
    const cp3 = await f.log.checkpoint([f.logSigner]);
    // Wrong old size: 409 with the size held.
    const conflict = await w
      .addCheckpoint({ oldSize: 0, proof: [], checkpoint: cp3 })
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(WitnessConflictError);
    expect((conflict as WitnessConflictError).latestSize).toBe(2);
    expect(
      await asyncCodeOf(w.addCheckpoint({ oldSize: 2, proof: [randomBytes(32)], checkpoint: cp3 })),
    ).toBe(ErrorCode.E2EE_PROOF_INVALID);
    expect(await asyncCodeOf(w.addCheckpoint({ oldSize: 4, proof: [], checkpoint: cp3 }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    await w.addCheckpoint({ oldSize: 2, proof: await f.log.consistencyProof(2), checkpoint: cp3 });
    // Rollback: the old checkpoint again.
    expect(await asyncCodeOf(w.addCheckpoint({ oldSize: 3, proof: [], checkpoint: cp2 }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(await asyncCodeOf(w.addCheckpoint({ oldSize: 2, proof: [], checkpoint: cp2 }))).toBe(
      ErrorCode.E2EE_ROLLBACK,
    );
    // Same size, different root.
    const fork = new DirectoryLog(ORIGIN);
    for (const e of es.slice(2, 5)) fork.append(e);
    expect(
      await asyncCodeOf(
        w.addCheckpoint({ oldSize: 3, proof: [], checkpoint: await fork.checkpoint([f.logSigner]) }),
      ),
    ).toBe(ErrorCode.E2EE_PROOF_INVALID);
    const unknown = new DirectoryLog('other.example/log');
    unknown.append(es[0]!);
    expect(
      await asyncCodeOf(
        w.addCheckpoint({ oldSize: 0, proof: [], checkpoint: await unknown.checkpoint([f.logSigner]) }),
      ),
    ).toBe(ErrorCode.KEY_NOT_FOUND);
    const forged = await f.log.checkpoint([ed25519NoteSigner(ORIGIN, generateIdentityKey().privateKey)]);
    expect(await asyncCodeOf(w.addCheckpoint({ oldSize: 3, proof: [], checkpoint: forged }))).toBe(
      ErrorCode.SIGNATURE_INVALID,
    );
  });

  it('parses add-checkpoint bodies strictly', () => {
    const ok = parseAddCheckpointRequest('old 5\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\nbody\n');
    expect(ok.oldSize).toBe(5);
    expect(ok.proof).toHaveLength(1);
    expect(ok.checkpoint).toBe('body\n');
    for (const bad of [
      'old 05\n\n',
      'new 5\n\n',
      'old 5\nAAAA\n\n',
      'old 5',
      `old 5\n${'PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n'.repeat(64)}\n`,
    ]) {
      expect(
        codeOf(() => parseAddCheckpointRequest(bad)),
        bad.slice(0, 20),
      ).toBe(ErrorCode.MALFORMED);
    }
    fc.assert(
      fc.property(fc.string(), (s) => {
        const c = codeOf(() => parseAddCheckpointRequest(s));
        expect(['no error', ErrorCode.MALFORMED]).toContain(c);
      }),
    );
  });
});

describe('monitoring', () => {
  it('reports devices and MLS keys the local device did not expect', () => {
    const es = entries();
    const clean = monitorUserEntries('alice', es, new Set(['phone', 'laptop']));
    expect(clean.unexpectedDevices).toEqual([]);
    expect(clean.revokedExpected).toEqual(['laptop']);
    const rogue = generateIdentityKey();
    const added: DirectoryEntry = {
      kind: 'device-added',
      userId: 'alice',
      time: 9,
      record: signDeviceRecord(
        { userId: 'alice', deviceId: 'rogue', deviceKey: rogue.publicKey, createdAt: 9 },
        { kind: 'device', deviceId: 'phone', privateKey: phone.privateKey },
      ),
    };
    const bound: DirectoryEntry = {
      kind: 'mls-signature-key',
      userId: 'alice',
      time: 9,
      binding: signMlsKeyBinding('alice', 'rogue', randomBytes(32), rogue.privateKey),
    };
    const report = monitorUserEntries('alice', [...es, added, bound], new Set(['phone', 'laptop']));
    expect(report.unexpectedDevices.map((d) => d.deviceId)).toEqual(['rogue']);
    expect(report.unexpectedMlsKeys.map((d) => d.deviceId)).toEqual(['rogue']);
    expect(EnsealError).toBeDefined();
  });
});
