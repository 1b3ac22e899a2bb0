/**
 * `enseal tls acme issue|renew`: certificates from an ACME CA (Let's Encrypt, a private step-ca or Pebble)
 * with http-01, tls-alpn-01 or dns-01. `renew` is made for a timer: it does nothing until the certificate is
 * due (the server's ARI window, else two thirds of its lifetime), so it can run daily. Files are replaced
 * atomically, and `enseal serve` picks the new certificate up without a restart.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64UrlDecode,
  invalidArgument,
} from '../../crypto/index.js';
import {
  CERTIFICATE_KEY_TYPES,
  certificateInfo,
  dns01Hook,
  http01Responder,
  http01Webroot,
  issueAcmeCertificate,
  openAcmeAccount,
  renewIfDue,
  splitPemChain,
  tlsAlpn01Responder,
  writeCertificateFiles,
  type CertificateInfo,
  type CertificateKeyType,
  type ChallengeSolver,
  type ExternalAccountBinding,
  type RenewResult,
} from '../../tls/index.js';
import { collect, readSecretFile } from '../input.js';
import { promptPassphrase } from '../passphrase.js';

interface AcmeFlags {
  directory?: string;
  domain?: string[];
  challenge: string;
  httpPort: string;
  webroot?: string;
  tlsPort: string;
  listenHost?: string;
  dnsHook?: string;
  dnsWait: string;
  accountDir?: string;
  cert?: string;
  key?: string;
  caFile?: string;
  passphraseFile?: string;
  email?: string[];
  agreeTos?: boolean;
  eabKid?: string;
  eabHmacKeyFile?: string;
  keyType: string;
  profile?: string;
  renewFraction?: string;
  timeout: string;
  json?: boolean;
  force?: boolean;
}

const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory';

function port(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw invalidArgument(name, 'must be a port number');
  return n;
}

function seconds(name: string, value: string, max: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > max)
    throw invalidArgument(name, `must be between 0 and ${max} seconds`);
  return n * 1000;
}

function defaultAccountDir(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'enseal', 'acme');
}

async function passphrase(flags: { passphraseFile?: string }): Promise<string> {
  if (flags.passphraseFile !== undefined) return readSecretFile(flags.passphraseFile, 'passphrase');
  const env = process.env.ENSEAL_ACME_PASSPHRASE;
  if (env) return env;
  return promptPassphrase(false);
}

/** EAB credentials from --eab-kid and --eab-hmac-key-file (or ENSEAL_ACME_EAB_HMAC_KEY), base64url as CAs show them. */
function externalAccountBinding(flags: AcmeFlags): ExternalAccountBinding | undefined {
  const keyText = flags.eabHmacKeyFile
    ? readSecretFile(flags.eabHmacKeyFile, 'EAB HMAC key').trim()
    : process.env.ENSEAL_ACME_EAB_HMAC_KEY?.trim();
  if (!flags.eabKid && !keyText) return undefined;
  if (!flags.eabKid || !keyText)
    throw invalidArgument(
      '--eab-kid and --eab-hmac-key-file',
      'go together (both come from your CA account)',
    );
  return { kid: flags.eabKid, hmacKey: base64UrlDecode(keyText.replace(/=+$/, ''), 'EAB HMAC key') };
}

/** The responder for --challenge, opened only for the run. */
async function solverFor(flags: AcmeFlags): Promise<ChallengeSolver> {
  const host = flags.listenHost;
  switch (flags.challenge) {
    case 'http-01':
      if (flags.webroot) return http01Webroot(flags.webroot);
      return http01Responder({ port: port('--http-port', flags.httpPort), ...(host ? { host } : {}) });
    case 'tls-alpn-01':
      return tlsAlpn01Responder({ port: port('--tls-port', flags.tlsPort), ...(host ? { host } : {}) });
    case 'dns-01':
      if (!flags.dnsHook) throw invalidArgument('--dns-hook', 'is required with --challenge dns-01');
      return dns01Hook({
        command: flags.dnsHook,
        propagationDelayMs: seconds('--dns-wait', flags.dnsWait, 3600),
      });
    default:
      throw invalidArgument('--challenge', 'must be http-01, tls-alpn-01 or dns-01');
  }
}

function checkFlags(flags: AcmeFlags): { cert: string; key: string; domains: string[] } {
  if (!flags.domain || flags.domain.length === 0)
    throw invalidArgument('--domain', 'is required (repeat it for more names)');
  if (!flags.cert || !flags.key)
    throw invalidArgument('--cert and --key', 'are required (where the chain and key go)');
  if (flags.webroot && flags.challenge !== 'http-01')
    throw invalidArgument('--webroot', 'goes with --challenge http-01');
  if (flags.dnsHook && flags.challenge !== 'dns-01')
    throw invalidArgument('--dns-hook', 'goes with --challenge dns-01');
  if (flags.domain.some((d) => d.startsWith('*.')) && flags.challenge !== 'dns-01')
    throw invalidArgument('--domain', 'wildcard names need --challenge dns-01');
  return { cert: flags.cert, key: flags.key, domains: flags.domain };
}

