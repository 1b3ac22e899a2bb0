/**
 * `enseal keyset …`: create, rotate and use keysets stored sealed in a file. The key-encryption key comes from
 * ENSEAL_KEK, --kek-file, or --passphrase-file (Argon2id); the file is written atomically with mode 0600.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import { writeFileAtomicSync } from '../../files/index.js';
import type { KeyAlgorithm, KeyPurpose } from '../../formats/index.js';
import {
  KeyEncryptionKey,
  Keyset,
  openKeyset,
  openKeysetWithPassphrase,
  sealKeyset,
  sealKeysetWithPassphrase,
  type SealedKeyset,
} from '../../keys/index.js';
import { readSecretFile } from '../input.js';
import { readStdin, writeStdout } from '../run.js';

export interface KekOptions {
  kekFile?: string;
  passphraseFile?: string;
}

type Protection = { kek: KeyEncryptionKey } | { passphrase: string };

function protection(options: KekOptions): Protection {
  if (options.passphraseFile !== undefined)
    return { passphrase: readSecretFile(options.passphraseFile, 'passphrase') };
  const text =
    options.kekFile !== undefined
      ? readSecretFile(options.kekFile, 'key-encryption key')
      : process.env.ENSEAL_KEK;
  if (text === undefined || text.length === 0) {
    throw new EnsealError(
      ErrorCode.KEK_MISSING,
      'no key-encryption key: set ENSEAL_KEK, or pass --kek-file or --passphrase-file (create one with `enseal keyset kek`)',
    );
  }
  return { kek: KeyEncryptionKey.fromText(text) };
}

function readSealed(path: string): SealedKeyset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new EnsealError(ErrorCode.IO, `cannot read keyset file ${path}`, { cause });
  }
  try {
    return JSON.parse(text) as SealedKeyset;
  } catch {
    throw new EnsealError(ErrorCode.MALFORMED, `${path} is not a sealed keyset (invalid JSON)`);
  }
}

/** Opens a sealed keyset file with ENSEAL_KEK, --kek-file or --passphrase-file (shared with `enseal db`). */
export async function loadKeysetFile(path: string, options: KekOptions): Promise<Keyset> {
  const p = protection(options);
  const sealed = readSealed(path);
  return 'kek' in p ? openKeyset(sealed, p.kek) : openKeysetWithPassphrase(sealed, p.passphrase);
}

async function save(path: string, keyset: Keyset, options: KekOptions): Promise<void> {
  const p = protection(options);
  const sealed =
    'kek' in p ? sealKeyset(keyset, p.kek) : await sealKeysetWithPassphrase(keyset, p.passphrase);
  writeFileAtomicSync(path, JSON.stringify(sealed, null, 2) + '\n', { mode: 0o600 });
}

function withKek(cmd: Command): Command {
  return cmd
    .option(
      '--kek-file <file>',
      'read the key-encryption key (base64, 32 bytes) from a file instead of ENSEAL_KEK',
    )
    .option('--passphrase-file <file>', 'protect the keyset with a passphrase read from a file (Argon2id)');
}

function describe(keyset: Keyset) {
  return {
    id: keyset.id,
    purpose: keyset.purpose,
    primary: keyset.primaryVersion,
    autoRotate: keyset.autoRotate,
    usageLimit: keyset.usageLimit(),
    versions: keyset.versions().map((v) => ({ ...v, createdAt: v.createdAt.toISOString() })),
  };
}

