/**
 * The ACME pieces that need no ACME server: ARI certificate IDs (the RFC 9773 example) and windows, the
 * renewal decision, expiry warnings and metrics, the tls-alpn-01 certificate, name checks, atomic writes, and
 * property tests: random and mutated server responses give typed errors, never a crash or a hang.
 */
import { createServer as createHttpsServer, type Server } from 'node:https';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnsealError } from '../../src/crypto/index.js';
import {
  AcmeClient,
  AcmeProblemError,
  ariCertificateId,
  certificateInfo,
  dns01RecordName,
  dns01TxtValue,
  ensureDevCertificates,
  expiryMetrics,
  expiryWarning,
  http01Webroot,
  identifiersFor,
  parseAuthorization,
  parseChallenge,
  parseDirectory,
  parseOrder,
  parseProblem,
  parseRenewalInfo,
  parseRetryAfter,
  renewalDecision,
  renewIfDue,
  sniName,
  tlsAlpn01Certificate,
  writeCertificateFiles,
  type CertificateInfo,
} from '../../src/tls/index.js';
import { tlsFixtures } from '../helpers/tls-certs.js';
import { tempDir } from '../kms/helpers.js';

const DAY = 86_400_000;

function info(notBefore: string, notAfter: string, extra: Partial<CertificateInfo> = {}): CertificateInfo {
  return {
    subject: 'CN=x',
    issuer: 'CN=ca',
    serialNumber: '01',
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    dnsNames: ['example.com'],
    ipAddresses: [],
    ...extra,
  };
}

