/**
 * `enseal serve` killed with SIGKILL in the middle of concurrent load (encrypt, batch encrypt, rotate),
 * restarted on the same data: every ciphertext a client received before the kill still decrypts to what it
 * sent, and the audit chain verifies with at least one entry per answered request.
 */
import type { ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:https';
import { describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/cli.js';
import { startServe } from '../helpers/serve-process.js';
import { tempDir } from '../kms/helpers.js';

interface Server {
  child: ChildProcess;
  url: string;
  ca: Buffer;
  token: string;
}

async function start(dataDir: string): Promise<Server> {
  const s = await startServe(['--dev', '--data-dir', dataDir]);
  return { child: s.child, url: s.url, ca: s.ca!, token: s.token! };
}

function call(
  server: Server,
  agent: Agent,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: { data?: Record<string, unknown> } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, server.url),
      { method, agent, ca: server.ca, headers: { 'x-vault-token': server.token } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += String(d)));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: text === '' ? {} : JSON.parse(text) });
          } catch (e) {
            reject(e as Error);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('enseal serve killed under load', () => {
  it('loses no answered ciphertext and keeps the audit chain intact', async () => {
    buildOnce();
    const dir = tempDir();
    let server = await start(dir);
    let agent = new Agent({ keepAlive: true, maxSockets: 16 });
    expect((await call(server, agent, 'POST', '/v1/transit/keys/orders', {})).status).toBe(200);

    const received: { ct: string; plain: string }[] = [];
    let answered = 1;
    let killed = false;
    const client = async (id: number) => {
      for (let i = 0; !killed; i++) {
        const plain = `client ${id} value ${i}`;
        try {
          if (i % 25 === 7 && id === 0) {
            const r = await call(server, agent, 'POST', '/v1/transit/keys/orders/rotate', {});
            if (r.status === 200 || r.status === 204) answered++;
          } else if (i % 10 === 3) {
            const items = [0, 1, 2, 3, 4].map((j) => `${plain} item ${j}`);
            const r = await call(server, agent, 'POST', '/v1/transit/encrypt/orders', {
              batch_input: items.map((p) => ({ plaintext: b64(p) })),
            });
            if (r.status !== 200) continue;
            answered++;
            const results = r.json.data!.batch_results as { ciphertext: string }[];
            results.forEach((x, j) => received.push({ ct: x.ciphertext, plain: items[j]! }));
          } else {
            const r = await call(server, agent, 'POST', '/v1/transit/encrypt/orders', {
              plaintext: b64(plain),
            });
            if (r.status !== 200) continue;
            answered++;
            received.push({ ct: r.json.data!.ciphertext as string, plain });
          }
        } catch {
          return; // the connection died with the server
        }
      }
    };
    const clients = Array.from({ length: 16 }, (_, id) => client(id));
    while (received.length < 300) await new Promise((r) => setTimeout(r, 20));
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGKILL');
    killed = true;
    await exited;
    await Promise.all(clients);
    agent.destroy();
    const answeredBeforeKill = answered;
    const snapshot = received.slice();
    console.log(`killed after ${answeredBeforeKill} answered requests, ${snapshot.length} ciphertexts`);

    server = await start(dir);
    agent = new Agent({ keepAlive: true, maxSockets: 4 });
    try {
      for (let at = 0; at < snapshot.length; at += 200) {
        const chunk = snapshot.slice(at, at + 200);
        const r = await call(server, agent, 'POST', '/v1/transit/decrypt/orders', {
          batch_input: chunk.map((c) => ({ ciphertext: c.ct })),
        });
        expect(r.status).toBe(200);
        const plains = (r.json.data!.batch_results as { plaintext: string }[]).map((x) =>
          Buffer.from(x.plaintext, 'base64').toString(),
        );
        expect(plains).toEqual(chunk.map((c) => c.plain));
      }
      const verify = await call(server, agent, 'GET', '/v1/sys/audit/verify');
      expect(verify.status).toBe(200);
      expect(verify.json.data!.ok).toBe(true);
      expect(verify.json.data!.problems).toEqual([]);
      expect(verify.json.data!.entries as number).toBeGreaterThanOrEqual(answeredBeforeKill);
    } finally {
      agent.destroy();
      const gone = new Promise((r) => server.child.once('exit', r));
      server.child.kill('SIGTERM');
      await gone;
    }
  }, 120_000);
});
