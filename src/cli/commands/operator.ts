/** `enseal operator …`: initialise, unseal, seal, rekey, back up and restore a running server. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import { writeFileAtomicSync } from '../../files/index.js';
import { readSecretFile } from '../input.js';
import { readHidden } from '../passphrase.js';
import { clientFor, inputBytes, output, serverOptions, type ServerFlags } from '../server-client.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The share from the argument, else a hidden prompt on a terminal, else the first line of stdin. */
async function shareFrom(arg: string | undefined): Promise<string> {
  if (arg !== undefined && arg !== '-') return arg;
  if (process.stdin.isTTY && arg === undefined) return (await readHidden('Unseal share: ')).trim();
  return Buffer.from(await inputBytes('-'))
    .toString('utf8')
    .trim();
}

export function registerOperator(program: Command): void {
  const operator = program
    .command('operator')
    .description('Operate a server: init, unseal, seal, rekey, backup, restore');

  serverOptions(operator.command('status').description('Seal status and unseal progress')).action(
    async (flags: ServerFlags) => {
      const s = await clientFor(flags).sealStatus();
      await output(
        flags,
        s,
        `initialized: ${s.initialized}\nsealed: ${s.sealed}\nunseal progress: ${s.progress}/${s.t} (of ${s.n} shares)`,
      );
    },
  );

  serverOptions(
    operator.command('init').description('Initialise: prints the unseal shares and root token, once'),
  )
    .option('--shares <n>', 'shares to issue', '5')
    .option('--threshold <n>', 'shares needed to unseal', '3')
    .action(async (flags: ServerFlags & { shares: string; threshold: string }) => {
      const r = await clientFor(flags).init({
        shares: Number(flags.shares),
        threshold: Number(flags.threshold),
      });
      const text = [
        ...r.keys.map((k, i) => `Unseal share ${i + 1}: ${k}`),
        `Root token: ${r.root_token}`,
        '',
        `Give each share to a different person. Any ${flags.threshold} of them unseal the server; enseal keeps no copy.`,
      ].join('\n');
      await output(flags, r, text);
    });

  serverOptions(
    operator
      .command('unseal')
      .description(
        'Submit one unseal share (prompted for on a terminal, or read from stdin, when not given)',
      ),
  )
    .argument(
      '[share]',
      'omit it to be prompted (without echo) on a terminal, or to read it from stdin (also -): keeps it out of shell history and ps',
    )
    .action(async (share: string | undefined, flags: ServerFlags) => {
      const value = await shareFrom(share);
      if (!value) throw new EnsealError(ErrorCode.KEK_MISSING, 'no unseal share given');
      const s = await clientFor(flags).unseal(value);
      await output(flags, s, s.sealed ? `unseal progress: ${s.progress}/${s.t}` : 'unsealed');
    });

  serverOptions(
    operator.command('seal').description('Seal the server: it wipes its keys and serves nothing'),
  ).action(async (flags: ServerFlags) => {
    await clientFor(flags).seal();
    await output(flags, { sealed: true }, 'sealed');
  });

  serverOptions(operator.command('rekey').description('New unseal shares for the same root key'))
    .requiredOption('--key <share>', 'a current unseal share (repeat up to the threshold)', collect)
    .option('--shares <n>', 'new shares to issue', '5')
    .option('--threshold <n>', 'new threshold', '3')
    .action(async (flags: ServerFlags & { key: string[]; shares: string; threshold: string }) => {
      const r = await clientFor(flags).rekey({
        keys: flags.key,
        shares: Number(flags.shares),
        threshold: Number(flags.threshold),
      });
      await output(flags, r, r.keys.map((k, i) => `New unseal share ${i + 1}: ${k}`).join('\n'));
    });

  serverOptions(operator.command('backup').description('Back up every key to an age file'))
    .option('-r, --recipient <age1…>', 'age recipient (repeatable)', collect)
    .option('--passphrase-file <file>', 'encrypt to a passphrase instead')
    .requiredOption('-o, --output <file>', 'where to write the backup (written atomically, mode 0600)')
    .action(
      async (flags: ServerFlags & { recipient?: string[]; passphraseFile?: string; output: string }) => {
        const file = await clientFor(flags).backup({
          ...(flags.recipient ? { recipients: flags.recipient } : {}),
          ...(flags.passphraseFile ? { passphrase: readSecretFile(flags.passphraseFile, 'passphrase') } : {}),
        });
        writeFileAtomicSync(flags.output, file, { mode: 0o600 });
        await output(
          flags,
          { written: flags.output, bytes: file.length },
          `backup written to ${flags.output}`,
        );
      },
    );

  serverOptions(operator.command('restore').description('Restore keys from a backup file'))
    .argument('<file>', 'the backup (age file)')
    .option('-i, --identity <file>', 'age identity file that opens the backup')
    .option('--passphrase-file <file>', 'passphrase that opens the backup')
    .option('--force', 'replace keys that already exist')
    .action(
      async (
        file: string,
        flags: ServerFlags & { identity?: string; passphraseFile?: string; force?: boolean },
      ) => {
        if (!flags.identity && !flags.passphraseFile) {
          throw new EnsealError(
            ErrorCode.KEK_MISSING,
            'pass -i IDENTITY_FILE or --passphrase-file to open the backup',
          );
        }
        const restored = await clientFor(flags).restore(await inputBytes(file), {
          ...(flags.identity ? { identity: readFileSync(flags.identity, 'utf8') } : {}),
          ...(flags.passphraseFile ? { passphrase: readSecretFile(flags.passphraseFile, 'passphrase') } : {}),
          ...(flags.force ? { force: true } : {}),
        });
        await output(flags, { restored }, `restored: ${restored.join(', ')}`);
      },
    );
}
