/** `enseal serve --dev` as `npm start` runs it: prints what a user needs, serves HTTPS, restarts on the same data. */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/cli.js';
import { startServe, stopServe } from '../helpers/serve-process.js';
import { tempDir } from '../kms/helpers.js';

async function start(dataDir: string): Promise<{ output: () => string; stop: () => Promise<number | null> }> {
  const server = await startServe(['--dev', '--data-dir', dataDir]);
  return { output: server.output, stop: () => stopServe(server) };
}

function encrypt(url: string, ca: Buffer, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL('/v1/transit/encrypt/seeds', url),
      { method: 'POST', ca, headers: { 'x-vault-token': token } },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += String(d)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ plaintext: Buffer.from('hello').toString('base64') }));
  });
}

describe('enseal serve --dev', () => {
  it('prints the URL, CA, root token and a curl line; serves; drains on SIGTERM; a restart reuses the data', async () => {
    buildOnce();
    const dir = tempDir();
    const first = await start(dir);
    const out = first.output();
    expect(out).toMatch(/WARNING: DEV MODE/);
    const url = /listening on (https:\/\/\S+)/.exec(out)![1]!;
    const ca = readFileSync(/Development CA \(trust it to connect\): (\S+)/.exec(out)![1]!);
    const token = /Root token: (\S+)/.exec(out)![1]!;
    expect(out).toContain('curl --cacert');
    const r = await encrypt(url, ca, token);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).data.ciphertext).toMatch(/^vault:v1:/);
    expect(await first.stop()).toBe(0);
    expect(first.output()).toContain('shutting down');

    const second = await start(dir);
    expect(second.output()).toContain(`Root token: ${token}`);
    const url2 = /listening on (https:\/\/\S+)/.exec(second.output())![1]!;
    expect((await encrypt(url2, ca, token)).status).toBe(200);
    expect(await second.stop()).toBe(0);
  });
});
