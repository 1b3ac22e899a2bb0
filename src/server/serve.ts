/**
 * Running the service: opens the store and key manager, sets up TLS (a development CA in --dev), listens,
 * reloads certificates when their files change, runs the rotation scheduler, and shuts down gracefully.
 */
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { parse as parseToml } from 'smol-toml';
import { EnsealError, ErrorCode, invalidArgument } from '../crypto/index.js';
import { KeyManager, type UsageWarning } from '../kms/index.js';
import { openStore, SqliteStore } from '../store/index.js';
import {
  certificateInfo,
  devCertificateFiles,
  ensureDevCertificates,
  expiryMetrics,
  expiryWarning,
  tlsProfile,
  type CertificateInfo,
  type TlsProfileName,
} from '../tls/index.js';
import { buildApp } from './app.js';
import type { FastifyInstance } from './http.js';
import { PolicyStore } from './policy-store.js';
import { setExtraMetrics } from './sys-routes.js';
import { TokenStore } from './tokens.js';
import type { E2eeOptions } from './e2ee/index.js';

export interface ServeConfig {
  dev?: boolean;
  /** Directory for the SQLite store and dev files (default ./.enseal-dev in --dev, ./enseal-data otherwise). */
  dataDir?: string;
  /** `sqlite:<path>` or `postgres://…` (default: SQLite in dataDir). */
  storage?: string;
  host?: string;
  port?: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsProfile?: TlsProfileName;
  /** Plain HTTP. Refused unless explicitly asked for; warned about at every start. */
  insecureHttp?: boolean;
  /** mTLS: PEM file of the CA whose client certificates are accepted. */
  tlsClientCa?: string;
  /** mTLS: policies by client certificate common name, `*` for any name (default `{"*": ["default"]}`). */
  clientCertPolicies?: Record<string, string[]>;
  /** Also listen on plain HTTP at this host:port, answering only 308 redirects to HTTPS. */
  redirectHttp?: string;
  /** Requests per minute per token before 429 (default 60,000). */
  rateLimitPerMinute?: number;
  /** Failed authentications per client address per minute before 429 (default 100). */
  authFailuresPerMinute?: number;
  /** Offer HTTP/2 by ALPN as well as HTTP/1.1 (default true). */
  http2?: boolean;
  logLevel?: string;
  /** Where JSON logs go (default stdout). */
  logStream?: NodeJS.WritableStream;
  seedsKey?: string;
  /** Worker threads for large encrypt/decrypt batches (default: one per core; 0: the main thread). */
  batchWorkers?: number;
  /**
   * The e2ee service (`[e2ee]` in the TOML file): `origin`, `witnesses = [{ url, verifier_key, ca_file? }]`, `quorum`,
   * `queue_ttl` (seconds or "30d"), `witness_timeout` (seconds). See docs/e2ee-service.md.
   */
  e2ee?: Record<string, unknown>;
}

export interface RunningServer {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly km: KeyManager;
  /** Dev mode: the root token and CA file, printed at start. */
  readonly rootToken?: string;
  readonly caFile?: string;
  readonly warnings: string[];
  /** The plain-HTTP redirect listener's port, when one was asked for. */
  readonly redirectPort?: number;
  close(): Promise<void>;
}

/** Reads a TOML config file; keys use the flag names (`tls-cert`, `storage`, …) or camelCase. */
export async function loadConfigFile(path: string): Promise<ServeConfig> {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new EnsealError(ErrorCode.MALFORMED, `config file ${path} is not valid TOML`, { cause });
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc))
    out[k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  const known = [
    'dev',
    'dataDir',
    'storage',
    'host',
    'port',
    'tlsCert',
    'tlsKey',
    'tlsProfile',
    'insecureHttp',
    'http2',
    'rateLimitPerMinute',
    'authFailuresPerMinute',
    'tlsClientCa',
    'clientCertPolicies',
    'redirectHttp',
    'logLevel',
    'seedsKey',
    'batchWorkers',
    'e2ee',
  ];
  for (const k of Object.keys(out))
    if (!known.includes(k))
      throw invalidArgument(`config key "${k}"`, `is unknown (known: ${known.join(', ')})`);
  return out as ServeConfig;
}

/** Where a store lives: a SQLite file, or a PostgreSQL server (its URL with any password left out). */
export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly host: string; readonly hasPassword: boolean };

