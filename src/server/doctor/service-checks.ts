/**
 * The checks `enseal doctor` makes on the running server (through its API) and on its configuration: the
 * seal, TLS (through the TLS auditor, or the certificate file when no address is given), the audit chain,
 * rotation, and the root token. Without an address, or without a token where one is needed, a check says
 * `unknown` and how to supply what it lacks.
 */
import { readFileSync } from 'node:fs';
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import { certificateInfo, expiryWarning, meets } from '../../tls/index.js';
import type { DoctorApi, DoctorContext, SealStatusReply } from './context.js';
import { fail, pass, result, unknown, warn, type CheckResult, type Outcome } from './result.js';

export const NO_SERVER_FIX =
  'give the running server: export ENSEAL_ADDR=https://HOST:8200 (and ENSEAL_CACERT=CA.pem for a private CA), or pass --address and --ca-cert';
export const NO_TOKEN_FIX =
  'give a token: export ENSEAL_TOKEN=… (or --token); it needs sudo on sys/audit/* and read and list on transit/keys/*';

const DAY_MS = 86_400_000;
const DEV_CA_FIX = 'in production use a certificate from your CA or ACME (enseal tls acme issue)';
/** A key with rotation off is overdue once its newest version is older than this (NIST SP 800-57's upper bound). */
const CRYPTOPERIOD_DAYS = 365;
/** The scheduler runs every minute while unsealed; an hour late means it did not run. */
const ROTATION_GRACE_MS = 60 * 60 * 1000;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const SEALED = unknown(
  'the server is sealed',
  'unseal it: enseal operator unseal (once per share, up to the threshold)',
);

/** Why a server call gave no answer, as an `unknown` outcome (a refusal says which capability was missing). */
function noAnswer(err: unknown, needs: string): Outcome {
  if (err instanceof EnsealError && err.code === ErrorCode.PERMISSION_DENIED)
    return unknown(`the token may not ${needs}`, `use a token whose policy allows it: ${needs}`);
  if (err instanceof EnsealError && err.code === ErrorCode.SEALED) return SEALED;
  return unknown(`the server did not answer: ${errorText(err)}`, NO_SERVER_FIX);
}

/**
 * The server's API and seal status when a check that needs the server (and a token, when `token`) can run,
 * else why not: no address, no token, unreachable, not initialised, or sealed.
 */
async function ready(
  ctx: DoctorContext,
  token: boolean,
): Promise<{ blocked: Outcome } | { api: DoctorApi; status: SealStatusReply }> {
  if (ctx.server === undefined) return { blocked: unknown('no server address given', NO_SERVER_FIX) };
  if (token && !ctx.server.hasToken) return { blocked: unknown('no token given', NO_TOKEN_FIX) };
  const status = await ctx.sealStatus();
  if (!status.ok) return { blocked: noAnswer(status.error, 'read sys/seal-status') };
  if (!status.value.initialized)
    return { blocked: unknown('the server is not initialised', 'enseal operator init') };
  if (token && status.value.sealed) return { blocked: SEALED };
  return { api: ctx.server.api, status: status.value };
}

/** `server`: the address answers, and the server is initialised and unsealed. */
export async function checkServer(ctx: DoctorContext): Promise<CheckResult> {
  if (ctx.server === undefined) return result('server', unknown('no server address given', NO_SERVER_FIX));
  const address = ctx.server.address;
  const status = await ctx.sealStatus();
  if (!status.ok)
    return result(
      'server',
      fail(
        `cannot reach ${address}: ${errorText(status.error)}`,
        `start the server (systemctl start enseal) or correct ENSEAL_ADDR; give its CA with ENSEAL_CACERT`,
      ),
    );
  const s = status.value;
  if (!s.initialized)
    return result(
      'server',
      fail(`${address} is not initialised`, 'enseal operator init --shares 5 --threshold 3'),
    );
  if (s.sealed)
    return result(
      'server',
      warn(
        `${address} is sealed (${s.progress}/${s.t} shares given): the checks that need its keys cannot run`,
        `enseal operator unseal, by ${s.t} share holders`,
      ),
    );
  return result('server', pass(`${address} answers, initialised and unsealed`));
}

