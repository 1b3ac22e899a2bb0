/** `enseal audit verify|export`: check and export a server's tamper-evident audit log. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { AuditCheckpointJson } from '../../client/index.js';
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import { writeFileAtomicSync } from '../../files/index.js';
import { writeStdout } from '../run.js';
import { clientFor, output, serverOptions, type ServerFlags } from '../server-client.js';

function readCheckpoint(file: string): AuditCheckpointJson {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as AuditCheckpointJson;
  } catch (cause) {
    throw new EnsealError(
      ErrorCode.MALFORMED,
      `${file} is not an audit checkpoint (JSON from enseal audit checkpoint)`,
      {
        cause,
      },
    );
  }
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('Verify or export the audit log');
  serverOptions(
    audit.command('verify').description('Check the hash chain; exits 3 and names each problem if tampered'),
  )
    .option('--checkpoint <file>', 'also check that the log still contains this exported checkpoint')
    .action(async (flags: ServerFlags & { checkpoint?: string }) => {
      const checkpoint = flags.checkpoint ? readCheckpoint(flags.checkpoint) : undefined;
      const r = await clientFor(flags).auditVerify(checkpoint);
      const text = r.ok
        ? `audit log intact: ${r.entries} entries`
        : [
            `audit log TAMPERED (${r.problems.length} problems):`,
            ...r.problems.map((p) => `  ${p.kind} at ${p.seq}: ${p.message}`),
          ].join('\n');
      await output(flags, r, text);
      if (!r.ok) throw new EnsealError(ErrorCode.SIGNATURE_INVALID, 'the audit log does not verify');
    });
  serverOptions(
    audit
      .command('checkpoint')
      .description(
        'Print a MACed checkpoint of the audit head; keep it off the server to catch a rollback later',
      ),
  ).action(async (flags: ServerFlags) => {
    const c = await clientFor(flags).auditCheckpoint();
    await writeStdout(JSON.stringify(c) + '\n');
  });
  serverOptions(audit.command('export').description('Audit entries as JSON lines'))
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(async (flags: ServerFlags & { output?: string }) => {
      const lines = await clientFor(flags).auditExport();
      if (flags.output) {
        writeFileAtomicSync(flags.output, lines, { mode: 0o600 });
      } else {
        await writeStdout(lines);
      }
    });
}
