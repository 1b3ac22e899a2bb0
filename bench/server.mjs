// `enseal serve` over HTTPS keep-alive against the seeds' Flask + Fernet app (python3-flask) run the same way:
// same machine, same TLS certificate, same load generator (this script: 16 keep-alive connections, 5 s).
// Goals (docs/benchmarks.md): single-item encrypt at >= 15x the Flask app's requests/s with p99 under 10 ms;
// batch encrypt at >= 150,000 items/s. Also printed: one connection (latency), and `--workers 2`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt } from './harness.mjs';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const SECONDS = 5;
const CONNECTIONS = 16;
const dir = mkdtempSync(join(tmpdir(), 'enseal-bench-server-'));

function waitFor(child, pattern) {
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d) => {
      out += String(d);
      const m = pattern.exec(out);
      if (m) resolve(out);
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

function post(agent, ca, url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        ca,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
      },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(Buffer.concat(parts))
            : reject(new Error(`${res.statusCode} ${Buffer.concat(parts)}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function load(ca, url, headers, body, seconds = SECONDS, connections = CONNECTIONS) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies = [];
  for (let i = 0; i < connections; i++) await post(agent, ca, url, headers, body); // warm-up, open sockets
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await post(agent, ca, url, headers, body);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length * 0.5)],
    p99: latencies[Math.floor(latencies.length * 0.99)],
  };
}

const FLASK_APP = `
import logging, sys
from flask import Flask, request
from cryptography.fernet import Fernet
from werkzeug.serving import WSGIRequestHandler
logging.getLogger('werkzeug').setLevel(logging.ERROR)
WSGIRequestHandler.protocol_version = 'HTTP/1.1'  # keep-alive, like the enseal side
app = Flask(__name__)
key = Fernet.generate_key()
cipher_suite = Fernet(key)

@app.route('/encrypt', methods=['POST'])
def encrypt():
    data = request.get_json()['data']
    encrypted_data = cipher_suite.encrypt(data.encode('utf-8'))
    return {'encrypted_data': encrypted_data.decode('utf-8')}

if __name__ == '__main__':
    print('flask ready', flush=True)
    app.run(host='127.0.0.1', port=int(sys.argv[1]), ssl_context=(sys.argv[2], sys.argv[3]), threaded=True)
`;

let ensealLog = '';
const serve = (port, extra = []) => {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--dev',
      '--data-dir',
      join(dir, 'enseal'),
      '--listen',
      `127.0.0.1:${port}`,
      '--log-level',
      'error',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stderr.on('data', (d) => (ensealLog += String(d)));
  child.stdout.on('data', (d) => (ensealLog += String(d)));
  return child;
};
const enseal = serve(8231);
let flask;
let workers;
try {
  console.log(`load average at start ${loadavg()[0].toFixed(1)}`);
  const out = await waitFor(enseal, /API docs:/);
  const token = /Root token: (\S+)/.exec(out)[1];
  const caFile = /Development CA \(trust it to connect\): (\S+)/.exec(out)[1];
  const ca = readFileSync(caFile);
  const tlsDir = join(dir, 'enseal', 'tls');
  flask = spawn(
    '/usr/bin/python3',
    ['-c', FLASK_APP, '8232', join(tlsDir, 'server.pem'), join(tlsDir, 'server-key.pem')],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitFor(flask, /Running on|flask ready/);
  await new Promise((r) => setTimeout(r, 500));

  const auth = { 'x-vault-token': token };
  const items = Array.from({ length: 1000 }, (_, i) => ({
    plaintext: Buffer.from(`value ${i} 0123456789abcdef`).toString('base64'),
  }));
  const b = await load(
    ca,
    'https://127.0.0.1:8231/v1/transit/encrypt/seeds',
    auth,
    JSON.stringify({ batch_input: items }),
    SECONDS,
    4,
  );
  console.log(`\nBatch encrypt, 1,000 items per request, 4 connections`);
  console.log(
    `enseal batch_input                     ${fmt(b.rps * 1000).padStart(8)} items/s  (p99 ${b.p99.toFixed(1)} ms per request)`,
  );
  const value = JSON.stringify({ data: 'patient 7: type 2 diabetes' });
  console.log(`Single-item encrypt, HTTPS keep-alive, ${CONNECTIONS} connections, ${SECONDS} s each`);
  const f = await load(ca, 'https://127.0.0.1:8232/encrypt', {}, value);
  console.log(
    `seeds' Flask + Fernet app  (reference) ${fmt(f.rps).padStart(8)} req/s  p50 ${f.p50.toFixed(1)} ms  p99 ${f.p99.toFixed(1)} ms`,
  );
  const e = await load(ca, 'https://127.0.0.1:8231/encrypt', auth, value);
  console.log(
    `enseal /encrypt (Fernet, audited)      ${fmt(e.rps).padStart(8)} req/s  p50 ${e.p50.toFixed(1)} ms  p99 ${e.p99.toFixed(1)} ms  ${(e.rps / f.rps).toFixed(1)}x`,
  );
  const t = await load(
    ca,
    'https://127.0.0.1:8231/v1/transit/encrypt/seeds',
    auth,
    JSON.stringify({ plaintext: Buffer.from('patient 7: type 2 diabetes').toString('base64') }),
  );
  console.log(
    `enseal /v1/transit/encrypt (audited)   ${fmt(t.rps).padStart(8)} req/s  p50 ${t.p50.toFixed(1)} ms  p99 ${t.p99.toFixed(1)} ms  ${(t.rps / f.rps).toFixed(1)}x`,
  );
  const transit = JSON.stringify({ plaintext: Buffer.from('patient 7: type 2 diabetes').toString('base64') });
  const one = await load(ca, 'https://127.0.0.1:8231/v1/transit/encrypt/seeds', auth, transit, SECONDS, 1);
  console.log(
    `enseal /v1/transit/encrypt, 1 conn.    ${fmt(one.rps).padStart(8)} req/s  p50 ${one.p50.toFixed(1)} ms  p99 ${one.p99.toFixed(1)} ms`,
  );
  // The same store served by two worker processes (serve --workers 2), after the single process stopped.
  enseal.kill('SIGTERM');
  await new Promise((r) => enseal.once('exit', r));
  workers = serve(8233, ['--workers', '2']);
  await waitFor(workers, /API docs:/);
  const w = await load(ca, 'https://127.0.0.1:8233/v1/transit/encrypt/seeds', auth, transit);
  console.log(
    `enseal --workers 2, transit encrypt    ${fmt(w.rps).padStart(8)} req/s  p50 ${w.p50.toFixed(1)} ms  p99 ${w.p99.toFixed(1)} ms  ${(w.rps / f.rps).toFixed(1)}x`,
  );
  console.log(`load average at the end ${loadavg()[0].toFixed(1)}`);
} catch (err) {
  console.error(`benchmark failed: ${err.message}\n--- enseal output ---\n${ensealLog.slice(-3000)}`);
  process.exitCode = 1;
} finally {
  flask?.kill('SIGTERM');
  enseal.kill('SIGTERM');
  workers?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
}