/** `seal-type`: Shamir with a threshold of two or more; never the dev seal, whose unseal key lies in a file. */
export async function checkSealType(ctx: DoctorContext): Promise<CheckResult> {
  const keyFile = ctx.files.devUnsealKey;
  if (ctx.config.dev)
    return result(
      'seal-type',
      fail(
        `dev mode: the unseal key is a file (${keyFile}) beside the store, and the root token is in ${ctx.files.devRootToken}`,
        'run without --dev (and without dev = true in the config) on a fresh store, then enseal operator init --shares 5 --threshold 3',
      ),
    );
  let fileSeal = false;
  try {
    fileSeal = readFileSync(keyFile, 'utf8').includes('enseal DEVELOPMENT root key');
  } catch {
    // no dev seal file: good
  }
  if (fileSeal)
    return result(
      'seal-type',
      fail(
        `a dev seal file lies in the data directory (${keyFile}): anyone who can read it can open every key`,
        `if this store was initialised in dev mode, move its keys to a new Shamir-sealed server (enseal operator backup / restore); then shred ${keyFile}`,
      ),
    );
  const server = await ready(ctx, false);
  if ('blocked' in server) return result('seal-type', server.blocked);
  const { type = 'shamir', t, n } = server.status;
  if (type === 'dev')
    return result(
      'seal-type',
      fail(
        'the server was initialised with the dev seal (the unseal key in a file)',
        'move the keys to a new Shamir-sealed server: enseal operator backup, then restore there',
      ),
    );
  if (type === 'passphrase')
    return result(
      'seal-type',
      warn(
        'passphrase seal: one person can unseal alone (no split knowledge)',
        'rekey to Shamir shares held by different people',
      ),
    );
  if (t < 2)
    return result(
      'seal-type',
      warn(
        `Shamir with a threshold of ${t}: one share holder can unseal alone`,
        'enseal operator rekey --shares 5 --threshold 3 (with a current share)',
      ),
    );
  return result('seal-type', pass(`Shamir seal: ${t} of ${n} shares unseal (split knowledge, dual control)`));
}

/** The address audited (the TLS audit runs only when there is one). */
function auditedAddress(ctx: DoctorContext): string {
  return ctx.server?.address ?? '';
}

const OLD_PROTOCOLS = ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1'] as const;

/** `tls-profile`: what the auditor finds on the running server, else what the configuration asks for. */
export async function checkTlsProfile(ctx: DoctorContext): Promise<CheckResult> {
  const profileFix =
    'tls-profile = "modern" (TLS 1.3 only) or "intermediate" (adds TLS 1.2 ECDHE AEAD), with tls-cert and tls-key';
  if (ctx.config.insecureHttp)
    return result(
      'tls-profile',
      fail(
        'insecure-http: tokens and plaintexts cross the network in clear',
        `remove insecure-http; ${profileFix}`,
      ),
    );
  if (ctx.server && ctx.server.address.startsWith('http:'))
    return result('tls-profile', fail(`${ctx.server.address} is plain HTTP`, profileFix));
  const audit = await ctx.tlsAudit();
  if (audit !== undefined && !audit.ok)
    return result(
      'tls-profile',
      unknown(`the TLS audit of ${auditedAddress(ctx)} failed: ${errorText(audit.error)}`, NO_SERVER_FIX),
    );
  if (audit !== undefined) {
    const r = audit.value;
    const accepted = Object.entries(r.protocols)
      .filter(([, on]) => on)
      .map(([p]) => p);
    const old = OLD_PROTOCOLS.filter((p) => r.protocols[p]);
    const summary = `${auditedAddress(ctx)}: ${accepted.join(', ')}; grade ${r.rating.gradeIgnoringTrust}`;
    if (old.length > 0)
      return result('tls-profile', fail(`${summary}: accepts ${old.join(', ')}`, profileFix));
    if (r.forwardSecrecy !== 'all' || r.aead !== 'all')
      return result(
        'tls-profile',
        fail(`${summary}: forward secrecy ${r.forwardSecrecy}, AEAD ${r.aead}`, profileFix),
      );
    if (!meets(r.rating.gradeIgnoringTrust, 'A'))
      return result(
        'tls-profile',
        warn(
          `${summary}: ${r.rating.caps.map((c) => c.reason).join('; ') || 'below A'}`,
          `enseal tls audit ${r.target.host}:${r.target.port} for the details`,
        ),
      );
    return result('tls-profile', pass(`${summary}; forward secrecy and AEAD for every suite`));
  }
  if (ctx.files.tls === undefined)
    return result('tls-profile', unknown('no TLS certificate is configured', profileFix));
  const profile = ctx.config.tlsProfile ?? 'modern';
  return result(
    'tls-profile',
    pass(
      `configured profile ${profile} (${profile === 'modern' ? 'TLS 1.3 only' : 'TLS 1.2 ECDHE AEAD and TLS 1.3'}); not audited`,
      `to audit the running server too: ${NO_SERVER_FIX}`,
    ),
  );
}

