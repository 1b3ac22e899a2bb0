/**
 * The proof for the nginx generator: its modern and intermediate configs, served by the real nginx with
 * certificates from the local CA, grade A+ in enseal's TLS auditor (SSL Labs rating guide 2009r). The same
 * harness serving a deliberately weak block grades lower, so the grade is not a constant.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditTls } from '../../src/tls/audit/audit.js';
import { initLocalCa, issueCertificate, saveIssued } from '../../src/tls/local-ca.js';
import { generateNginxConfig, type NginxConfigOptions } from '../../src/tls/nginx-config.js';
import { nginxPeer, startNginx, weakHttpBlock, type RunningNginx } from '../helpers/nginx.js';

const nginx = nginxPeer();
const running: RunningNginx[] = [];
let dir: string;
let caPem: string;
let ecdsa: { cert: string; key: string };
let rsa: { cert: string; key: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'enseal-nginx-grade-'));
  const { ca, files } = await initLocalCa(join(dir, 'ca'), { permit: ['localhost', '127.0.0.1/32'] });
  caPem = readFileSync(files.cert, 'utf8');
  ecdsa = { cert: join(dir, 'ec.pem'), key: join(dir, 'ec-key.pem') };
  rsa = { cert: join(dir, 'rsa.pem'), key: join(dir, 'rsa-key.pem') };
  await saveIssued(await issueCertificate(ca, { names: ['localhost', '127.0.0.1'] }), ecdsa);
  await saveIssued(
    await issueCertificate(ca, { names: ['localhost', '127.0.0.1'], keyType: 'rsa-2048' }),
    rsa,
  );
});

afterAll(async () => {
  await Promise.all(running.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function serveGenerated(
  profile: NginxConfigOptions['profile'],
  files: { cert: string; key: string },
): Promise<RunningNginx> {
  const n = await startNginx({
    files: { 'index.html': 'hello\n' },
    http: ({ httpsPort, httpPort, dir: root }) =>
      generateNginxConfig({
        profile,
        nginxVersion: '1.22.1',
        domains: ['localhost'],
        certificate: files.cert,
        certificateKey: files.key,
        addresses: ['127.0.0.1'],
        httpsPort,
        httpPort,
        root,
      }),
  });
  running.push(n);
  return n;
}

describe.skipIf(!nginx.available)('generated nginx configs in the auditor', () => {
  for (const [profile, key] of [
    ['modern', 'ecdsa'],
    ['intermediate', 'ecdsa'],
    ['intermediate', 'rsa'],
  ] as const) {
    it(`${profile} with an ${key.toUpperCase()} certificate grades A+`, async () => {
      const n = await serveGenerated(profile, key === 'ecdsa' ? ecdsa : rsa);
      const report = await auditTls(`127.0.0.1:${n.httpsPort}`, {
        serverName: 'localhost',
        extraCa: [caPem],
        httpPort: n.httpPort,
        timeoutMs: 5000,
      });
      const summary = {
        grade: report.rating.grade,
        caps: report.rating.caps,
        warnings: report.rating.warnings,
        protocols: report.protocols,
      };
      expect(summary).toMatchObject({ grade: 'A+', caps: [] });
      expect(report.protocols['TLSv1.3']).toBe(true);
      expect(report.protocols['TLSv1.2']).toBe(profile === 'intermediate');
      expect(report.protocols['TLSv1.1']).toBe(false);
      expect(report.forwardSecrecy).toBe('all');
      expect(report.aead).toBe('all');
      await n.stop();
    });
  }

  it('a weak block on the same harness does not grade A+ (the grade can fail)', async () => {
    const n = await startNginx({ http: weakHttpBlock(rsa) });
    running.push(n);
    const report = await auditTls(`127.0.0.1:${n.httpsPort}`, {
      serverName: 'localhost',
      extraCa: [caPem],
      noHttp: true,
      timeoutMs: 5000,
    });
    expect(report.protocols['TLSv1.0']).toBe(true);
    expect(['A+', 'A', 'A-']).not.toContain(report.rating.grade);
    await n.stop();
  });
});
