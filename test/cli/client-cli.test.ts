/** The CLI over a running server, as an operator or a script uses it (env vars, --json, exit statuses). */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, buildOnce } from '../helpers/cli.js';
import { devServer } from '../server/helpers.js';

let ctx: Awaited<ReturnType<typeof devServer>>;
beforeAll(async () => {
  buildOnce();
  ctx = await devServer();
});
afterAll(async () => ctx.server.close());

/** Runs the CLI without blocking this process's event loop (the server lives here). */
function cli(args: string[], input = ''): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: {
        ...process.env,
        ENSEAL_ADDR: ctx.server.url,
        ENSEAL_TOKEN: ctx.token,
        ENSEAL_CACERT: ctx.server.caFile!,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('enseal CLI against a server', () => {
  it('keys create/list/show, transit encrypt | decrypt, sign/verify, audit verify, operator status', async () => {
    const created = await cli(['keys', 'create', 'cli-key', '--json']);
    expect(created.status).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'cli-key', latest_version: 1 });
    expect(JSON.parse((await cli(['keys', 'list', '--json'])).stdout).keys).toContain('cli-key');
    expect(JSON.parse((await cli(['keys', 'show', 'cli-key', '--json'])).stdout).latest_version).toBe(1);
    const enc = await cli(['transit', 'encrypt', 'cli-key'], 'card 4111');
    expect(enc.status).toBe(0);
    const ct = enc.stdout.trim();
    expect(ct).toMatch(/^vault:v1:/);
    const dec = await cli(['transit', 'decrypt', 'cli-key'], ct);
    expect(dec.stdout).toBe('card 4111');

    expect((await cli(['keys', 'create', 'cli-signer', '--type', 'ed25519'])).status).toBe(0);
    const sig = (await cli(['transit', 'sign', 'cli-signer'], 'contract')).stdout.trim();
    expect((await cli(['transit', 'verify', 'cli-signer', sig], 'contract')).status).toBe(0);
    const forged = await cli(['transit', 'verify', 'cli-signer', sig], 'contracT');
    expect(forged.status).toBe(3);

    expect(JSON.parse((await cli(['audit', 'verify', '--json'])).stdout).ok).toBe(true);
    expect(JSON.parse((await cli(['operator', 'status', '--json'])).stdout).sealed).toBe(false);
  });

  it('errors print one line and exit non-zero', async () => {
    const r = await cli(['transit', 'encrypt', 'no-such-key'], 'x');
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/^enseal: error: .*\(ERR_KEY_NOT_FOUND\)\n$/);
    const j = await cli(['keys', 'show', 'no-such-key', '--json']);
    expect(j.status).toBe(5);
    expect(JSON.parse(j.stderr).error.code).toBe('ERR_KEY_NOT_FOUND');
  });
});
