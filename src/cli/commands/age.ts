/**
 * `enseal keygen`, `enseal encrypt`, `enseal decrypt`: age-compatible file encryption with the `age` CLI's
 * flags, so files and habits move freely between the two.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import { writeFileAtomicSync } from '../../files/index.js';
import {
  AgeArmorDecoder,
  AgeArmorEncoder,
  AgeDecryptor,
  AgeEncryptor,
  AgeScryptIdentity,
  AgeScryptRecipient,
  AgeX25519Identity,
  AgeX25519Recipient,
  AGE_DEFAULT_SCRYPT_LOG_N,
  isAgeArmored,
  parseAgeIdentityFile,
  parseAgeRecipientsFile,
  type AgeEmit as Emit,
  type AgeIdentity,
  type AgeRecipient,
} from '../../formats/index.js';
import { checkOutput, openInput, runPipeline, type Codec } from '../file-io.js';
import { collect, readSecretFile } from '../input.js';
import { promptPassphrase } from '../passphrase.js';

/** Test-only: lowers the scrypt work factor so tests run fast (like age's own testscript hooks). */
function scryptLogN(): number {
  const v = process.env.ENSEAL_TEST_SCRYPT_LOG_N;
  return v === undefined ? AGE_DEFAULT_SCRYPT_LOG_N : Number(v);
}

/** Creates `path` with `text`, mode 0600, failing with ERR_OUTPUT_EXISTS if anything is already there. */
function writeNewFile(path: string, text: string): void {
  try {
    writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  } catch (cause) {
    if ((cause as { code?: string }).code === 'EEXIST')
      throw new EnsealError(ErrorCode.OUTPUT_EXISTS, `${path} exists; pass --force to replace it`);
    throw new EnsealError(ErrorCode.IO, `cannot write ${path}`, { cause });
  }
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

/** Encryption as a codec for the CLI's pipeline: the header first, then sealed chunks, armored or not. */
function encryptCodec(recipients: AgeRecipient[], armored: boolean): Codec {
  const enc = new AgeEncryptor(recipients);
  const arm = armored ? new AgeArmorEncoder() : undefined;
  let started = false;
  const start = (emit: Emit) => {
    if (started) return;
    started = true;
    emit(enc.header);
  };
  if (arm === undefined) {
    return {
      push(data, emit) {
        start(emit);
        enc.push(data, emit);
      },
      finish(emit) {
        start(emit);
        enc.finish(emit);
      },
    };
  }
  const text = (s: string, emit: Emit) => s.length > 0 && emit(Buffer.from(s, 'latin1'));
  const armorEmit = (emit: Emit) => (bytes: Uint8Array) => text(arm.push(bytes), emit);
  return {
    push(data, emit) {
      start(armorEmit(emit));
      enc.push(data, armorEmit(emit));
    },
    finish(emit) {
      start(armorEmit(emit));
      enc.finish(armorEmit(emit));
      text(arm.finish(), emit);
    },
  };
}

/** Enough leading bytes to tell armor (its BEGIN line) from a binary header. */
const SNIFF = 64;

/** Decryption as a codec: binary input streams through; armored input is decoded as it streams too. */
function decryptCodec(identities: AgeIdentity[]): Codec {
  const dec = new AgeDecryptor(identities);
  let head: Uint8Array[] | undefined = []; // the first bytes, until binary or armor is known
  let headLength = 0;
  let armor: AgeArmorDecoder | undefined;
  const feed = (data: Uint8Array, emit: Emit) => {
    if (armor === undefined) dec.push(data, emit);
    else armor.push(data, (binary) => dec.push(binary, emit));
  };
  const decide = (emit: Emit) => {
    // The pipeline reuses its read buffers, so the bytes kept while sniffing were copied.
    const first = Buffer.concat(head!);
    head = undefined;
    if (isAgeArmored(first)) armor = new AgeArmorDecoder();
    feed(first, emit);
  };
  return {
    push(data, emit) {
      if (head === undefined) return feed(data, emit);
      head.push(data.slice(0, SNIFF));
      headLength += Math.min(data.length, SNIFF);
      if (headLength < SNIFF) return;
      decide(emit);
      if (data.length > SNIFF) feed(data.subarray(SNIFF), emit);
    },
    finish(emit) {
      if (head !== undefined) decide(emit);
      if (armor !== undefined) armor.finish((binary) => dec.push(binary, emit));
      dec.finish(emit);
    },
  };
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
        // As age-keygen does, an existing file is never replaced without --force; the key is created
        // exclusively (no race with a file or symlink appearing meanwhile), or atomically with --force.
        if (o.force) writeFileAtomicSync(o.output, text, { mode: 0o600 });
        else writeNewFile(o.output, text);
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
    .option(
      '-o, --output <file>',
      'write to a file, replacing it (atomically: a temporary file renamed on success)',
    )
    .option('--force', 'accepted for compatibility: -o always replaces an existing file, as age does')
    .addHelpText(
      'after',
      '\nExamples:\n  enseal encrypt -r age1… -o backup.tar.age backup.tar\n  tar c dir | enseal encrypt -R team.txt -a > dir.tar.age.txt\n' +
        '  enseal encrypt --passphrase-file pass.txt -o notes.age notes.md\n',
    )
    .action(async (input: string | undefined, o: EncryptOptions) => {
      checkOutput({ path: o.output });
      const toTerminal = (o.output === undefined || o.output === '-') && process.stdout.isTTY;
      if (toTerminal && !o.armor) {
        throw hint(
          'refusing to write binary ciphertext to a terminal',
          'use -a/--armor, -o FILE, or redirect the output',
        );
      }
      const recipients = await recipientsFor(o);
      const src = openInput(input);
      await runPipeline(src, { path: o.output }, encryptCodec(recipients, o.armor === true));
    });

  program
    .command('decrypt [input]')
    .description('decrypt an age file (or stdin), binary or armored')
    .option('-i, --identity <file>', 'an identity file (repeatable)', collect)
    .option('--passphrase-file <file>', 'read the passphrase from a file instead of the terminal')
    .option(
      '-o, --output <file>',
      'write to a file, replacing it; it appears only once the whole input authenticated',
    )
    .option('--force', 'accepted for compatibility: -o always replaces an existing file, as age does')
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
        checkOutput({ path: o.output });
        const identities: AgeIdentity[] = [];
        for (const f of o.identity ?? []) identities.push(...parseAgeIdentityFile(readText(f, 'identity')));
        if (o.passphraseFile !== undefined)
          identities.push(new AgeScryptIdentity(readSecretFile(o.passphraseFile, 'passphrase')));
        if (identities.length === 0) {
          // As age does: no identity given means the file should be passphrase-encrypted.
          identities.push(new AgeScryptIdentity(await promptPassphrase(false)));
        }
        await runPipeline(openInput(input), { path: o.output }, decryptCodec(identities));
      },
    );
}
