/**
 * `enseal e2ee witness` as a real process: the server submits its checkpoints and serves them with the
 * witness's cosignature; the witness refuses a rollback (409 with its size) and a split view (422), and keeps
 * its state across a restart.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../../src/crypto/index.js';
import {
  DirectoryLog,
  LogView,
  SignatureType,
  ed25519CosignatureVerifier,
  ed25519NoteSigner,
  formatAddCheckpointRequest,
  formatVerifierKey,
  noteVerifierFromKey,
  parseVerifierKey,
  signUserIdentity,
} from '../../src/e2ee/index.js';
import { CLI, buildOnce } from '../helpers/cli.js';
import { tempDir } from '../kms/helpers.js';
import { tlsFixtures } from '../helpers/tls-certs.js';
import { devServer } from '../server/helpers.js';
import { TestUser, requester } from '../server/e2ee-helpers.js';

const origin = 'witness-test.example/enseal-e2ee';
const children: ChildProcess[] = [];

async function startWitness(
  args: string[],
): Promise<{ child: ChildProcess; url: string; verifierKey: string }> {
  const child = spawn(
    process.execPath,
    [CLI, 'e2ee', 'witness', '--listen', '127.0.0.1:0', '--json', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('\n')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`witness did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const info = JSON.parse(out.split('\n')[0]!) as { url: string; verifier_key: string };
  return { child, url: info.url, verifierKey: info.verifier_key };
}

/**
 * A data directory whose log key exists (a first start creates it), and a witness configured with that key:
 * `name`'s key and state files in `dir`.
 */
async function logAndWitness(name: string, dir: string, extra: string[] = []) {
  const dataDir = tempDir();
  const first = await devServer({ dataDir, e2ee: { origin } });
  const logKey = (await requester(first.server)('GET', '/v1/e2ee/log/key')).body.verifier_key as string;
  await first.server.close();
  const file = name.replace(/\W/g, '-');
  const witness = await startWitness([
    ...['--name', name, '--key', join(dir, `${file}.key`), '--state', join(dir, `${file}.json`)],
    ...['--log', logKey, ...extra],
  ]);
  return { dataDir, logKey, witness };
}

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

beforeAll(() => buildOnce());
afterAll(async () => {
  for (const c of children) await stop(c);
});