export function registerKeyset(program: Command): void {
  const keyset = program
    .command('keyset')
    .description('keysets: versioned keys for one purpose, stored sealed under a key-encryption key')
    .addHelpText(
      'after',
      '\nExample:\n  export ENSEAL_KEK=$(enseal keyset kek)\n  enseal keyset create --purpose encrypt -o app.keyset\n' +
        "  echo -n '123-45-6789' | enseal keyset encrypt app.keyset --aad customers/42 > value.txt\n" +
        '  enseal keyset decrypt app.keyset --aad customers/42 < value.txt\n',
    );

  keyset
    .command('kek')
    .description('print a new random key-encryption key (base64), for ENSEAL_KEK or a key file')
    .action(async () => writeStdout(KeyEncryptionKey.generate().toText() + '\n'));

  withKek(keyset.command('create'))
    .description('create a keyset with one primary version and write it sealed')
    .requiredOption('--purpose <purpose>', 'encrypt, sign, mac or derive')
    .option('--algorithm <name>', 'e.g. aes-256-gcm (default), xchacha20-poly1305, ed25519, ecdsa-p256')
    .requiredOption('-o, --output <file>', 'where to write the sealed keyset')
    .option('--force', 'overwrite an existing file')
    .option('--json', 'structured output')
    .action(
      async (
        o: KekOptions & {
          purpose: KeyPurpose;
          algorithm?: KeyAlgorithm;
          output: string;
          force?: boolean;
          json?: boolean;
        },
      ) => {
        if (existsSync(o.output) && !o.force) {
          throw new EnsealError(ErrorCode.OUTPUT_EXISTS, `${o.output} exists; pass --force to overwrite it`);
        }
        const ks = Keyset.generate({
          purpose: o.purpose,
          ...(o.algorithm ? { algorithm: o.algorithm } : {}),
        });
        await save(o.output, ks, o);
        await writeStdout(
          o.json
            ? JSON.stringify(describe(ks)) + '\n'
            : `created keyset ${ks.id} (${ks.purpose}) in ${o.output}\n`,
        );
      },
    );

  withKek(keyset.command('rotate <file>'))
    .description('add a new primary version; older versions keep decrypting')
    .option('--algorithm <name>', 'switch algorithm for the new version')
    .option('--json', 'structured output')
    .action(async (file: string, o: KekOptions & { algorithm?: KeyAlgorithm; json?: boolean }) => {
      const ks = await loadKeysetFile(file, o);
      const version = ks.rotate(o.algorithm);
      await save(file, ks, o);
      await writeStdout(
        o.json ? JSON.stringify(describe(ks)) + '\n' : `keyset ${ks.id}: version ${version} is now primary\n`,
      );
    });

  withKek(keyset.command('info <file>'))
    .description('show versions, status and usage (never key material)')
    .option('--json', 'structured output')
    .action(async (file: string, o: KekOptions & { json?: boolean }) => {
      const info = describe(await loadKeysetFile(file, o));
      if (o.json) return writeStdout(JSON.stringify(info) + '\n');
      const lines = [`keyset ${info.id}  purpose ${info.purpose}  primary v${info.primary}`];
      for (const v of info.versions) {
        lines.push(
          `  v${v.version}  ${v.algorithm}  ${v.status}${v.primary ? '  primary' : ''}  uses ${v.uses}  created ${v.createdAt}`,
        );
      }
      await writeStdout(lines.join('\n') + '\n');
    });

  withKek(keyset.command('encrypt <file>'))
    .description('encrypt stdin with the primary version; prints the text envelope (ens1.…)')
    .option('--aad <text>', 'associated data that must be given again to decrypt')
    .option('--binary', 'write the binary envelope instead of text')
    .action(async (file: string, o: KekOptions & { aad?: string; binary?: boolean }) => {
      const ks = await loadKeysetFile(file, o);
      const input = await readStdin();
      const opts = o.aad === undefined ? {} : { aad: o.aad };
      // Usage counters changed: persist them before releasing the ciphertext.
      const out = o.binary ? ks.encryptBytes(input, opts) : ks.encrypt(input, opts) + '\n';
      await save(file, ks, o);
      await writeStdout(out);
    });

  withKek(keyset.command('decrypt <file>'))
    .description('decrypt an envelope (text or binary) from stdin onto stdout')
    .option('--aad <text>', 'the associated data given when encrypting')
    .action(async (file: string, o: KekOptions & { aad?: string }) => {
      const ks = await loadKeysetFile(file, o);
      const input = await readStdin();
      const text = new TextDecoder().decode(input).trim();
      const value = text.startsWith('ens1.') ? text : input;
      await writeStdout(ks.decrypt(value, o.aad === undefined ? {} : { aad: o.aad }));
    });
}
