// Soak: 64 concurrent HTTPS keep-alive clients for 60 s against `enseal serve --dev` (loopback only), mixing
// encrypt, decrypt, rewrap, batch encrypt, rotate and datakey; first on SQLite (one node), then on PostgreSQL
// with two nodes sharing one database. Reports requests/s, p50/p99, errors (goal: zero), each node's resident
// memory at start and end (goal: flat), then decrypts every ciphertext it was given (goal: every value opens)
// and verifies the audit chain (goal: intact, one entry per request).
//
// Not a test: bounded in time (SOAK_SECONDS, default 60, per store) and count (SOAK_CLIENTS, default 64).
// The nodes run with the per-token rate limit raised (a config file), since all clients share one token and
// the default 60,000 requests a minute would turn most of the load into 429 answers, which are not audited.

import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { embeddedPostgres, fmt } from './harness.mjs';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 64);
const dir = mkdtempSync(join(tmpdir(), 'enseal-soak-'));
chmodSync(dir, 0o777);
const config = join(dir, 'soak.toml');
writeFileSync(config, 'rate-limit-per-minute = 1000000000\n');

async function startNode(dataDir, storage) {
  const args = [CLI, 'serve', '--dev', '--config', config, '--data-dir', dataDir, '--listen', '127.0.0.1:0'];
  if (storage) args.push('--storage', storage);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (out += String(d)));
  const deadline = Date.now() + 60_000;
  while (!out.includes('API docs:')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    url: /listening on (https:\/\/\S+)/.exec(out)[1],
    ca: readFileSync(/Development CA \(trust it to connect\): (\S+)/.exec(out)[1]),
    token: /Root token: (\S+)/.exec(out)?.[1],
    agent: new Agent({ keepAlive: true, maxSockets: CLIENTS }),
  };
}

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function call(node, token, method, path, body) {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(path, node.url),
      {
        method,
        agent: node.agent,
        ca: node.ca,
        headers: {
          'x-vault-token': token,
          ...(text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}),
        },
      },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const raw = Buffer.concat(parts).toString();
          if (res.statusCode !== 200) return reject(new Error(`${method} ${path}: ${res.statusCode} ${raw}`));
          resolve(raw === '' ? {} : JSON.parse(raw).data);
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

const b64 = (s) => Buffer.from(s).toString('base64');
const unb64 = (s) => Buffer.from(s, 'base64').toString();

