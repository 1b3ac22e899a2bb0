/**
 * `enseal keygen`, `enseal encrypt`, `enseal decrypt`: age-compatible file encryption with the `age` CLI's
 * flags, so files and habits move freely between the two.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import type { Command } from 'commander';
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import {
  AgeArmorEncoder,
  AgeDecryptor,
  AgeEncryptor,
  AgeScryptIdentity,
  AgeScryptRecipient,
  AgeX25519Identity,
  AgeX25519Recipient,
  AGE_DEFAULT_SCRYPT_LOG_N,
  ageDearmor,
  isAgeArmored,
  parseAgeIdentityFile,
  parseAgeRecipientsFile,
  type AgeIdentity,
  type AgeRecipient,
} from '../../formats/index.js';
import { checkOutput, openInput, runPipeline } from '../file-io.js';
import { collect, readSecretFile } from '../input.js';
import { promptPassphrase } from '../passphrase.js';

/** Test-only: lowers the scrypt work factor so tests run fast (like age's own testscript hooks). */
function scryptLogN(): number {
  const v = process.env.ENSEAL_TEST_SCRYPT_LOG_N;
  return v === undefined ? AGE_DEFAULT_SCRYPT_LOG_N : Number(v);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (cause) {
    throw new EnsealError(ErrorCode.IO, `cannot read ${what} file ${path}`, { cause });
  }
}

interface EncryptOptions {
  recipient?: string[];
  recipientsFile?: string[];
  passphrase?: boolean;
  passphraseFile?: string;
  armor?: boolean;
  output?: string;
  force?: boolean;
}

function hint(message: string, tip: string): EnsealError {
  return new EnsealError(ErrorCode.INVALID_ARGUMENT, `${message}\nenseal: hint: ${tip}`);
}

async function recipientsFor(o: EncryptOptions): Promise<AgeRecipient[]> {
  const usePassphrase = o.passphrase === true || o.passphraseFile !== undefined;
  const keys = [...(o.recipient ?? [])];
  if (usePassphrase && (keys.length > 0 || (o.recipientsFile ?? []).length > 0)) {
    throw hint(
      '-p/--passphrase cannot be combined with -r/-R',
      'a passphrase must be the only way to open a file',
    );
  }
  if (usePassphrase) {
    const pass =
      o.passphraseFile !== undefined
        ? readSecretFile(o.passphraseFile, 'passphrase')
        : await promptPassphrase(true);
    return [new AgeScryptRecipient(pass, scryptLogN())];
  }
  const out: AgeRecipient[] = keys.map((r) => new AgeX25519Recipient(r));
  for (const f of o.recipientsFile ?? []) out.push(...parseAgeRecipientsFile(readText(f, 'recipients')));
  if (out.length === 0)
    throw hint('missing recipients', 'pass -r RECIPIENT, -R FILE, or -p for a passphrase');
  return out;
}

async function* encryptGen(source: AsyncIterable<Uint8Array>, recipients: AgeRecipient[], armored: boolean) {
  const enc = new AgeEncryptor(recipients);
  const arm = armored ? new AgeArmorEncoder() : undefined;
  const emit = (bytes: Uint8Array) => (arm ? arm.push(bytes) : bytes);
  yield emit(enc.header);
  for await (const chunk of source) for (const out of enc.push(chunk)) yield emit(out);
  for (const out of enc.finish()) yield emit(out);
  if (arm) yield arm.finish();
}

async function* decryptGen(source: AsyncIterable<Uint8Array>, identities: AgeIdentity[]) {
  const dec = new AgeDecryptor(identities);
  let first = true;
  let armored: Uint8Array[] | undefined;
  for await (const chunk of source) {
    if (first) {
      first = false;
      // Armored files are text and small by nature: they are collected, then decoded in one piece.
      if (isAgeArmored(chunk)) armored = [];
    }
    if (armored) {
      armored.push(chunk);
      continue;
    }
    yield* dec.push(chunk);
  }
  if (armored) yield* dec.push(ageDearmor(Buffer.concat(armored)));
  yield* dec.finish();
}