describe('enseal e2ee witness', () => {
  it('has --help', () => {
    const r = spawnSync(process.execPath, [CLI, 'e2ee', 'witness', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('add-checkpoint');
    expect(r.stdout).toContain('--state <file>');
  });

  it('cosigns the server checkpoints, and the server serves them with the cosignature', async () => {
    const dir = tempDir();
    // First start: the log key is created; the witness is configured with it.
    const { dataDir, logKey, witness } = await logAndWitness('witness.example/w1', dir);
    expect(witness.verifierKey).toMatch(/^witness\.example\/w1\+[0-9a-f]{8}\+/);
    const ctx = await devServer({
      dataDir,
      e2ee: { origin, witnesses: [{ url: witness.url, verifier_key: witness.verifierKey }], quorum: 1 },
    });
    try {
      const call = requester(ctx.server);
      const key = await call('GET', '/v1/e2ee/log/key');
      expect(key.body).toMatchObject({ witnesses: [witness.verifierKey], quorum: 1 });
      const wkey = parseVerifierKey(witness.verifierKey);
      const view = new LogView({
        origin,
        logVerifiers: [noteVerifierFromKey(logKey)],
        witnesses: [ed25519CosignatureVerifier(wkey.name, wkey.publicKey)],
        quorum: 1,
      });
      const alice = new TestUser('alice');
      const enrolled = await alice.enrol(call, ctx.token, 'phone');
      expect(enrolled.status, enrolled.text).toBe(200);
      expect(view.update(enrolled.body.checkpoint).witnesses).toEqual(['witness.example/w1']);
      const bob = new TestUser('bob');
      const second = await bob.enrol(call, ctx.token, 'laptop');
      const proof = await call('GET', '/v1/e2ee/log/proof/consistency?from=3&to=6', { token: ctx.token });
      view.update(
        second.body.checkpoint,
        proof.body.proof.map((p: string) => new Uint8Array(Buffer.from(p, 'base64'))),
      );
      const served = await call('GET', '/v1/e2ee/log/checkpoint');
      expect(served.text).toContain('— witness.example/w1 ');
      expect(view.update(served.text).checkpoint.size).toBe(6);
      const state = JSON.parse(readFileSync(join(dir, 'witness-example-w1.json'), 'utf8'));
      expect(state.logs[origin].size).toBe(6);
    } finally {
      await ctx.server.close();
    }
  });

  it('reaches a witness behind a private CA only when its ca_file is configured', async () => {
    const tls = (await tlsFixtures()).goodEcdsa;
    const dir = tempDir();
    const { dataDir, witness } = await logAndWitness('witness.example/tls', dir, [
      ...['--tls-cert', tls.cert, '--tls-key', tls.key],
    ]);
    expect(witness.url).toMatch(/^https:\/\//);
    const url = witness.url.replace('127.0.0.1', tls.hostname);
    const witnessed = (caFile?: string) =>
      devServer({
        dataDir,
        e2ee: {
          origin,
          witnesses: [{ url, verifier_key: witness.verifierKey, ...(caFile ? { ca_file: caFile } : {}) }],
          quorum: 1,
          witness_timeout: 5,
        },
      });
    // Without the CA the certificate is not trusted: no cosignature, and the log says why.
    const untrusting = await witnessed();
    try {
      const r = await new TestUser('ann').enrol(requester(untrusting.server), untrusting.token, 'phone');
      expect(r.status, r.text).toBe(200);
      expect(r.body.checkpoint).not.toContain('— witness.example/tls ');
      expect(untrusting.logs()).toContain('witness witness.example/tls could not be reached');
    } finally {
      await untrusting.server.close();
    }
    const trusting = await witnessed(tls.caFile);
    try {
      const r = await new TestUser('ben').enrol(requester(trusting.server), trusting.token, 'laptop');
      expect(r.status, r.text).toBe(200);
      expect(r.body.checkpoint).toContain('— witness.example/tls ');
    } finally {
      await trusting.server.close();
    }
    await expect(witnessed(join(dir, 'missing.pem'))).rejects.toThrow(/ca_file.*cannot read/);
  });

  it('refuses a rollback with 409 and a split view with 422, and remembers across a restart', async () => {
    const logKey = generateSigningKeyPair('ed25519').privateKey;
    const signer = ed25519NoteSigner('split.example/log', logKey);
    const vkey = formatVerifierKey('split.example/log', SignatureType.ED25519, signer.publicKey);
    const dir = tempDir();
    const args = [
      '--name',
      'witness.example/w2',
      '--key',
      join(dir, 'k'),
      '--state',
      join(dir, 's.json'),
      '--log',
      vkey,
    ];
    let w = await startWitness(args);
    const honest = new DirectoryLog('split.example/log');
    const forked = new DirectoryLog('split.example/log');
    // Two logs that share a prefix and then differ: the forked one is what a split view would show.
    const id = generateSigningKeyPair('ed25519').privateKey;
    const e = (user: string) => ({
      kind: 'user-identity' as const,
      userId: user,
      time: 1,
      identity: signUserIdentity(user, id),
    });
    for (const u of ['a', 'b']) {
      honest.append(e(u));
      forked.append(e(u));
    }
    honest.append(e('c'));
    forked.append(e('mallory'));
    const post = (body: string) =>
      fetch(`${w.url}/add-checkpoint`, { method: 'POST', body }).then(async (r) => ({
        status: r.status,
        type: r.headers.get('content-type'),
        text: await r.text(),
      }));
    const submit = async (log: DirectoryLog, oldSize: number, proofLog = log) =>
      post(
        formatAddCheckpointRequest({
          oldSize,
          proof: oldSize === 0 ? [] : await proofLog.consistencyProof(oldSize, log.size),
          checkpoint: await log.checkpoint([signer]),
        }),
      );
    const ok = await submit(honest, 0);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toMatch(/^— witness\.example\/w2 /);
    // Rollback: the old size is not what the witness holds.
    const stale = await submit(honest, 0);
    expect(stale).toMatchObject({ status: 409, type: 'text/x.tlog.size', text: '3\n' });
    // Split view: same size, another root.
    const split = await submit(forked, 3);
    expect(split.status).toBe(422);
    // A restarted witness still holds size 3 and still refuses the fork.
    await stop(w.child);
    w = await startWitness(args);
    expect((await submit(forked, 0)).status).toBe(409);
    expect((await submit(forked, 3)).status).toBe(422);
    // Garbage and a checkpoint of an unknown log.
    expect((await post('junk')).status).toBe(400);
    const other = ed25519NoteSigner('other.example/log', logKey);
    const unknown = new DirectoryLog('other.example/log');
    const res = await post(
      formatAddCheckpointRequest({ oldSize: 0, proof: [], checkpoint: await unknown.checkpoint([other]) }),
    );
    expect(res.status).toBe(404);
  });
});
