/** `enseal fernet …`: Fernet tokens compatible with Python's `cryptography`. */
import type { Command } from 'commander';
import { Fernet, generateFernetKey } from '../../formats/index.js';
import { collect, secretsFrom } from '../input.js';
import { readStdin, writeStdout } from '../run.js';

interface KeyOptions {
  key?: string[];
  keyFile?: string[];
  json?: boolean;
}

function fernetFrom(options: KeyOptions): Fernet {
  return new Fernet(
    secretsFrom({ inline: options.key, files: options.keyFile, env: 'ENSEAL_FERNET_KEY' }, 'Fernet key'),
  );
}

function keyOptions(cmd: Command, several: string): Command {
  return cmd
    .option(
      '-k, --key <key>',
      `a Fernet key (visible in the process list; prefer --key-file)${several}`,
      collect,
    )
    .option('--key-file <file>', `read a Fernet key from a file${several}`, collect)
    .option('--json', 'structured output');
}

export function registerFernet(program: Command): void {
  const fernet = program
    .command('fernet')
    .description('Fernet tokens, byte-compatible with Python cryptography')
    .addHelpText(
      'after',
      '\nKeys come from --key-file, --key or the ENSEAL_FERNET_KEY environment variable.\n\n' +
        'Example:\n  enseal fernet generate-key > key.txt\n' +
        "  echo -n 'hello' | enseal fernet encrypt --key-file key.txt | enseal fernet decrypt --key-file key.txt\n",
    );

  fernet
    .command('generate-key')
    .description('print a new random key (url-safe base64, as Fernet.generate_key())')
    .option('--json', 'structured output')
    .action(async (options: { json?: boolean }) => {
      const key = generateFernetKey();
      await writeStdout(options.json ? JSON.stringify({ key }) + '\n' : key + '\n');
    });

  keyOptions(fernet.command('encrypt'), '')
    .description('encrypt stdin into a token on stdout (with the first key)')
    .action(async (options: KeyOptions) => {
      const token = fernetFrom(options).encrypt(await readStdin());
      await writeStdout(options.json ? JSON.stringify({ token }) + '\n' : token + '\n');
    });

  keyOptions(fernet.command('decrypt'), '; repeat for rotation')
    .description('decrypt a token from stdin onto stdout (trying each key)')
    .option('--ttl <seconds>', 'reject tokens older than this', (v) => Number(v))
    .action(async (options: KeyOptions & { ttl?: number }) => {
      const token = new TextDecoder().decode(await readStdin()).trim();
      const plaintext = fernetFrom(options).decrypt(
        token,
        options.ttl === undefined ? {} : { ttl: options.ttl },
      );
      if (options.json) {
        await writeStdout(JSON.stringify({ plaintext: new TextDecoder().decode(plaintext) }) + '\n');
      } else {
        await writeStdout(plaintext);
      }
    });

  keyOptions(fernet.command('rotate'), '; the first is the new key')
    .description('re-encrypt a token from stdin under the first key, keeping its timestamp')
    .action(async (options: KeyOptions) => {
      const token = fernetFrom(options).rotate(new TextDecoder().decode(await readStdin()).trim());
      await writeStdout(options.json ? JSON.stringify({ token }) + '\n' : token + '\n');
    });
}