describe('ARI (RFC 9773)', () => {
  it('computes the certificate ID of the RFC example', () => {
    const aki = '69885b6b87464041e1b37b847ba0ae2cde01c8d4';
    // @peculiar/x509 prints the serial without the sign byte; the ID must put it back.
    expect(ariCertificateId({ authorityKeyId: aki, serialNumber: '87654321' })).toBe(
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
    );
    expect(ariCertificateId({ authorityKeyId: aki, serialNumber: '0087654321' })).toBe(
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
    );
    expect(ariCertificateId({ authorityKeyId: aki, serialNumber: '7f' }).split('.')[1]).toBe('fw');
    expect(() => ariCertificateId({ serialNumber: '01' })).toThrow(EnsealError);
  });

  it('renews at a random point inside the suggested window, at once when the window has passed', () => {
    const cert = info('2026-01-01T00:00:00Z', '2026-04-01T00:00:00Z');
    const ari = { start: new Date('2026-02-10T00:00:00Z'), end: new Date('2026-02-12T00:00:00Z') };
    const early = renewalDecision(cert, { ari, random: () => 0, now: new Date('2026-02-09T00:00:00Z') });
    expect(early).toMatchObject({ due: false, reason: 'ari' });
    expect(early.at.toISOString()).toBe('2026-02-10T00:00:00.000Z');
    const mid = renewalDecision(cert, { ari, random: () => 0.5, now: new Date('2026-02-10T12:00:00Z') });
    expect(mid.at.toISOString()).toBe('2026-02-11T00:00:00.000Z');
    expect(mid.due).toBe(false);
    expect(renewalDecision(cert, { ari, random: () => 0.5, now: new Date('2026-02-11T00:00:01Z') }).due).toBe(
      true,
    );
    // The window overrides the lifetime rule in both directions: here it lies before two thirds.
    expect(renewalDecision(cert, { now: new Date('2026-02-20T00:00:00Z') }).due).toBe(false);
    expect(renewalDecision(cert, { ari, now: new Date('2026-02-20T00:00:00Z') }).due).toBe(true);
  });

  it('falls back to two thirds of the lifetime, and renews at once when missing, forced, or for new names', () => {
    const cert = info('2026-01-01T00:00:00Z', '2026-03-31T00:00:00Z'); // 89 days
    const d = renewalDecision(cert, { now: new Date('2026-01-02T00:00:00Z') });
    expect(d).toMatchObject({ due: false, reason: 'lifetime' });
    expect(d.at.getTime()).toBe(Date.parse('2026-01-01T00:00:00Z') + Math.floor((89 * DAY * 2) / 3));
    expect(renewalDecision(cert, { now: new Date(d.at.getTime() + 1) }).due).toBe(true);
    expect(renewalDecision(undefined).reason).toBe('missing');
    expect(renewalDecision(cert, { force: true }).reason).toBe('forced');
    expect(
      renewalDecision(cert, { domains: ['other.example.com'], now: new Date('2026-01-02Z') }),
    ).toMatchObject({
      due: true,
      reason: 'names',
    });
    expect(() => renewalDecision(cert, { fraction: 0 })).toThrow(EnsealError);
    expect(() => renewalDecision(cert, { fraction: 1.5 })).toThrow(EnsealError);
  });

  describe('against a server that offers renewalInfo', () => {
    let server: Server;
    let base: string;
    let ca: string;
    const asked: string[] = [];
    let window: { start: string; end: string } | 'broken' = {
      start: '2099-01-01T00:00:00Z',
      end: '2099-01-02T00:00:00Z',
    };

    beforeAll(async () => {
      const tls = await ensureDevCertificates(tempDir());
      ca = readFileSync(tls.caCert, 'utf8');
      server = createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (req, res) => {
        if (req.url === '/dir') {
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              newNonce: `${base}/nonce`,
              newAccount: `${base}/acct`,
              newOrder: `${base}/order`,
              renewalInfo: `${base}/renewal-info`,
            }),
          );
          return;
        }
        if (req.url?.startsWith('/renewal-info/')) {
          asked.push(req.url.slice('/renewal-info/'.length));
          if (window === 'broken') {
            res.writeHead(500, { 'content-type': 'application/problem+json' });
            res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'down' }));
            return;
          }
          res.setHeader('content-type', 'application/json');
          res.setHeader('retry-after', '21600');
          res.end(JSON.stringify({ suggestedWindow: window }));
          return;
        }
        res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(() => server.close());

    async function renew() {
      const f = await tlsFixtures();
      const dir = tempDir();
      const files = { cert: join(dir, 'c.pem'), key: join(dir, 'k.pem') };
      await writeCertificateFiles(
        files,
        readFileSync(f.goodEcdsa.cert, 'utf8'),
        readFileSync(f.goodEcdsa.key, 'utf8'),
      );
      const key = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ])) as CryptoKeyPair;
      const client = new AcmeClient({ directoryUrl: `${base}/dir`, accountKey: key, ca });
      const solver = http01Webroot(dir);
      const result = await renewIfDue({ client, domains: ['localhost'], solver, files });
      return { result, expectedId: ariCertificateId(certificateInfo(readFileSync(files.cert, 'utf8'))) };
    }

    it('asks for the window with the certificate ID and follows it', async () => {
      const { result, expectedId } = await renew();
      expect(asked.at(-1)).toBe(expectedId);
      expect(result).toMatchObject({ renewed: false, ari: true, decision: { reason: 'ari', due: false } });
      expect(result.decision.at.getUTCFullYear()).toBe(2099);
    });

    it('falls back to the lifetime rule when the renewal info request fails', async () => {
      window = 'broken';
      const { result } = await renew();
      expect(result).toMatchObject({ renewed: false, ari: false, decision: { reason: 'lifetime' } });
    });
  });
});

describe('expiry monitoring', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  it('warns under 14 days (or a third of a short lifetime) and when expired', () => {
    expect(expiryWarning(info('2026-03-01Z', '2026-06-30Z'), now)).toBeUndefined();
    expect(expiryWarning(info('2026-03-01Z', '2026-06-10Z'), now)).toMatch(/expires in 9\.0 days/);
    expect(expiryWarning(info('2026-03-01Z', '2026-05-30Z'), now)).toMatch(/expired/);
    // A 6-day certificate with 3 days left is fine; with 1 day left it is not.
    expect(expiryWarning(info('2026-05-29Z', '2026-06-04Z'), now)).toBeUndefined();
    expect(expiryWarning(info('2026-05-27Z', '2026-06-02Z'), now)).toMatch(/expires in 1\.0 days/);
  });

  it('formats Prometheus gauges', () => {
    const text = expiryMetrics(info('2026-03-01Z', '2026-06-11Z'), now);
    expect(text).toContain('# TYPE enseal_tls_certificate_not_after_seconds gauge');
    expect(text).toContain(`enseal_tls_certificate_not_after_seconds ${Date.parse('2026-06-11Z') / 1000}`);
    expect(text).toContain(`enseal_tls_certificate_expires_in_seconds ${10 * 86400}`);
  });
});

