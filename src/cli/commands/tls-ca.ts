/**
 * `enseal tls ca …`: a local development CA. `init` creates it (optionally constrained to the names given
 * with --permit, optionally with its key sealed under a passphrase), `issue` signs leaf certificates,
 * `path` prints where it lives and `trust` prints how to make browsers, the OS and tools trust it.
 */
import { X509Certificate } from 'node:crypto';
import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { EnsealError, ErrorCode, invalidArgument } from '../../crypto/index.js';
import {
  CA_KEY_TYPES,
  DEFAULT_LEAF_DAYS,
  LEAF_KEY_TYPES,
  MAX_LEAF_DAYS,
  caConstraints,
  findLocalCa,
  initLocalCa,
  issueCertificate,
  openLocalCa,
  saveIssued,
  type CaKeyType,
  type LeafKeyType,
  type LocalCa,
} from '../../tls/index.js';
import { collect, readSecretFile } from '../input.js';
import { promptPassphrase } from '../passphrase.js';
import { writeStdout } from '../run.js';

/**
 * Names a CA is constrained to when `init` gets no --permit: localhost and its subdomains, the names reserved
 * for testing and private use (RFC 6761 `.test`, ICANN's `.internal`) and the loopback addresses.
 */
export const DEFAULT_PERMIT: readonly string[] = [
  'localhost',
  '.test',
  '.internal',
  '127.0.0.0/8',
  '::1/128',
];

/** `$ENSEAL_CAROOT`, else `$XDG_DATA_HOME/enseal/ca`, else `~/.local/share/enseal/ca`. */
export function defaultCaDir(): string {
  const root = process.env.ENSEAL_CAROOT;
  if (root !== undefined && root.length > 0) return resolve(root);
  const data = process.env.XDG_DATA_HOME;
  return join(
    data !== undefined && data.length > 0 ? data : join(homedir(), '.local', 'share'),
    'enseal',
    'ca',
  );
}

function positiveInt(value: string, what: string): number {
  if (!/^\d{1,6}$/.test(value)) throw invalidArgument(what, 'must be a whole number');
  return Number(value);
}

function describeCa(ca: LocalCa, certFile: string, sealed: boolean) {
  const x = new X509Certificate(ca.cert.toString('pem'));
  const nc = caConstraints(ca);
  return {
    certificate: certFile,
    subject: ca.cert.subject,
    keyType: ca.keyType,
    keySealed: sealed,
    notAfter: ca.cert.notAfter.toISOString(),
    sha256Fingerprint: x.fingerprint256,
    permitted: nc?.permitted.map((p) => `${p.type}:${p.value}`) ?? null,
    excluded: nc?.excluded.map((p) => `${p.type}:${p.value === '' ? '(all)' : p.value}`) ?? null,
  };
}

/** How to trust the CA certificate in each common trust store. */
export function trustInstructions(certFile: string): string {
  const q = `'${certFile.replaceAll("'", "'\\''")}'`;
  return [
    `CA certificate: ${certFile}`,
    '',
    'Trust it only on machines you develop on; anyone with the CA key can issue certificates they accept',
    '(within the CA name constraints, if it has any).',
    '',
    'Debian / Ubuntu (system store: curl, wget, Python ssl, Go, most CLI tools):',
    `  sudo cp ${q} /usr/local/share/ca-certificates/enseal-local-ca.crt`,
    '  sudo update-ca-certificates',
    '  # undo: sudo rm /usr/local/share/ca-certificates/enseal-local-ca.crt && sudo update-ca-certificates --fresh',
    '',
    'Fedora / RHEL:',
    `  sudo cp ${q} /etc/pki/ca-trust/source/anchors/enseal-local-ca.pem && sudo update-ca-trust`,
    '',
    'macOS (system keychain, used by Safari and Chrome):',
    `  sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${q}`,
    '',
    'Firefox and Chrome on Linux (NSS databases; install libnss3-tools for certutil):',
    `  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n 'enseal local CA' -i ${q}`,
    '  # Firefox: repeat with -d sql:<profile dir> for each profile under ~/.mozilla/firefox,',
    '  # or set security.enterprise_roots.enabled to true to use the system store.',
    '',
    'Node.js (without touching system stores):',
    `  export NODE_EXTRA_CA_CERTS=${q}`,
    '',
    'curl:',
    `  curl --cacert ${q} https://localhost:8443/`,
    '',
    'Python requests / httpx:',
    `  export REQUESTS_CA_BUNDLE=${q}   # requests`,
    `  export SSL_CERT_FILE=${q}        # httpx, Python ssl`,
    '',
    'enseal clients:',
    `  export ENSEAL_CACERT=${q}`,
    '',
  ].join('\n');
}