/** The files a server of `config` reads and writes, whether they exist yet or not (for `enseal doctor`). */
export interface DeploymentFiles {
  readonly dataDir: string;
  readonly store: StoreLocation;
  /** Dev mode's unseal key file and root token file (in the data directory). */
  readonly devUnsealKey: string;
  readonly devRootToken: string;
  /** The served certificate and key; in dev mode also the dev CA's. Absent with plain HTTP or no TLS files. */
  readonly tls?: {
    readonly cert: string;
    readonly key: string;
    readonly caCert?: string;
    readonly caKey?: string;
  };
  readonly tlsClientCa?: string;
}

const STORE_FILE = 'enseal.db';

function storeLocation(storage: string | undefined, dataDir: string): StoreLocation {
  if (!storage || storage.startsWith('sqlite:'))
    return {
      kind: 'sqlite',
      path: resolve(storage ? storage.slice('sqlite:'.length) : join(dataDir, STORE_FILE)),
    };
  // Parsed by hand: `postgres://user@/db?host=/run/postgresql` (a socket, no host) is valid for PostgreSQL but
  // not for the WHATWG URL parser.
  const m = /^(postgres(?:ql)?:\/\/)(?:([^/]*)@)?([^/?]*)(.*)$/.exec(storage);
  if (m === null) return { kind: 'postgres', url: 'postgres://…', host: 'unknown', hasPassword: false };
  const [, scheme, userinfo, hostPort, rest] = m;
  const colon = userinfo?.indexOf(':') ?? -1;
  const user = colon >= 0 ? userinfo!.slice(0, colon) : userinfo;
  const password = colon >= 0 ? userinfo!.slice(colon + 1) : undefined;
  const socket = /[?&]host=([^&]*)/.exec(rest ?? '');
  return {
    kind: 'postgres',
    url: `${scheme}${user !== undefined ? `${user}@` : ''}${hostPort}${rest}`,
    host: socket ? decodeURIComponent(socket[1]!) : hostPort || 'localhost',
    hasPassword: password !== undefined && password !== '',
  };
}

/** What {@link startServer} would use for `config`: the same resolution, with nothing created. */
export function deploymentFiles(config: ServeConfig): DeploymentFiles {
  const dev = config.dev === true;
  const dataDir = resolve(config.dataDir ?? (dev ? '.enseal-dev' : 'enseal-data'));
  let tls: DeploymentFiles['tls'];
  if (config.insecureHttp) tls = undefined;
  else if (config.tlsCert && config.tlsKey)
    tls = { cert: resolve(config.tlsCert), key: resolve(config.tlsKey) };
  else if (dev) tls = devCertificateFiles(join(dataDir, 'tls'));
  return {
    dataDir,
    store: storeLocation(config.storage, dataDir),
    devUnsealKey: join(dataDir, 'dev-unseal.key'),
    devRootToken: join(dataDir, 'dev-root-token'),
    ...(tls ? { tls } : {}),
    ...(config.tlsClientCa ? { tlsClientCa: resolve(config.tlsClientCa) } : {}),
  };
}

/** How often a served certificate's expiry is checked (and warned about) between reloads. */
const EXPIRY_CHECK_MS = 12 * 60 * 60 * 1000;

