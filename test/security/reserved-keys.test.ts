/**
 * The e2ee log signs its checkpoints with the key manager's key `enseal-e2ee-log`. Whoever can sign with that
 * key can forge a checkpoint for a tree the log never held, so the attacker here holds every transit
 * capability (and the root token) and tries every way in: create the name first, plant it through a crafted
 * backup, sign with it, reconfigure, rotate, trim, delete, export and back it up. Each is refused as
 * ERR_KEY_RESERVED, the refusal is audited, and the log keeps signing with its own key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64Encode, utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { parseVerifierKey } from '../../src/e2ee/index.js';
import { AgeX25519Identity, ageDecrypt, ageEncrypt } from '../../src/formats/age/index.js';
import { SYSTEM_CALL } from '../../src/kms/index.js';
import { devServer, type Response } from '../server/helpers.js';
import { devManager } from '../kms/helpers.js';
import { logView, requester } from '../server/e2ee-helpers.js';

const LOG_KEY = 'enseal-e2ee-log';
let ctx: Awaited<ReturnType<typeof devServer>>;
let attacker: string;

beforeAll(async () => {
  ctx = await devServer({ e2ee: { origin: 'reserved.example/log' } });
  const policy = 'path "transit/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }';
  expect((await ctx.call('PUT', '/v1/sys/policies/acl/everything', { body: { policy } })).status).toBe(204);
  const created = await ctx.call('POST', '/v1/auth/token/create', { body: { policies: ['everything'] } });
  attacker = created.body.auth.client_token;
});
afterAll(async () => ctx.server.close());

function expectReserved(r: Response, what: string): void {
  expect(r.status, `${what}: ${r.text}`).toBe(403);
  expect(r.body.errors[0], what).toMatch(/^ERR_KEY_RESERVED: .*reserved for enseal's own use/);
}

/** A backup of the attacker's own key, rewritten to carry the reserved name (so its material is known). */
async function plantedBackup(identity: AgeX25519Identity): Promise<string> {
  const made = await ctx.call('POST', '/v1/transit/keys/planted', {
    token: attacker,
    body: { type: 'ed25519', exportable: true, allow_plaintext_backup: true },
  });
  expect(made.status, made.text).toBe(200);
  const got = await ctx.call('GET', `/v1/transit/backup/planted?recipient=${identity.recipient.toString()}`, {
    token: attacker,
  });
  expect(got.status, got.text).toBe(200);
  const outer = JSON.parse(utf8Decode(ageDecrypt(Buffer.from(got.body.data.backup, 'base64'), [identity])));
  const body = JSON.parse(outer.body);
  body.keys[0].policy.name = LOG_KEY;
  const forged = { ...outer, keyring: 'another-keyring', body: JSON.stringify(body) };
  return base64Encode(ageEncrypt(utf8Encode(JSON.stringify(forged)), [identity.recipient]));
}