/** `tls-certificate`: trusted, for the right name, and not expired or about to (auditor, else the file). */
export async function checkTlsCertificate(ctx: DoctorContext): Promise<CheckResult> {
  const renew =
    'renew it: enseal tls acme renew (or your CA); the server reloads the files without a restart';
  const audit = await ctx.tlsAudit();
  if (audit?.ok && audit.value.certificate) {
    const c = audit.value.certificate;
    const what = `${c.subject} from ${c.issuer}, valid until ${c.notAfter} (${c.daysLeft} days)`;
    if (c.expired || c.notYetValid)
      return result('tls-certificate', fail(`${what}: ${c.expired ? 'expired' : 'not yet valid'}`, renew));
    if (!c.trusted)
      return result(
        'tls-certificate',
        fail(
          `${what}: not trusted (${c.trustError ?? 'unknown issuer'})`,
          'serve the full chain; for a private CA give it with ENSEAL_CACERT (or --ca-cert)',
        ),
      );
    if (!c.nameMatches)
      return result(
        'tls-certificate',
        fail(`${what}: does not name ${c.checkedName}`, 'issue the certificate for the name clients use'),
      );
    if (c.weakSignature)
      return result(
        'tls-certificate',
        fail(`${what}: signed with ${c.weakSignature}`, 'reissue with a SHA-256 (or better) signature'),
      );
    const validity = { notBefore: new Date(c.notBefore), notAfter: new Date(c.notAfter) };
    const near = expiryWarning(
      { ...validity, subject: c.subject, issuer: c.issuer, serialNumber: '', dnsNames: [], ipAddresses: [] },
      ctx.now,
    );
    if (near) return result('tls-certificate', warn(`${what}: ${near}`, renew));
    if (ctx.config.dev)
      return result('tls-certificate', warn(`${what}: issued by the development CA`, DEV_CA_FIX));
    return result('tls-certificate', pass(`${what}; trusted, name matches`));
  }
  const tls = ctx.files.tls;
  if (tls === undefined)
    return result(
      'tls-certificate',
      unknown('no TLS certificate is configured', 'configure tls-cert and tls-key'),
    );
  let info;
  try {
    info = certificateInfo(readFileSync(tls.cert, 'utf8'));
  } catch (err) {
    return result(
      'tls-certificate',
      fail(
        `cannot read the certificate ${tls.cert}: ${errorText(err)}`,
        'put a PEM certificate chain at the tls-cert path',
      ),
    );
  }
  const what = `${tls.cert}: ${info.subject}, valid until ${info.notAfter.toISOString()}`;
  const near = expiryWarning(info, ctx.now);
  if (info.notAfter.getTime() <= ctx.now.getTime())
    return result('tls-certificate', fail(`${what}: expired`, renew));
  if (near) return result('tls-certificate', warn(`${what}: ${near}`, renew));
  if (ctx.config.dev)
    return result('tls-certificate', warn(`${what}: issued by the development CA`, DEV_CA_FIX));
  return result(
    'tls-certificate',
    pass(`${what}; trust not checked`, `to check trust and name on the running server too: ${NO_SERVER_FIX}`),
  );
}

/** `audit-chain`: the server verifies its audit log's hash chain. */
export async function checkAuditChain(ctx: DoctorContext): Promise<CheckResult> {
  const server = await ready(ctx, true);
  if ('blocked' in server) return result('audit-chain', server.blocked);
  const api = server.api;
  let r;
  try {
    r = await api.auditVerify();
  } catch (err) {
    return result('audit-chain', noAnswer(err, 'verify the audit log (sudo on sys/audit/verify)'));
  }
  if (r.ok) return result('audit-chain', pass(`${r.entries} entries, hash chain intact`));
  const first = r.problems
    .slice(0, 5)
    .map((p) => `${p.kind} at ${p.seq}`)
    .join(', ');
  return result(
    'audit-chain',
    fail(
      `audit log does not verify: ${r.problems.length} problems (${first})`,
      'treat it as an incident: enseal audit verify lists every problem; compare with a checkpoint kept off the server (enseal audit verify --checkpoint FILE)',
    ),
  );
}

/** The creation time (ms) of a key's newest version, from `read key`'s `keys` map. */
function latestVersionTime(key: Record<string, unknown>): number | undefined {
  const versions = key.keys as Record<string, unknown> | undefined;
  const v = versions?.[String(key.latest_version)];
  if (typeof v === 'number') return v * 1000;
  if (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { creation_time?: unknown }).creation_time === 'string'
  )
    return Date.parse((v as { creation_time: string }).creation_time);
  return undefined;
}