/** The served certificate's validity, or undefined when it cannot be parsed (TLS then decides). */
function readCertInfo(file: string): CertificateInfo | undefined {
  try {
    return certificateInfo(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function readTls(cert: string, key: string): SecureContextOptions {
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

/**
 * A plain-HTTP listener that only redirects (308, so the method and body are kept) to the HTTPS port.
 * It never serves the API: a token sent over it would already have crossed the network in clear.
 */
async function startRedirect(listen: string, httpsPort: number): Promise<HttpServer> {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m) throw invalidArgument('redirect-http', 'must be host:port');
  const server = createHttpServer((req, res) => {
    const hostHeader = (req.headers.host ?? 'localhost').replace(/:\d+$/, '');
    const host = /^[A-Za-z0-9.\-[\]:]+$/.test(hostHeader) ? hostHeader : 'localhost';
    res.writeHead(308, {
      location: `https://${host}:${httpsPort}${req.url ?? '/'}`,
      'cache-control': 'no-store',
      connection: 'close',
    });
    res.end();
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(Number(m[3]), m[1] ?? m[2], () => resolveListen());
  });
  return server;
}

function seconds(what: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value * 1000;
  const m = typeof value === 'string' ? /^(\d{1,9})(s|m|h|d)?$/.exec(value) : null;
  if (m) return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 's'];
  throw invalidArgument(what, 'must be seconds or a duration such as "30d"');
}

/** The `[e2ee]` table of the configuration, as the app's options. */
export function e2eeOptionsFrom(raw: Record<string, unknown>): E2eeOptions {
  const known = ['origin', 'witnesses', 'quorum', 'queue_ttl', 'witness_timeout'];
  for (const k of Object.keys(raw))
    if (!known.includes(k))
      throw invalidArgument(`config key "e2ee.${k}"`, `is unknown (known: ${known.join(', ')})`);
  const witnesses = raw.witnesses;
  if (witnesses !== undefined && !Array.isArray(witnesses))
    throw invalidArgument('e2ee.witnesses', 'must be a list');
  const queueTtlMs = seconds('e2ee.queue_ttl', raw.queue_ttl);
  const witnessTimeoutMs = seconds('e2ee.witness_timeout', raw.witness_timeout);
  return {
    ...(typeof raw.origin === 'string' ? { origin: raw.origin } : {}),
    ...(witnesses
      ? {
          witnesses: witnesses.map((w: unknown) => {
            const o = (typeof w === 'object' && w !== null ? w : {}) as Record<string, unknown>;
            const caFile = o.ca_file ?? o.caFile;
            return {
              url: String(o.url ?? ''),
              verifierKey: String(o.verifier_key ?? o.verifierKey ?? ''),
              ...(caFile !== undefined ? { caFile: String(caFile) } : {}),
            };
          }),
        }
      : {}),
    ...(typeof raw.quorum === 'number' ? { quorum: raw.quorum } : {}),
    ...(queueTtlMs !== undefined ? { queueTtlMs } : {}),
    ...(witnessTimeoutMs !== undefined ? { witnessTimeoutMs } : {}),
  };
}

/** Starts the service and resolves once it listens. */
export async function startServer(config: ServeConfig): Promise<RunningServer> {
  const dev = config.dev === true;
  const files = deploymentFiles(config);
  const dataDir = files.dataDir;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const warnings: string[] = [];
  const store = config.storage
    ? await openStore(config.storage)
    : SqliteStore.open({ path: join(dataDir, STORE_FILE) });
  // Usage anomalies go to the log as warnings (and to metrics); the logger exists once the app does.
  let warn: (warning: UsageWarning) => void = () => undefined;
  const km = await KeyManager.open({
    store,
    monitor: { onWarning: (w) => warn(w) },
    batchWorkers: config.batchWorkers ?? availableParallelism(),
  });
  const tokens = new TokenStore(km);
  const policies = new PolicyStore(km);
  let rootToken: string | undefined;

  if (dev) {
    warnings.push(
      'DEV MODE: the unseal key and root token are stored unencrypted in ' +
        dataDir +
        '. Never use --dev for real data.',
    );
    const tokenFile = files.devRootToken;
    if (!(await km.status()).initialized) {
      await km.init({ type: 'dev', devKeyFile: files.devUnsealKey }, async (tx, records) => {
        const root = await tokens.createIn(tx, records, {
          policies: ['root'],
          ttlMs: 0,
          displayName: 'dev-root',
        });
        rootToken = root.token;
        return { root_token_accessor: root.info.accessor };
      });
      await writeFile(tokenFile, rootToken + '\n', { mode: 0o600 });
    } else {
      rootToken = existsSync(tokenFile) ? (await readFile(tokenFile, 'utf8')).trim() : undefined;
    }
    await km.unsealDev();
    const seeds = config.seedsKey ?? 'seeds';
    if (!(await km.listKeys()).includes(seeds)) await km.createKey(seeds);
  }

  let https: SecureContextOptions | undefined;
  let certFiles: { cert: string; key: string; ca?: string } | undefined;
  if (config.insecureHttp) {
    warnings.push('PLAIN HTTP (--insecure-http): tokens and plaintexts cross the network unencrypted.');
  } else if (config.tlsCert && config.tlsKey) {
    certFiles = { cert: config.tlsCert, key: config.tlsKey };
  } else if (dev) {
    const files = await ensureDevCertificates(join(dataDir, 'tls'));
    certFiles = { cert: files.cert, key: files.key, ca: files.caCert };
  } else {
    throw invalidArgument('TLS', 'needs --tls-cert and --tls-key (or --dev, or an explicit --insecure-http)');
  }
  const profile = tlsProfile(config.tlsProfile ?? 'modern');
  // mTLS asks for a certificate but does not require one: token authentication keeps working alongside it.
  const mtls: SecureContextOptions & { requestCert?: boolean; rejectUnauthorized?: boolean } =
    config.tlsClientCa
      ? { ca: readFileSync(config.tlsClientCa), requestCert: true, rejectUnauthorized: false }
      : {};
  if (certFiles) https = { ...readTls(certFiles.cert, certFiles.key), ...profile, ...mtls };

  const app = await buildApp({
    km,
    tokens,
    policies,
    logger: { level: config.logLevel ?? 'info', ...(config.logStream ? { stream: config.logStream } : {}) },
    ...(https ? { https } : {}),
    ...(config.http2 !== false ? { http2: true } : {}),
    ...(config.rateLimitPerMinute ? { rateLimitPerMinute: config.rateLimitPerMinute } : {}),
    ...(config.authFailuresPerMinute ? { authThrottle: { maxFailures: config.authFailuresPerMinute } } : {}),
    ...(config.tlsClientCa ? { clientCertPolicies: config.clientCertPolicies ?? { '*': ['default'] } } : {}),
    ...(config.seedsKey ? { seedsKey: config.seedsKey } : {}),
    ...(config.e2ee ? { e2ee: e2eeOptionsFrom(config.e2ee) } : {}),
  });
  warn = (w) =>
    app.log.warn({ anomaly: w.kind, caller: w.caller, count: w.count, baseline: w.baseline }, w.message);
  const host = config.host ?? '127.0.0.1';
  await app.listen({ host, port: config.port ?? 8200 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (config.port ?? 8200);
  const stopScheduler = km.startScheduler(60_000, (err) =>
    app.log.warn({ code: (err as { code?: string }).code }, 'scheduled task failed'),
  );

  // Certificate hot reload: new handshakes use the new files; open connections and ticket keys are kept.
  // Renewal tools (enseal tls acme, certbot) replace files by rename, which gives the path a new inode: a watch
  // on the file itself would stay on the old inode and go deaf after the first renewal. So the directories are
  // watched and events filtered by file name, which survives any number of renames.
  const watchers: FSWatcher[] = [];
  let expiryTimer: NodeJS.Timeout | undefined;
  let reloadTimer: NodeJS.Timeout | undefined;
  if (certFiles) {
    const files = certFiles;
    let served = readCertInfo(files.cert);
    const checkExpiry = (atStart = false) => {
      const warning = served ? expiryWarning(served) : undefined;
      if (warning) {
        if (atStart) warnings.push(warning);
        app.log.warn({ notAfter: served?.notAfter.toISOString() }, warning);
      }
    };
    checkExpiry(true);
    setExtraMetrics(km, () => (served ? expiryMetrics(served) : ''));
    const reload = () => {
      try {
        const server = app.server as unknown as TlsServer;
        const ticketKeys = server.getTicketKeys();
        server.setSecureContext({
          ...readTls(files.cert, files.key),
          ...profile,
          ...(mtls.ca ? { ca: mtls.ca } : {}),
        });
        server.setTicketKeys(ticketKeys);
        served = readCertInfo(files.cert) ?? served;
        app.log.info({ notAfter: served?.notAfter.toISOString() }, 'TLS certificate reloaded');
        checkExpiry();
      } catch (err) {
        app.log.warn(
          { code: (err as { code?: string }).code },
          'TLS certificate reload failed; keeping the old one',
        );
      }
    };
    const byDir = new Map<string, Set<string>>();
    for (const f of [files.cert, files.key]) {
      const dir = dirname(resolve(f));
      byDir.set(dir, (byDir.get(dir) ?? new Set()).add(basename(f)));
    }
    for (const [dir, names] of byDir) {
      const watcher = watch(dir, (_event, name) => {
        // Some platforms omit the name; then any change in the directory triggers a (harmless) reload.
        if (name !== null && !names.has(String(name))) return;
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(reload, 200);
      });
      // A watcher error (the directory removed, say) must not take the server down; it keeps its certificate.
      watcher.on('error', (err: NodeJS.ErrnoException) =>
        app.log.warn({ code: err.code, dir }, 'TLS certificate directory watch failed; reload is off'),
      );
      watchers.push(watcher);
    }
    // Expiry is also checked twice a day, so a certificate nobody renews is warned about while serving.
    expiryTimer = setInterval(() => checkExpiry(), EXPIRY_CHECK_MS);
    expiryTimer.unref();
  }

  const url = `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const redirect = config.redirectHttp && https ? await startRedirect(config.redirectHttp, port) : undefined;
  let closed = false;
  return {
    url,
    app,
    km,
    warnings,
    ...(redirect ? { redirectPort: (redirect.address() as { port: number }).port } : {}),
    ...(rootToken ? { rootToken } : {}),
    ...(certFiles?.ca ? { caFile: certFiles.ca } : {}),
    async close() {
      if (closed) return;
      closed = true;
      for (const w of watchers) w.close();
      clearInterval(expiryTimer);
      clearTimeout(reloadTimer);
      redirect?.close();
      stopScheduler();
      await app.close(); // stops accepting, lets in-flight requests finish
      await km.close();
    },
  };
}
