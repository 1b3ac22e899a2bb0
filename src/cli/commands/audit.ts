/** `enseal audit verify|export`: check and export a server's tamper-evident audit log. */
import type { Command } from 'commander';
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import { writeFileAtomicSync } from '../../files/index.js';
import { writeStdout } from '../run.js';
import { clientFor, output, serverOptions, type ServerFlags } from '../server-client.js';

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('Verify or export the audit log');
  serverOptions(
    audit.command('verify').description('Check the hash chain; exits 3 and names each problem if tampered'),
  ).action(async (flags: ServerFlags) => {
    const r = await clientFor(flags).auditVerify();
    const text = r.ok
      ? `audit log intact: ${r.entries} entries`
      : [
          `audit log TAMPERED (${r.problems.length} problems):`,
          ...r.problems.map((p) => `  ${p.kind} at ${p.seq}: ${p.message}`),
        ].join('\n');
    await output(flags, r, text);
    if (!r.ok) throw new EnsealError(ErrorCode.SIGNATURE_INVALID, 'the audit log does not verify');
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
