/**
 * The local CA: CA and leaf certificates checked with Node's X509Certificate and the openssl CLI, name
 * constraints enforced by a real verifier, sealed CA keys, and real TLS (server auth and mTLS) with issued
 * certificates.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { EnsealError } from '../../src/crypto/index.js';
import {
  caFilesIn,
  createCa,
  initLocalCa,
  issueCertificate,
  loadCa,
  openLocalCa,
  parsePermittedName,
  parseSanName,
  saveIssued,
  MAX_LEAF_DAYS,
  type LocalCa,
} from '../../src/tls/local-ca.js';
import { asyncCodeOf, codeOf } from '../helpers/errors.js';
import { run, tool } from '../helpers/peers.js';

const openssl = tool('openssl', ['version'], 'apt-get install openssl');
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'enseal-local-ca-'));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const fastArgon = { memoryKiB: 256, iterations: 1, parallelism: 1 };
const PERMIT = ['localhost', '.test', '127.0.0.1/32', '::1/128'];

function opensslText(file: string): string {
  return run('openssl', ['x509', '-noout', '-text', '-in', file]).toString();
}

/** openssl verify with the CA as the only trust anchor; returns [ok, output]. */
function opensslVerify(caFile: string, leafFile: string, purpose = 'sslserver'): [boolean, string] {
  try {
    const out = run('openssl', ['verify', '-purpose', purpose, '-CAfile', caFile, leafFile]).toString();
    return [true, out];
  } catch (err) {
    return [false, (err as Error).message];
  }
}

/** A leaf signed by `ca` without enseal's own checks, to see what a verifier does with names it should refuse. */
async function rogueLeaf(ca: LocalCa, names: { type: 'dns' | 'ip'; value: string }[]): Promise<string> {
  x509.cryptoProvider.set(globalThis.crypto);
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '4a01',
    subject: 'O=rogue',
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingKey: ca.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  return leaf.toString('pem') + '\n';
}

