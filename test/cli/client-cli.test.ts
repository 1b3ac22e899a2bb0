/** The CLI over a running server, as an operator or a script uses it (env vars, --json, exit statuses). */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EnsealClient } from '../../src/client/index.js';
import { FieldEncryption, transitDataKeys } from '../../src/fields/index.js';
import { parseRemoteValue } from '../../src/fields/remote-value.js';
import { KeyEncryptionKey, openKeyset, type SealedKeyset } from '../../src/keys/index.js';
import { tempDir } from '../kms/helpers.js';
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
function cli(
  args: string[],
  input = '',
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: {
        ...process.env,
        ENSEAL_ADDR: ctx.server.url,
        ENSEAL_TOKEN: ctx.token,
        ENSEAL_CACERT: ctx.server.caFile!,
        ...env,
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

describe('enseal db reencrypt with keys from the server', () => {
  it('moves keyset values to server data keys, then to the server key version after a rotation', async () => {
    const schema = { people: { rowId: 'id', columns: { ssn: { type: 'string' as const } } } };
    const dir = tempDir();
    const kek = (await cli(['keyset', 'kek'])).stdout.trim();
    const keysetFile = join(dir, 'fields.keyset');
    expect(
      (await cli(['keyset', 'create', '--purpose', 'encrypt', '-o', keysetFile], '', { ENSEAL_KEK: kek }))
        .status,
    ).toBe(0);
    const keyset = openKeyset(
      JSON.parse(readFileSync(keysetFile, 'utf8')) as SealedKeyset,
      KeyEncryptionKey.fromText(kek),
    );
    const local = new FieldEncryption({ keyset, schema });
    const dbPath = join(dir, 'app.db');
    const db = new Database(dbPath);
    db.exec('CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT)');
    const insert = db.prepare('INSERT INTO people VALUES (?, ?)');
    for (let id = 1; id <= 120; id++) insert.run(id, local.encryptValue('people', 'ssn', `ssn-${id}`, id));
    expect((await cli(['keys', 'create', 'people-fields'])).status).toBe(0);
    const job = ['db', 'reencrypt', '--database', `sqlite:${dbPath}`, '--table', 'people', '--column', 'ssn'];
    const versions = () =>
      (db.prepare('SELECT ssn FROM people').all() as { ssn: string }[]).map(
        (r) => parseRemoteValue(r.ssn).keyVersion,
      );

    // Keyset values (ens1.) move to data keys of the server key (ensr1.), which only the server can unwrap.
    const moved = await cli(
      [...job, '--keyset', keysetFile, '--transit-key', 'people-fields', '--json'],
      '',
      { ENSEAL_KEK: kek },
    );
    expect(moved.status).toBe(0);
    expect(JSON.parse(moved.stdout)).toMatchObject({ scanned: 120, rewritten: 120 });
    expect(new Set(versions())).toEqual(new Set([1]));

    // After a rotation on the server, the same job with only the server key moves every value to version 2.
    expect((await cli(['keys', 'rotate', 'people-fields'])).status).toBe(0);
    const rotated = await cli([...job, '--transit-key', 'people-fields', '--json']);
    expect(rotated.status).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ scanned: 120, rewritten: 120 });
    expect(new Set(versions())).toEqual(new Set([2]));

    const client = new EnsealClient({
      address: ctx.server.url,
      token: ctx.token,
      caCert: readFileSync(ctx.server.caFile!),
    });
    const dataKeys = transitDataKeys(client, 'people-fields', { keepWarm: false });
    const reader = new FieldEncryption({ dataKeys, schema });
    const rows = db.prepare('SELECT id, ssn FROM people ORDER BY id').all() as { id: number; ssn: string }[];
    expect(await reader.decryptRowsAsync('people', rows)).toEqual(
      rows.map((r) => ({ id: r.id, ssn: `ssn-${r.id}` })),
    );
    dataKeys.close();
    client.close();
    db.close();

    // Neither a keyset nor a server key: a usage error before anything is touched.
    const neither = await cli(job);
    expect(neither.status).toBe(2);
    expect(neither.stderr).toContain('--transit-key');
  });
});