/** `key-rotation`: no key past its rotation date, and none with rotation off that is older than a cryptoperiod. */
export async function checkKeyRotation(ctx: DoctorContext): Promise<CheckResult> {
  const server = await ready(ctx, true);
  if ('blocked' in server) return result('key-rotation', server.blocked);
  const api = server.api;
  let names: string[];
  try {
    names = await api.listKeys();
  } catch (err) {
    return result('key-rotation', noAnswer(err, 'list keys (list on transit/keys)'));
  }
  const now = ctx.now.getTime();
  const overdue: string[] = [];
  const off: string[] = [];
  for (const name of names) {
    let key: Record<string, unknown>;
    try {
      key = await api.readKey(name);
    } catch (err) {
      return result('key-rotation', noAnswer(err, `read keys (read on transit/keys/${name})`));
    }
    if (key.deletion_scheduled_at) continue;
    const next = typeof key.next_rotation === 'string' ? Date.parse(key.next_rotation) : undefined;
    if (next !== undefined) {
      if (next + ROTATION_GRACE_MS < now)
        overdue.push(`${name} (due ${new Date(next).toISOString().slice(0, 10)})`);
      continue;
    }
    const created = latestVersionTime(key);
    const age = created === undefined ? 0 : (now - created) / DAY_MS;
    if (age > CRYPTOPERIOD_DAYS)
      overdue.push(`${name} (rotation off, newest version ${Math.floor(age)} days old)`);
    else off.push(name);
  }
  const list = (xs: string[]) =>
    xs.slice(0, 10).join(', ') + (xs.length > 10 ? `, and ${xs.length - 10} more` : '');
  if (overdue.length > 0)
    return result(
      'key-rotation',
      fail(
        `${overdue.length} of ${names.length} keys overdue for rotation: ${list(overdue)}`,
        'enseal keys rotate NAME for each; keep the server unsealed so its scheduler rotates on time, and set enseal keys config NAME --auto-rotate-period 90d where rotation is off',
      ),
    );
  if (off.length > 0)
    return result(
      'key-rotation',
      warn(
        `automatic rotation is off for ${off.length} of ${names.length} keys: ${list(off)}`,
        'enseal keys config NAME --auto-rotate-period 365d (or shorter), unless the key is rotated by hand',
      ),
    );
  return result('key-rotation', pass(`${names.length} keys, none overdue for rotation`));
}

/** `root-token`: the root token made at init has been revoked (read from the audit log's init and revoke entries). */
export async function checkRootToken(ctx: DoctorContext): Promise<CheckResult> {
  const server = await ready(ctx, true);
  if ('blocked' in server) return result('root-token', server.blocked);
  const api = server.api;
  const revokeFix =
    'give operators an identity that outlives it (a client certificate with an admin policy, see docs/operations.md), then ' +
    'revoke the root token: curl -X POST -H "X-Vault-Token: $ROOT_TOKEN" $ENSEAL_ADDR/v1/auth/token/revoke-self';
  let rootAccessor: string | undefined;
  let initTime: string | undefined;
  let revoked: { time: string; caller: string } | undefined;
  let scanned = 0;
  try {
    const inits = await api.auditQuery({ op: 'init', limit: 10 });
    const init = inits.find((e) => typeof e.detail?.root_token_accessor === 'string');
    rootAccessor = init?.detail?.root_token_accessor as string | undefined;
    initTime = init?.time;
    if (rootAccessor !== undefined) {
      const revokes = await api.auditQuery({ op: 'token.revoke', limit: 1000 });
      scanned = revokes.length;
      const hit = revokes.find((e) => e.outcome === 'ok' && e.detail?.accessor === rootAccessor);
      if (hit) revoked = { time: hit.time, caller: hit.caller };
    }
  } catch (err) {
    return result('root-token', noAnswer(err, 'query the audit log (sudo on sys/audit/query)'));
  }
  if (rootAccessor === undefined)
    return result(
      'root-token',
      unknown(
        'the audit log names no root token made at init',
        'check by hand that the root token from enseal operator init no longer works',
      ),
    );
  if (revoked)
    return result(
      'root-token',
      pass(
        `the root token made at init (accessor ${rootAccessor}) was revoked at ${revoked.time} by ${revoked.caller}`,
      ),
    );
  let self: { accessor: string } | undefined;
  try {
    self = await api.lookupSelf();
  } catch {
    // the accessor comparison below is only a sharper message
  }
  if (self?.accessor === rootAccessor)
    return result(
      'root-token',
      fail(
        `the token enseal doctor was given is the root token made at init (accessor ${rootAccessor}), and it is alive`,
        revokeFix,
      ),
    );
  if (scanned >= 1000)
    return result(
      'root-token',
      unknown(
        `the last 1000 revocations do not include the root token (accessor ${rootAccessor})`,
        'check by hand that the root token from init no longer works',
      ),
    );
  return result(
    'root-token',
    fail(
      `the root token made at init (${initTime ?? 'time unknown'}, accessor ${rootAccessor}) was never revoked: it never expires`,
      revokeFix,
    ),
  );
}
