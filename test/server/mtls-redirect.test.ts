/** Optional mTLS client-certificate auth, and the plain-HTTP listener that only redirects to HTTPS. */
import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { ensureDevCertificates, issueDevClientCertificate } from '../../src/tls/index.js';
import { tempDir } from '../kms/helpers.js';

let server: RunningServer;
let ca: Buffer;
let client: { cert: Buffer; key: Buffer };
let stranger: { cert: Buffer; key: Buffer };

beforeAll(async () => {
  const dataDir = tempDir();
  const tlsDir = join(dataDir, 'tls');
  await ensureDevCertificates(tlsDir);
  const issued = await issueDevClientCertificate(tlsDir, 'billing-svc');
  client = { cert: readFileSync(issued.cert), key: readFileSync(issued.key) };
  const otherDir = tempDir();
  await ensureDevCertificates(otherDir);
  const foreign = await issueDevClientCertificate(otherDir, 'billing-svc');
  stranger = { cert: readFileSync(foreign.cert), key: readFileSync(foreign.key) };
  server = await startServer({
    dev: true,
    dataDir,
    port: 0,
    logLevel: 'error',
    tlsClientCa: join(tlsDir, 'dev-ca.pem'),
    clientCertPolicies: { 'billing-svc': ['billing'] },
    redirectHttp: '127.0.0.1:0',
  });
  ca = readFileSync(server.caFile!);
});
afterAll(async () => server.close());

function call(
  path: string,
  body: unknown,
  auth: { token?: string; cert?: Buffer; key?: Buffer },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, server.url),
      {
        method: 'POST',
        ca,
        ...(auth.cert ? { cert: auth.cert, key: auth.key } : {}),
        headers: auth.token ? { 'x-vault-token': auth.token } : {},
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('mTLS client certificates', () => {
  it('a certificate from the client CA gets its mapped policies; others get nothing', async () => {
    const root = { token: server.rootToken! };
    expect(await call('/v1/transit/keys/bill', {}, root)).toBe(200);
    const policy = 'path "transit/encrypt/bill" { capabilities = ["update"] }';
    await new Promise<void>((resolve, reject) => {
      const req = request(
        new URL('/v1/sys/policies/acl/billing', server.url),
        { method: 'PUT', ca, headers: { 'x-vault-token': root.token } },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 204 ? resolve() : reject(new Error(String(res.statusCode))),
          );
        },
      );
      req.end(JSON.stringify({ policy }));
    });
    const pt = { plaintext: Buffer.from('invoice').toString('base64') };
    expect(await call('/v1/transit/encrypt/bill', pt, client)).toBe(200);
    expect(await call('/v1/transit/decrypt/bill', { ciphertext: 'vault:v1:AAAA' }, client)).toBe(403);
    expect(await call('/v1/transit/encrypt/bill', pt, stranger)).toBe(403);
    expect(await call('/v1/transit/encrypt/bill', pt, {})).toBe(403);
  });
});

describe('plain-HTTP redirect listener', () => {
  it('answers 308 to the HTTPS port and serves nothing itself', async () => {
    const { status, location } = await new Promise<{ status: number; location: string | undefined }>(
      (resolve, reject) => {
        httpGet(
          {
            host: '127.0.0.1',
            port: server.redirectPort,
            path: '/v1/sys/health',
            headers: { host: '127.0.0.1' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
          },
        ).on('error', reject);
      },
    );
    expect(status).toBe(308);
    expect(location).toBe(`https://127.0.0.1:${new URL(server.url).port}/v1/sys/health`);
  });
});
