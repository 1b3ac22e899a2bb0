/**
 * Our TLS as outside scanners see it: testssl.sh and sslscan (Debian packages) against `enseal serve`.
 * Modern (default) offers TLS 1.3 only; intermediate adds TLS 1.2 with ECDHE key exchange and AEAD suites
 * only; HSTS is present; testssl.sh reports nothing above LOW.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAsync, tool } from '../helpers/peers.js';
import { tempDir } from '../kms/helpers.js';
import { devServer } from './helpers.js';

const testssl = tool('testssl', ['--version'], 'apt-get install testssl.sh');
const sslscan = tool('sslscan', ['--version'], 'apt-get install sslscan');

type Ctx = Awaited<ReturnType<typeof devServer>>;
const servers: Partial<Record<'modern' | 'intermediate', Ctx>> = {};

beforeAll(async () => {
  if (!testssl.available && !sslscan.available) return;
  servers.modern = await devServer();
  servers.intermediate = await devServer({ tlsProfile: 'intermediate' });
});
afterAll(async () => {
  await servers.modern?.server.close();
  await servers.intermediate?.server.close();
});

function hostPort(ctx: Ctx): string {
  const u = new URL(ctx.server.url);
  return `${u.hostname}:${u.port}`;
}

async function sslscanProtocols(ctx: Ctx): Promise<{ protocols: Record<string, string>; ciphers: string[] }> {
  const out = (await runAsync('sslscan', ['--no-colour', hostPort(ctx)])).toString();
  const protocols: Record<string, string> = {};
  for (const m of out.matchAll(/^(SSLv2|SSLv3|TLSv1\.[0-3])\s+(enabled|disabled)/gm))
    protocols[m[1]!] = m[2]!;
  const ciphers = [...out.matchAll(/^(?:Preferred|Accepted)\s+(TLSv1\.[0-3])\s+\d+ bits\s+(\S+)/gm)].map(
    (m) => `${m[1]} ${m[2]}`,
  );
  return { protocols, ciphers };
}

async function testsslFindings(ctx: Ctx): Promise<{ id: string; severity: string; finding: string }[]> {
  const json = join(tempDir(), 'testssl.json');
  await runAsync('testssl', [
    '--quiet',
    '--color',
    '0',
    '--warnings',
    'off',
    '--jsonfile',
    json,
    '--add-ca',
    ctx.server.caFile!,
    '-p',
    '-s',
    '-f',
    '-h',
    '-U',
    `https://${hostPort(ctx)}`,
  ]).catch(() => undefined); // testssl.sh exits non-zero on findings; the JSON file is what we judge
  return JSON.parse(readFileSync(json, 'utf8')) as { id: string; severity: string; finding: string }[];
}

const ABOVE_LOW = new Set(['MEDIUM', 'HIGH', 'CRITICAL']);

describe('TLS as scanners see it', () => {
  it.skipIf(!sslscan.available)('sslscan: modern offers TLS 1.3 only', async () => {
    const { protocols, ciphers } = await sslscanProtocols(servers.modern!);
    expect(protocols).toEqual({
      SSLv2: 'disabled',
      SSLv3: 'disabled',
      'TLSv1.0': 'disabled',
      'TLSv1.1': 'disabled',
      'TLSv1.2': 'disabled',
      'TLSv1.3': 'enabled',
    });
    expect(ciphers.every((c) => c.startsWith('TLSv1.3 '))).toBe(true);
  });

  it.skipIf(!sslscan.available)(
    'sslscan: intermediate adds TLS 1.2 with ECDHE AEAD suites only',
    async () => {
      const { protocols, ciphers } = await sslscanProtocols(servers.intermediate!);
      expect(protocols['TLSv1.2']).toBe('enabled');
      expect(protocols['TLSv1.1']).toBe('disabled');
      const tls12 = ciphers.filter((c) => c.startsWith('TLSv1.2 ')).map((c) => c.slice(8));
      expect(tls12.length).toBeGreaterThan(0);
      for (const c of tls12)
        expect(c).toMatch(/^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    },
  );

  it.skipIf(!testssl.available).each(['modern', 'intermediate'] as const)(
    'testssl.sh (%s): HSTS present, nothing above LOW',
    async (profile) => {
      const findings = await testsslFindings(servers[profile]!);
      expect(findings.find((f) => f.id === 'HSTS_time')?.severity).toBe('OK');
      expect(findings.find((f) => f.id === 'HSTS_subdomains')?.severity).toBe('OK');
      const bad = findings.filter((f) => ABOVE_LOW.has(f.severity));
      expect(bad).toEqual([]);
      // The scan really ran: protocol and vulnerability checks are in the report.
      expect(findings.some((f) => f.id === 'TLS1_3')).toBe(true);
      expect(findings.some((f) => f.id === 'heartbleed')).toBe(true);
    },
    120_000,
  );
});
