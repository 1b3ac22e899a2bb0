/** The MLS adapter: groups, commits with confirm/discard, and the RFC 9420 checks ts-mls 1.6.4 lacks. */
import fc from 'fast-check';
import { createCommit, encodeMlsMessage } from 'ts-mls';
import { describe, expect, it } from 'vitest';
import { ErrorCode, hexEncode, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import {
  MlsClient,
  MlsSuite,
  encodeKeyPackageSecret,
  type MlsAuthenticator,
  type MlsGroup,
  type MlsIdentity,
  type MlsKeyPackage,
} from '../../src/e2ee/index.js';
import { commitPathViolation } from '../../src/e2ee/mls.js';
import { asyncCodeOf } from '../helpers/errors.js';

/** A stand-in key directory: identity → vouched signature keys. */
class Directory implements MlsAuthenticator {
  readonly keys = new Map<string, Set<string>>();
  vouch(id: MlsIdentity | MlsKeyPackage, identity?: Uint8Array): void {
    const who = hexEncode(identity ?? (id as MlsIdentity).identity);
    const set = this.keys.get(who) ?? new Set();
    set.add(hexEncode(id.signaturePublicKey));
    this.keys.set(who, set);
  }
  revoke(identity: Uint8Array): void {
    this.keys.delete(hexEncode(identity));
  }
  authenticate(m: MlsIdentity): boolean {
    return this.keys.get(hexEncode(m.identity))?.has(hexEncode(m.signaturePublicKey)) === true;
  }
}

async function setup(n: number, suite?: MlsSuite) {
  const dir = new Directory();
  const client = await MlsClient.create({ authenticator: dir, ...(suite ? { suite } : {}) });
  const kps: MlsKeyPackage[] = [];
  for (let i = 0; i < n; i++) {
    const identity = utf8Encode(`user${i}`);
    const kp = await client.generateKeyPackage({ identity });
    dir.vouch(kp, identity);
    kps.push(kp);
  }
  let alice = await client.createGroup(utf8Encode('group-1'), kps[0]!);
  const others: MlsGroup[] = [];
  if (n > 1) {
    const pending = await alice.addMembers(kps.slice(1).map((k) => k.message));
    alice = pending.confirm();
    for (const kp of kps.slice(1)) others.push(await client.joinFromWelcome(pending.welcome!, kp));
  }
  return { dir, client, kps, alice, others };
}

describe('MLS adapter', () => {
  it('refuses to run without an authenticator', async () => {
    expect(await asyncCodeOf(MlsClient.create({} as never))).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('creates a group, adds members, exchanges messages, agrees on epoch secrets', async () => {
    const { alice, others } = await setup(3);
    const [bob, carol] = others as [MlsGroup, MlsGroup];
    expect(alice.epoch).toBe(1n);
    expect(bob.epoch).toBe(1n);
    expect(alice.members()).toHaveLength(3);
    expect(bob.epochAuthenticator()).toEqual(alice.epochAuthenticator());
    expect(await carol.exportSecret('files', utf8Encode('ctx'), 32)).toEqual(
      await alice.exportSecret('files', utf8Encode('ctx'), 32),
    );
    const sent = await alice.encrypt(utf8Encode('hello'), utf8Encode('aad'));
    const got = await bob.process(sent.message);
    expect(got.kind).toBe('application');
    if (got.kind === 'application') {
      expect(utf8Decode(got.plaintext)).toBe('hello');
      expect(utf8Decode(got.authenticatedData)).toBe('aad');
    }
    // The old value is superseded once a newer one exists.
    expect(await asyncCodeOf(bob.encrypt(utf8Encode('x')))).toBe(ErrorCode.INVALID_STATE);
  });

  it('update and remove commits are processed by the others; a removed member learns it', async () => {
    const { alice, others } = await setup(3);
    const [b0, carol] = others as [MlsGroup, MlsGroup];
    let bob = b0;
    const upd = await bob.update();
    bob = upd.confirm();
    const a1 = await alice.process(upd.commit);
    const c1 = await carol.process(upd.commit);
    expect(a1.group.epoch).toBe(2n);
    expect(a1.group.epochAuthenticator()).toEqual(bob.epochAuthenticator());
    const rm = await a1.group.removeMembers([carol.ownLeafIndex]);
    const aliceNext = rm.confirm();
    const b2 = await bob.process(rm.commit);
    const c2 = await c1.group.process(rm.commit);
    expect(b2.group.epochAuthenticator()).toEqual(aliceNext.epochAuthenticator());
    expect(c2.kind === 'commit' && c2.removed).toBe(true);
    expect(aliceNext.members()).toHaveLength(2);
  });

  it('post-compromise security: a copy of a state taken before its update reads nothing after it', async () => {
    const { client, alice, others } = await setup(3);
    const [b0, carol] = others as [MlsGroup, MlsGroup];
    const stolen = b0.encode(); // an attacker copies bob's whole state at epoch 1
    const upd = await b0.update();
    const bob = upd.confirm();
    const a2 = (await alice.process(upd.commit)).group;
    const c2 = (await carol.process(upd.commit)).group;
    const fromAlice = await a2.encrypt(utf8Encode('after the update'));
    const fromCarol = await c2.encrypt(utf8Encode('also after'));
    const read = await bob.process(fromAlice.message);
    expect(read.kind === 'application' && utf8Decode(read.plaintext)).toBe('after the update');

    const copy = await client.decodeGroup(stolen);
    expect(copy.epoch).toBe(1n);
    // It cannot follow bob's update into epoch 2 (the new path secret was sealed to the others' keys)…
    expect(await asyncCodeOf(copy.process(upd.commit))).toBe(ErrorCode.E2EE_MLS_REJECTED);
    // …so nothing of epoch 2 opens, and epoch 2's secrets are not the ones it can derive.
    expect(await asyncCodeOf(copy.process(fromAlice.message))).toBe(ErrorCode.E2EE_MLS_REJECTED);
    expect(await asyncCodeOf(copy.process(fromCarol.message))).toBe(ErrorCode.E2EE_MLS_REJECTED);
    const label = utf8Encode('ctx');
    expect(await copy.exportSecret('files', label, 32)).not.toEqual(
      await fromAlice.group.exportSecret('files', label, 32),
    );
    expect(copy.epochAuthenticator()).not.toEqual(fromAlice.group.epochAuthenticator());
  });

  it('keeps the old epoch usable when a commit is discarded (lost race)', async () => {
    const { alice, others } = await setup(2);
    const bob = others[0]!;
    const mine = await alice.update();
    const theirs = await bob.update();
    const bobNext = theirs.confirm();
    mine.discard();
    // The relay took Bob's commit: Alice processes it with her old group, whose secrets were not zeroed.
    const r = await alice.process(theirs.commit);
    expect(r.group.epochAuthenticator()).toEqual(bobNext.epochAuthenticator());
    expect(() => mine.confirm()).toThrow();
    expect(() => mine.next.encode()).toThrow();
  });

  it('zeroes consumed secrets only on confirm', async () => {
    const { alice } = await setup(2);
    const init = alice.state.keySchedule.initSecret;
    const pending = await alice.update();
    expect(init.some((b) => b !== 0)).toBe(true);
    pending.confirm();
    expect(init.every((b) => b === 0)).toBe(true);
  });

  it('rejects key packages the directory does not vouch for', async () => {
    const { client, alice } = await setup(1);
    const stranger = await client.generateKeyPackage({ identity: utf8Encode('mallory') });
    expect(await asyncCodeOf(alice.addMembers([stranger.message]))).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
  });

  it('last-resort key packages carry the extension', async () => {
    const { client, dir } = await setup(1);
    const kp = await client.generateKeyPackage({ identity: utf8Encode('lr'), lastResort: true });
    dir.vouch(kp, utf8Encode('lr'));
    expect(kp.lastResort).toBe(true);
    expect(kp.secret.publicPackage.extensions.map((e) => e.extensionType)).toContain(0x000a);
    expect((await client.decodeKeyPackage(kp.message)).extensions).toHaveLength(1);
  });

  it('restores a stored key package secret and joins with it', async () => {
    const { client, dir, alice } = await setup(1);
    const kp = await client.generateKeyPackage({ identity: utf8Encode('later') });
    dir.vouch(kp, utf8Encode('later'));
    const stored = encodeKeyPackageSecret(kp);
    const restored = await client.decodeKeyPackageSecret(stored);
    expect(restored.ref).toBe(kp.ref);
    const pending = await alice.addMembers([kp.message]);
    const joined = await client.joinFromWelcome(pending.welcome!, restored);
    expect(joined.epochAuthenticator()).toEqual(pending.confirm().epochAuthenticator());
    expect(await asyncCodeOf(client.decodeKeyPackageSecret(stored.slice(0, -1)))).toBe(ErrorCode.MALFORMED);
  });

  it('re-applies the authenticator after decoding a state', async () => {
    const { alice, client, dir } = await setup(3);
    const bytes = alice.encode();
    const restored = await client.decodeGroup(bytes);
    expect(restored.epochAuthenticator()).toEqual(alice.epochAuthenticator());
    expect(restored.state.clientConfig).toBe(client.config);
    dir.revoke(utf8Encode('user2'));
    expect(await asyncCodeOf(client.decodeGroup(bytes))).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
    const lenient = await client.decodeGroup(bytes, { allowUntrusted: true });
    expect(lenient.untrustedMembers()).toEqual([2]);
  });

  it('caps decoded sizes and rejects trailing bytes and garbage', async () => {
    const dir = new Directory();
    const small = await MlsClient.create({ authenticator: dir, maxMessageBytes: 2048, maxStateBytes: 1024 });
    const { alice, others } = await setup(2);
    const sent = await alice.encrypt(new Uint8Array(4096));
    expect(sent.group.encode().length).toBeGreaterThan(1024);
    expect(await asyncCodeOf(small.decodeGroup(sent.group.encode()))).toBe(ErrorCode.E2EE_MLS_REJECTED);
    const bob = others[0]!;
    const restored = await small.decodeKeyPackage(new Uint8Array(3000)).catch((e: unknown) => e);
    expect((restored as { code?: string }).code).toBe(ErrorCode.E2EE_MLS_REJECTED);
    const trailing = new Uint8Array(sent.message.length + 1);
    trailing.set(sent.message);
    expect(await asyncCodeOf(bob.process(trailing))).toBe(ErrorCode.MALFORMED);
    expect(await asyncCodeOf(bob.process(Uint8Array.of(0, 1, 0, 2, 9)))).toBe(ErrorCode.MALFORMED);
    // The rejected messages left Bob's group usable.
    expect((await bob.process(sent.message)).kind).toBe('application');
  });

  it('rejects a GroupContextExtensions commit without a path (ts-mls 1.6.4 would accept it)', async () => {
    const { alice, others, client } = await setup(2);
    const bob = others[0]!;
    const raw = await createCommit(
      { state: alice.state, cipherSuite: client.cs },
      {
        extraProposals: [
          { proposalType: 'group_context_extensions', groupContextExtensions: { extensions: [] } },
        ],
      },
    );
    const c = raw.commit;
    expect(c.wireformat).toBe('mls_private_message');
    const code = await bob.process(encodeMlsMessage(c)).catch((e: { code: string; message: string }) => e);
    expect((code as { code: string }).code).toBe(ErrorCode.E2EE_MLS_REJECTED);
    expect((code as { message: string }).message).toContain('group_context_extensions');
    // Bob's group is unchanged and still works.
    const msg = await alice.encrypt(utf8Encode('still here'));
    expect((await bob.process(msg.message)).kind).toBe('application');
  });

  it('requires a path for update, remove, external-init, GCE and empty commits, not for add or psk', () => {
    const withSender = (proposalType: string) =>
      [{ senderLeafIndex: 0, proposal: { proposalType } }] as never;
    const noPath = { proposals: [], path: undefined };
    for (const t of ['update', 'remove', 'external_init', 'group_context_extensions']) {
      expect(commitPathViolation(withSender(t), noPath), t).toContain(t);
    }
    expect(commitPathViolation([], noPath)).toContain('empty commit');
    expect(commitPathViolation(withSender('add'), noPath)).toBeUndefined();
    expect(commitPathViolation(withSender('psk'), noPath)).toBeUndefined();
    expect(commitPathViolation(withSender('remove'), { proposals: [], path: {} as never })).toBeUndefined();
  });

  it('rejects an update path that reuses an HPKE key', async () => {
    const { alice, others, client } = await setup(3);
    const bob = others[0]!;
    const raw = await createCommit(
      { state: alice.state, cipherSuite: client.cs },
      { wireAsPublicMessage: true },
    );
    const c = raw.commit;
    if (c.wireformat !== 'mls_public_message' || c.publicMessage.content.contentType !== 'commit')
      throw new Error('shape');
    const path = c.publicMessage.content.commit.path!;
    path.nodes[0]!.hpkePublicKey = path.leafNode.hpkePublicKey;
    const err = await bob.process(encodeMlsMessage(c)).catch((e: { code: string; message: string }) => e);
    expect((err as { code: string }).code).toBe(ErrorCode.E2EE_MLS_REJECTED);
    expect((err as { message: string }).message).toContain('reuses an HPKE public key');
  });

  it('rejects a commit path whose credential is not a successor of the old one', async () => {
    const { alice, others, dir, client } = await setup(2);
    const bob = others[0]!;
    // Alice's device asks the directory to accept a different identity for her leaf: a successor check fails.
    const strict = await MlsClient.create({
      authenticator: { authenticate: (m) => dir.authenticate(m), isSuccessor: () => false },
    });
    const bobStrict = await strict.decodeGroup(bob.encode());
    const upd = await alice.update();
    expect(await asyncCodeOf(bobStrict.process(upd.commit))).toBe(ErrorCode.E2EE_UNTRUSTED_IDENTITY);
    // With the default rule (same identity), it is accepted.
    expect((await (await client.decodeGroup(bob.encode())).process(upd.commit)).kind).toBe('commit');
  });

  it('turns random and mutated messages into typed errors, leaving the group usable', async () => {
    const { alice, others } = await setup(2);
    const bob = others[0]!;
    const sent = await alice.encrypt(utf8Encode('x'));
    const upd = await sent.group.update();
    const typed = [ErrorCode.MALFORMED, ErrorCode.E2EE_MLS_REJECTED, ErrorCode.E2EE_UNTRUSTED_IDENTITY];
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.nat(255), async (junk, at, v) => {
        expect(typed).toContain(await asyncCodeOf(bob.process(junk)));
        for (const base of [sent.message, upd.commit]) {
          const m = base.slice();
          if (m[at % m.length] === v) continue;
          m[at % m.length] = v;
          const code = await asyncCodeOf(bob.process(m));
          expect(typed).toContain(code);
        }
      }),
      { numRuns: 60 },
    );
    expect((await bob.process(sent.message)).kind).toBe('application');
  });

  it('runs the X-Wing hybrid suite when the runtime has it', async () => {
    const { alice, others } = await setup(2, MlsSuite.XWING_AES256GCM_ED25519);
    const sent = await alice.encrypt(utf8Encode('pq'));
    const got = await others[0]!.process(sent.message);
    expect(got.kind === 'application' && utf8Decode(got.plaintext)).toBe('pq');
  });
});
