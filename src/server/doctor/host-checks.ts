/**
 * The checks `enseal doctor` makes on this host's files, without the server: where the store lives (an
 * encrypted block device or not) and who may read the store, the key, seal and token files and the TLS files.
 */
import { statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { placementOf } from './block-device.js';
import type { DoctorContext } from './context.js';
import {
  fail,
  modeText,
  pass,
  result,
  shellQuote,
  unknown,
  warn,
  type CheckResult,
  type Outcome,
} from './result.js';

/** Who may see a file: `private` (the service only), `public` (anyone may read, nobody else write). */
type Visibility = 'private' | 'public' | 'config';

interface Finding {
  readonly path: string;
  /** What is wrong, or undefined when nothing is. */
  readonly problem?: string;
  readonly fix?: string;
  readonly mode: number;
}

type Inspection =
  | Finding
  | { readonly path: string; readonly missing: true }
  | { readonly path: string; readonly error: string };

function inspect(path: string, visibility: Visibility): Inspection {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') return { path, missing: true };
    return {
      path,
      error: `cannot stat ${path} (${code ?? 'error'}): run enseal doctor as the service's user or root`,
    };
  }
  const mode = st.mode & 0o7777;
  const q = shellQuote(path);
  const dir = st.isDirectory();
  if (visibility === 'private' && (mode & 0o077) !== 0) {
    const who = (mode & 0o007) !== 0 ? 'others' : 'its group';
    return {
      path,
      mode,
      problem: `${path} is ${modeText(mode)}: ${who} may ${dir ? 'enter' : 'read'} it`,
      fix: `chmod ${dir ? '700' : '600'} ${q}`,
    };
  }
  if (visibility === 'config' && ((mode & 0o007) !== 0 || (mode & 0o020) !== 0)) {
    return {
      path,
      mode,
      problem: `${path} is ${modeText(mode)} and holds a database password`,
      fix: `chmod 640 ${q}`,
    };
  }
  if (visibility === 'public' && (mode & 0o022) !== 0 && !(dir && (mode & 0o1000) !== 0)) {
    return {
      path,
      mode,
      problem: `${path} is ${modeText(mode)}: writable by ${(mode & 0o002) !== 0 ? 'anyone' : 'its group'}, so it can be replaced`,
      fix: `chmod go-w ${q}`,
    };
  }
  return { path, mode };
}

/** The outcome of inspecting `files`: a failure naming every problem with its chmod, or a pass listing modes. */
function permissionsOutcome(inspected: readonly Inspection[], passText: string): Outcome {
  const problems = inspected.filter((i): i is Finding => 'problem' in i && i.problem !== undefined);
  const errors = inspected.filter((i): i is { path: string; error: string } => 'error' in i);
  if (problems.length > 0)
    return fail(problems.map((p) => p.problem).join('; '), problems.map((p) => p.fix).join(' && '));
  if (errors.length > 0)
    return unknown(errors.map((e) => e.error).join('; '), 'run enseal doctor as the service user (or root)');
  const seen = inspected.filter((i): i is Finding => 'mode' in i);
  return pass(`${passText}: ${seen.map((f) => `${f.path} ${modeText(f.mode)}`).join(', ')}`);
}

const ENCRYPT_FIX =
  'put the data directory on a LUKS volume (cryptsetup luksFormat DEVICE; cryptsetup open DEVICE enseal-data; ' +
  'mkfs.ext4 /dev/mapper/enseal-data; mount it at the data directory), or confirm the disk is a self-encrypting ' +
  'drive with locking on';

/** `store-encrypted`: the store's directory sits on dm-crypt (LUKS). */
export function checkStoreEncrypted(ctx: DoctorContext): CheckResult {
  const store = ctx.files.store;
  if (store.kind === 'postgres')
    return result(
      'store-encrypted',
      unknown(
        `the store is PostgreSQL on ${store.host}: its files are on the database host`,
        `run this check where PostgreSQL keeps its data_directory (SHOW data_directory), or check your provider's encryption at rest`,
      ),
    );
  const directory = dirname(store.path);
  const placement = placementOf(directory, ctx.roots);
  if (placement === undefined)
    return result(
      'store-encrypted',
      unknown(
        `cannot read the mount table (${ctx.roots.proc ?? '/proc'}/self/mountinfo): not Linux?`,
        'check that the disk under the data directory is encrypted (FileVault, BitLocker, LUKS, or your provider)',
      ),
    );
  const where = `${placement.directory} is on ${placement.verdict.detail}`;
  switch (placement.verdict.kind) {
    case 'encrypted':
      return result('store-encrypted', pass(where));
    case 'plain':
      return result('store-encrypted', fail(where, ENCRYPT_FIX));
    case 'memory':
      return result(
        'store-encrypted',
        warn(
          `${where}: nothing persists a restart, and swap may write it out`,
          'keep the store on a persistent encrypted volume',
        ),
      );
    case 'virtual':
      return result(
        'store-encrypted',
        unknown(
          `${where}: whether it is encrypted is decided outside this machine`,
          'check your provider: encryption at rest of the volume (EBS, Persistent Disk, Azure Disk encryption), or use LUKS inside the guest',
        ),
      );
    default:
      return result(
        'store-encrypted',
        unknown(
          `${where}: whether it is encrypted cannot be told from here`,
          `check your provider or host: ${ENCRYPT_FIX}`,
        ),
      );
  }
}

