/**
 * A real nginx for tests: a throwaway prefix directory with its own nginx.conf, logs and temp paths, free
 * loopback ports, `nginx -t` before start, and a stop() that waits for the process to exit. nginx runs in
 * the foreground as a single process (`master_process off`), so stopping it can never leave workers behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tool, type Peer } from './peers.js';

let peer: Peer | undefined;

/** The nginx peer (`nginx -v` prints its version on stderr and exits 0). Looked up once per process. */
export function nginxPeer(): Peer {
  peer ??= tool('nginx', ['-v'], 'apt-get install nginx');
  return peer;
}

/** A free TCP port on 127.0.0.1, found by binding port 0 and releasing it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Replaces {{HTTPS_PORT}}, {{HTTP_PORT}} and {{DIR}} in an nginx config fragment. */
export function substitute(
  text: string,
  values: { httpsPort: number; httpPort: number; dir: string },
): string {
  return text
    .replaceAll('{{HTTPS_PORT}}', String(values.httpsPort))
    .replaceAll('{{HTTP_PORT}}', String(values.httpPort))
    .replaceAll('{{DIR}}', values.dir);
}

/** A complete nginx.conf around an `http {}` body, with every path nginx writes kept under `dir`. */
export function fullConfig(dir: string, http: string): string {
  const runAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return [
    // As root, nginx would switch to the compiled-in user (nobody/www-data); stay root so the temp files
    // written by root stay readable. Unprivileged, the directive is ignored with a warning, so omit it.
    ...(runAsRoot ? ['user root root;'] : []),
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} info;`,
    'events { worker_connections 128; }',
    'http {',
    `  access_log ${join(dir, 'access.log')};`,
    `  client_body_temp_path ${join(dir, 'tmp', 'body')};`,
    `  proxy_temp_path ${join(dir, 'tmp', 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'tmp', 'scgi')};`,
    http,
    '}',
    '',
  ].join('\n');
}

export interface NginxTestResult {
  readonly ok: boolean;
  /** nginx's combined output (it reports syntax results on stderr). */
  readonly output: string;
}

function runTest(dir: string, confFile: string): NginxTestResult {
  const r = spawnSync('nginx', ['-t', '-p', dir, '-e', join(dir, 'error.log'), '-c', confFile], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/**
 * Runs `nginx -t` on `http` (the body of an `http {}` block; placeholders are substituted with unused
 * port numbers and a temp dir). `files` are written into the temp dir first ({{DIR}}/name).
 */
export async function nginxTest(http: string, files: Record<string, string> = {}): Promise<NginxTestResult> {
  const dir = mkdtempSync(join(tmpdir(), 'enseal-nginx-t-'));
  try {
    mkdirSync(join(dir, 'tmp'));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const body = substitute(http, { httpsPort: await freePort(), httpPort: await freePort(), dir });
    const confFile = join(dir, 'nginx.conf');
    writeFileSync(confFile, fullConfig(dir, body));
    return runTest(dir, confFile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface RunningNginx {
  readonly httpsPort: number;
  readonly httpPort: number;
  /** The prefix directory (config, logs, any `files`). Removed by stop(). */
  readonly dir: string;
  /** The full nginx.conf that is running. */
  readonly config: string;
  /** Stops nginx, waits for the process to exit and removes `dir`. Safe to call twice. */
  stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts nginx with `http` as the body of its `http {}` block. {{HTTPS_PORT}} and {{HTTP_PORT}} become free
 * loopback ports and {{DIR}} the prefix directory, where `files` are written first. Runs `nginx -t` (throws
 * with nginx's output if it fails), starts nginx and resolves once every port that the config mentions
 * accepts connections.
 */
export async function startNginx(options: {
  /** The http {} body, with placeholders; or a function given the chosen ports and dir that returns it. */
  http: string | ((where: { httpsPort: number; httpPort: number; dir: string }) => string);
  files?: Record<string, string>;
}): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'enseal-nginx-'));
  mkdirSync(join(dir, 'tmp'));
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), content);
  const httpsPort = await freePort();
  let httpPort = await freePort();
  while (httpPort === httpsPort) httpPort = await freePort();
  const http = typeof options.http === 'string' ? options.http : options.http({ httpsPort, httpPort, dir });
  const config = fullConfig(dir, substitute(http, { httpsPort, httpPort, dir }));
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, config);
  const checked = runTest(dir, confFile);
  if (!checked.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`nginx -t failed:\n${checked.output}\n--- config ---\n${config}`);
  }
  const child = spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', confFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited(child);
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Wait for each port the config listens on (a placeholder, or the number a function put in).
  const ports = [httpsPort, httpPort].filter(
    (p) =>
      http.includes(p === httpsPort ? '{{HTTPS_PORT}}' : '{{HTTP_PORT}}') ||
      new RegExp(`:${p}\\b`).test(http),
  );

  const deadline = Date.now() + 15_000;
  for (const port of ports) {
    while (!(await canConnect(port))) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`nginx did not start listening on ${port}:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { httpsPort, httpPort, dir, config, stop };
}

/** A server block on {{HTTPS_PORT}} that serves `body` with status 200 (the shared tail of the blocks below). */
function serverTail(body: string): string {
  return `    location / { default_type text/plain; return 200 "${body}\\n"; }`;
}

/**
 * A deliberately weak TLS server block: TLS 1.0 to 1.2, CBC suites (SECLEVEL=0 so OpenSSL 3 allows them),
 * no HSTS. For testing that an auditor grades it down.
 */
export function weakHttpBlock(files: { cert: string; key: string }): string {
  return [
    '  server {',
    '    listen 127.0.0.1:{{HTTPS_PORT}} ssl;',
    '    server_name localhost;',
    `    ssl_certificate ${files.cert};`,
    `    ssl_certificate_key ${files.key};`,
    '    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;',
    '    ssl_ciphers "AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:DES-CBC3-SHA:@SECLEVEL=0";',
    '    ssl_prefer_server_ciphers off;',
    serverTail('weak'),
    '  }',
  ].join('\n');
}

/**
 * A strong TLS server block in the shape of Mozilla's intermediate profile (TLS 1.2 and 1.3, AEAD suites
 * with forward secrecy, HSTS two years) plus a port-80 server that redirects with 308.
 */
export function strongHttpBlock(files: { cert: string; key: string }): string {
  return [
    '  server {',
    '    listen 127.0.0.1:{{HTTPS_PORT}} ssl http2;',
    '    server_name localhost;',
    `    ssl_certificate ${files.cert};`,
    `    ssl_certificate_key ${files.key};`,
    '    add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;',
    serverTail('strong'),
    '  }',
    '  ssl_protocols TLSv1.2 TLSv1.3;',
    '  ssl_ecdh_curve X25519:prime256v1:secp384r1;',
    '  ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;',
    '  ssl_prefer_server_ciphers off;',
    '  ssl_session_timeout 1d;',
    '  ssl_session_cache shared:MozSSL:10m;',
    '  ssl_session_tickets off;',
    '  server {',
    '    listen 127.0.0.1:{{HTTP_PORT}} default_server;',
    '    return 308 https://$host:{{HTTPS_PORT}}$request_uri;',
    '  }',
  ].join('\n');
}