function describe(info: CertificateInfo) {
  return {
    serial: info.serialNumber,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    domains: [...info.dnsNames, ...info.ipAddresses],
  };
}

async function run(flags: AcmeFlags, mode: 'issue' | 'renew'): Promise<void> {
  const { cert, key, domains } = checkFlags(flags);
  const keyType = flags.keyType as CertificateKeyType;
  if (!CERTIFICATE_KEY_TYPES.includes(keyType))
    throw invalidArgument('--key-type', `must be one of ${CERTIFICATE_KEY_TYPES.join(', ')}`);
  if (mode === 'issue' && !flags.force && (existsSync(cert) || existsSync(key)))
    throw new EnsealError(
      ErrorCode.OUTPUT_EXISTS,
      `${existsSync(cert) ? cert : key} exists; use 'enseal tls acme renew', or --force to replace it now`,
    );
  const say = (line: string) => {
    if (!flags.json) process.stderr.write(`enseal: acme: ${line}\n`);
  };
  const ca = flags.caFile ? readFileSync(flags.caFile) : undefined;
  const eab = externalAccountBinding(flags);
  const client = await openAcmeAccount({
    dir: flags.accountDir ?? defaultAccountDir(),
    passphrase: await passphrase(flags),
    directoryUrl: flags.directory ?? LETS_ENCRYPT,
    ...(ca ? { ca } : {}),
    termsOfServiceAgreed: flags.agreeTos === true,
    ...(flags.email ? { contact: flags.email.map((e) => `mailto:${e}`) } : {}),
    ...(eab ? { externalAccountBinding: eab } : {}),
    timeoutMs: 30_000,
    pollTimeoutMs: seconds('--timeout', flags.timeout, 3600),
  });
  say(`account ${client.accountUrl ?? ''}`);
  const common = {
    client,
    domains,
    keyType,
    onProgress: say,
    ...(flags.profile ? { profile: flags.profile } : {}),
  };
  let result: RenewResult | { renewed: true; info: CertificateInfo; decision: { reason: string } };
  if (mode === 'issue') {
    const solver = await solverFor(flags);
    try {
      const issued = await issueAcmeCertificate({ ...common, solver });
      await writeCertificateFiles({ cert, key }, issued.chainPem, issued.keyPem);
      result = { renewed: true, info: issued.info, decision: { reason: 'issued' } };
    } finally {
      await solver.close();
    }
  } else {
    const fraction = flags.renewFraction === undefined ? undefined : Number(flags.renewFraction);
    if (fraction !== undefined && !(fraction > 0 && fraction <= 1))
      throw invalidArgument('--renew-fraction', 'must be in (0, 1]');
    // The responder opens only if a certificate is due: a daily run binds no port when there is nothing to do.
    result = await renewIfDue({
      ...common,
      solver: () => solverFor(flags),
      files: { cert, key },
      ...(flags.force ? { force: true } : {}),
      ...(fraction !== undefined ? { fraction } : {}),
    });
  }
  const out = {
    renewed: result.renewed,
    reason: result.decision.reason,
    ...('at' in result.decision ? { renewAt: result.decision.at.toISOString() } : {}),
    ...('ari' in result ? { ari: result.ari } : {}),
    cert,
    key,
    certificate: describe(result.info),
  };
  if (flags.json) process.stdout.write(JSON.stringify(out) + '\n');
  else if (result.renewed) say(`wrote ${cert} and ${key}; valid until ${out.certificate.notAfter}`);
  else
    say(
      `not due: renewal at ${out.renewAt ?? '?'}${'ari' in result && result.ari ? ' (server window)' : ''}`,
    );
}

function addOptions(cmd: Command): Command {
  return cmd
    .option('--directory <url>', `ACME directory URL (default Let's Encrypt: ${LETS_ENCRYPT})`)
    .option('-d, --domain <name>', 'a name for the certificate (repeatable; *.name needs dns-01)', collect)
    .option('--challenge <type>', 'http-01, tls-alpn-01 or dns-01', 'http-01')
    .option('--http-port <port>', 'http-01: port of the standalone responder', '80')
    .option('--webroot <dir>', 'http-01: write the response under DIR/.well-known/acme-challenge/ instead')
    .option('--tls-port <port>', 'tls-alpn-01: port of the responder', '443')
    .option('--listen-host <addr>', 'address the http-01 / tls-alpn-01 responder binds (default all)')
    .option('--dns-hook <command>', 'dns-01: shell command that publishes/removes the TXT record (see docs)')
    .option('--dns-wait <seconds>', 'dns-01: pause after publishing, for DNS propagation', '0')
    .option('--account-dir <dir>', 'where the encrypted account key lives (default ~/.config/enseal/acme)')
    .option('--cert <file>', 'certificate chain output (PEM, replaced atomically)')
    .option('--key <file>', 'private key output (PEM, mode 0600, replaced atomically)')
    .option('--ca-file <file>', "PEM CA to trust for the ACME server's own HTTPS (private CAs, Pebble)")
    .option('--passphrase-file <file>', 'account key passphrase (else ENSEAL_ACME_PASSPHRASE, else prompt)')
    .option('--email <address>', 'account contact (repeatable)', collect)
    .option('--agree-tos', "agree to the ACME server's terms of service (needed for a new account)")
    .option('--eab-kid <kid>', 'external account binding key id, for CAs that require it')
    .option(
      '--eab-hmac-key-file <file>',
      'external account binding MAC key, base64url (else ENSEAL_ACME_EAB_HMAC_KEY)',
    )
    .option('--key-type <type>', 'certificate key: ec-p256, ec-p384, rsa-2048 or rsa-3072', 'ec-p256')
    .option('--profile <name>', 'certificate profile, when the server offers profiles')
    .option('--timeout <seconds>', 'longest wait for validation or issuance', '300')
    .option('--json', 'print the result as JSON on stdout')
    .option('--force', 'issue: replace existing files; renew: renew even if not due');
}

