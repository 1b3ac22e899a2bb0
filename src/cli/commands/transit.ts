/** `enseal transit …`: encrypt, decrypt, rewrap, data keys, sign, verify and HMAC through a server. */
import type { Command } from 'commander';
import { base64Decode, base64Encode, EnsealError, ErrorCode, utf8Encode } from '../../crypto/index.js';
import { writeStdout } from '../run.js';
import { clientFor, inputBytes, output, serverOptions, type ServerFlags } from '../server-client.js';

interface DataFlags extends ServerFlags {
  context?: string;
  aad?: string;
}

function dataOptions(flags: DataFlags) {
  return {
    ...(flags.context ? { context: base64Decode(flags.context) } : {}),
    ...(flags.aad ? { associatedData: utf8Encode(flags.aad) } : {}),
  };
}

export function registerTransit(program: Command): void {
  const transit = program
    .command('transit')
    .description('Encrypt, decrypt, sign and verify through a server');
  const withData = (c: Command) =>
    serverOptions(c)
      .option('--context <base64>', 'derivation context (derived keys)')
      .option('--aad <text>', 'associated data');

  withData(transit.command('encrypt').description('Encrypt a file or stdin; prints the ciphertext'))
    .argument('<key>')
    .argument('[file]', 'input file, or - for stdin (default)')
    .action(async (key: string, file: string | undefined, flags: DataFlags) => {
      const ct = await clientFor(flags).encrypt(key, await inputBytes(file), dataOptions(flags));
      await output(flags, { ciphertext: ct }, ct);
    });
  withData(
    transit
      .command('decrypt')
      .description('Decrypt a ciphertext (argument or stdin); writes the plaintext bytes'),
  )
    .argument('<key>')
    .argument('[ciphertext]', 'vault:v1:… or - for stdin (default)')
    .action(async (key: string, ciphertext: string | undefined, flags: DataFlags) => {
      const ct =
        ciphertext && ciphertext !== '-'
          ? ciphertext
          : Buffer.from(await inputBytes('-'))
              .toString('utf8')
              .trim();
      const plain = await clientFor(flags).decrypt(key, ct, dataOptions(flags));
      if (flags.json) await output(flags, { plaintext: base64Encode(plain) });
      else await writeStdout(plain);
    });
  withData(
    transit.command('rewrap').description('Re-encrypt under the latest version (never shows the plaintext)'),
  )
    .argument('<key>')
    .argument('<ciphertext>')
    .action(async (key: string, ciphertext: string, flags: DataFlags) => {
      const ct = await clientFor(flags).rewrap(key, ciphertext, dataOptions(flags));
      await output(flags, { ciphertext: ct }, ct);
    });
  serverOptions(transit.command('datakey').description('A fresh data key and its ciphertext'))
    .argument('<key>')
    .option('--bits <n>', '128, 256 (default) or 512', '256')
    .option('--wrapped', 'only the ciphertext, never the plaintext key')
    .action(async (key: string, flags: ServerFlags & { bits: string; wrapped?: boolean }) => {
      const dk = await clientFor(flags).dataKey(key, {
        bits: Number(flags.bits) as 256,
        plaintext: !flags.wrapped,
      });
      const value = {
        ciphertext: dk.ciphertext,
        ...(dk.plaintext ? { plaintext: base64Encode(dk.plaintext) } : {}),
      };
      await output(
        flags,
        value,
        dk.plaintext ? `ciphertext: ${dk.ciphertext}\nplaintext:  ${value.plaintext}` : dk.ciphertext,
      );
    });
  serverOptions(transit.command('sign').description('Sign a file or stdin; prints the signature'))
    .argument('<key>')
    .argument('[file]')
    .action(async (key: string, file: string | undefined, flags: ServerFlags) => {
      const sig = await clientFor(flags).sign(key, await inputBytes(file));
      await output(flags, { signature: sig }, sig);
    });
  serverOptions(transit.command('verify').description('Verify a signature; exits 3 when it does not verify'))
    .argument('<key>')
    .argument('<signature>')
    .argument('[file]')
    .action(async (key: string, signature: string, file: string | undefined, flags: ServerFlags) => {
      const valid = await clientFor(flags).verify(key, await inputBytes(file), signature);
      await output(flags, { valid }, valid ? 'valid' : 'INVALID');
      if (!valid) throw new EnsealError(ErrorCode.SIGNATURE_INVALID, 'the signature does not verify');
    });
  serverOptions(transit.command('hmac').description('HMAC a file or stdin with an hmac key'))
    .argument('<key>')
    .argument('[file]')
    .action(async (key: string, file: string | undefined, flags: ServerFlags) => {
      const mac = await clientFor(flags).hmac(key, await inputBytes(file));
      await output(flags, { hmac: mac }, mac);
    });
}
