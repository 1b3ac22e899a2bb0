/**
 * A real ACME server for tests: Pebble (Let's Encrypt's test CA) with pebble-challtestsrv as its DNS server,
 * both on loopback with free ports. The Debian package ships no listener certificate, so one is made here
 * from a throwaway CA. Pebble validates http-01 on `httpPort` and tls-alpn-01 on `tlsPort`, where the test's
 * responders listen; every name resolves to 127.0.0.1; dns-01 TXT records go in through challtestsrv's
 * management API.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ensureDevCertificates } from '../../src/tls/index.js';
import { tempDir } from '../kms/helpers.js';

const inCi = process.env.CI === 'true' || process.env.CI === '1';

/** True when pebble and pebble-challtestsrv are installed; under CI=true their absence is a failure. */
export function pebbleAvailable(): boolean {
  const ok = ['pebble', 'pebble-challtestsrv'].every((cmd) => {
    const r = spawnSync(cmd, ['-h'], { stdio: 'ignore' });
    return r.error === undefined; // both print usage and exit 2 on -h
  });
  if (!ok) {
    const line = 'interop peer missing: pebble (install: apt-get install pebble)';
    if (inCi) throw new Error(`${line}; CI=true, so this is a failure, not a skip`);
    console.warn(`SKIPPED ${line}`);
  }
  return ok;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface Pebble {
  readonly directoryUrl: string;
  /** PEM of the CA that signed Pebble's own HTTPS listener (the client's `ca`). */
  readonly listenerCa: string;
  /** Where Pebble connects for http-01 and tls-alpn-01. */
  readonly httpPort: number;
  readonly tlsPort: number;
  /** challtestsrv management base URL (POST /set-txt, /clear-txt). */
  readonly dnsManagement: string;
  /** The root that issues certificates (regenerated on every start). */
  issuingRoot(): Promise<string>;
  logs(): string;
  stop(): Promise<void>;
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function httpPost(url: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, logs: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up:\n${logs()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => (clearTimeout(timer), resolve()));
    child.kill('SIGTERM');
  });
}

/**
 * Starts challtestsrv and Pebble. `nonceReject` is the percentage of good nonces Pebble rejects (default 0);
 * with `eab`, new accounts need that external account binding.
 */
export async function startPebble(
  options: { nonceReject?: number; eab?: { kid: string; hmacKeyB64u: string } } = {},
): Promise<Pebble> {
  const dir = tempDir();
  const tls = await ensureDevCertificates(join(dir, 'listener'));
  const ports: number[] = [];
  // One at a time, so no two come back equal.
  while (ports.length < 6) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const [acmePort, mgmtPort, httpPort, tlsPort, dnsPort, dnsMgmtPort] = ports as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  let output = '';
  const capture = (child: ChildProcess, name: string) => {
    const add = (d: Buffer) => {
      if (output.length < 200_000) output += `[${name}] ${String(d)}`;
    };
    child.stdout?.on('data', add);
    child.stderr?.on('data', add);
  };
  const challtest = spawn(
    'pebble-challtestsrv',
    [
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-management',
      `127.0.0.1:${dnsMgmtPort}`,
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  capture(challtest, 'challtestsrv');
  const dnsManagement = `http://127.0.0.1:${dnsMgmtPort}`;
  await waitFor(
    'pebble-challtestsrv',
    async () => (await httpPost(`${dnsManagement}/clear-txt`, { host: 'x.' })) === 200,
    () => output,
  );

  const config = join(dir, 'pebble.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: tls.cert,
        privateKey: tls.key,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: options.eab !== undefined,
        ...(options.eab ? { externalAccountMACKeys: { [options.eab.kid]: options.eab.hmacKeyB64u } } : {}),
      },
    }),
  );
  const pebble = spawn('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: String(options.nonceReject ?? 0),
      PEBBLE_AUTHZREUSE: '0',
    },
  });
  capture(pebble, 'pebble');
  const listenerCa = readFileSync(tls.caCert, 'utf8');
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  await waitFor(
    'pebble',
    async () => (await get(directoryUrl, listenerCa)).status === 200,
    () => output,
  );
  return {
    directoryUrl,
    listenerCa,
    httpPort,
    tlsPort,
    dnsManagement,
    async issuingRoot() {
      const r = await get(`https://127.0.0.1:${mgmtPort}/roots/0`, listenerCa);
      if (r.status !== 200) throw new Error(`pebble roots: ${r.status}`);
      return r.body;
    },
    logs: () => output,
    async stop() {
      await Promise.all([stopChild(pebble), stopChild(challtest)]);
    },
  };
}

/**
 * A dns-01 hook script for tests: it publishes or removes the TXT record through challtestsrv, exactly as a
 * user's hook would through a DNS provider's API. Returns the command to pass as `--dns-hook`.
 */
export function dnsHookCommand(pebble: Pebble): string {
  const file = join(tempDir(), 'dns-hook.mjs');
  if (!existsSync(file))
    writeFileSync(
      file,
      [
        "import { request } from 'node:http';",
        'const e = process.env;',
        "const path = e.ENSEAL_ACME_ACTION === 'present' ? '/set-txt' : '/clear-txt';",
        "const body = JSON.stringify({ host: e.ENSEAL_ACME_TXT_NAME + '.', value: e.ENSEAL_ACME_TXT_VALUE });",
        "const req = request(e.DNS_MGMT + path, { method: 'POST' }, (res) => process.exit(res.statusCode === 200 ? 0 : 1));",
        "req.on('error', () => process.exit(2));",
        'req.end(body);',
      ].join('\n'),
    );
  return `DNS_MGMT=${pebble.dnsManagement} ${process.execPath} ${file}`;
}
