/**
 * The nginx config generator: the Mozilla 6.0 shape for every profile and nginx version, `nginx -t` on the
 * real nginx for every variant its version can parse, live TLS against the generated configs (protocol,
 * cipher, HTTP/2, HSTS, the 308 redirect), and a property test that no input can inject a directive.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnsealError } from '../../src/crypto/index.js';
import {
  certificateAdvice,
  generateNginxConfig,
  parseVersion,
  wrapInHttpBlock,
  type NginxConfigOptions,
} from '../../src/tls/nginx-config.js';
import { createCa, initLocalCa, issueCertificate, saveIssued } from '../../src/tls/local-ca.js';
import { codeOf } from '../helpers/errors.js';
import { tlsFixtures } from '../helpers/tls-certs.js';
import { nginxPeer, nginxTest, startNginx, type RunningNginx } from '../helpers/nginx.js';

const nginx = nginxPeer();
const dirs: string[] = [];
const running: RunningNginx[] = [];
afterAll(async () => {
  await Promise.all(running.map((n) => n.stop()));
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const paths = { certificate: '/etc/ssl/example/fullchain.pem', certificateKey: '/etc/ssl/example/key.pem' };
const base = (over: Partial<NginxConfigOptions> = {}): NginxConfigOptions => ({
  profile: 'intermediate',
  nginxVersion: '1.22.1',
  domains: ['example.com', 'www.example.com'],
  ...paths,
  ...over,
});

/** The OpenSSL version the local nginx is built with (`nginx -V` prints "built with OpenSSL x.y.z"). */
function nginxOpenssl(): string | undefined {
  const r = spawnSync('nginx', ['-V'], { encoding: 'utf8' });
  return /built with OpenSSL (\d+\.\d+\.\d+)/.exec(r.stderr ?? '')?.[1];
}

