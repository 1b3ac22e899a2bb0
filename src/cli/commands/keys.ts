/** `enseal keys …`: named keys on a server (create, list, show, rotate, config, delete). */
import type { Command } from 'commander';
import { clientFor, output, serverOptions, type ServerFlags } from '../server-client.js';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('Manage named keys on a server');
  serverOptions(keys.command('create').description('Create a named key'))
    .argument('<name>')
    .option(
      '--type <type>',
      'aes256-gcm96 (default), chacha20-poly1305, xchacha20-poly1305, ed25519, ecdsa-p256, rsa-2048|3072|4096, hmac',
    )
    .option('--derived', 'derive a key per context (per tenant or data subject)')
    .option('--exportable', 'allow export of key material (one-way)')
    .option('--auto-rotate-period <duration>', 'e.g. 90d, 24h; 0 turns automatic rotation off')
    .action(
      async (
        name: string,
        flags: ServerFlags & {
          type?: string;
          derived?: boolean;
          exportable?: boolean;
          autoRotatePeriod?: string;
        },
      ) => {
        const key = await clientFor(flags).createKey(name, {
          ...(flags.type ? { type: flags.type } : {}),
          ...(flags.derived ? { derived: true } : {}),
          ...(flags.exportable ? { exportable: true } : {}),
          ...(flags.autoRotatePeriod ? { auto_rotate_period: flags.autoRotatePeriod } : {}),
        });
        await output(
          flags,
          key,
          `created ${name} (${String(key.type)}, version ${String(key.latest_version)})`,
        );
      },
    );
  serverOptions(keys.command('list').description('List key names')).action(async (flags: ServerFlags) => {
    const names = await clientFor(flags).listKeys();
    await output(flags, { keys: names }, names.join('\n'));
  });
  serverOptions(
    keys.command('show').description('Show a key: versions, policy, next rotation').argument('<name>'),
  ).action(async (name: string, flags: ServerFlags) => {
    await output(flags, await clientFor(flags).readKey(name));
  });
  serverOptions(keys.command('rotate').description('Add a version').argument('<name>')).action(
    async (name: string, flags: ServerFlags) => {
      const key = await clientFor(flags).rotateKey(name);
      await output(flags, key, `${name} is now at version ${String(key.latest_version)}`);
    },
  );
  serverOptions(keys.command('config').description("Change a key's configuration").argument('<name>'))
    .option('--min-decryption-version <n>')
    .option('--min-encryption-version <n>')
    .option('--deletion-allowed', 'allow deletion')
    .option('--exportable', 'allow export (one-way)')
    .option('--allow-plaintext-backup', 'allow single-key backup (one-way)')
    .option('--auto-rotate-period <duration>')
    .action(
      async (
        name: string,
        flags: ServerFlags & {
          minDecryptionVersion?: string;
          minEncryptionVersion?: string;
          deletionAllowed?: boolean;
          exportable?: boolean;
          allowPlaintextBackup?: boolean;
          autoRotatePeriod?: string;
        },
      ) => {
        const key = await clientFor(flags).configureKey(name, {
          ...(flags.minDecryptionVersion
            ? { min_decryption_version: Number(flags.minDecryptionVersion) }
            : {}),
          ...(flags.minEncryptionVersion
            ? { min_encryption_version: Number(flags.minEncryptionVersion) }
            : {}),
          ...(flags.deletionAllowed ? { deletion_allowed: true } : {}),
          ...(flags.exportable ? { exportable: true } : {}),
          ...(flags.allowPlaintextBackup ? { allow_plaintext_backup: true } : {}),
          ...(flags.autoRotatePeriod ? { auto_rotate_period: flags.autoRotatePeriod } : {}),
        });
        await output(flags, key);
      },
    );
  serverOptions(
    keys
      .command('delete')
      .description('Schedule deletion (7-day wait; needs deletion_allowed)')
      .argument('<name>'),
  ).action(async (name: string, flags: ServerFlags) => {
    await clientFor(flags).deleteKey(name);
    await output(
      flags,
      { scheduled: name },
      `${name} is scheduled for deletion in 7 days and serves nothing meanwhile`,
    );
  });
}
