/**
 * `enseal e2ee witness`: runs a witness for enseal's (or any C2SP) transparency logs until SIGINT/SIGTERM. It
 * cosigns each checkpoint a log submits, after checking it is consistent with the last one it cosigned, and
 * refuses a split view (409 or 422), so clients that require its cosignature cannot be shown a forked log.
 */
import type { Command } from 'commander';
import { invalidArgument } from '../../crypto/index.js';

interface WitnessFlags {
  name: string;
  key: string;
  state: string;
  log: string[];
  listen?: string;
  prefix?: string;
  tlsCert?: string;
  tlsKey?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m) throw invalidArgument('--listen', 'must be host:port, for example 127.0.0.1:8300');
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

export function registerE2eeWitness(group: Command): void {
  group
    .command('witness')
    .description('Run a transparency-log witness (C2SP tlog-witness add-checkpoint)')
    .requiredOption('--name <name>', 'the witness name in its cosignatures, e.g. witness.example/w1')
    .requiredOption('--key <file>', 'Ed25519 key file (created with a fresh key, mode 0600, if missing)')
    .requiredOption(
      '--state <file>',
      'state file: the latest cosigned checkpoint per log (written atomically)',
    )
    .requiredOption(
      '--log <verifier-key>',
      "a log's verifier key (repeatable); its name is the log's origin",
      collect,
    )
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8300; port 0 picks one)')
    .option('--prefix <path>', 'submission prefix: requests go to <prefix>/add-checkpoint (default none)')
    .option('--tls-cert <file>', 'PEM certificate chain (serve HTTPS)')
    .option('--tls-key <file>', 'PEM private key')
    .option('--json', 'print the listening address and verifier key as JSON')
    .addHelpText(
      'after',
      `
Example:
  enseal e2ee witness --name witness.example/w1 --key w1.key --state w1.json \\
    --log "$(curl -s https://enseal.example/v1/e2ee/log/key | jq -r .verifier_key)"
Then give the log its verifier key and URL (e2ee.witnesses in the serve configuration).`,
    )
    .action(async (flags: WitnessFlags) => {
      const { readFileSync } = await import('node:fs');
      const { FileWitnessState, loadWitnessKey, startWitnessServer } = await import('../../server/index.js');
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
        throw invalidArgument('--tls-cert', 'and --tls-key go together');
      const listen = flags.listen ? parseListen(flags.listen) : {};
      const { privateKey, created } = await loadWitnessKey(flags.key);
      const witness = await startWitnessServer({
        name: flags.name,
        privateKey,
        logs: flags.log,
        state: new FileWitnessState(flags.state),
        ...listen,
        ...(flags.prefix ? { prefix: flags.prefix } : {}),
        ...(flags.tlsCert && flags.tlsKey
          ? { https: { cert: readFileSync(flags.tlsCert), key: readFileSync(flags.tlsKey) } }
          : {}),
        onRefused: (status, code) =>
          process.stderr.write(`enseal: witness refused a checkpoint: ${status} ${code}\n`),
      });
      if (flags.json) {
        process.stdout.write(
          JSON.stringify({ url: witness.url, verifier_key: witness.verifierKey, key_created: created }) +
            '\n',
        );
      } else {
        process.stdout.write(
          [
            ...(created ? [`Created a new witness key in ${flags.key}`] : []),
            `enseal witness is listening on ${witness.url}`,
            `Verifier key: ${witness.verifierKey}`,
            '',
          ].join('\n'),
        );
      }
      await new Promise<void>((resolveStop) => {
        process.once('SIGINT', () => resolveStop());
        process.once('SIGTERM', () => resolveStop());
      });
      await witness.close();
    });
}