describe('the e2ee log key is out of every API caller’s reach', () => {
  let plantedPublic: string;

  it('cannot be created ahead of the log, under any spelling, even by root', async () => {
    for (const token of [attacker, ctx.token]) {
      for (const name of [LOG_KEY, 'ENSEAL-e2ee-log', 'enseal-anything']) {
        expectReserved(
          await ctx.call('POST', `/v1/transit/keys/${name}`, { token, body: { type: 'ed25519' } }),
          `create ${name}`,
        );
      }
    }
  });

  it('cannot be planted through a backup that this keyring did not make', async () => {
    const identity = AgeX25519Identity.generate();
    const backup = await plantedBackup(identity);
    const body = { backup, identity: identity.toString() };
    expectReserved(
      await ctx.call('POST', '/v1/transit/restore', { token: attacker, body }),
      'transit restore',
    );
    expectReserved(
      await ctx.call('POST', `/v1/transit/restore/${LOG_KEY}`, { token: attacker, body }),
      'transit restore by name',
    );
    expectReserved(await ctx.call('POST', '/v1/sys/restore', { body }), 'sys restore as root');
    plantedPublic = (await ctx.call('GET', '/v1/transit/keys/planted', { token: attacker })).body.data.keys[
      '1'
    ].public_key;
  });

  it('the log creates its own key, not the planted one, and signs with it', async () => {
    const key = await ctx.call('GET', '/v1/e2ee/log/key');
    expect(key.status, key.text).toBe(200);
    const published = base64Encode(parseVerifierKey(key.body.verifier_key).publicKey);
    expect(published).not.toBe(plantedPublic);
    const view = await logView(requester(ctx.server));
    view.update((await ctx.call('GET', '/v1/e2ee/log/checkpoint')).text);
  });

  it('refuses every transit operation on it, for a token with every capability and for root', async () => {
    const forgedCheckpoint = base64Encode(utf8Encode('reserved.example/log\n1000000\nAAAA\n'));
    const attempts: [string, string, unknown?][] = [
      ['POST', `/v1/transit/sign/${LOG_KEY}`, { input: forgedCheckpoint }],
      ['POST', `/v1/transit/verify/${LOG_KEY}`, { input: forgedCheckpoint, signature: 'vault:v1:AAAA' }],
      ['GET', `/v1/transit/keys/${LOG_KEY}`],
      ['POST', `/v1/transit/keys/${LOG_KEY}/config`, { exportable: true, deletion_allowed: true }],
      ['POST', `/v1/transit/keys/${LOG_KEY}/rotate`],
      ['POST', `/v1/transit/keys/${LOG_KEY}/trim`, { min_available_version: 1 }],
      ['DELETE', `/v1/transit/keys/${LOG_KEY}`],
      ['GET', `/v1/transit/export/public-key/${LOG_KEY}`],
      ['GET', `/v1/transit/export/signing-key/${LOG_KEY}`],
      [
        'POST',
        `/v1/transit/backup/${LOG_KEY}`,
        { recipients: [AgeX25519Identity.generate().recipient.toString()] },
      ],
      ['POST', `/v1/transit/hmac/${LOG_KEY}`, { input: forgedCheckpoint }],
      ['POST', `/v1/transit/encrypt/${LOG_KEY}`, { plaintext: forgedCheckpoint }],
    ];
    for (const token of [attacker, ctx.token]) {
      for (const [method, path, body] of attempts) {
        expectReserved(
          await ctx.call(method, path, { token, ...(body ? { body } : {}) }),
          `${method} ${path}`,
        );
      }
    }
    const list = await ctx.call('GET', '/v1/transit/keys?list=true', { token: attacker });
    expect(list.body.data.keys).toContain('planted');
    expect(list.body.data.keys).not.toContain(LOG_KEY);
  });

  it('records each refusal in the audit log, and the log still signs', async () => {
    const audit = await ctx.call('GET', '/v1/sys/audit/export');
    expect(audit.status, audit.text).toBe(200);
    const refusals = audit.text
      .split('\n')
      .filter((l) => l.includes('ERR_KEY_RESERVED'))
      .map((l) => JSON.parse(l));
    expect(refusals.length).toBe(33);
    expect(refusals.every((e) => e.outcome === 'denied')).toBe(true);
    const enrol = await ctx.call('GET', '/v1/e2ee/log/checkpoint');
    const view = await logView(requester(ctx.server));
    view.update(enrol.text);
  });
});

describe('reserved names in the key manager', () => {
  it('lists full pages around a reserved key, so paging never stops early', async () => {
    const { km } = await devManager();
    await km.createKey('a');
    await km.createKey('enseal-internal', {}, { caller: 'test', system: SYSTEM_CALL });
    await km.createKey('z');
    expect(await km.listKeys({ limit: 2 })).toEqual(['a', 'z']);
    expect(await km.listKeys({ limit: 1, after: 'a' })).toEqual(['z']);
    expect(await km.listKeys({ limit: 5 }, { system: SYSTEM_CALL })).toEqual(['a', 'enseal-internal', 'z']);
    await expect(km.sign('enseal-internal', utf8Encode('x'))).rejects.toMatchObject({
      code: 'ERR_KEY_RESERVED',
    });
    await km.close();
  });
});
