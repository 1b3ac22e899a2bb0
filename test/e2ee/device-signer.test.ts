/**
 * The seams the browser library plugs into, exercised in Node: a {@link StateCipher} other than the raw key
 * (and the raw-key one still opening records sealed the way earlier versions sealed them), and a
 * {@link DeviceSigner} held outside the state — registration, a second device requested and approved with
 * signers, login, revocation, and the typed refusals when the signer is missing or is another key.
 */
import { describe, expect, it } from 'vitest';
import {
  aeadSealWithRandomNonce,
  randomBytes,
  utf8Decode,
  utf8Encode,
  type EnsealError,
} from '../../src/crypto/index.js';
import {
  E2eeClient,
  EncryptedState,
  MemoryStateBackend,
  generateIdentityKey,
  rawDeviceSigner,
  rawKeyStateCipher,
  type DeviceSigner,
  type StateCipher,
} from '../../src/e2ee/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
import { APP_TOKEN, FakeE2eeService } from '../helpers/e2ee-fake-service.js';

/** A signer over a key the state never sees, counting its signatures. */
function countingSigner(): DeviceSigner & { count: number } {
  const inner = rawDeviceSigner(generateIdentityKey().privateKey);
  const s = {
    count: 0,
    publicKey: inner.publicKey,
    async sign(m: Uint8Array) {
      s.count++;
      return inner.sign(m);
    },
  };
  return s;
}

describe('state cipher', () => {
  it('opens records sealed by earlier versions (raw key, same bytes) and refuses a wrong key', async () => {
    const key = randomBytes(32);
    const backend = new MemoryStateBackend();
    const legacy = (name: string, text: string) =>
      aeadSealWithRandomNonce(
        'aes-256-gcm',
        key,
        utf8Encode(text),
        utf8Encode(`enseal e2ee client state v1\n${name}`),
      );
    await backend.commit(
      new Map([
        ['check', legacy('check', 'ok')],
        ['cursor', legacy('cursor', '{"seq":7}')],
      ]),
      [],
    );
    const state = await EncryptedState.open(backend, { key });
    expect(await state.getJson('cursor')).toEqual({ seq: 7 });
    // What this version writes opens with the same layout.
    await state.transaction().putJson('next', { a: 1 }).commit();
    const sealed = (await backend.get('next'))!;
    expect(utf8Decode(await rawKeyStateCipher(key).open('next', sealed))).toBe('{"a":1}');
    expect(await asyncCodeOf(EncryptedState.open(backend, { key: randomBytes(32) }))).toBe(
      'ERR_DECRYPT_FAILED',
    );
    // A record moved to another name does not open.
    await backend.commit(new Map([['moved', sealed]]), []);
    expect(await asyncCodeOf(state.get('moved'))).toBe('ERR_DECRYPT_FAILED');
  });

  it('seals through any cipher at commit; put stays synchronous and keeps its own copy', async () => {
    const seen: string[] = [];
    const raw = rawKeyStateCipher(randomBytes(32));
    const cipher: StateCipher = {
      async seal(name, pt) {
        seen.push(name);
        return raw.seal(name, pt);
      },
      open: (name, sealed) => raw.open(name, sealed),
    };
    const state = await EncryptedState.open(new MemoryStateBackend(), { cipher });
    const value = utf8Encode('value');
    const tx = state.transaction().put('a', value).putJson('b', [1]);
    value.fill(0);
    expect(seen).toEqual(['check']);
    await tx.commit();
    expect(seen).toEqual(['check', 'a', 'b']);
    expect(utf8Decode((await state.get('a'))!)).toBe('value');
  });
});

describe('device signer', () => {
  it('registers, enrols a second device, logs in and revokes through signers; the state keeps no device key', async () => {
    const fake = new FakeE2eeService();
    const aliceSigner = countingSigner();
    const aliceState = await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) });
    const alice = await E2eeClient.register({
      transport: fake,
      state: aliceState,
      deviceSigner: aliceSigner,
      user: 'alice',
      device: 'browser',
      applicationToken: APP_TOKEN,
      policy: fake.policy,
    });
    // The MLS key binding and the login challenge.
    expect(aliceSigner.count).toBe(2);
    const record = (await aliceState.getJson<Record<string, unknown>>('device'))!;
    expect(record.deviceKey).toBe('');
    expect(record.deviceKeyHeld).toBe('signer');

    // Without the signer, or with another key, the device does not open; with a raw-key state, no signer.
    const noSigner = await E2eeClient.open({ transport: fake, state: aliceState }).catch(
      (e: EnsealError) => e,
    );
    expect((noSigner as EnsealError).code).toBe('ERR_INVALID_STATE');
    expect((noSigner as EnsealError).message).toMatch(/pass the same deviceSigner/);
    expect(
      await asyncCodeOf(
        E2eeClient.open({ transport: fake, state: aliceState, deviceSigner: countingSigner() }),
      ),
    ).toBe('ERR_INVALID_STATE');
    const reopened = await E2eeClient.open({ transport: fake, state: aliceState, deviceSigner: aliceSigner });
    await reopened.login();
    expect(aliceSigner.count).toBe(3);

    // A second device with its own signer, approved by the first (its signer signs the device record).
    const phoneSigner = countingSigner();
    const phoneState = await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) });
    const { client: phone, request } = await E2eeClient.requestDevice({
      transport: fake,
      state: phoneState,
      deviceSigner: phoneSigner,
      user: 'alice',
      device: 'phone',
      policy: fake.policy,
    });
    expect(request.deviceKey).toEqual(phoneSigner.publicKey);
    await alice.approveDevice(request);
    expect(aliceSigner.count).toBe(4);
    await phone.completeEnrolment();

    // A Node client with a raw key in a group with both.
    const bob = await E2eeClient.register({
      transport: fake,
      state: await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) }),
      user: 'bob',
      device: 'laptop',
      applicationToken: APP_TOKEN,
      policy: fake.policy,
    });
    expect(
      await asyncCodeOf(E2eeClient.open({ transport: fake, state: bob.state, deviceSigner: aliceSigner })),
    ).toBe('ERR_INVALID_ARGUMENT');
    const group = await alice.createGroup();
    await alice.addMembers(group, ['bob', 'alice']);
    await bob.sync();
    await bob.send(group, utf8Encode('to both devices'));
    for (const c of [alice, phone]) {
      const events = await c.sync();
      expect(events.flatMap((e) => (e.kind === 'message' ? [utf8Decode(e.data)] : []))).toContain(
        'to both devices',
      );
    }

    // The revocation is signed by the first device's signer.
    const before = aliceSigner.count;
    await alice.revokeDevice('phone');
    expect(aliceSigner.count).toBe(before + 1);
    expect((await alice.devices()).map((d) => d.device)).toEqual(['browser']);
  });
});
