/**
 * The configuration flags of `enseal serve`, shared with `enseal doctor` so that the doctor reads a deployment
 * exactly as the server does: the TOML file first, then each flag given on top of it.
 */
import type { Command } from 'commander';
import type { ServeConfig } from '../server/index.js';

export interface ServeConfigFlags {
  dev?: boolean;
  config?: string;
  dataDir?: string;
  storage?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsProfile?: 'modern' | 'intermediate';
  insecureHttp?: boolean;
  http2?: boolean;
  tlsClientCa?: string;
  redirectHttp?: string;
  logLevel?: string;
  batchWorkers?: string;
}

function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m) throw new Error(`--listen must be host:port, for example 127.0.0.1:8200`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

function parseCount(text: string): number {
  if (!/^\d{1,3}$/.test(text)) throw new Error('--batch-workers must be a whole number (0-999)');
  return Number(text);
}

/** Adds the flags that shape a server's configuration. */
export function serveConfigOptions(command: Command): Command {
  return command
    .option(
      '--dev',
      'development mode: local SQLite store, dev unseal key and root token on disk, dev CA (INSECURE)',
    )
    .option('--config <file>', 'TOML config file (keys as the flags: storage, listen, tls-cert, ...)')
    .option('--data-dir <dir>', 'directory for the SQLite store and dev files')
    .option('--storage <url>', 'sqlite:<path> or postgres://user:pass@host/db (env ENSEAL_STORAGE)')
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8200)')
    .option('--tls-cert <file>', 'PEM certificate chain (reloaded when the file changes)')
    .option('--tls-key <file>', 'PEM private key')
    .option(
      '--tls-profile <name>',
      'modern (TLS 1.3 only, default) or intermediate (adds TLS 1.2 ECDHE AEAD)',
    )
    .option('--insecure-http', 'serve plain HTTP (never in production)')
    .option(
      '--tls-client-ca <file>',
      'accept client certificates from this CA (mTLS; policies from the config file)',
    )
    .option('--redirect-http <host:port>', 'also listen on plain HTTP, answering only 308 redirects to HTTPS')
    .option('--no-http2', 'HTTP/1.1 only (by default HTTP/2 is offered by ALPN too)')
    .option('--log-level <level>', 'fatal, error, warn, info (default), debug')
    .option(
      '--batch-workers <n>',
      'worker threads for large encrypt/decrypt batches (default: one per core; 0 runs them in the main thread)',
    );
}

/** The configuration these flags describe: the config file's keys, overridden by the flags given. */
export async function serveConfigFrom(flags: ServeConfigFlags): Promise<ServeConfig> {
  // Loaded on demand: the server's dependencies are not needed by the other commands.
  const { loadConfigFile } = await import('../server/index.js');
  const file = flags.config ? await loadConfigFile(flags.config) : {};
  const listen = flags.listen ? parseListen(flags.listen) : {};
  const storage = flags.storage ?? process.env.ENSEAL_STORAGE;
  return {
    ...file,
    ...(flags.dev ? { dev: true } : {}),
    ...(flags.dataDir ? { dataDir: flags.dataDir } : {}),
    ...(storage ? { storage } : {}),
    ...listen,
    ...(flags.tlsCert ? { tlsCert: flags.tlsCert } : {}),
    ...(flags.tlsKey ? { tlsKey: flags.tlsKey } : {}),
    ...(flags.tlsProfile ? { tlsProfile: flags.tlsProfile } : {}),
    ...(flags.insecureHttp ? { insecureHttp: true } : {}),
    ...(flags.http2 === false ? { http2: false } : {}),
    ...(flags.tlsClientCa ? { tlsClientCa: flags.tlsClientCa } : {}),
    ...(flags.redirectHttp ? { redirectHttp: flags.redirectHttp } : {}),
    ...(flags.logLevel ? { logLevel: flags.logLevel } : {}),
    ...(flags.batchWorkers !== undefined ? { batchWorkers: parseCount(flags.batchWorkers) } : {}),
  };
}
