/**
 * The key directory: enrolling users, adding and revoking devices, recovery sets and MLS key packages, every
 * change one leaf of the transparency log. The server checks every signature before it appends (clients check
 * again; this only keeps garbage out of the log): a user's entries are replayed with `userDirectory` and the
 * new entry must extend a valid chain.
 */
import {
  EnsealError,
  ErrorCode,
  base64Encode,
  constantTimeEqual,
  invalidArgument,
} from '../../crypto/index.js';
import {
  MlsClient,
  MlsSuite,
  decodeDirectoryEntry,
  directoryEntryFromBody,
  encodeDirectoryEntry,
  mlsIdentityOf,
  userDirectory,
  type DirectoryEntry,
  type UserDirectory,
} from '../../e2ee/index.js';
import type { KeyManager } from '../../kms/index.js';
import type { StoreTransaction } from '../../store/index.js';
import type { FastifyInstance, FastifyRequest } from '../http.js';
import type { TokenStore } from '../tokens.js';
import type { E2eeLog } from './log-service.js';
import { b64, b64Schema, ctxOf, deviceOf, nameSchema, obj, routeSchema, type Body } from './requests.js';

const RECORD_MAX = 1024;
const KEY_PACKAGE_MAX = 64 * 1024;
const MAX_PACKAGES_PER_UPLOAD = 100;
const MAX_PACKAGES_PER_DEVICE = 1000;

const notFound = (user: string) =>
  new EnsealError(ErrorCode.E2EE_NOT_FOUND, `no user "${user}" in the directory`);

/** A user's entries as stored, decoded, and replayed; undefined when the user has none. */
async function loadUser(tx: StoreTransaction, user: string): Promise<UserDirectory | undefined> {
  const rows = await tx.listE2eeUserLeaves(user);
  if (rows.length === 0) return undefined;
  return userDirectory(
    user,
    rows.map((r) => decodeDirectoryEntry(r.entry)),
  );
}

function entriesOf(request: FastifyRequest): Body {
  return (request.body ?? {}) as Body;
}

const seconds = () => Math.floor(Date.now() / 1000);

/** A device record and the binding of its MLS key, as enrolment and device addition both take them. */
function deviceEntries(user: string, t: number, b: Body) {
  const added = directoryEntryFromBody(
    'device-added',
    user,
    t,
    b64('device_record', b.device_record, RECORD_MAX),
  );
  const binding = directoryEntryFromBody(
    'mls-signature-key',
    user,
    t,
    b64('mls_binding', b.mls_binding, RECORD_MAX),
  );
  if (added.kind !== 'device-added' || binding.kind !== 'mls-signature-key')
    throw invalidArgument('body', 'is not a device record with its MLS key binding');
  if (binding.binding.deviceId !== added.record.deviceId)
    throw invalidArgument('mls_binding', 'must bind the MLS key of the device in device_record');
  return { added, binding };
}

/** Checks the whole chain with `next` appended: the server's only question is "would a client accept this?". */
function extend(
  user: string,
  existing: readonly DirectoryEntry[],
  next: readonly DirectoryEntry[],
): UserDirectory {
  return userDirectory(user, [...existing, ...next]);
}

export interface DirectoryDeps {
  readonly km: KeyManager;
  readonly log: E2eeLog;
  readonly tokens: TokenStore;
}

