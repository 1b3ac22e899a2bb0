// `enseal tls audit` against testssl.sh on the same target in the same run: a local nginx (Mozilla
// intermediate shape: TLS 1.2 and 1.3, ECDHE AEAD suites, HSTS, port-80 redirect) with a certificate from
// enseal's development CA. testssl.sh runs the checks the auditor also covers: protocols (-p), every cipher
// per protocol (-E), server defaults and certificate (-S) and HTTP headers (-h). Goal: the auditor at least
// 5x faster. Needs nginx and testssl.sh on PATH (Debian packages nginx, testssl.sh).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditTls, ensureDevCertificates } from '../dist/tls/index.js';

const AUDIT_ROUNDS = 5;

function onPath(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

for (const [cmd, args] of [
  ['nginx', ['-v']],
  ['testssl', ['--version']],
]) {
  if (!onPath(cmd, args)) {
    console.log(`skipped: ${cmd} is not on PATH (apt-get install ${cmd === 'testssl' ? 'testssl.sh' : cmd})`);
    process.exit(0);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function listening(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('close', (code) => resolve(code));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'enseal-bench-tls-audit-'));
let nginx;
try {
  const files = await ensureDevCertificates(join(dir, 'certs'), ['localhost']);
  mkdirSync(join(dir, 'tmp'));
  const httpsPort = await freePort();
  const httpPort = await freePort();
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const conf = `${root ? 'user root root;\n' : ''}daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')};
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'tmp')};
  proxy_temp_path ${join(dir, 'tmp')};
  fastcgi_temp_path ${join(dir, 'tmp')};
  uwsgi_temp_path ${join(dir, 'tmp')};
  scgi_temp_path ${join(dir, 'tmp')};
  server {
    listen 127.0.0.1:${httpsPort} ssl http2;
    server_name localhost;
    ssl_certificate ${files.cert};
    ssl_certificate_key ${files.key};
    add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
    location / { default_type text/plain; return 200 "ok\\n"; }
  }
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ecdh_curve X25519:prime256v1:secp384r1;
  ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
  ssl_prefer_server_ciphers off;
  server {
    listen 127.0.0.1:${httpPort} default_server;
    return 308 https://$host:${httpsPort}$request_uri;
  }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  nginx = spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + 10_000;
  while (!(await listening(httpsPort)) || !(await listening(httpPort))) {
    if (Date.now() > deadline) throw new Error('nginx did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const target = `127.0.0.1:${httpsPort}`;
  const ca = readFileSync(files.caCert, 'utf8');
  const options = { serverName: 'localhost', extraCa: [ca], httpPort };

  await auditTls(target, options); // warm-up (module loading, first connections)
  const times = [];
  let report;
  for (let i = 0; i < AUDIT_ROUNDS; i++) {
    const t = performance.now();
    report = await auditTls(target, options);
    times.push(performance.now() - t);
  }
  const auditMs = median(times);

  const json = join(dir, 'testssl.json');
  const t = performance.now();
  await run('testssl', [
    '--quiet',
    '--color',
    '0',
    '--warnings',
    'off',
    '--nodns',
    'none',
    '--add-ca',
    files.caCert,
    '--jsonfile',
    json,
    '-p',
    '-E',
    '-S',
    '-h',
    `https://${target}`,
  ]);
  const testsslMs = performance.now() - t;

  const line = (label, ms) => console.log(`${label.padEnd(56)} ${ms.toFixed(0).padStart(8)} ms`);
  console.log(`target: nginx ${target}, grade ${report.rating.grade}`);
  line(`enseal tls audit (median of ${AUDIT_ROUNDS})`, auditMs);
  line('testssl.sh -p -E -S -h (one run)', testsslMs);
  console.log(`${'speed-up'.padEnd(56)} ${(testsslMs / auditMs).toFixed(1).padStart(8)} x  (goal >= 5x)`);
} finally {
  nginx?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