describe('challenges and names', () => {
  it('builds the tls-alpn-01 certificate of RFC 8737', async () => {
    const { cert } = await tlsAlpn01Certificate('a.example.com', 'token.thumbprint');
    const parsed = new x509.X509Certificate(cert);
    const ext = parsed.extensions.find((e) => e.type === '1.3.6.1.5.5.7.1.31')!;
    expect(ext.critical).toBe(true);
    const digest = new Uint8Array(
      await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode('token.thumbprint')),
    );
    expect(Buffer.from(ext.value).toString('hex')).toBe('0420' + Buffer.from(digest).toString('hex'));
    expect(certificateInfo(cert).dnsNames).toEqual(['a.example.com']);
  });

  it('names IP identifiers by their reverse-DNS name for tls-alpn-01 SNI (RFC 8738 §6)', () => {
    expect(sniName('192.0.2.1')).toBe('1.2.0.192.in-addr.arpa');
    expect(sniName('2001:db8::1')).toBe(
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
    expect(sniName('Example.COM')).toBe('example.com');
  });

  it('computes dns-01 record names and values (RFC 8555 §8.4)', () => {
    expect(dns01RecordName('*.example.com')).toBe('_acme-challenge.example.com');
    expect(dns01TxtValue('abc.def')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('checks names before sending them', () => {
    expect(identifiersFor(['Example.COM', '*.example.com', '192.0.2.1'])).toEqual([
      { type: 'dns', value: 'example.com' },
      { type: 'dns', value: '*.example.com' },
      { type: 'ip', value: '192.0.2.1' },
    ]);
    for (const bad of [[], ['-bad.example'], ['a..b'], ['a b'], ['x'.repeat(300)], ['*.*.example.com']])
      expect(() => identifiersFor(bad)).toThrow(EnsealError);
  });

  it('refuses a token that would escape the webroot', async () => {
    const solver = http01Webroot(tempDir());
    await expect(solver.present('a', '../../etc/passwd', 'x')).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('writes certificate files atomically, key 0600, nothing left behind', async () => {
    const f = await tlsFixtures();
    const dir = tempDir();
    const files = { cert: join(dir, 'c.pem'), key: join(dir, 'k.pem') };
    await writeCertificateFiles(
      files,
      readFileSync(f.goodEcdsa.cert, 'utf8'),
      readFileSync(f.goodEcdsa.key, 'utf8'),
    );
    expect(statSync(files.key).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(['c.pem', 'k.pem']);
    await expect(
      writeCertificateFiles({ cert: join(dir, 'no', 'c'), key: join(dir, 'no', 'k') }, 'x', 'y'),
    ).rejects.toMatchObject({
      code: 'ERR_IO',
    });
  });
});

describe('server responses are untrusted input (property tests)', () => {
  const parsers = [
    parseDirectory,
    parseOrder,
    parseAuthorization,
    parseChallenge,
    parseRenewalInfo,
    (v: unknown) => parseProblem(v),
  ];
  const valid = [
    {
      newNonce: 'https://a/n',
      newAccount: 'https://a/a',
      newOrder: 'https://a/o',
      renewalInfo: 'https://a/r',
      meta: { profiles: { classic: 'x' } },
    },
    {
      status: 'pending',
      authorizations: ['https://a/z/1'],
      finalize: 'https://a/f',
      error: { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'no' },
    },
    {
      identifier: { type: 'dns', value: 'a.example' },
      status: 'pending',
      challenges: [{ type: 'http-01', url: 'https://a/c', token: 'abc', status: 'pending' }],
    },
    { type: 'dns-01', url: 'https://a/c', token: 'abc_-', status: 'valid' },
    { suggestedWindow: { start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' } },
    {
      type: 'urn:ietf:params:acme:error:badNonce',
      detail: 'x',
      subproblems: [{ identifier: { type: 'dns', value: 'a' }, detail: 'y' }],
    },
  ];

  /** A value with one random part replaced. */
  const mutated = fc
    .tuple(
      fc.constantFrom(...valid),
      fc.array(fc.string({ maxLength: 12 }), { minLength: 1, maxLength: 3 }),
      fc.anything(),
    )
    .map(([base, path, replacement]) => {
      const copy = structuredClone(base) as Record<string, unknown>;
      // Own properties only: fast-check likes keys such as "__proto__", and following one would write into
      // Object.prototype and break every later test in this process.
      const set = (target: Record<string, unknown>, key: string) =>
        Object.defineProperty(target, key, {
          value: replacement,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      let node: Record<string, unknown> = copy;
      for (const key of path.slice(0, -1)) {
        const next = Object.hasOwn(node, key) ? node[key] : undefined;
        if (typeof next !== 'object' || next === null) break;
        node = next as Record<string, unknown>;
      }
      set(node, path.at(-1)!);
      const keys = Object.keys(node);
      if (keys.length > 0) set(node, keys[path.length % keys.length]!);
      return copy;
    });

  it('every parser returns or throws an EnsealError, for random and mutated JSON', () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype);
    fc.assert(
      fc.property(
        fc.oneof(fc.anything(), fc.jsonValue(), mutated),
        fc.integer({ min: 0, max: parsers.length - 1 }),
        (value, i) => {
          try {
            parsers[i]!(value);
          } catch (err) {
            if (!(err instanceof EnsealError)) throw err;
          }
        },
      ),
      { numRuns: 2000 },
    );
    expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(prototypeBefore); // nothing polluted
  });

  it('problem documents keep their type and detail, without control characters', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (type, detail) => {
        const p = parseProblem({ type: `urn:ietf:params:acme:error:${type}`, detail });
        expect(p).toBeInstanceOf(AcmeProblemError);
        expect(p.code).toBe('ERR_ACME_FAILED');
        // eslint-disable-next-line no-control-regex
        expect(/[\u0000-\u001f]/.test(p.message)).toBe(false);
      }),
    );
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('2015-10-21T07:27:00Z'))).toBe(60_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  describe('through the client, from a live HTTPS server', () => {
    let server: Server;
    let url: string;
    let ca: string;
    let next: { status: number; type: string; body: string } = {
      status: 200,
      type: 'application/json',
      body: '{}',
    };
    beforeAll(async () => {
      const tls = await ensureDevCertificates(tempDir());
      ca = readFileSync(tls.caCert, 'utf8');
      server = createHttpsServer(
        { cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
        (_req, res) => {
          res.writeHead(next.status, { 'content-type': next.type });
          res.end(next.body);
        },
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      url = `https://127.0.0.1:${(server.address() as { port: number }).port}/dir`;
    });
    afterAll(() => server.close());

    it('the directory fetch yields a directory or a typed error for any response', async () => {
      const key = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ])) as CryptoKeyPair;
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(200, 400, 404, 500, 503),
          fc.constantFrom('application/json', 'application/problem+json', 'text/html'),
          fc.oneof(
            fc.jsonValue().map((v) => JSON.stringify(v)),
            mutated.map((v) => JSON.stringify(v)),
            fc.string(),
          ),
          async (status, type, body) => {
            next = { status, type, body };
            const client = new AcmeClient({ directoryUrl: url, accountKey: key, ca, timeoutMs: 2000 });
            try {
              await client.directory();
            } catch (err) {
              if (!(err instanceof EnsealError)) throw err;
            }
          },
        ),
        { numRuns: 60 },
      );
    });

    it('refuses a response larger than 1 MiB', async () => {
      next = { status: 200, type: 'application/json', body: `{"x":"${'a'.repeat(2 << 20)}"}` };
      const key = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ])) as CryptoKeyPair;
      const client = new AcmeClient({ directoryUrl: url, accountKey: key, ca });
      await expect(client.directory()).rejects.toMatchObject({ code: 'ERR_MALFORMED' });
    });

    it('bounds polling: a Retry-After beyond the poll timeout ends the wait with a typed error', async () => {
      const key = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ])) as CryptoKeyPair;
      const client = new AcmeClient({ directoryUrl: url, accountKey: key, ca, pollTimeoutMs: 1000 });
      let calls = 0;
      const waited = client.poll(
        'order',
        async () => (calls++, { value: 'processing', retryAfterMs: 3_600_000 }),
        (v) => v === 'valid',
      );
      await expect(waited).rejects.toMatchObject({
        code: 'ERR_ACME_FAILED',
        message: expect.stringContaining('did not complete'),
      });
      expect(calls).toBe(1);
      // Short Retry-After values are followed until the value is final.
      let n = 0;
      const value = await client.poll(
        'order',
        async () => ({ value: ++n, retryAfterMs: 1 }),
        (v) => v >= 3,
      );
      expect(value).toBe(3);
    });
  });
});
