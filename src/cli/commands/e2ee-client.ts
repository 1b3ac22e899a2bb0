/**
 * `enseal e2ee …`, the client side: register a user, manage devices, groups, messages, files, verification and
 * recovery against the service at ENSEAL_ADDR (ENSEAL_CACERT for a private CA). ENSEAL_TOKEN is the application
 * token, needed only to register or recover a user; everything else uses the device's own token, obtained by
 * signing a challenge. The device's state is one SQLite file in `--state DIR` (default
 * `$XDG_CONFIG_HOME/enseal/e2ee`), sealed under a key from ENSEAL_E2EE_STATE_KEY (64 hex digits) or a passphrase
 * (ENSEAL_E2EE_PASSPHRASE, else asked on the terminal).
 *
 * `e2ee.ts` creates the `e2ee` command and adds these subcommands to it, beside the witness.
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import { NodeTransport, SqliteStateBackend } from '../../client/index.js';
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64Encode,
  hexDecode,
  utf8Decode,
  utf8Encode,
} from '../../crypto/index.js';
import {
  E2eeClient,
  EncryptedState,
  formatDeviceRequest,
  parseDeviceRequest,
  type E2eeEvent,
  type PinnedLogPolicy,
  type StateKeySource,
} from '../../e2ee/index.js';
import { promptPassphrase } from '../passphrase.js';
import { readStdin, writeStdout } from '../run.js';
import { output } from '../server-client.js';

interface Flags {
  state?: string;
  address?: string;
  caCert?: string;
  json?: boolean;
}

function stateDir(flags: Flags): string {
  if (flags.state) return flags.state;
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'enseal', 'e2ee');
}

function transport(flags: Flags): NodeTransport {
  const address = flags.address ?? process.env.ENSEAL_ADDR ?? 'https://127.0.0.1:8200';
  const ca = flags.caCert ?? process.env.ENSEAL_CACERT;
  let caCert: Buffer | undefined;
  if (ca) {
    try {
      caCert = readFileSync(ca);
    } catch (cause) {
      throw new EnsealError(ErrorCode.IO, `CA certificate file ${ca} cannot be read`, { cause });
    }
  }
  return new NodeTransport({ address, ...(caCert ? { caCert } : {}) });
}

async function keySource(): Promise<StateKeySource> {
  const hex = process.env.ENSEAL_E2EE_STATE_KEY;
  if (hex) {
    const key = hexDecode(hex.trim());
    if (key.length !== 32)
      throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'ENSEAL_E2EE_STATE_KEY must be 64 hex digits');
    return { key };
  }
  const passphrase = process.env.ENSEAL_E2EE_PASSPHRASE ?? (await promptPassphrase(false));
  return { passphrase };
}

async function openState(flags: Flags): Promise<EncryptedState> {
  const backend = new SqliteStateBackend({ path: join(stateDir(flags), 'state.db') });
  try {
    return await EncryptedState.open(backend, await keySource());
  } catch (err) {
    await backend.close();
    throw err;
  }
}

function appToken(): string {
  const token = process.env.ENSEAL_TOKEN;
  if (!token)
    throw new EnsealError(
      ErrorCode.PERMISSION_DENIED,
      'set ENSEAL_TOKEN to an application token that may enrol e2ee users',
    );
  return token;
}

/** The pinned log policy: from `--policy FILE`, or (explicitly) as the server announces it. */
async function policyFrom(
  flags: Flags & { policy?: string; trustServerPolicy?: boolean },
): Promise<PinnedLogPolicy> {
  if (flags.policy) {
    let p: PinnedLogPolicy;
    try {
      p = JSON.parse(readFileSync(flags.policy, 'utf8')) as PinnedLogPolicy;
    } catch (cause) {
      throw new EnsealError(ErrorCode.IO, `cannot read the log policy ${flags.policy}`, { cause });
    }
    return { origin: p.origin, logKey: p.logKey, witnesses: p.witnesses ?? [], quorum: p.quorum ?? 0 };
  }
  if (!flags.trustServerPolicy)
    throw new EnsealError(
      ErrorCode.INVALID_ARGUMENT,
      'give the log policy to pin with --policy FILE (or --trust-server-policy to pin what the server announces)',
    );
  const t = transport(flags);
  try {
    const res = await t.request({ method: 'GET', path: '/v1/e2ee/log/key' });
    const k = JSON.parse(utf8Decode(res.body)) as {
      origin: string;
      verifier_key: string;
      witnesses?: string[];
      quorum?: number;
    };
    if (res.status !== 200 || typeof k.origin !== 'string')
      throw new EnsealError(ErrorCode.IO, 'the server did not announce its log key');
    return { origin: k.origin, logKey: k.verifier_key, witnesses: k.witnesses ?? [], quorum: k.quorum ?? 0 };
  } finally {
    t.close();
  }
}