/** `store-permissions`: the data directory and the SQLite files are the service's alone. */
export function checkStorePermissions(ctx: DoctorContext): CheckResult {
  const store = ctx.files.store;
  if (store.kind === 'postgres')
    return result(
      'store-permissions',
      unknown(
        `the store is PostgreSQL on ${store.host}: its files belong to the database server`,
        'on the database host, check the data_directory is 0700 (PostgreSQL refuses looser) and that only the enseal role may connect (pg_hba.conf)',
      ),
    );
  const dir = dirname(store.path);
  const dirInspection = inspect(dir, 'private');
  if ('missing' in dirInspection)
    return result(
      'store-permissions',
      unknown(
        `the store's directory ${dir} does not exist yet`,
        'start the server once (it creates the directory 0700), then run enseal doctor again',
      ),
    );
  const files = ['', '-wal', '-shm', '-journal'].map((suffix) => inspect(store.path + suffix, 'private'));
  if ('missing' in files[0]!)
    return result(
      'store-permissions',
      unknown(`no store file at ${store.path} yet`, 'start the server once, then run enseal doctor again'),
    );
  const present = [dirInspection, ...files.filter((f) => !('missing' in f))];
  return result('store-permissions', permissionsOutcome(present, 'only the owner may read the store'));
}

/** `key-permissions`: unseal key, root token and credential files are private (the Shamir seal keeps none). */
export function checkKeyPermissions(ctx: DoctorContext): CheckResult {
  const candidates: Inspection[] = [
    inspect(ctx.files.devUnsealKey, 'private'),
    inspect(ctx.files.devRootToken, 'private'),
  ];
  if (ctx.configFile && ctx.files.store.kind === 'postgres' && ctx.files.store.hasPassword)
    candidates.push(inspect(ctx.configFile, 'config'));
  const present = candidates.filter((c) => !('missing' in c));
  if (present.length === 0)
    return result(
      'key-permissions',
      pass(
        `no unseal key, root token or password file on disk (looked for ${ctx.files.devUnsealKey}, ${ctx.files.devRootToken})`,
      ),
    );
  return result('key-permissions', permissionsOutcome(present, 'key and token files are private'));
}

/** `tls-permissions`: the TLS private keys are private; certificates and their directories not writable by others. */
export function checkTlsPermissions(ctx: DoctorContext): CheckResult {
  const tls = ctx.files.tls;
  if (tls === undefined)
    return result(
      'tls-permissions',
      unknown('no TLS files are configured', 'configure tls-cert and tls-key (see the tls-profile check)'),
    );
  const inspections: Inspection[] = [inspect(tls.key, 'private'), inspect(tls.cert, 'public')];
  if (tls.caKey) inspections.push(inspect(tls.caKey, 'private'));
  if (tls.caCert) inspections.push(inspect(tls.caCert, 'public'));
  if (ctx.files.tlsClientCa) inspections.push(inspect(ctx.files.tlsClientCa, 'public'));
  const missing = inspections.filter((i) => 'missing' in i && (i.path === tls.key || i.path === tls.cert));
  if (missing.length > 0)
    return result(
      'tls-permissions',
      fail(
        `missing: ${missing.map((m) => m.path).join(', ')}`,
        ctx.config.dev
          ? 'start the dev server once: it creates its certificates'
          : 'put the certificate and key at the configured paths',
      ),
    );
  // A directory others may write lets them swap the key or the certificate by rename.
  const dirs = [...new Set([tls.key, tls.cert].map((f) => dirname(f)))].map((d) => inspect(d, 'public'));
  const present = [...inspections, ...dirs].filter((i) => !('missing' in i));
  return result(
    'tls-permissions',
    permissionsOutcome(present, 'TLS keys private, certificates read-only to others'),
  );
}
