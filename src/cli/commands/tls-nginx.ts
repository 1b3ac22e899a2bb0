/**
 * `enseal tls nginx`: prints (or writes) an nginx TLS config in the shape of Mozilla's guideline 6.0 for the
 * user's certificate paths and domains. The nginx version is taken from `nginx -v` when not given, because
 * the right listen syntax and session settings depend on it.
 */
import { spawnSync } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { EnsealError, ErrorCode, invalidArgument } from '../../crypto/index.js';
import {
  certificateAdvice,
  generateNginxConfig,
  writeFileAtomic,
  wrapInHttpBlock,
  type NginxConfigOptions,
} from '../../tls/index.js';
import { collect } from '../input.js';
import { writeStdout } from '../run.js';

interface NginxFlags {
  profile: string;
  nginxVersion?: string;
  opensslVersion?: string;
  domain?: string[];
  cert: string;
  key: string;
  ocsp?: boolean;
  trustedCert?: string;
  resolver?: string[];
  listen?: string[];
  httpsPort?: string;
  httpPort?: string;
  redirect: boolean;
  hstsSubdomains: boolean;
  hstsPreload?: boolean;
  root?: string;
  httpBlock?: boolean;
  output?: string;
  force?: boolean;
  json?: boolean;
}

/** The version of the nginx on PATH (`nginx -v` prints `nginx version: nginx/1.22.1` on stderr). */
function detectNginxVersion(): string {
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8', timeout: 10_000 });
  const m = /nginx\/(\d+\.\d+\.\d+)/.exec(`${r.stderr ?? ''}${r.stdout ?? ''}`);
  if (r.error !== undefined || m === null) {
    throw invalidArgument(
      '--nginx-version',
      'nginx is not on PATH here; give the version it will run, e.g. 1.22.1',
    );
  }
  return m[1]!;
}

function port(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value)) throw invalidArgument(what, 'must be a port number');
  return Number(value);
}

const list = (values: string[] | undefined) =>
  (values ?? []).flatMap((v) => v.split(',').map((x) => x.trim())).filter((v) => v.length > 0);

export function registerTlsNginx(tls: Command): void {
  tls
    .command('nginx')
    .description("an nginx TLS config after Mozilla's guideline 6.0 (HSTS, 308 redirect, version-aware)")
    .option('--profile <name>', 'modern (TLS 1.3 only) or intermediate (TLS 1.2 and 1.3)', 'intermediate')
    .option('--nginx-version <x.y.z>', 'the nginx version the config is for (default: `nginx -v` here)')
    .option('--openssl-version <x.y.z>', "nginx's OpenSSL; from 3.5 the X25519MLKEM768 group is added")
    .option('-d, --domain <name>', 'server_name (repeatable or comma-separated)', collect)
    .requiredOption('--cert <file>', 'ssl_certificate: the certificate followed by its intermediates')
    .requiredOption('--key <file>', 'ssl_certificate_key')
    .option('--ocsp', "add OCSP stapling (not for Let's Encrypt, which ended OCSP in 2025)")
    .option('--trusted-cert <file>', 'ssl_trusted_certificate for OCSP: root and intermediate certificates')
    .option('--resolver <ip>', 'DNS resolver for OCSP (repeatable; default 127.0.0.1)', collect)
    .option('--listen <ip>', 'listen on this address only (repeatable; default all IPv4 and IPv6)', collect)
    .option('--https-port <port>', 'default 443')
    .option('--http-port <port>', 'default 80')
    .option('--no-redirect', 'omit the port-80 server that redirects to https with 308')
    .option('--no-hsts-subdomains', 'HSTS without includeSubDomains')
    .option('--hsts-preload', 'add the HSTS preload token (read hstspreload.org first)')
    .option('--root <dir>', 'document root for the https server')
    .option('--http-block', 'wrap the output in http { } (a complete http section, as Mozilla prints it)')
    .option('-o, --output <file>', 'write the config to a file (atomically) instead of stdout')
    .option('--force', 'overwrite --output if it exists')
    .option('--json', 'print {config, ...} as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  enseal tls nginx -d example.com -d www.example.com \\\n' +
        '    --cert /etc/letsencrypt/live/example.com/fullchain.pem \\\n' +
        '    --key /etc/letsencrypt/live/example.com/privkey.pem -o /etc/nginx/conf.d/tls.conf\n' +
        '  sudo nginx -t && sudo systemctl reload nginx\n\n' +
        '  enseal tls nginx --profile modern --nginx-version 1.27.4 --openssl-version 3.5.1 \\\n' +
        '    -d app.test --cert app.test.pem --key app.test-key.pem\n\n' +
        'The output goes inside the http {} block (Debian and nginx.org packages include\n' +
        '/etc/nginx/conf.d/*.conf there). Relative paths are made absolute.\n',
    )
    .action(async (o: NginxFlags) => {
      const options: NginxConfigOptions = {
        profile: o.profile as NginxConfigOptions['profile'],
        nginxVersion: o.nginxVersion ?? detectNginxVersion(),
        ...(o.opensslVersion !== undefined ? { opensslVersion: o.opensslVersion } : {}),
        domains: list(o.domain),
        certificate: resolve(o.cert),
        certificateKey: resolve(o.key),
        ...(o.ocsp ? { ocsp: true } : {}),
        ...(o.trustedCert !== undefined ? { trustedCertificate: resolve(o.trustedCert) } : {}),
        ...(o.resolver !== undefined ? { resolvers: list(o.resolver) } : {}),
        ...(o.listen !== undefined ? { addresses: list(o.listen) } : {}),
        ...(o.httpsPort !== undefined ? { httpsPort: port(o.httpsPort, '--https-port') } : {}),
        ...(o.httpPort !== undefined ? { httpPort: port(o.httpPort, '--http-port') } : {}),
        redirect: o.redirect,
        hstsIncludeSubdomains: o.hstsSubdomains,
        ...(o.hstsPreload ? { hstsPreload: true } : {}),
        ...(o.root !== undefined ? { root: resolve(o.root) } : {}),
      };
      const generated = generateNginxConfig(options);
      // The certificate may live on another machine; when it is readable here, check it against the profile.
      const pem = await readFile(options.certificate, 'utf8').catch(() => undefined);
      const warnings =
        pem === undefined
          ? []
          : certificateAdvice(pem, { profile: options.profile, domains: options.domains });
      if (!o.json) for (const w of warnings) process.stderr.write(`enseal: warning: ${w}\n`);
      const config = o.httpBlock ? wrapInHttpBlock(generated) : generated;
      if (o.output !== undefined) {
        const target = resolve(o.output);
        const present = await access(target).then(
          () => true,
          () => false,
        );
        if (present && !o.force) {
          throw new EnsealError(ErrorCode.OUTPUT_EXISTS, `${target} exists; pass --force to overwrite it`);
        }
        await writeFileAtomic(target, config, 0o644);
      }
      if (o.json) {
        return writeStdout(
          JSON.stringify({
            profile: options.profile,
            nginxVersion: options.nginxVersion,
            domains: options.domains,
            output: o.output !== undefined ? resolve(o.output) : null,
            warnings,
            config,
          }) + '\n',
        );
      }
      if (o.output !== undefined) {
        return writeStdout(`wrote ${resolve(o.output)}; check it with: nginx -t\n`);
      }
      await writeStdout(config);
    });
}