/** Runs `work` with the device's client, and always closes the state and connections. */
async function withClient<T>(flags: Flags, work: (c: E2eeClient) => Promise<T>): Promise<T> {
  const state = await openState(flags);
  const t = transport(flags);
  try {
    const warnings: unknown[] = [];
    const client = await E2eeClient.open({ transport: t, state, onWarning: (w) => warnings.push(w) });
    const result = await work(client);
    for (const w of warnings) process.stderr.write(`enseal: warning: ${JSON.stringify(w)}\n`);
    return result;
  } finally {
    t.close();
    await state.close();
  }
}

function eventJson(e: E2eeEvent): Record<string, unknown> {
  if (e.kind === 'message') return { ...e, data: base64Encode(e.data), text: printable(e.data) };
  if (e.kind === 'history')
    return {
      ...e,
      entries: e.entries.map((h) =>
        h.data === undefined ? { ...h } : { ...h, data: base64Encode(h.data), text: printable(h.data) },
      ),
    };
  return { ...e };
}

function printable(data: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return undefined;
  }
}

function withCommon(c: Command): Command {
  return c
    .option('--state <dir>', 'device state directory (default $XDG_CONFIG_HOME/enseal/e2ee)')
    .option('--address <url>', 'server address (env ENSEAL_ADDR)')
    .option('--ca-cert <file>', 'CA certificate to trust (env ENSEAL_CACERT)')
    .option('--json', 'machine-readable output');
}