async function soak(label, nodes, token) {
  const KEYS = ['soak-a', 'soak-b'];
  for (const k of KEYS) await call(nodes[0], token, 'POST', `/v1/transit/keys/${k}`, {});
  const entriesAtStart = (await call(nodes[0], token, 'GET', '/v1/sys/audit/verify')).entries;
  const verifyCost = (await call(nodes[0], token, 'GET', '/v1/sys/audit/verify')).entries - entriesAtStart;
  const rssStart = nodes.map((n) => rssMiB(n.child.pid));
  const held = []; // { key, ct, plain }
  const latencies = [];
  let requests = 0;
  let errors = 0;
  const firstErrors = [];
  const stopAt = Date.now() + SECONDS * 1000;

  const one = async (node, id, i) => {
    const key = KEYS[i % 2];
    const plain = `client ${id} request ${i}`;
    const kind = i % 20;
    if (kind === 0 && id % 16 === 0) {
      await call(node, token, 'POST', `/v1/transit/keys/${key}/rotate`, {});
    } else if (kind === 1) {
      const items = Array.from({ length: 50 }, (_, j) => `${plain} item ${j}`);
      const r = await call(node, token, 'POST', `/v1/transit/encrypt/${key}`, {
        batch_input: items.map((p) => ({ plaintext: b64(p) })),
      });
      r.batch_results.forEach((x, j) => held.push({ key, ct: x.ciphertext, plain: items[j] }));
    } else if (kind === 2) {
      const r = await call(node, token, 'POST', `/v1/transit/datakey/wrapped/${key}`, {});
      // A wrapped data key is a ciphertext of the key too; keep it to check that it opens at the end.
      held.push({ key, ct: r.ciphertext, plain: undefined });
    } else if (kind === 3 && held.length > 0) {
      const h = held[(i * 7919) % held.length];
      const r = await call(node, token, 'POST', `/v1/transit/rewrap/${h.key}`, { ciphertext: h.ct });
      held.push({ ...h, ct: r.ciphertext });
    } else if (kind < 8 && held.length > 0) {
      const h = held[(i * 104729) % held.length];
      const r = await call(node, token, 'POST', `/v1/transit/decrypt/${h.key}`, { ciphertext: h.ct });
      if (h.plain !== undefined && unb64(r.plaintext) !== h.plain) throw new Error('decrypted a wrong value');
    } else {
      const r = await call(node, token, 'POST', `/v1/transit/encrypt/${key}`, { plaintext: b64(plain) });
      held.push({ key, ct: r.ciphertext, plain });
    }
  };

  const client = async (id) => {
    const node = nodes[id % nodes.length];
    for (let i = 0; Date.now() < stopAt; i++) {
      const t0 = performance.now();
      try {
        await one(node, id, i);
      } catch (err) {
        errors++;
        if (firstErrors.length < 5) firstErrors.push(err.message);
      }
      latencies.push(performance.now() - t0);
      requests++;
    }
  };
  const began = performance.now();
  // Resident memory every 5 s: growth that stops after warm-up (V8 sizing its heap, caches filling) is not a
  // leak; growth that goes on to the end is.
  const samples = [];
  const sampler = setInterval(() => samples.push(nodes.map((n) => rssMiB(n.child.pid))), 5000);
  await Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id)));
  clearInterval(sampler);
  const elapsed = (performance.now() - began) / 1000;
  const rssEnd = nodes.map((n) => rssMiB(n.child.pid));
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];

  const audited = (await call(nodes[0], token, 'GET', '/v1/sys/audit/verify')).entries;
  const entries = audited - entriesAtStart - verifyCost;

  let opened = 0;
  let wrong = 0;
  for (let at = 0; at < held.length; at += 500) {
    const chunk = held.slice(at, at + 500);
    for (const key of KEYS) {
      const mine = chunk.filter((h) => h.key === key);
      if (mine.length === 0) continue;
      const r = await call(nodes[at % nodes.length], token, 'POST', `/v1/transit/decrypt/${key}`, {
        batch_input: mine.map((h) => ({ ciphertext: h.ct })),
      });
      r.batch_results.forEach((x, j) => {
        if (x.error || (mine[j].plain !== undefined && unb64(x.plaintext) !== mine[j].plain)) wrong++;
        else opened++;
      });
    }
  }
  const final = await call(nodes[0], token, 'GET', '/v1/sys/audit/verify');

  console.log(`\n## ${label}: ${CLIENTS} clients, ${SECONDS} s, load average ${loadavg()[0].toFixed(1)}`);
  console.log(`requests: ${fmt(requests)} (${fmt(requests / elapsed)}/s), errors: ${errors}`);
  for (const e of firstErrors) console.log(`  error: ${e}`);
  console.log(`latency: p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms`);
  nodes.forEach((_, n) => {
    console.log(
      `node ${n + 1} RSS: ${rssStart[n].toFixed(0)} MiB at start, ${rssEnd[n].toFixed(0)} MiB at end`,
    );
    const series = samples.map((s) => s[n].toFixed(0));
    console.log(`  every 5 s: ${series.join(' ')} MiB`);
    // From the 20 s sample on (index 3), after warm-up.
    if (samples.length > 4) {
      const warm = samples.slice(3).map((s) => s[n]);
      console.log(
        `  after 20 s: ${Math.min(...warm).toFixed(0)}–${Math.max(...warm).toFixed(0)} MiB, ` +
          `${(rssEnd[n] - warm[0]).toFixed(0)} MiB from 20 s to the end`,
      );
    }
  });
  console.log(`ciphertexts held: ${fmt(held.length)}, opened: ${fmt(opened)}, failed: ${wrong}`);
  console.log(
    `audit: chain ${final.ok ? 'intact' : `BROKEN (${final.problems.length} problems)`}, ` +
      `${fmt(entries)} entries for ${fmt(requests)} requests` +
      (entries === requests ? ' (equal)' : ` (DIFFERENT by ${entries - requests})`),
  );
}

function stop(node) {
  node.agent.destroy();
  return new Promise((resolve) => {
    node.child.once('exit', resolve);
    node.child.kill('SIGTERM');
  });
}

try {
  const solo = await startNode(join(dir, 'sqlite'));
  try {
    await soak('SQLite, one node', [solo], solo.token);
  } finally {
    await stop(solo);
  }

  const { server: pg, port } = await embeddedPostgres(join(dir, 'pg'));
  await pg.initialise();
  await pg.start();
  try {
    const storage = `postgres://postgres:password@127.0.0.1:${port}/postgres`;
    const a = await startNode(join(dir, 'pg-a'), storage);
    const b = await startNode(join(dir, 'pg-b'), storage);
    try {
      await soak(
        'PostgreSQL, two nodes',
        [a, b],
        readFileSync(join(dir, 'pg-a', 'dev-root-token'), 'utf8').trim(),
      );
    } finally {
      await Promise.all([stop(a), stop(b)]);
    }
  } finally {
    await pg.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