async function passphraseFor(options: { passphraseFile?: string; encrypt?: boolean }, confirm: boolean) {
  if (options.passphraseFile !== undefined) return readSecretFile(options.passphraseFile, 'passphrase');
  if (options.encrypt) return promptPassphrase(confirm);
  return undefined;
}

/** The default output name for a leaf, mkcert style: `localhost+2` for three names, `_wildcard.x.test`. */
function defaultOutName(names: readonly string[]): string {
  const first = names[0]!.replace(/^\*\./, '_wildcard.').replaceAll(':', '_');
  return names.length > 1 ? `${first}+${names.length - 1}` : first;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

interface InitFlags {
  dir?: string;
  keyType: string;
  permit?: string[];
  unconstrained?: boolean;
  days?: string;
  name?: string;
  passphraseFile?: string;
  encrypt?: boolean;
  force?: boolean;
  json?: boolean;
}

interface IssueFlags {
  dir?: string;
  client?: boolean;
  server: boolean;
  days: string;
  keyType: string;
  out?: string;
  passphraseFile?: string;
  force?: boolean;
  json?: boolean;
}

export function registerTlsCa(tls: Command): void {
  const ca = tls
    .command('ca')
    .description('a local development CA (like mkcert): create it, issue certificates, trust it')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  enseal tls ca init                       # constrained to localhost, .test, .internal, loopback\n' +
        '  enseal tls ca init --permit localhost,.dev.example.com,10.0.0.0/8   # your own names instead\n' +
        '  enseal tls ca issue localhost 127.0.0.1 ::1           # writes localhost+2.pem and localhost+2-key.pem\n' +
        '  enseal tls ca issue alice.test --client --out alice    # a client certificate for mTLS\n' +
        '  enseal tls ca trust                                    # how to trust the CA\n' +
        '\nThe CA lives in $ENSEAL_CAROOT, else $XDG_DATA_HOME/enseal/ca (~/.local/share/enseal/ca).\n',
    );

  ca.command('init')
    .description('create the CA (ECDSA P-256 by default, valid 10 years)')
    .option('--dir <dir>', 'CA directory (default: $ENSEAL_CAROOT or ~/.local/share/enseal/ca)')
    .option('--key-type <type>', `${CA_KEY_TYPES.join(', ')}`, 'ecdsa-p256')
    .option(
      '--permit <names>',
      `constrain the CA to these domains and address blocks (comma-separated, repeatable); default ${DEFAULT_PERMIT.join(',')}`,
      collect,
    )
    .option('--unconstrained', 'no name constraints: the CA may vouch for any name (as mkcert does)')
    .option('--days <n>', 'CA lifetime in days (default 3650)')
    .option('--name <cn>', 'CA common name')
    .option('--passphrase-file <file>', 'seal the CA key under the passphrase in this file (Argon2id)')
    .option('--encrypt', 'seal the CA key under a passphrase typed at the terminal')
    .option('--force', 'replace an existing CA (certificates it issued stop being trusted)')
    .option('--json', 'structured output')
    .action(async (o: InitFlags) => {
      if (!CA_KEY_TYPES.includes(o.keyType as CaKeyType)) {
        throw invalidArgument('--key-type', `must be one of ${CA_KEY_TYPES.join(', ')}`);
      }
      const dir = o.dir !== undefined ? resolve(o.dir) : defaultCaDir();
      const listed = (o.permit ?? [])
        .flatMap((p) => p.split(',').map((x) => x.trim()))
        .filter((p) => p.length > 0);
      if (o.unconstrained && listed.length > 0) {
        throw invalidArgument('--unconstrained', 'cannot be combined with --permit');
      }
      // Constrained by default: a trusted local CA should not be able to vouch for real sites.
      const permit = o.unconstrained ? [] : listed.length > 0 ? listed : [...DEFAULT_PERMIT];
      const passphrase = await passphraseFor(o, true);
      const { ca: created, files } = await initLocalCa(dir, {
        keyType: o.keyType as CaKeyType,
        permit,
        ...(o.days !== undefined ? { days: positiveInt(o.days, '--days') } : {}),
        ...(o.name !== undefined ? { commonName: o.name } : {}),
        ...(passphrase !== undefined ? { passphrase } : {}),
        force: o.force ?? false,
      });
      const info = describeCa(created, files.cert, passphrase !== undefined);
      if (o.json) return writeStdout(JSON.stringify({ ...info, key: files.key }) + '\n');
      const lines = [
        `created CA in ${dir}`,
        `  certificate: ${files.cert}`,
        `  key:         ${files.key} (mode 0600${passphrase !== undefined ? ', sealed under the passphrase' : ''})`,
        `  SHA-256:     ${info.sha256Fingerprint}`,
        info.permitted === null
          ? '  constraints: none (the CA can vouch for any name)'
          : `  permitted:   ${info.permitted.join(' ')}` +
            (info.excluded !== null && info.excluded.length > 0
              ? `\n  excluded:    ${info.excluded.join(' ')}`
              : ''),
        '',
        'Next: enseal tls ca trust   (prints how to trust it)',
        '      enseal tls ca issue localhost 127.0.0.1 ::1',
        '',
      ];
      await writeStdout(lines.join('\n'));
    });

  ca.command('issue')
    .description('issue a leaf certificate for DNS names and IP addresses')
    .argument('<names...>', 'DNS names (a leading *. wildcard is allowed) and IP addresses')
    .option('--dir <dir>', 'CA directory')
    .option('--client', 'also allow client authentication (mTLS)')
    .option('--no-server', 'omit server authentication (a client-only certificate)')
    .option(
      '--days <n>',
      `lifetime in days, at most ${MAX_LEAF_DAYS} (Mozilla recommends 90)`,
      String(DEFAULT_LEAF_DAYS),
    )
    .option('--key-type <type>', `${LEAF_KEY_TYPES.join(', ')}`, 'ecdsa-p256')
    .option(
      '--out <prefix>',
      'write <prefix>.pem (leaf + CA) and <prefix>-key.pem (default: from the first name)',
    )
    .option('--passphrase-file <file>', 'passphrase for a sealed CA key (otherwise asked at the terminal)')
    .option('--force', 'overwrite existing output files')
    .option('--json', 'structured output')
    .action(async (names: string[], o: IssueFlags) => {
      if (!LEAF_KEY_TYPES.includes(o.keyType as LeafKeyType)) {
        throw invalidArgument('--key-type', `must be one of ${LEAF_KEY_TYPES.join(', ')}`);
      }
      const dir = o.dir !== undefined ? resolve(o.dir) : defaultCaDir();
      const found = await findLocalCa(dir);
      const passphrase = found.sealed
        ? await passphraseFor({ passphraseFile: o.passphraseFile, encrypt: true }, false)
        : undefined;
      const client = o.client ?? false;
      const prefix = resolve(o.out ?? defaultOutName(names));
      const files = { cert: `${prefix}.pem`, key: `${prefix}-key.pem` };
      for (const f of [files.cert, files.key]) {
        if (!o.force && (await exists(f))) {
          throw new EnsealError(ErrorCode.OUTPUT_EXISTS, `${f} exists; pass --force to overwrite it`);
        }
      }
      const { ca: loaded } = await openLocalCa(dir, passphrase);
      const issued = await issueCertificate(loaded, {
        names,
        server: o.server,
        client,
        days: positiveInt(o.days, '--days'),
        keyType: o.keyType as LeafKeyType,
      });
      await saveIssued(issued, files);
      const usage = [o.server ? 'serverAuth' : '', client ? 'clientAuth' : ''].filter(Boolean).join(', ');
      if (o.json) {
        return writeStdout(
          JSON.stringify({
            certificate: files.cert,
            key: files.key,
            names: issued.names.map((n) => `${n.type}:${n.value}`),
            usage: usage.split(', '),
            notAfter: issued.notAfter.toISOString(),
            serialNumber: issued.serialNumber,
          }) + '\n',
        );
      }
      await writeStdout(
        [
          `issued a certificate for ${issued.names.map((n) => n.value).join(', ') || '(no names)'} (${usage})`,
          `  certificate: ${files.cert} (leaf + CA)`,
          `  key:         ${files.key} (mode 0600)`,
          `  expires:     ${issued.notAfter.toISOString()}`,
          '',
        ].join('\n'),
      );
    });

  ca.command('path')
    .description('print the CA directory (and with --cert, the CA certificate file)')
    .option('--dir <dir>', 'CA directory')
    .option('--cert', 'print the CA certificate file instead')
    .option('--json', 'structured output')
    .action(async (o: { dir?: string; cert?: boolean; json?: boolean }) => {
      const dir = o.dir !== undefined ? resolve(o.dir) : defaultCaDir();
      if (o.json) {
        const found = await findLocalCa(dir).catch(() => undefined);
        return writeStdout(
          JSON.stringify({ dir, certificate: found?.cert ?? null, key: found?.key ?? null }) + '\n',
        );
      }
      await writeStdout(`${o.cert ? (await findLocalCa(dir)).cert : dir}\n`);
    });

  ca.command('trust')
    .description('print how to trust the CA: Debian/Ubuntu, Fedora, macOS, Firefox/NSS, Node, curl, Python')
    .option('--dir <dir>', 'CA directory')
    .action(async (o: { dir?: string }) => {
      const dir = o.dir !== undefined ? resolve(o.dir) : defaultCaDir();
      const found = await findLocalCa(dir);
      await writeStdout(trustInstructions(found.cert));
    });
}