export function registerDirectoryRoutes(app: FastifyInstance, deps: DirectoryDeps): void {
  const { km, log, tokens } = deps;
  // Only inspectKeyPackage is used, which never asks the authenticator; created at first use, per suite.
  let mls: Promise<MlsClient[]> | undefined;
  const clients = () =>
    (mls ??= Promise.allSettled(
      [MlsSuite.X25519_AES128GCM_ED25519, MlsSuite.XWING_AES256GCM_ED25519].map((suite) =>
        MlsClient.create({ suite, authenticator: { authenticate: () => false } }),
      ),
    ).then((all) => all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))));

  const allEntries = async (tx: StoreTransaction, user: string) =>
    (await tx.listE2eeUserLeaves(user)).map((r) => decodeDirectoryEntry(r.entry));

  const userParams = obj({ user: nameSchema });
  const appended = obj({
    indexes: { type: 'array', items: { type: 'integer' } },
    checkpoint: { type: 'string' },
  });
  const appendedOne = obj({ index: { type: 'integer' }, checkpoint: { type: 'string' } });
  const cpExample = 'example.com/enseal-e2ee\n3\nq5v…=\n\n— example.com/enseal-e2ee Az3…=\n';

  app.post(
    '/v1/e2ee/users/:user',
    {
      schema: routeSchema(
        'Enrol a user: identity entry, first device record and its MLS key binding',
        {
          params: userParams,
          body: obj({
            identity: b64Schema(RECORD_MAX),
            device_record: b64Schema(RECORD_MAX),
            mls_binding: b64Schema(RECORD_MAX),
          }),
          response: appended,
        },
        {
          params: { user: 'alice' },
          body: { identity: 'IK…', device_record: 'BWFsaWNl…', mls_binding: 'BXBob25l…' },
          response: { indexes: [0, 1, 2], checkpoint: cpExample },
        },
      ),
      config: { access: { e2ee: { tokens: 'app' } } },
    },
    async (request) => {
      const { user } = request.params as { user: string };
      const b = entriesOf(request);
      const t = seconds();
      const identity = directoryEntryFromBody(
        'user-identity',
        user,
        t,
        b64('identity', b.identity, RECORD_MAX),
      );
      const { added, binding } = deviceEntries(user, t, b);
      const out = await log.append('e2ee.user.create', ctxOf(request), user, async (tx) => {
        if ((await tx.listE2eeUserLeaves(user)).length > 0)
          throw new EnsealError(ErrorCode.E2EE_CONFLICT, `user "${user}" is enrolled already`);
        extend(user, [], [identity, added, binding]);
        return {
          entries: [identity, added, binding].map(encodeDirectoryEntry),
          detail: { user, device: added.record.deviceId },
        };
      });
      return out;
    },
  );

  app.get(
    '/v1/e2ee/users/:user',
    {
      schema: routeSchema(
        "A user's directory entries with their inclusion proofs in the checkpoint",
        {
          params: userParams,
          response: obj({
            user: { type: 'string' },
            checkpoint: { type: 'string' },
            entries: {
              type: 'array',
              items: obj({
                index: { type: 'integer' },
                entry: { type: 'string' },
                proof: { type: 'array', items: { type: 'string' } },
              }),
            },
          }),
        },
        {
          params: { user: 'alice' },
          response: {
            user: 'alice',
            checkpoint: cpExample,
            entries: [{ index: 0, entry: 'AQUFYWxp…', proof: ['3q2…='] }],
          },
        },
      ),
      config: { access: { e2ee: { tokens: 'device-or-app' } } },
    },
    async (request) => {
      const { user } = request.params as { user: string };
      const checkpoint = await log.latest();
      const size = Number(checkpoint.split('\n')[1]);
      const entries = await log.userEntries(user, size);
      if (entries.length === 0) throw notFound(user);
      await km.recordEvent(
        { op: 'e2ee.user.read', outcome: 'ok', detail: { user, entries: entries.length } },
        ctxOf(request),
      );
      return {
        user,
        checkpoint,
        entries: entries.map((e) => ({
          index: e.index,
          entry: base64Encode(e.entry),
          proof: e.proof.map(base64Encode),
        })),
      };
    },
  );

  const selfOrApp = {
    access: {
      path: (p: Readonly<Record<string, string>>) => `e2ee/users/${p.user}`,
      e2ee: { tokens: 'device-or-app', self: true },
    },
  } as const;

  app.post(
    '/v1/e2ee/users/:user/devices',
    {
      schema: routeSchema(
        'Add a device: a record signed by the identity key, the recovery key or a valid device, and its MLS key binding',
        {
          params: userParams,
          body: obj({ device_record: b64Schema(RECORD_MAX), mls_binding: b64Schema(RECORD_MAX) }),
          response: appended,
        },
        {
          params: { user: 'alice' },
          body: { device_record: 'BWFsaWNl…', mls_binding: 'BmxhcHRvcA…' },
          response: { indexes: [3, 4], checkpoint: cpExample },
        },
      ),
      config: selfOrApp,
    },
    async (request) => {
      const { user } = request.params as { user: string };
      const b = entriesOf(request);
      const t = seconds();
      const { added, binding } = deviceEntries(user, t, b);
      return log.append('e2ee.device.add', ctxOf(request), user, async (tx) => {
        const existing = await allEntries(tx, user);
        if (existing.length === 0) throw notFound(user);
        extend(user, existing, [added, binding]);
        return {
          entries: [added, binding].map(encodeDirectoryEntry),
          detail: { user, device: added.record.deviceId },
        };
      });
    },
  );

  app.post(
    '/v1/e2ee/users/:user/revocations',
    {
      schema: routeSchema(
        'Revoke a device (its tokens and key packages go with it)',
        { params: userParams, body: obj({ revocation: b64Schema(RECORD_MAX) }), response: appendedOne },
        {
          params: { user: 'alice' },
          body: { revocation: 'BWFsaWNl…' },
          response: { index: 5, checkpoint: cpExample },
        },
      ),
      config: selfOrApp,
    },
    async (request) => {
      const { user } = request.params as { user: string };
      const b = entriesOf(request);
      const revoked = directoryEntryFromBody(
        'device-revoked',
        user,
        seconds(),
        b64('revocation', b.revocation, RECORD_MAX),
      );
      if (revoked.kind !== 'device-revoked') throw invalidArgument('revocation', 'is not a revocation');
      const device = revoked.revocation.deviceId;
      const out = await log.append('e2ee.device.revoke', ctxOf(request), user, async (tx) => {
        const existing = await allEntries(tx, user);
        if (existing.length === 0) throw notFound(user);
        extend(user, existing, [revoked]);
        return {
          entries: [encodeDirectoryEntry(revoked)],
          detail: { user, device },
          after: async (t) => {
            await t.deleteE2eeKeyPackages(user, device);
            await tokens.revokeDeviceIn(t, km.records(), user, device);
          },
        };
      });
      return { index: out.indexes[0], checkpoint: out.checkpoint };
    },
  );

  app.post(
    '/v1/e2ee/users/:user/recovery-set',
    {
      schema: routeSchema(
        "Publish the user's recovery set (signed by the identity key)",
        { params: userParams, body: obj({ recovery_set: b64Schema(RECORD_MAX * 2) }), response: appendedOne },
        {
          params: { user: 'alice' },
          body: { recovery_set: 'AgMx…' },
          response: { index: 6, checkpoint: cpExample },
        },
      ),
      config: { access: { path: selfOrApp.access.path, e2ee: { tokens: 'device', self: true } } },
    },
    async (request) => {
      const { user } = request.params as { user: string };
      const b = entriesOf(request);
      const set = directoryEntryFromBody(
        'recovery-set',
        user,
        seconds(),
        b64('recovery_set', b.recovery_set, RECORD_MAX * 2),
      );
      const out = await log.append('e2ee.recovery-set', ctxOf(request), user, async (tx) => {
        const existing = await allEntries(tx, user);
        if (existing.length === 0) throw notFound(user);
        extend(user, existing, [set]);
        return { entries: [encodeDirectoryEntry(set)], detail: { user } };
      });
      return { index: out.indexes[0], checkpoint: out.checkpoint };
    },
  );

  /** Decodes a key package with the client of its suite and checks its signature. */
  const inspect = async (bytes: Uint8Array) => {
    let last: unknown;
    for (const client of await clients()) {
      try {
        return await client.inspectKeyPackage(bytes);
      } catch (err) {
        last = err;
        if (!(err instanceof EnsealError && err.message.includes('another cipher suite'))) throw err;
      }
    }
    throw last ?? new EnsealError(ErrorCode.UNSUPPORTED, 'no MLS suite is available in this runtime');
  };

  app.post(
    '/v1/e2ee/users/:user/devices/:device/key-packages',
    {
      schema: routeSchema(
        "Upload the device's MLS key packages (one-time, and optionally a last-resort one)",
        {
          params: obj({ user: nameSchema, device: nameSchema }),
          body: obj(
            {
              key_packages: {
                type: 'array',
                maxItems: MAX_PACKAGES_PER_UPLOAD,
                items: b64Schema(KEY_PACKAGE_MAX),
              },
              last_resort: b64Schema(KEY_PACKAGE_MAX),
            },
            ['last_resort'],
          ),
          response: obj({ stored: { type: 'integer' } }),
        },
        {
          params: { user: 'alice', device: 'phone' },
          body: { key_packages: ['AAEABQAB…'], last_resort: 'AAEABQAB…' },
          response: { stored: 2 },
        },
      ),
      config: { access: { path: selfOrApp.access.path, e2ee: { tokens: 'device', self: true } } },
    },
    async (request) => {
      const { user, device } = request.params as { user: string; device: string };
      const b = entriesOf(request);
      if (!Array.isArray(b.key_packages)) throw invalidArgument('key_packages', 'must be a list');
      const oneTime = b.key_packages.map((p: unknown, i) => b64(`key_packages[${i}]`, p, KEY_PACKAGE_MAX));
      const lastResort =
        b.last_resort === undefined ? undefined : b64('last_resort', b.last_resort, KEY_PACKAGE_MAX);
      const identity = mlsIdentityOf(user, device);
      const bound = await km.readRecords(async (tx) => (await loadUser(tx, user))?.mlsKeys.get(device));
      if (bound === undefined)
        throw new EnsealError(
          ErrorCode.E2EE_NOT_FOUND,
          `device "${device}" of "${user}" has no valid MLS key binding`,
        );
      const check = async (bytes: Uint8Array, what: string, wantLastResort: boolean) => {
        const kp = await inspect(bytes);
        if (!(kp.identity.length === identity.length && constantTimeEqual(kp.identity, identity)))
          throw new EnsealError(
            ErrorCode.E2EE_UNTRUSTED_IDENTITY,
            `${what} carries another identity than ${user}/${device}`,
          );
        if (!(
          kp.signaturePublicKey.length === bound.length && constantTimeEqual(kp.signaturePublicKey, bound)
        ))
          throw new EnsealError(
            ErrorCode.E2EE_UNTRUSTED_IDENTITY,
            `${what} is not signed by the device's bound MLS key`,
          );
        if (kp.lastResort !== wantLastResort)
          throw invalidArgument(
            what,
            wantLastResort ? 'must carry the last_resort extension' : 'must not be a last-resort package',
          );
      };
      for (const [i, p] of oneTime.entries()) await check(p, `key_packages[${i}]`, false);
      if (lastResort) await check(lastResort, 'last_resort', true);
      return km.changeRecords('e2ee.key-packages.upload', ctxOf(request), async (tx) => {
        const now = Date.now();
        if ((await tx.countE2eeKeyPackages(user, device)) + oneTime.length > MAX_PACKAGES_PER_DEVICE)
          throw invalidArgument(
            'key_packages',
            `a device may hold at most ${MAX_PACKAGES_PER_DEVICE} packages`,
          );
        await tx.insertE2eeKeyPackages(user, device, oneTime, now);
        if (lastResort) await tx.putE2eeLastResortKeyPackage(user, device, lastResort, now);
        const stored = oneTime.length + (lastResort ? 1 : 0);
        return { result: { stored }, detail: { user, device, stored } };
      });
    },
  );

  app.post(
    '/v1/e2ee/users/:user/key-packages/claim',
    {
      schema: routeSchema(
        "Claim one key package of each of the user's valid devices (one-time packages are handed out once)",
        {
          params: userParams,
          response: obj({
            key_packages: {
              type: 'array',
              items: obj({
                device: { type: 'string' },
                key_package: { type: 'string' },
                last_resort: { type: 'boolean' },
              }),
            },
          }),
        },
        {
          params: { user: 'bob' },
          response: { key_packages: [{ device: 'laptop', key_package: 'AAEABQAB…', last_resort: false }] },
        },
      ),
      config: { access: { path: selfOrApp.access.path, e2ee: { tokens: 'device' } } },
    },
    async (request) => {
      const { user } = request.params as { user: string };
      const caller = deviceOf(request);
      return km.changeRecords('e2ee.key-packages.claim', ctxOf(request), async (tx) => {
        const dir = await loadUser(tx, user);
        if (dir === undefined) throw notFound(user);
        const out: { device: string; key_package: string; last_resort: boolean }[] = [];
        for (const device of dir.devices.keys()) {
          if (caller.user === user && caller.device === device) continue; // the caller's own device
          if (!dir.mlsKeys.has(device)) continue;
          const claimed = await tx.claimE2eeKeyPackage(user, device);
          if (claimed !== undefined)
            out.push({
              device,
              key_package: base64Encode(claimed.keyPackage),
              last_resort: claimed.lastResort,
            });
        }
        return { result: { key_packages: out }, detail: { user, claimed: out.length } };
      });
    },
  );
}