export function registerAge(program: Command): void {
  program
    .command('keygen')
    .description('generate an age identity (X25519); prints the recipient on stderr')
    .option('-o, --output <file>', 'write the identity to a file (created with mode 0600) instead of stdout')
    .option(
      '-y, --convert <file>',
      'print the recipients of the identities in <file> instead ("-" for stdin)',
    )
    .option('--force', 'overwrite an existing output file')
    .action((o: { output?: string; convert?: string; force?: boolean }) => {
      if (o.convert !== undefined) {
        const ids = parseAgeIdentityFile(readText(o.convert, 'identity'));
        process.stdout.write(ids.map((i) => i.recipient.toString()).join('\n') + '\n');
        return;
      }
      const id = AgeX25519Identity.generate();
      const recipient = id.recipient.toString();
      const text = `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${id.toString()}\n`;
      if (o.output !== undefined) {
        if (existsSync(o.output) && !o.force)
          throw new EnsealError(ErrorCode.OUTPUT_EXISTS, `${o.output} exists; pass --force`);
        writeFileSync(o.output, text, { mode: 0o600 });
        process.stderr.write(`Public key: ${recipient}\n`);
      } else {
        process.stdout.write(text);
        if (!process.stdout.isTTY) process.stderr.write(`Public key: ${recipient}\n`);
      }
    });

  program
    .command('encrypt [input]')
    .description('encrypt a file (or stdin) to age recipients or a passphrase')
    .option('-r, --recipient <recipient>', 'encrypt to an age1… recipient (repeatable)', collect)
    .option(
      '-R, --recipients-file <file>',
      'encrypt to the recipients listed in a file (repeatable)',
      collect,
    )
    .option('-p, --passphrase', 'encrypt with a passphrase, read from the terminal and confirmed')
    .option('--passphrase-file <file>', 'read the passphrase from a file (for scripts)')
    .option('-a, --armor', 'write ASCII-armored (PEM-style) output')
    .option('-o, --output <file>', 'write to a file (atomically: a temporary file renamed on success)')
    .option('--force', 'overwrite an existing output file')
    .addHelpText(
      'after',
      '\nExamples:\n  enseal encrypt -r age1… -o backup.tar.age backup.tar\n  tar c dir | enseal encrypt -R team.txt -a > dir.tar.age.txt\n' +
        '  enseal encrypt --passphrase-file pass.txt -o notes.age notes.md\n',
    )
    .action(async (input: string | undefined, o: EncryptOptions) => {
      checkOutput({ path: o.output, force: o.force });
      const toTerminal = (o.output === undefined || o.output === '-') && process.stdout.isTTY;
      if (toTerminal && !o.armor) {
        throw hint(
          'refusing to write binary ciphertext to a terminal',
          'use -a/--armor, -o FILE, or redirect the output',
        );
      }
      const recipients = await recipientsFor(o);
      const src = openInput(input);
      await runPipeline(src, { path: o.output, force: o.force }, (s) =>
        encryptGen(s, recipients, o.armor === true),
      );
    });

  program
    .command('decrypt [input]')
    .description('decrypt an age file (or stdin), binary or armored')
    .option('-i, --identity <file>', 'an identity file (repeatable)', collect)
    .option('--passphrase-file <file>', 'read the passphrase from a file instead of the terminal')
    .option('-o, --output <file>', 'write to a file; it appears only once the whole input authenticated')
    .option('--force', 'overwrite an existing output file')
    .addHelpText(
      'after',
      '\nWith -o, plaintext is written to a temporary file beside the target and renamed into place only after\n' +
        'the whole file authenticated: a truncated or tampered file never leaves partial plaintext behind.\n' +
        'Without -o, plaintext streams to stdout as each 64 KiB chunk authenticates; a later failure exits\n' +
        'non-zero.\n\nExamples:\n  enseal decrypt -i key.txt -o backup.tar backup.tar.age\n  enseal decrypt --passphrase-file pass.txt notes.age\n',
    )
    .action(
      async (
        input: string | undefined,
        o: { identity?: string[]; passphraseFile?: string; output?: string; force?: boolean },
      ) => {
        checkOutput({ path: o.output, force: o.force });
        const identities: AgeIdentity[] = [];
        for (const f of o.identity ?? []) identities.push(...parseAgeIdentityFile(readText(f, 'identity')));
        if (o.passphraseFile !== undefined)
          identities.push(new AgeScryptIdentity(readSecretFile(o.passphraseFile, 'passphrase')));
        if (identities.length === 0) {
          // As age does: no identity given means the file should be passphrase-encrypted.
          identities.push(new AgeScryptIdentity(await promptPassphrase(false)));
        }
        await runPipeline(openInput(input), { path: o.output, force: o.force }, (s) =>
          decryptGen(s, identities),
        );
      },
    );
}
