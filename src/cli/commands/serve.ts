/** `enseal serve`: runs the encryption service until SIGINT/SIGTERM, then drains and exits. */
import type { Command } from 'commander';
import { serveConfigFrom, serveConfigOptions, type ServeConfigFlags } from '../serve-config.js';

export function registerServe(program: Command): void {
  serveConfigOptions(
    program.command('serve').description('Run the encryption service (Vault-Transit-compatible HTTPS API)'),
  ).action(async (flags: ServeConfigFlags) => {
    const config = await serveConfigFrom(flags);
    config.logLevel ??= 'warn'; // a flag or the config file's log-level wins
    const { startServer } = await import('../../server/index.js');
    const server = await startServer(config);
    const lines = [
      '',
      ...server.warnings.map((w) => `WARNING: ${w}`),
      `enseal is listening on ${server.url}`,
      ...(server.caFile ? [`Development CA (trust it to connect): ${server.caFile}`] : []),
      ...(server.rootToken ? [`Root token: ${server.rootToken}`] : []),
      '',
      'Try it:',
      `  export ENSEAL_ADDR=${server.url}${server.rootToken ? ` ENSEAL_TOKEN=${server.rootToken}` : ''}${server.caFile ? ` ENSEAL_CACERT=${server.caFile}` : ''}`,
      `  curl ${server.caFile ? '--cacert "$ENSEAL_CACERT" ' : ''}-H "X-Vault-Token: $ENSEAL_TOKEN" -d '{"plaintext":"aGVsbG8="}' $ENSEAL_ADDR/v1/transit/encrypt/seeds`,
      `Operator console: ${server.url}/ui`,
      `API docs: ${server.url}/docs`,
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
    await new Promise<void>((resolveStop) => {
      const stop = () => resolveStop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    process.stdout.write('enseal: shutting down (draining requests)\n');
    await server.close();
  });
}
