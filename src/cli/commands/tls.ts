/**
 * `enseal tls`: certificates from a local CA and from ACME, a TLS auditor, and hardened nginx configs. Each
 * subcommand group lives in its own module; this one only gathers them under `tls`.
 */
import type { Command } from 'commander';
import { registerTlsCa } from './tls-ca.js';
import { registerTlsAcme } from './tls-acme.js';
import { registerTlsAudit } from './tls-audit.js';
import { registerTlsNginx } from './tls-nginx.js';

export function registerTls(program: Command): void {
  const tls = program
    .command('tls')
    .description('Certificates (local CA, ACME), TLS audits with a grade, hardened nginx configs');
  registerTlsCa(tls);
  registerTlsAcme(tls);
  registerTlsAudit(tls);
  registerTlsNginx(tls);
}