describe('generated text', () => {
  const versions = ['1.13.0', '1.21.6', '1.22.1', '1.23.2', '1.24.0', '1.25.1', '1.27.4', '1.29.0'];
  for (const profile of ['modern', 'intermediate'] as const) {
    for (const v of versions) {
      it(`${profile} for nginx ${v}`, () => {
        const conf = generateNginxConfig(base({ profile, nginxVersion: v }));
        const ver = parseVersion(v);
        const atLeast = (maj: number, min: number, p: number) =>
          ver.major * 1e8 + ver.minor * 1e4 + ver.patch >= maj * 1e8 + min * 1e4 + p;
        if (atLeast(1, 25, 1)) {
          expect(conf).toContain('    listen 443 ssl;\n    listen [::]:443 ssl;\n    http2 on;\n');
          expect(conf).not.toMatch(/ssl http2;/);
        } else {
          expect(conf).toContain('    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n');
          expect(conf).not.toContain('http2 on;');
        }
        expect(conf.includes('\nssl_session_tickets off;')).toBe(!atLeast(1, 23, 2));
        expect(conf).toContain('    server_name example.com www.example.com;\n');
        expect(conf).toContain('    ssl_certificate /etc/ssl/example/fullchain.pem;\n');
        expect(conf).toContain('    ssl_certificate_key /etc/ssl/example/key.pem;\n');
        expect(conf).toContain(
          '    add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;\n',
        );
        expect(conf).toContain('\nssl_ecdh_curve X25519:prime256v1:secp384r1;\n');
        expect(conf).toContain('\nssl_prefer_server_ciphers off;\n');
        expect(conf).toContain(
          '\nserver {\n    listen 80 default_server;\n    listen [::]:80 default_server;\n\n    return 308 https://$host$request_uri;\n}\n',
        );
        if (profile === 'modern') {
          expect(conf).toContain('\nssl_protocols TLSv1.3;\n');
          expect(conf).not.toContain('ssl_ciphers');
          expect(conf).toContain('\n#ssl_session_timeout 1d;\n#ssl_session_cache shared:MozSSL:10m;');
        } else {
          expect(conf).toContain('\nssl_protocols TLSv1.2 TLSv1.3;\n');
          expect(conf).toContain(
            '\nssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;\n',
          );
          expect(conf).toContain('\nssl_session_timeout 1d;\nssl_session_cache shared:MozSSL:10m;');
        }
        expect(conf).not.toMatch(/stapling|resolver|ssl_trusted_certificate/);
      });
    }
  }

  it('adds X25519MLKEM768 only for OpenSSL 3.5 or later', () => {
    expect(generateNginxConfig(base({ opensslVersion: '3.5.0' }))).toContain(
      '\nssl_ecdh_curve X25519MLKEM768:X25519:prime256v1:secp384r1;\n',
    );
    expect(generateNginxConfig(base({ opensslVersion: '3.4.9' }))).toContain(
      '\nssl_ecdh_curve X25519:prime256v1:secp384r1;\n',
    );
  });

  it('emits the OCSP block only with ocsp, and requires its trusted certificate', () => {
    const conf = generateNginxConfig(
      base({
        ocsp: true,
        trustedCertificate: '/etc/ssl/example/chain.pem',
        resolvers: ['9.9.9.9', '2620:fe::fe'],
      }),
    );
    expect(conf).toContain(
      '\nssl_stapling on;\nssl_stapling_verify on;\n# root and intermediate certificates, to verify the OCSP response\nssl_trusted_certificate /etc/ssl/example/chain.pem;\nresolver 9.9.9.9 [2620:fe::fe];\n',
    );
    expect(codeOf(() => generateNginxConfig(base({ ocsp: true })))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => generateNginxConfig(base({ trustedCertificate: '/x.pem' })))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('honours ports, addresses, HSTS options, root, no redirect; wraps in http {}', () => {
    const conf = generateNginxConfig(
      base({
        addresses: ['127.0.0.1', '::1'],
        httpsPort: 8443,
        httpPort: 8080,
        hstsPreload: true,
        root: '/srv/www',
      }),
    );
    expect(conf).toContain('    listen 127.0.0.1:8443 ssl http2;\n    listen [::1]:8443 ssl http2;\n');
    expect(conf).toContain(
      '    listen 127.0.0.1:8080 default_server;\n    listen [::1]:8080 default_server;\n',
    );
    expect(conf).toContain('return 308 https://$host:8443$request_uri;');
    expect(conf).toContain('"max-age=63072000; includeSubDomains; preload"');
    expect(conf).toContain('    root /srv/www;\n');
    const noSub = generateNginxConfig(base({ hstsIncludeSubdomains: false, redirect: false }));
    expect(noSub).toContain('"max-age=63072000" always;');
    expect(noSub).not.toContain('return 308');
    expect(codeOf(() => generateNginxConfig(base({ hstsIncludeSubdomains: false, hstsPreload: true })))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    const wrapped = wrapInHttpBlock(generateNginxConfig(base()));
    expect(wrapped.startsWith('http {\n')).toBe(true);
    expect(wrapped.endsWith('\n}\n')).toBe(true);
  });

  it('rejects bad versions, profiles, domains, ports and paths with typed errors', () => {
    const cases: [Partial<NginxConfigOptions>, string][] = [
      [{ nginxVersion: '1.22' }, 'ERR_INVALID_ARGUMENT'],
      [{ nginxVersion: '1.22.1-r0' }, 'ERR_INVALID_ARGUMENT'],
      [{ nginxVersion: 'v1.22.1' }, 'ERR_INVALID_ARGUMENT'],
      [{ nginxVersion: '1.12.2' }, 'ERR_UNSUPPORTED'],
      [{ opensslVersion: '3.5' }, 'ERR_INVALID_ARGUMENT'],
      [{ profile: 'old' as never }, 'ERR_INVALID_ARGUMENT'],
      [{ domains: [] }, 'ERR_INVALID_ARGUMENT'],
      [{ domains: ['127.0.0.1'] }, 'ERR_INVALID_ARGUMENT'],
      [{ domains: ['exa mple.com'] }, 'ERR_INVALID_ARGUMENT'],
      [{ domains: ['example.com;'] }, 'ERR_INVALID_ARGUMENT'],
      [{ certificate: 'relative/cert.pem' }, 'ERR_INVALID_ARGUMENT'],
      [{ certificate: '/etc/ssl/a b.pem' }, 'ERR_INVALID_ARGUMENT'],
      [{ certificateKey: '/etc/ssl/$host.pem' }, 'ERR_INVALID_ARGUMENT'],
      [{ certificateKey: '/etc/ssl/k.pem;\n}' }, 'ERR_INVALID_ARGUMENT'],
      [{ root: '/srv/"x"' }, 'ERR_INVALID_ARGUMENT'],
      [{ httpsPort: 0 }, 'ERR_INVALID_ARGUMENT'],
      [{ httpsPort: 80 }, 'ERR_INVALID_ARGUMENT'],
      [{ httpPort: 65536 }, 'ERR_INVALID_ARGUMENT'],
      [{ addresses: ['localhost'] }, 'ERR_INVALID_ARGUMENT'],
      [{ ocsp: true, trustedCertificate: '/c.pem', resolvers: ['dns.example'] }, 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [over, code] of cases) {
      expect({ over, code: codeOf(() => generateNginxConfig(base(over))) }).toEqual({ over, code });
    }
  });
});

describe('certificate advice', () => {
  it('checks key type, size, lifetime, expiry and domain coverage against the profile', async () => {
    const f = await tlsFixtures();
    const read = (file: string) => readFileSync(file, 'utf8');
    const ca = await createCa();
    const ok = await issueCertificate(ca, { names: ['localhost', '*.app.test'] });
    const domains = ['localhost', 'x.app.test'];
    expect(certificateAdvice(ok.chainPem, { profile: 'modern', domains })).toEqual([]);
    expect(certificateAdvice(ok.chainPem, { profile: 'intermediate', domains: ['a.b.app.test'] })).toEqual([
      'the certificate does not cover a.b.app.test',
    ]);
    const long = await issueCertificate(ca, { names: ['localhost'], days: 400 });
    expect(certificateAdvice(long.certPem, { profile: 'intermediate', domains: ['localhost'] })).toEqual([
      'the certificate is valid for 400 days; the intermediate profile allows 366 (90 recommended)',
    ]);
    expect(certificateAdvice(read(f.goodRsa.cert), { profile: 'modern', domains: ['localhost'] })).toContain(
      'the modern profile expects an ECDSA (P-256 or P-384) certificate; this one is RSA',
    );
    expect(
      certificateAdvice(read(f.goodRsa.cert), { profile: 'intermediate', domains: ['localhost'] }),
    ).toEqual([]);
    expect(
      certificateAdvice(read(f.rsa1024.cert), { profile: 'intermediate', domains: ['localhost'] }),
    ).toContain('RSA-1024 is too small; use ECDSA P-256 or RSA 2048 or larger');
    expect(
      certificateAdvice(read(f.expired.cert), { profile: 'intermediate', domains: ['localhost'] })[0],
    ).toMatch(/^the certificate expired on /);
    expect(
      certificateAdvice(read(f.wrongName.cert), { profile: 'intermediate', domains: ['localhost'] }),
    ).toEqual(['the certificate does not cover localhost']);
    expect(certificateAdvice('junk', { profile: 'modern', domains: ['localhost'] })).toEqual([
      'the certificate file holds no PEM certificate',
    ]);
    expect(
      certificateAdvice('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', {
        profile: 'modern',
        domains: ['localhost'],
      }),
    ).toEqual(['the certificate file could not be parsed']);
  });
});

/** The structure of a config: its braces and semicolons, which injected input would change. */
function skeleton(conf: string): string {
  return conf
    .split('\n')
    .filter((l) => !l.startsWith('#') && !l.trimStart().startsWith('#'))
    .map((l) => l.replace(/[^;{}]/g, ''))
    .join('');
}

describe('injection', () => {
  it('property: no domain, path, address or version can change the config structure', () => {
    const hostile = fc.constantFrom(
      ...';{}"\'#$\\ \n\r\t`*.-/:[]'.split(''),
      'include /etc/passwd;',
      '\u0000',
    );
    const str = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: fc.oneof(hostile, fc.constantFrom('a', 'b', '1', '.', '/')), maxLength: 30 }),
      fc.domain(),
      fc.ipV4(),
      fc.ipV6(),
    );
    const field = fc.constantFrom(
      'domain',
      'certificate',
      'certificateKey',
      'root',
      'trustedCertificate',
      'resolver',
      'address',
      'nginxVersion',
    );
    const reference = skeleton(
      generateNginxConfig(
        base({ ocsp: true, trustedCertificate: '/t.pem', root: '/srv', addresses: ['::1'] }),
      ),
    );
    fc.assert(
      fc.property(field, str, (f, value) => {
        const over: Partial<NginxConfigOptions> = {
          ocsp: true,
          trustedCertificate: '/t.pem',
          root: '/srv',
          addresses: ['::1'],
        };
        const o: Record<string, unknown> = { ...over };
        if (f === 'domain') o.domains = ['example.com', value];
        else if (f === 'resolver') o.resolvers = [value];
        else if (f === 'address') o.addresses = [value];
        else o[f] = value;
        let conf: string;
        try {
          conf = generateNginxConfig(base(o as Partial<NginxConfigOptions>));
        } catch (err) {
          expect(err).toBeInstanceOf(EnsealError);
          expect(['ERR_INVALID_ARGUMENT', 'ERR_UNSUPPORTED']).toContain((err as EnsealError).code);
          return;
        }
        expect(skeleton(conf)).toBe(reference);
        const directives = conf
          .split('\n')
          .filter((l) => !l.trimStart().startsWith('#'))
          .join('\n');
        expect(directives).not.toMatch(/[\r\t\\`']/);
        expect(directives.includes(String.fromCharCode(0))).toBe(false);
        expect(conf.match(/"/g)?.length).toBe(2); // only the quoted HSTS value
        expect(conf.match(/\$/g)?.length).toBe(2); // only $host and $request_uri in the redirect
        expect(conf).not.toMatch(/^\s*include /m);
        // Every line is a comment, blank, a brace, or a directive ending in ';' on its own line.
        for (const l of conf.split('\n')) {
          expect(l).toMatch(
            /^(\s*#.*|\s*[a-z_0-9]+(?: (?:"[^"{}]*"|[^\s;{}#"]+))*;(?:\s+#.*)?|server \{|\}|)$/,
          );
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe.skipIf(!nginx.available)('real nginx', () => {
  let dir: string;
  let ecdsa: { cert: string; key: string };
  let rsa: { cert: string; key: string };
  let caPem: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'enseal-nginx-config-'));
    dirs.push(dir);
    const { ca } = await initLocalCa(join(dir, 'ca'), { permit: ['localhost', '127.0.0.1/32'] });
    caPem = ca.cert.toString('pem');
    ecdsa = { cert: join(dir, 'ec.pem'), key: join(dir, 'ec-key.pem') };
    rsa = { cert: join(dir, 'rsa.pem'), key: join(dir, 'rsa-key.pem') };
    await saveIssued(await issueCertificate(ca, { names: ['localhost', '127.0.0.1'] }), ecdsa);
    await saveIssued(
      await issueCertificate(ca, { names: ['localhost', '127.0.0.1'], keyType: 'rsa-2048' }),
      rsa,
    );
  });

  it('nginx -t accepts every profile × version variant that this nginx can parse', async () => {
    const local = parseVersion(
      /nginx\/(\d+\.\d+\.\d+)/.exec(spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr)![1]!,
    );
    const results: string[] = [];
    for (const profile of ['modern', 'intermediate'] as const) {
      for (const v of ['1.13.0', '1.21.6', '1.22.1', '1.23.2', '1.24.0', '1.25.1', '1.27.4']) {
        const parsed = parseVersion(v);
        const newerSyntax = parsed.major * 1e4 + parsed.minor >= 1 * 1e4 + 25; // `http2 on;`
        const localKnows = local.major * 1e4 + local.minor >= 1 * 1e4 + 25;
        if (newerSyntax && !localKnows) continue; // text asserted above
        for (const ocsp of [false, true]) {
          const conf = generateNginxConfig({
            profile,
            nginxVersion: v,
            domains: ['localhost', '*.localhost'],
            certificate: ecdsa.cert,
            certificateKey: ecdsa.key,
            addresses: ['127.0.0.1'],
            httpsPort: 8443,
            httpPort: 8080,
            ...(ocsp ? { ocsp, trustedCertificate: ecdsa.cert, resolvers: ['127.0.0.1'] } : {}),
          });
          const r = await nginxTest(conf);
          results.push(`${profile} ${v} ocsp=${ocsp}: ${r.ok ? 'ok' : r.output}`);
        }
      }
    }
    expect(results.length).toBeGreaterThanOrEqual(20);
    expect(results.filter((r) => !r.endsWith(': ok'))).toEqual([]);
  });

  it('the X25519MLKEM768 group fails nginx -t on OpenSSL older than 3.5 (why it is opt-in)', async () => {
    const v = nginxOpenssl();
    expect(v, 'nginx -V names the OpenSSL it was built with').toBeDefined();
    const { major, minor } = parseVersion(v!);
    const hasMlkem = major > 3 || (major === 3 && minor >= 5);
    const conf = generateNginxConfig({
      profile: 'modern',
      nginxVersion: '1.22.1',
      domains: ['localhost'],
      certificate: ecdsa.cert,
      certificateKey: ecdsa.key,
      addresses: ['127.0.0.1'],
      opensslVersion: '3.5.0',
    });
    const r = await nginxTest(conf);
    expect(r.ok).toBe(hasMlkem); // a newer OpenSSL accepts the group, an older one refuses the config
    if (!hasMlkem) expect(r.output).toMatch(/ssl_ecdh_curve|curves/i);
  });

  async function serve(
    profile: 'modern' | 'intermediate',
    files: { cert: string; key: string },
  ): Promise<RunningNginx> {
    const n = await startNginx({
      files: { 'index.html': `hello ${profile}\n` },
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

  function handshake(
    port: number,
    options: ConnectionOptions = {},
  ): Promise<{ protocol: string; cipher: string; alpn: string | false }> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem, ...options }, () => {
        resolve({
          protocol: s.getProtocol() ?? '',
          cipher: s.getCipher().name,
          alpn: s.alpnProtocol ?? false,
        });
        s.end();
      });
      s.on('error', reject);
    });
  }

  function get(
    secure: boolean,
    port: number,
    path: string,
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(
        {
          host: '127.0.0.1',
          port,
          path,
          headers: { host: 'localhost' },
          servername: 'localhost',
          ca: caPem,
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it('modern serves TLS 1.3 only, with HTTP/2, HSTS, and a 308 redirect on the http port', async () => {
    const n = await serve('modern', ecdsa);
    const h = await handshake(n.httpsPort, { ALPNProtocols: ['h2', 'http/1.1'] });
    expect(h).toEqual({
      protocol: 'TLSv1.3',
      cipher: expect.stringMatching(/^TLS_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA(256|384)$/),
      alpn: 'h2',
    });
    await expect(handshake(n.httpsPort, { maxVersion: 'TLSv1.2' })).rejects.toThrow();
    const page = await get(true, n.httpsPort, '/');
    expect(page.status).toBe(200);
    expect(page.body).toBe('hello modern\n');
    expect(page.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    const missing = await get(true, n.httpsPort, '/nope');
    expect(missing.status).toBe(404);
    expect(missing.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains'); // `always`
    const redirect = await get(false, n.httpPort, '/a/b?c=1');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe(`https://localhost:${n.httpsPort}/a/b?c=1`);
  });

  it('intermediate serves TLS 1.2 with ECDHE+AEAD only and TLS 1.3, RSA and ECDSA certificates', async () => {
    for (const [files, kx] of [
      [rsa, 'ECDHE-RSA'],
      [ecdsa, 'ECDHE-ECDSA'],
    ] as const) {
      const n = await serve('intermediate', files);
      expect((await handshake(n.httpsPort)).protocol).toBe('TLSv1.3');
      const tls12 = await handshake(n.httpsPort, { maxVersion: 'TLSv1.2' });
      expect(tls12.protocol).toBe('TLSv1.2');
      expect(tls12.cipher).toMatch(new RegExp(`^${kx}-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$`));
      // CBC and static-RSA suites are refused, and so are TLS 1.0 and 1.1.
      await expect(
        handshake(n.httpsPort, {
          maxVersion: 'TLSv1.2',
          ciphers: `${kx}-AES128-SHA:AES128-GCM-SHA256:AES128-SHA`,
        }),
      ).rejects.toThrow();
      await expect(
        handshake(n.httpsPort, {
          minVersion: 'TLSv1',
          maxVersion: 'TLSv1.1',
          ciphers: 'DEFAULT:@SECLEVEL=0',
        }),
      ).rejects.toThrow();
      const page = await get(true, n.httpsPort, '/');
      expect(page.body).toBe('hello intermediate\n');
      expect(page.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
      expect((await get(false, n.httpPort, '/')).status).toBe(308);
      await n.stop();
    }
  });
});