describe('local CA certificate', () => {
  it('is a P-256 CA with pathlen 0, critical keyCertSign|cRLSign, SKI and critical name constraints', async () => {
    const dir = tempDir();
    const { files } = await initLocalCa(dir, { permit: PERMIT });
    const cert = new X509Certificate(readFileSync(files.cert));
    expect(cert.ca).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(Math.round(days)).toBe(3650);
    expect(statSync(files.key).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    if (!openssl.available) return;
    const text = opensslText(files.cert);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toMatch(/X509v3 Subject Key Identifier/);
    expect(text).toMatch(/X509v3 Name Constraints: critical/);
    expect(text).toMatch(
      /Permitted:\s+DNS:localhost\s+DNS:test\s+IP:127\.0\.0\.1\/255\.255\.255\.255\s+IP:0:0:0:0:0:0:0:1\//,
    );
    expect(text).toContain('ecdsa-with-SHA256');
  });

  it('offers P-384 (signed with SHA-384) and RSA-3072', async () => {
    const p384 = await createCa({ keyType: 'ecdsa-p384' });
    const rsa = await createCa({ keyType: 'rsa-3072' });
    const a = new X509Certificate(p384.cert.toString('pem'));
    const b = new X509Certificate(rsa.cert.toString('pem'));
    expect(a.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(b.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(p384.cert.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-384' } });
    const leaf = await issueCertificate(rsa, { names: ['localhost'], keyType: 'rsa-2048' });
    expect(new X509Certificate(leaf.certPem).verify(b.publicKey)).toBe(true);
    expect(new X509Certificate(leaf.certPem).publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('refuses to replace an existing CA without force, and force replaces it', async () => {
    const dir = tempDir();
    const first = await initLocalCa(dir);
    expect(await asyncCodeOf(initLocalCa(dir))).toBe('ERR_OUTPUT_EXISTS');
    const second = await initLocalCa(dir, { force: true, passphrase: 'pw', passphraseParams: fastArgon });
    expect(second.ca.cert.serialNumber).not.toBe(first.ca.cert.serialNumber);
    expect(existsSync(caFilesIn(dir, false).key)).toBe(false); // the plain key of the old CA is gone
  });

  it('seals the CA key under a passphrase (enseal envelope) and opens it only with that passphrase', async () => {
    const dir = tempDir();
    const { files } = await initLocalCa(dir, { passphrase: 'hunter2 correct', passphraseParams: fastArgon });
    const text = readFileSync(files.key, 'utf8');
    expect(text).not.toContain('PRIVATE KEY');
    expect(files.key.endsWith('ca-key.enseal')).toBe(true);
    expect(statSync(files.key).mode & 0o777).toBe(0o600);
    expect(await asyncCodeOf(openLocalCa(dir))).toBe('ERR_KEK_MISSING');
    expect(await asyncCodeOf(openLocalCa(dir, 'wrong'))).toBe('ERR_DECRYPT_FAILED');
    const { ca } = await openLocalCa(dir, 'hunter2 correct');
    const leaf = await issueCertificate(ca, { names: ['localhost'] });
    expect(new X509Certificate(leaf.certPem).checkIssued(new X509Certificate(readFileSync(files.cert)))).toBe(
      true,
    );
  });

  it('rejects a key file that belongs to another CA', async () => {
    const a = tempDir();
    const b = tempDir();
    await initLocalCa(a);
    await initLocalCa(b);
    const code = await asyncCodeOf(loadCa({ cert: join(a, 'ca.pem'), key: join(b, 'ca-key.pem') }));
    expect(code).toBe('ERR_MALFORMED');
    expect(await asyncCodeOf(openLocalCa(tempDir()))).toBe('ERR_IO');
    // An edited CA certificate (a permitted name widened from "test" to "tesu") fails its self-signature.
    const c = tempDir();
    const { files } = await initLocalCa(c, { permit: ['.test'] });
    const pem = readFileSync(files.cert, 'utf8');
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const at = der.indexOf(Buffer.from('test'));
    expect(at).toBeGreaterThan(0);
    der[at + 3] = 'u'.charCodeAt(0);
    writeFileSync(
      files.cert,
      `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`,
    );
    expect(await asyncCodeOf(openLocalCa(c))).toBe('ERR_MALFORMED');
    // A leaf is not a CA.
    const leafDir = tempDir();
    const leafCa = await initLocalCa(leafDir);
    const leaf = await issueCertificate(leafCa.ca, { names: ['localhost'] });
    writeFileSync(join(leafDir, 'leaf.pem'), leaf.certPem);
    writeFileSync(join(leafDir, 'leaf-key.pem'), leaf.keyPem);
    expect(
      await asyncCodeOf(loadCa({ cert: join(leafDir, 'leaf.pem'), key: join(leafDir, 'leaf-key.pem') })),
    ).toBe('ERR_MALFORMED');
  });
});

describe('leaf certificates', () => {
  it('carry DNS and IP SANs, serverAuth (+clientAuth on request), 90 days, and verify with openssl', async () => {
    const dir = tempDir();
    const { ca, files } = await initLocalCa(dir, { permit: PERMIT });
    const issued = await issueCertificate(ca, {
      names: ['localhost', 'app.test', '*.api.test', '127.0.0.1', '::1'],
      client: true,
    });
    const leafFile = join(dir, 'leaf.pem');
    await saveIssued(issued, { cert: leafFile, key: join(dir, 'leaf-key.pem') });
    expect(statSync(join(dir, 'leaf-key.pem')).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(issued.certPem);
    const caCert = new X509Certificate(readFileSync(files.cert));
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkHost('x.api.test')).toBe('*.api.test');
    expect(cert.checkHost('example.com')).toBeUndefined();
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('::1')).toBe('::1');
    expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(Math.round(days)).toBe(90);
    // The chain file is leaf then CA.
    expect(readFileSync(leafFile, 'utf8')).toBe(
      issued.certPem + caCert.toString() + (caCert.toString().endsWith('\n') ? '' : '\n'),
    );
    if (!openssl.available) return;
    const text = opensslText(leafFile);
    expect(text).toMatch(
      /DNS:localhost, DNS:app\.test, DNS:\*\.api\.test, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/,
    );
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/CA:FALSE/);
    expect(opensslVerify(files.cert, leafFile)).toEqual([true, expect.stringContaining('OK')]);
    expect(opensslVerify(files.cert, leafFile, 'sslclient')[0]).toBe(true);
  });

  it('a server-only leaf is not accepted for client authentication', async () => {
    const dir = tempDir();
    const { ca, files } = await initLocalCa(dir);
    const issued = await issueCertificate(ca, { names: ['localhost'] });
    writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
    if (!openssl.available) return;
    expect(opensslVerify(files.cert, join(dir, 'leaf.pem'), 'sslserver')[0]).toBe(true);
    const [ok, out] = opensslVerify(files.cert, join(dir, 'leaf.pem'), 'sslclient');
    expect(ok).toBe(false);
    expect(out).toMatch(/verification failed/);
  });

  it('a wildcard first name becomes the CN; a given CN is validated', async () => {
    const ca = await createCa({ permit: ['.test'] });
    const wild = await issueCertificate(ca, { names: ['*.app.test', 'app.test'] });
    expect(new X509Certificate(wild.certPem).subject).toBe('CN=*.app.test');
    const ipOnly = await issueCertificate(await createCa(), { names: ['127.0.0.1'] });
    expect(new X509Certificate(ipOnly.certPem).subject).toBe('O=enseal local CA leaf');
    expect(await asyncCodeOf(issueCertificate(ca, { names: ['a.test'], commonName: 'x, O=evil' }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('caps the lifetime at 825 days and at the CA lifetime', async () => {
    const ca = await createCa({ days: 30 });
    expect(await asyncCodeOf(issueCertificate(ca, { names: ['localhost'], days: MAX_LEAF_DAYS + 1 }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(await asyncCodeOf(issueCertificate(ca, { names: ['localhost'], days: 31 }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(await asyncCodeOf(issueCertificate(ca, { names: ['localhost'], days: 0 }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(await asyncCodeOf(issueCertificate(ca, { names: [] }))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('refuses to issue for names outside the CA constraints', async () => {
    const ca = await createCa({ permit: PERMIT });
    for (const name of ['example.com', 'test.example', '10.0.0.1', '::2', 'localhost.evil']) {
      expect(await asyncCodeOf(issueCertificate(ca, { names: [name] }))).toBe('ERR_INVALID_ARGUMENT');
    }
    const dnsOnly = await createCa({ permit: ['.test'] });
    expect(await asyncCodeOf(issueCertificate(dnsOnly, { names: ['a.test', '127.0.0.1'] }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    const ipOnly = await createCa({ permit: ['10.0.0.0/8'] });
    expect(await asyncCodeOf(issueCertificate(ipOnly, { names: ['10.1.2.3'] }))).toBe('no error');
    expect(await asyncCodeOf(issueCertificate(ipOnly, { names: ['localhost'] }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it.skipIf(!openssl.available)(
    'openssl rejects leaves outside the constraints (the CA is really constrained)',
    async () => {
      const dir = tempDir();
      const { ca, files } = await initLocalCa(dir, { permit: ['localhost', '.test', '127.0.0.1/32'] });
      const cases: [string, { type: 'dns' | 'ip'; value: string }[], boolean][] = [
        ['in', [{ type: 'dns', value: 'a.b.test' }], true],
        ['in-ip', [{ type: 'ip', value: '127.0.0.1' }], true],
        ['dns-out', [{ type: 'dns', value: 'example.com' }], false],
        ['suffix-trick', [{ type: 'dns', value: 'eviltest' }], false],
        ['ip-out', [{ type: 'ip', value: '10.0.0.1' }], false],
        ['ipv6-excluded', [{ type: 'ip', value: '::1' }], false],
        [
          'mixed',
          [
            { type: 'dns', value: 'a.test' },
            { type: 'dns', value: 'bank.example' },
          ],
          false,
        ],
      ];
      for (const [name, sans, expected] of cases) {
        const file = join(dir, `${name}.pem`);
        writeFileSync(file, await rogueLeaf(ca, sans));
        const [ok, out] = opensslVerify(files.cert, file);
        expect({ name, ok }).toEqual({ name, ok: expected });
        if (!expected) expect(out).toMatch(/(permitted|excluded) subtree violation/);
      }
      const dnsOnlyDir = tempDir();
      const dnsOnly = await initLocalCa(dnsOnlyDir, { permit: ['.test'] });
      const file = join(dnsOnlyDir, 'ip.pem');
      writeFileSync(file, await rogueLeaf(dnsOnly.ca, [{ type: 'ip', value: '192.0.2.1' }]));
      expect(opensslVerify(dnsOnly.files.cert, file)).toEqual([
        false,
        expect.stringMatching(/excluded subtree/),
      ]);
    },
  );
});

describe('name parsing', () => {
  it('classifies and normalises names', () => {
    expect(parseSanName('LocalHost')).toEqual({ type: 'dns', value: 'localhost' });
    expect(parseSanName('*.App.test')).toEqual({ type: 'dns', value: '*.app.test' });
    expect(parseSanName('::1')).toEqual({ type: 'ip', value: '::1' });
    expect(parseSanName('192.0.2.7')).toEqual({ type: 'ip', value: '192.0.2.7' });
    expect(parsePermittedName('.Test')).toEqual({ type: 'dns', value: 'test' });
    expect(parsePermittedName('10.1.2.3/8')).toEqual({ type: 'ip', value: '10.0.0.0/8' });
    expect(parsePermittedName('::1')).toEqual({ type: 'ip', value: '0:0:0:0:0:0:0:1/128' });
    expect(parsePermittedName('fd12:3456::/16')).toEqual({ type: 'ip', value: 'fd12:0:0:0:0:0:0:0/16' });
    for (const bad of [
      '',
      '*',
      '*.',
      'a..b',
      '-a.test',
      'a-.test',
      'a.*.test',
      '**.test',
      'a_b.test',
      'é.test',
      '1.2.3.4.5',
      '999.1.1.1',
      '10.0.0.256',
      'a b',
      'x'.repeat(64) + '.test',
      '::ffff:1.2.3.4',
      'fe80::1%eth0',
    ]) {
      expect({ bad, code: codeOf(() => parseSanName(bad)) }).toEqual({ bad, code: 'ERR_INVALID_ARGUMENT' });
    }
    for (const bad of [
      '',
      '.',
      '*.test',
      '10.0.0.0/33',
      '::/129',
      '10.0.0.0/',
      '10.0.0.0/-1',
      'a.test/8',
      '10.0.0.0/08x',
    ]) {
      expect({ bad, code: codeOf(() => parsePermittedName(bad)) }).toEqual({
        bad,
        code: 'ERR_INVALID_ARGUMENT',
      });
    }
  });

  it('property: any string is either a valid name or a typed error', () => {
    const alphabet = fc.constantFrom(...'abz09-.*:/%_ \n;"\'é'.split(''));
    const input = fc.oneof(
      fc.string(),
      fc.string({ unit: alphabet, maxLength: 40 }),
      fc.ipV4(),
      fc.ipV6(),
      fc.domain(),
    );
    fc.assert(
      fc.property(input, (s) => {
        for (const parse of [parseSanName, parsePermittedName]) {
          try {
            const r = parse(s);
            // Whatever is accepted is safe to put into a certificate and a config: no spaces, quotes, ';'.
            expect(r.value).toMatch(/^[a-z0-9.*:/-]*$/);
          } catch (err) {
            expect(err).toBeInstanceOf(EnsealError);
            expect((err as EnsealError).code).toBe('ERR_INVALID_ARGUMENT');
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

function get(
  port: number,
  options: { ca?: string; cert?: string; key?: string; servername?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        ...options,
        servername: options.servername ?? 'localhost',
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('real TLS with issued certificates', () => {
  it('a Node HTTPS server with a leaf is trusted by a client that trusts the CA, and only then', async () => {
    const dir = tempDir();
    const { ca, files } = await initLocalCa(dir, { permit: PERMIT });
    const leaf = await issueCertificate(ca, { names: ['localhost', '127.0.0.1'] });
    const server = createServer({ cert: leaf.chainPem, key: leaf.keyPem }, (_req, res) => res.end('hello'));
    const port = await listen(server);
    try {
      const caPem = readFileSync(files.cert, 'utf8');
      expect(await get(port, { ca: caPem })).toEqual({ status: 200, body: 'hello' });
      await expect(get(port, {})).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
      const other = await createCa();
      await expect(get(port, { ca: other.cert.toString('pem') })).rejects.toThrow();
      await expect(get(port, { ca: caPem, servername: 'wrong.test' })).rejects.toThrow(/altnames|Hostname/i);
    } finally {
      server.close();
    }
  });

  it('mTLS: a --client leaf authenticates, a server-only leaf does not', async () => {
    const dir = tempDir();
    const { ca, files } = await initLocalCa(dir, { permit: PERMIT });
    const caPem = readFileSync(files.cert, 'utf8');
    const serverLeaf = await issueCertificate(ca, { names: ['localhost'] });
    const clientLeaf = await issueCertificate(ca, { names: ['alice.test'], client: true, server: false });
    const server = createServer(
      {
        cert: serverLeaf.chainPem,
        key: serverLeaf.keyPem,
        ca: caPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.end(peer.subject?.CN ?? 'none');
      },
    );
    const port = await listen(server);
    try {
      expect(await get(port, { ca: caPem, cert: clientLeaf.chainPem, key: clientLeaf.keyPem })).toEqual({
        status: 200,
        body: 'alice.test',
      });
      await expect(
        get(port, { ca: caPem, cert: serverLeaf.chainPem, key: serverLeaf.keyPem }),
      ).rejects.toThrow();
      await expect(get(port, { ca: caPem })).rejects.toThrow();
    } finally {
      server.close();
    }
  });
});

describe('damaged CA files', () => {
  it('property: mutated or random CA certificate and key files fail with typed errors, never crash', async () => {
    const dir = tempDir();
    const { files } = await initLocalCa(dir, { permit: PERMIT });
    const sealedDir = tempDir();
    const sealed = await initLocalCa(sealedDir, { passphrase: 'pw', passphraseParams: fastArgon });
    const originals = {
      cert: readFileSync(files.cert, 'utf8'),
      key: readFileSync(files.key, 'utf8'),
      sealed: readFileSync(sealed.files.key, 'utf8'),
    };
    /** Flips bytes inside the DER of a PEM (or the text of a sealed envelope), keeping the armour intact. */
    const mutate = (text: string, edits: [number, number][]): string => {
      const m = /^(-----BEGIN [A-Z ]+-----\n)([\s\S]+?)(\n-----END [A-Z ]+-----\n?)$/.exec(text);
      if (m === null) {
        const chars = [...text];
        for (const [at, v] of edits) chars[at % chars.length] = String.fromCharCode(33 + (v % 90));
        return chars.join('');
      }
      const der = Buffer.from(m[2]!.replace(/\s/g, ''), 'base64');
      for (const [at, v] of edits) der[at % der.length] = v;
      return m[1]! + der.toString('base64') + m[3]!;
    };
    const allowed = [
      'ERR_MALFORMED',
      'ERR_UNSUPPORTED',
      'ERR_DECRYPT_FAILED',
      'ERR_KEK_MISSING',
      'ERR_INVALID_ARGUMENT',
    ];
    const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
      minLength: 1,
      maxLength: 4,
    });
    const scenario = fc.oneof(
      fc.record({ target: fc.constant('cert' as const), edits }),
      fc.record({ target: fc.constant('key' as const), edits }),
      fc.record({ target: fc.constant('sealed' as const), edits }),
      fc.record({ target: fc.constant('random' as const), text: fc.string({ maxLength: 300 }) }),
    );
    const work = tempDir();
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const cert = join(work, 'ca.pem');
        const key = join(work, 'ca-key.pem');
        writeFileSync(cert, sc.target === 'cert' ? mutate(originals.cert, sc.edits) : originals.cert);
        if (sc.target === 'random') writeFileSync(cert, sc.text);
        writeFileSync(
          key,
          sc.target === 'key'
            ? mutate(originals.key, sc.edits)
            : sc.target === 'sealed'
              ? mutate(originals.sealed, sc.edits)
              : originals.key,
        );
        const certFile = sc.target === 'sealed' ? sealed.files.cert : cert;
        try {
          const ca = await loadCa({ cert: certFile, key }, sc.target === 'sealed' ? 'pw' : undefined);
          // Whatever loads must still be able to sign a verifiable leaf.
          const leaf = await issueCertificate(ca, { names: ['localhost'] });
          expect(
            new X509Certificate(leaf.certPem).verify(new X509Certificate(ca.cert.toString('pem')).publicKey),
          ).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(EnsealError);
          expect(allowed).toContain((err as EnsealError).code);
        }
      }),
      { numRuns: 300 },
    );
  });
});
