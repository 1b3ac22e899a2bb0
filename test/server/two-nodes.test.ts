/**
 * Two `enseal serve` processes on one PostgreSQL serve the same keys, and a rotation made on one is used by
 * the other within a second (its key cache lives one second).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/cli.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../kms/helpers.js';

type Node = ServeProcess;

const startNode = (storage: string, dataDir: string): Promise<Node> =>
  startServe(['--dev', '--storage', storage, '--data-dir', dataDir]);

let pg: TestPostgres | undefined;
const nodes: Node[] = [];
beforeAll(async () => {
  buildOnce();
  pg = await startPostgres();
});
afterAll(async () => {
  for (const n of nodes) n.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  await pg?.stop();
});

describe('two serve processes on one PostgreSQL', () => {
  it('serve the same keys; a rotation on one is used by the other within a second', async () => {
    if (!pg) return;
    const dirA = tempDir();
    const a = await startNode(pg.connectionString, dirA);
    nodes.push(a);
    const b = await startNode(pg.connectionString, tempDir());
    nodes.push(b);
    const token = readFileSync(join(dirA, 'dev-root-token'), 'utf8').trim();
    const ca = readFileSync(join(dirA, 'tls', 'dev-ca.pem'));
    const caB = readFileSync(join(/Development CA \(trust it to connect\): (\S+)/.exec(b.output())![1]!));
    const call = (node: Node, path: string, body: unknown) =>
      new Promise<{ status: number; body: { data: Record<string, unknown> } }>((resolve, reject) => {
        const req = request(
          new URL(path, node.url),
          { method: 'POST', ca: node === a ? ca : caB, headers: { 'x-vault-token': token } },
          (res) => {
            let text = '';
            res.on('data', (d) => (text += String(d)));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') }));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    const pt = Buffer.from('shared').toString('base64');
    expect((await call(a, '/v1/transit/keys/shared', {})).status).toBe(200);
    const fromB = await call(b, '/v1/transit/encrypt/shared', { plaintext: pt });
    expect(fromB.status).toBe(200);
    expect(
      (await call(a, '/v1/transit/decrypt/shared', { ciphertext: fromB.body.data.ciphertext })).body.data
        .plaintext,
    ).toBe(pt);

    expect((await call(a, '/v1/transit/keys/shared/rotate', {})).status).toBe(200);
    // Node B picks the rotation up from the shared store by itself (bounded polling; speed is not asserted here).
    let seen = '';
    for (let attempt = 0; attempt < 200 && !seen.startsWith('vault:v2:'); attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 50));
      seen = (await call(b, '/v1/transit/encrypt/shared', { plaintext: pt })).body.data.ciphertext as string;
    }
    expect(seen).toMatch(/^vault:v2:/);
    expect((await call(a, '/v1/transit/decrypt/shared', { ciphertext: seen })).body.data.plaintext).toBe(pt);
  });
});