/** Adds the device client's subcommands to the `enseal e2ee` group. */
export function registerE2eeClient(e2ee: Command): void {
  withCommon(e2ee.command('register').description('Register a user with this device as its first device'))
    .argument('<user>')
    .argument('<device>')
    .option('--policy <file>', 'the log policy to pin: JSON {origin, logKey, witnesses, quorum}')
    .option('--trust-server-policy', 'pin the log key and witnesses the server announces (first use only)')
    .action(
      async (
        user: string,
        device: string,
        flags: Flags & { policy?: string; trustServerPolicy?: boolean },
      ) => {
        const policy = await policyFrom(flags);
        const state = await openState(flags);
        const t = transport(flags);
        try {
          await E2eeClient.register({
            transport: t,
            state,
            user,
            device,
            applicationToken: appToken(),
            policy,
          });
        } finally {
          t.close();
          await state.close();
        }
        await output(flags, { user, device, registered: true }, `registered ${user}/${device}`);
      },
    );

  const devices = e2ee.command('devices').description("This user's devices");
  withCommon(
    devices.command('list', { isDefault: true }).description('Devices proved by the directory, and warnings'),
  ).action(async (flags: Flags) => {
    const out = await withClient(flags, async (c) => ({
      devices: await c.devices(),
      warnings: await c.monitor(),
    }));
    await output(
      flags,
      out,
      out.devices.map((d) => `${d.device}${d.current ? ' (this device)' : ''}`).join('\n'),
    );
  });
  withCommon(
    devices.command('request').description('On a new device: make its keys and print the request to approve'),
  )
    .argument('<user>')
    .argument('<device>')
    .option('--policy <file>', 'the log policy to pin')
    .option('--trust-server-policy', 'pin what the server announces')
    .action(
      async (
        user: string,
        device: string,
        flags: Flags & { policy?: string; trustServerPolicy?: boolean },
      ) => {
        const policy = await policyFrom(flags);
        const state = await openState(flags);
        const t = transport(flags);
        let text: string;
        try {
          const { request } = await E2eeClient.requestDevice({ transport: t, state, user, device, policy });
          text = formatDeviceRequest(request);
        } finally {
          t.close();
          await state.close();
        }
        await output(flags, { request: text }, text);
      },
    );
  withCommon(devices.command('approve').description('On an existing device: sign and publish a new device'))
    .argument('<request>', 'the enseal-device1:… text the new device printed')
    .action(async (request: string, flags: Flags) => {
      const r = parseDeviceRequest(request);
      await withClient(flags, (c) => c.approveDevice(r));
      await output(flags, { approved: r.device }, `approved ${r.user}/${r.device}`);
    });
  withCommon(
    devices
      .command('complete')
      .description('On the new device, once approved: log in and publish key packages'),
  ).action(async (flags: Flags) => {
    await withClient(flags, (c) => c.completeEnrolment());
    await output(flags, { enrolled: true }, 'enrolled');
  });
  withCommon(devices.command('revoke').description('Revoke a device of this user'))
    .argument('<device>')
    .action(async (device: string, flags: Flags) => {
      await withClient(flags, (c) => c.revokeDevice(device));
      await output(flags, { revoked: device }, `revoked ${device}`);
    });
  withCommon(
    devices.command('acknowledge').description('Mark a device of this user as known (stops the warning)'),
  )
    .argument('<device>')
    .action(async (device: string, flags: Flags) => {
      await withClient(flags, (c) => c.acknowledgeDevice(device));
      await output(flags, { acknowledged: device }, `acknowledged ${device}`);
    });

  const group = e2ee.command('group').description('Groups');
  withCommon(group.command('create').description('Create a group; prints its id'))
    .option(
      '--shared-history',
      'members keep past messages and share them with members added later (fixed at creation)',
    )
    .action(async (flags: Flags & { sharedHistory?: boolean }) => {
      const id = await withClient(flags, (c) =>
        c.createGroup({ history: flags.sharedHistory === true ? 'shared' : 'none' }),
      );
      await output(flags, { group: id }, id);
    });
  withCommon(group.command('list').description('Groups this device is in')).action(async (flags: Flags) => {
    const ids = await withClient(flags, (c) => c.groups());
    await output(flags, { groups: ids }, ids.join('\n'));
  });
  withCommon(group.command('members').description("A group's members"))
    .argument('<group>')
    .action(async (gid: string, flags: Flags) => {
      const m = await withClient(flags, (c) => c.members(gid));
      await output(flags, { members: m }, m.map((a) => `${a.user}/${a.device}`).join('\n'));
    });
  withCommon(group.command('add').description('Add users (every valid device) to a group'))
    .argument('<group>')
    .argument('<users...>')
    .action(async (gid: string, users: string[], flags: Flags) => {
      const n = await withClient(flags, (c) => c.addMembers(gid, users));
      await output(flags, { added: n }, `added ${n} device(s)`);
    });
  withCommon(group.command('remove').description('Remove users or user/device members from a group'))
    .argument('<group>')
    .argument('<members...>')
    .action(async (gid: string, members: string[], flags: Flags) => {
      const n = await withClient(flags, (c) => c.removeMembers(gid, members));
      await output(flags, { removed: n }, `removed ${n} device(s)`);
    });

  withCommon(e2ee.command('send').description('Send a message to a group (argument, or stdin)'))
    .argument('<group>')
    .argument('[message]')
    .action(async (gid: string, message: string | undefined, flags: Flags) => {
      const data = message === undefined ? await readStdin() : utf8Encode(message);
      const seq = await withClient(flags, (c) => c.send(gid, data));
      await output(flags, { seq }, `sent (${seq})`);
    });
  withCommon(e2ee.command('recv').description('Fetch and process the inbox; prints what arrived'))
    .option('--wait <seconds>', 'long-poll up to this long when the inbox is empty (≤ 30)', '0')
    .action(async (flags: Flags & { wait: string }) => {
      const events = await withClient(flags, (c) => c.sync({ waitSeconds: Number(flags.wait) }));
      const text = events
        .map((e) =>
          e.kind === 'message'
            ? `${e.groupId} ${e.sender.user}/${e.sender.device}: ${printable(e.data) ?? base64Encode(e.data)}`
            : e.kind === 'file'
              ? `${e.groupId} ${e.sender.user}/${e.sender.device}: file ${e.file.name} (${e.file.blobId})`
              : e.kind === 'history'
                ? `${e.groupId} history from ${e.sender.user}/${e.sender.device}: ${e.entries.length} past messages`
                : e.kind === 'missing'
                  ? `${e.groupId} ${e.code}: messages ${e.from}–${e.to} of ${e.sender.user}/${e.sender.device} (epoch ${e.epoch}) were not delivered`
                  : `${e.groupId} ${e.kind}`,
        )
        .join('\n');
      await output(flags, { events: events.map(eventJson) }, text);
    });
  withCommon(e2ee.command('share').description('Share a file in a group (streamed, end-to-end encrypted)'))
    .argument('<group>')
    .argument('<file>')
    .option('--name <name>', 'the name members see (default: the file name)')
    .action(async (gid: string, file: string, flags: Flags & { name?: string }) => {
      const shared = await withClient(flags, (c) =>
        c.shareFile(gid, createReadStream(file), flags.name ?? file.split('/').pop() ?? ''),
      );
      await output(flags, shared, shared.blobId);
    });
  withCommon(e2ee.command('fetch').description('Fetch and decrypt a shared file'))
    .argument('<blob>')
    .option('-o, --output <file>', 'write here (default: stdout)')
    .action(async (blob: string, flags: Flags & { output?: string }) => {
      await withClient(flags, async (c) => {
        if (flags.output) {
          const out = createWriteStream(flags.output, { flags: 'wx', mode: 0o600 });
          for await (const chunk of c.fetchFile(blob))
            if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
          out.end();
          await finished(out);
        } else {
          for await (const chunk of c.fetchFile(blob)) await writeStdout(chunk);
        }
      });
    });

  withCommon(
    e2ee.command('verify').description("A contact's safety number, or a group's epoch authenticator"),
  )
    .argument('[user]')
    .option('--group <group>', "print this group's epoch authenticator")
    .option('--confirm', 'mark the contact verified (after comparing the digits)')
    .option('--qr <base64>', "mark verified by the QR payload scanned from the contact's screen")
    .action(
      async (user: string | undefined, flags: Flags & { group?: string; confirm?: boolean; qr?: string }) => {
        const out = await withClient(flags, async (c) => {
          const result: Record<string, unknown> = {};
          if (flags.group) result.group = await c.epochAuthenticator(flags.group);
          if (user) {
            const sn = await c.safetyNumber(user);
            result.user = user;
            result.safety_number = sn.groups.join(' ');
            result.qr_payload = base64Encode(sn.qrPayload);
            if (flags.qr !== undefined || flags.confirm)
              result.verified = await c.markVerified(
                user,
                flags.qr === undefined ? undefined : base64Decode(flags.qr),
              );
          }
          return result;
        });
        if (out.verified === false) process.exitCode = 1;
        await output(
          flags,
          out,
          [
            out.safety_number as string | undefined,
            out.group
              ? `epoch ${(out.group as { epoch: number }).epoch}: ${(out.group as { authenticator: string }).authenticator}`
              : undefined,
            out.verified === undefined ? undefined : out.verified ? 'verified' : 'MISMATCH: not verified',
          ]
            .filter(Boolean)
            .join('\n'),
        );
      },
    );

  const recover = e2ee.command('recover').description('Back up and recover the identity key (end to end)');
  withCommon(
    recover.command('backup').description('Store a passphrase backup of the identity key on the service'),
  ).action(async (flags: Flags) => {
    const passphrase = process.env.ENSEAL_E2EE_RECOVERY_PASSPHRASE ?? (await promptPassphrase(true));
    await withClient(flags, async (c) => c.storeRecoveryBlob(await c.backupIdentity(passphrase)));
    await output(flags, { stored: true }, 'recovery backup stored (ciphertext only)');
  });
  withCommon(recover.command('shares').description('Split the identity key into Shamir shares'))
    .option('--shares <n>', 'number of shares', '5')
    .option('--threshold <t>', 'shares needed', '3')
    .action(async (flags: Flags & { shares: string; threshold: string }) => {
      const shares = await withClient(flags, (c) =>
        c.splitIdentity({ shares: Number(flags.shares), threshold: Number(flags.threshold) }),
      );
      await output(flags, { shares }, shares.join('\n'));
    });
  withCommon(recover.command('restore').description('Recover the user on this (new) device'))
    .argument('<user>')
    .argument('<device>')
    .option('--share <share...>', 'Shamir shares instead of the passphrase backup')
    .option('--policy <file>', 'the log policy to pin')
    .option('--trust-server-policy', 'pin what the server announces')
    .action(
      async (
        user: string,
        device: string,
        flags: Flags & { share?: string[]; policy?: string; trustServerPolicy?: boolean },
      ) => {
        const policy = await policyFrom(flags);
        const state = await openState(flags);
        const t = transport(flags);
        try {
          await E2eeClient.recover({
            transport: t,
            state,
            user,
            device,
            policy,
            applicationToken: appToken(),
            ...(flags.share
              ? { shares: flags.share }
              : {
                  passphrase: process.env.ENSEAL_E2EE_RECOVERY_PASSPHRASE ?? (await promptPassphrase(false)),
                }),
          });
        } finally {
          t.close();
          await state.close();
        }
        await output(flags, { user, device, recovered: true }, `recovered ${user} on ${device}`);
      },
    );
}
