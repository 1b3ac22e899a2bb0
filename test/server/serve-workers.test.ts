/**
 * `enseal serve --workers 2`: two server processes behind one port and one SQLite store both answer
 * requests at the same time, and the audit chain they share stays intact with one entry per request.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/cli.js';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.js';
import { tempDir } from '../kms/helpers.js';

let server: ServeProcess | undefined;
beforeAll(() => buildOnce());
afterAll(async () => {
  await stopServe(server);
});

function call(agent: Agent, s: ServeProcess, path: string, body?: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(path, s.url),
      {
        method: text === undefined ? 'GET' : 'POST',
        agent,
        ca: s.ca,
        headers: {
          'x-vault-token': s.token!,
          ...(text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}),
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const raw = Buffer.concat(parts).toString();
          if (res.statusCode !== 200) return reject(new Error(`${path}: ${res.statusCode} ${raw}`));
          resolve((JSON.parse(raw) as { data: Record<string, unknown> }).data);
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** CPU time (clock ticks) of each child process of `pid`, from /proc. */
function childrenCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  const children = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(children)) return out;
  for (const child of readFileSync(children, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)) {
    const fields = readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]!.split(' ');
    out.set(child, Number(fields[11]) + Number(fields[12]));
  }
  return out;
}

describe('serve --workers', () => {
  it('two worker processes serve concurrently and keep one intact audit chain', async () => {
    server = await startServe(['--dev', '--workers', '2', '--data-dir', tempDir()]);
    expect(server.output()).toContain('(2 worker processes)');
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    try {
      const v0 = (await call(agent, server, '/v1/sys/audit/verify')).entries as number;
      const v1 = (await call(agent, server, '/v1/sys/audit/verify')).entries as number;
      const verifyCost = v1 - v0;
      const before = childrenCpu(server.child.pid!);
      const REQUESTS = 400;
      const values = Array.from({ length: REQUESTS }, (_, i) => `value ${i}`);
      const cts = await Promise.all(
        values.map(async (v) => {
          const r = await call(agent, server!, '/v1/transit/encrypt/seeds', {
            plaintext: Buffer.from(v).toString('base64'),
          });
          return r.ciphertext as string;
        }),
      );
      const after = childrenCpu(server.child.pid!);
      if (before.size > 0) {
        expect(after.size).toBe(2);
        const busy = [...after].filter(([pid, ticks]) => ticks > (before.get(pid) ?? 0));
        expect(busy.length).toBe(2); // both workers did part of the work
      }
      const final = await call(agent, server, '/v1/sys/audit/verify');
      expect(final.ok).toBe(true);
      expect(final.problems).toEqual([]);
      expect((final.entries as number) - v1 - verifyCost).toBe(REQUESTS);
      // Every ciphertext opens, on whichever worker the request lands.
      const back = await call(agent, server, '/v1/transit/decrypt/seeds', {
        batch_input: cts.map((ciphertext) => ({ ciphertext })),
      });
      const plain = (back.batch_results as { plaintext: string }[]).map((r) =>
        Buffer.from(r.plaintext, 'base64').toString(),
      );
      expect(plain).toEqual(values);
    } finally {
      agent.destroy();
    }
    expect(await stopServe(server)).toBe(0);
  }, 90_000);

  it('refuses several workers outside --dev (each would need its own unseal)', async () => {
    await expect(startServe(['--workers', '2', '--data-dir', tempDir(), '--insecure-http'])).rejects.toThrow(
      /--workers above 1 needs --dev/,
    );
  }, 30_000);
});