interface RevokeFlags {
  directory?: string;
  cert?: string;
  reason: string;
  accountDir?: string;
  caFile?: string;
  passphraseFile?: string;
  json?: boolean;
}

/** `revoke`: tells the CA the certificate must no longer be trusted (a leaked key, a retired host). */
async function revoke(flags: RevokeFlags): Promise<void> {
  if (!flags.cert) throw invalidArgument('--cert', 'is required (the certificate to revoke)');
  const pem = readFileSync(flags.cert, 'utf8');
  const first = splitPemChain(pem)[0];
  if (!first) throw new EnsealError(ErrorCode.MALFORMED, `${flags.cert}: no PEM certificate found`);
  const info = certificateInfo(pem);
  const der = base64Decode(first.replace(/-----[^-]+-----|\s/g, ''));
  const reason = Number(flags.reason);
  const ca = flags.caFile ? readFileSync(flags.caFile) : undefined;
  const client = await openAcmeAccount({
    dir: flags.accountDir ?? defaultAccountDir(),
    passphrase: await passphrase(flags),
    directoryUrl: flags.directory ?? LETS_ENCRYPT,
    ...(ca ? { ca } : {}),
    termsOfServiceAgreed: true,
  });
  await client.revokeCertificate(der, reason);
  if (flags.json)
    process.stdout.write(JSON.stringify({ revoked: true, serial: info.serialNumber, reason }) + '\n');
  else process.stderr.write(`enseal: acme: revoked ${flags.cert} (serial ${info.serialNumber})\n`);
}

export function registerTlsAcme(tls: Command): void {
  const acme = tls
    .command('acme')
    .description('Certificates from an ACME CA (http-01, tls-alpn-01, dns-01), renewed when due')
    .addHelpText(
      'after',
      "\nThe account key is stored encrypted under a passphrase. `renew` renews inside the server's ARI window\n" +
        'when it offers one, else at two thirds of the lifetime; run it daily from a timer. Files are replaced\n' +
        'atomically and `enseal serve` reloads them without a restart.\n\n' +
        'Examples:\n' +
        '  enseal tls acme issue --agree-tos --email ops@example.com -d example.com -d www.example.com \\\n' +
        '      --webroot /var/www/html --cert /etc/enseal/cert.pem --key /etc/enseal/key.pem\n' +
        "  enseal tls acme renew -d '*.example.com' --challenge dns-01 --dns-hook ./dns-hook.sh \\\n" +
        '      --cert cert.pem --key key.pem --json\n',
    );
  addOptions(acme.command('issue').description('Issue a certificate now and write it')).action(
    (flags: AcmeFlags) => run(flags, 'issue'),
  );
  addOptions(
    acme.command('renew').description('Renew when due (or missing, or --force); otherwise do nothing'),
  )
    .option('--renew-fraction <f>', 'without ARI, renew after this fraction of the lifetime (default 0.667)')
    .action((flags: AcmeFlags) => run(flags, 'renew'));
  acme
    .command('revoke')
    .description('Revoke a certificate issued to this account')
    .option('--directory <url>', `ACME directory URL (default Let's Encrypt: ${LETS_ENCRYPT})`)
    .option('--cert <file>', 'the certificate (chain) file to revoke')
    .option(
      '--reason <code>',
      'RFC 5280 reason: 0 unspecified, 1 keyCompromise, 4 superseded, 5 cessationOfOperation',
      '0',
    )
    .option('--account-dir <dir>', 'where the encrypted account key lives (default ~/.config/enseal/acme)')
    .option('--ca-file <file>', "PEM CA to trust for the ACME server's own HTTPS")
    .option('--passphrase-file <file>', 'account key passphrase (else ENSEAL_ACME_PASSPHRASE, else prompt)')
    .option('--json', 'print the result as JSON on stdout')
    .action((flags: RevokeFlags) => revoke(flags));
}
