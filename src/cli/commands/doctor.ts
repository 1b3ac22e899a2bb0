/** `enseal doctor`: checks a deployment against the production checklist; exit 1 when a check fails. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EnsealError, ErrorCode, invalidArgument } from '../../crypto/index.js';
import { writeStdout } from '../run.js';
import { serveConfigFrom, serveConfigOptions, type ServeConfigFlags } from '../serve-config.js';
import { clientFor, type ServerFlags } from '../server-client.js';

type DoctorFlags = ServeConfigFlags & ServerFlags;

const HELP = `
Run it with the same --config (or flags) that enseal serve runs with, on the server's host, as the
service's user or root. The checks of files and devices need nothing else; the checks of the running
server need its address (ENSEAL_ADDR or --address, and ENSEAL_CACERT for a private CA), and those that read
keys, tokens and the audit log a token (ENSEAL_TOKEN) with sudo on sys/audit/* and read and list on
transit/keys/*. A check that cannot run says unknown, and what it needs.

Checks: store-encrypted, store-permissions, key-permissions, tls-permissions, server, seal-type,
tls-profile, tls-certificate, audit-chain, key-rotation, root-token (docs/operations.md#enseal-doctor).

Exit status: 0 when no check fails (warnings and unknowns do not fail), 1 when one does, 2 for bad usage.

Example:
  ENSEAL_ADDR=https://enseal.internal:8200 ENSEAL_CACERT=/etc/enseal/tls/ca.pem ENSEAL_TOKEN=… \\
    enseal doctor --config /etc/enseal/enseal.toml`;

export function registerDoctor(program: Command): void {
  serveConfigOptions(
    program
      .command('doctor')
      .description(
        'Check a deployment: encrypted disk, file permissions, seal, TLS, audit, rotation, root token',
      ),
  )
    .option(
      '--address <url>',
      'the running server (env ENSEAL_ADDR); without it the server checks say unknown',
    )
    .option('--token <token>', 'token (env ENSEAL_TOKEN; prefer the env var: flags show up in ps)')
    .option('--ca-cert <file>', 'CA certificate to trust (env ENSEAL_CACERT)')
    .option(
      '--json',
      'machine-readable output: {ok, counts, checks: [{id, status, message, fix, requirement}]}',
    )
    .addHelpText('after', HELP)
    .action(async (flags: DoctorFlags) => {
      if (
        flags.tlsProfile !== undefined &&
        flags.tlsProfile !== 'modern' &&
        flags.tlsProfile !== 'intermediate'
      )
        throw invalidArgument('--tls-profile', 'must be modern or intermediate');
      const config = await serveConfigFrom(flags);
      const address = flags.address ?? process.env.ENSEAL_ADDR;
      const token = flags.token ?? process.env.ENSEAL_TOKEN;
      const caFile = flags.caCert ?? process.env.ENSEAL_CACERT;
      let caPem: string | undefined;
      if (address && caFile) {
        try {
          caPem = readFileSync(caFile, 'utf8');
        } catch (cause) {
          throw new EnsealError(ErrorCode.IO, `cannot read the CA certificate ${caFile}`, { cause });
        }
      }
      const client = address ? clientFor({ ...flags, address }) : undefined;
      const { runDoctor, formatReport } = await import('../../server/index.js');
      try {
        const report = await runDoctor({
          config,
          ...(flags.config ? { configFile: flags.config } : {}),
          ...(client && address
            ? { server: { address, api: client, hasToken: Boolean(token), ...(caPem ? { caPem } : {}) } }
            : {}),
        });
        await writeStdout((flags.json ? JSON.stringify(report) : formatReport(report)) + '\n');
        if (!report.ok) process.exitCode = 1;
      } finally {
        client?.close();
      }
    });
}
