/**
 * `/v1/transit/*`: Vault Transit's API over the key manager, with Vault's request and response shapes so
 * Vault clients (hvac, node-vault, the `vault` CLI) work unchanged. Values travel base64-encoded, as in Vault.
 */
import {
  base64Decode,
  base64Encode,
  digest,
  EnsealError,
  ErrorCode,
  hexEncode,
  invalidArgument,
  randomBytes,
  type HashName,
} from '../crypto/index.js';
import { parseAgeIdentityFile } from '../formats/index.js';
import {
  backupKey,
  restoreBackup,
  type CallContext,
  type CreateKeyOptions,
  type ExportKind,
  type KeyConfigUpdate,
  type KeyInfo,
  type KeyManager,
  type KeyType,
} from '../kms/index.js';
import { callerOf, HttpError, vaultResponse, type FastifyInstance, type FastifyRequest } from './http.js';
import type { RouteAccess } from './route-access.js';
import {
  base64,
  batchInput,
  body,
  EMPTY_BODY,
  LIST_FLAG,
  loose,
  NO_CONTENT,
  object,
  params,
  query,
  responses,
  strings,
  text,
  vault,
  documented,
  type RouteSchema,
  type Schema,
} from './route-docs.js';

type Body = Record<string, unknown>;
const MAX_BATCH = 10_000;

function ctxOf(request: FastifyRequest): CallContext {
  return { caller: callerOf(request) };
}

function bodyOf(request: FastifyRequest): Body {
  const b = request.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b))
    throw new HttpError(400, 'request body must be a JSON object');
  return b as Body;
}

function b64(what: string, value: unknown, required = true): Uint8Array | undefined {
  if (value === undefined || value === null || value === '') {
    if (required) throw invalidArgument(what, 'is required (base64)');
    return value === '' ? new Uint8Array(0) : undefined;
  }
  if (typeof value !== 'string') throw invalidArgument(what, 'must be a base64 string');
  try {
    return base64Decode(value);
  } catch {
    throw invalidArgument(what, 'must be valid base64');
  }
}

function int(what: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw invalidArgument(what, 'must be a non-negative integer');
  return n;
}

function bool(what: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw invalidArgument(what, 'must be a boolean');
}

/** Vault durations: seconds as a number, or "90d", "24h", "30m", "45s". */
export function durationMs(what: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value * 1000;
  if (typeof value === 'string') {
    const m = /^(\d{1,9})(s|m|h|d)?$/.exec(value.trim());
    if (m) return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 's']!;
  }
  throw invalidArgument(what, 'must be a duration such as 3600, "24h" or "90d"');
}

function name(request: FastifyRequest): string {
  return (request.params as { name: string }).name;
}

/** A key's state in Vault's `read key` shape (plus enseal's rotation and deletion fields). */
export function keyData(info: KeyInfo): Record<string, unknown> {
  const signing = info.purpose === 'sign';
  const keys: Record<string, unknown> = {};
  for (const v of info.versions) {
    const created = Math.floor(Date.parse(v.createdAt) / 1000);
    keys[String(v.version)] = signing
      ? { public_key: v.publicKey, creation_time: v.createdAt, name: info.type }
      : created;
  }
  return {
    name: info.name,
    type: info.type,
    derived: info.derived,
    exportable: info.exportable,
    allow_plaintext_backup: info.allowPlaintextBackup,
    deletion_allowed: info.deletionAllowed,
    latest_version: info.latestVersion,
    min_available_version: info.minAvailableVersion,
    min_decryption_version: info.minDecryptionVersion,
    min_encryption_version: info.minEncryptionVersion,
    supports_encryption: info.purpose === 'encrypt',
    supports_decryption: info.purpose === 'encrypt',
    supports_derivation: info.purpose === 'encrypt',
    supports_signing: signing,
    auto_rotate_period: Math.floor(info.autoRotatePeriodMs / 1000),
    keys,
    next_rotation: info.nextRotation,
    deletion_scheduled_at: info.deletionScheduledAt,
    // enseal: encryptions reserved per version against the safe bound (0: no bound, e.g. 192-bit nonces).
    max_encryptions_per_version: info.maxEncryptionsPerVersion,
    encryptions_reserved: Object.fromEntries(
      info.versions.map((v) => [String(v.version), v.encryptionsReserved]),
    ),
  };
}

interface BatchOutcome {
  results: Record<string, unknown>[];
  failed: number;
}

/**
 * Runs every batch item, each on its own: one bad item yields an `error` in its slot and never aborts the
 * others (the Vault behaviour users asked for).
 */
async function runBatch(
  items: unknown,
  fn: (item: Body) => Promise<Record<string, unknown>>,
): Promise<BatchOutcome> {
  if (!Array.isArray(items) || items.length === 0)
    throw invalidArgument('batch_input', 'must be a non-empty list');
  if (items.length > MAX_BATCH) throw invalidArgument('batch_input', `must have at most ${MAX_BATCH} items`);
  let failed = 0;
  const results = await Promise.all(
    items.map(async (raw) => {
      const item = (typeof raw === 'object' && raw !== null ? raw : {}) as Body;
      const reference = typeof item.reference === 'string' ? { reference: item.reference } : {};
      try {
        return { ...(await fn(item)), ...reference };
      } catch (err) {
        failed++;
        if (err instanceof EnsealError && err.code === ErrorCode.SEALED) throw err;
        const message = err instanceof EnsealError ? `${err.code}: ${err.message}` : 'internal error';
        return { error: message, ...reference };
      }
    }),
  );
  return { results, failed };
}

async function batchOr(
  request: FastifyRequest,
  reply: { code(n: number): unknown },
  single: (item: Body) => Promise<Record<string, unknown>>,
): Promise<Record<string, unknown>> {
  const body = bodyOf(request);
  if (body.batch_input === undefined) return vaultResponse(await single(body));
  const { results, failed } = await runBatch(body.batch_input, (item) =>
    single({ ...body, ...item, batch_input: undefined }),
  );
  return batchStatus(body, reply, results, failed);
}

/**
 * Status of a batch answer: 200, the caller's `partial_failure_response_code` when some items failed, 400
 * when all did. Any 4xx also carries Vault's `errors` list, so clients that look only there see the failure.
 */
function batchStatus(
  body: Body,
  reply: { code(n: number): unknown },
  results: Record<string, unknown>[],
  failed: number,
): Record<string, unknown> {
  let status = 200;
  if (failed > 0) {
    const code = int('partial_failure_response_code', body.partial_failure_response_code) ?? 400;
    status = failed === results.length ? 400 : code;
    reply.code(status);
  }
  const extra =
    status >= 400 ? { errors: [`${failed} of ${results.length} batch items failed; see batch_results`] } : {};
  return { ...vaultResponse({ batch_results: results }), ...extra };
}

function createOptions(body: Body): CreateKeyOptions {
  const type = body.type ?? 'aes256-gcm96';
  if (typeof type !== 'string') throw invalidArgument('type', 'must be a string');
  const period = durationMs('auto_rotate_period', body.auto_rotate_period);
  const keySize = int('key_size', body.key_size);
  return {
    type: type as KeyType,
    ...(bool('derived', body.derived) !== undefined ? { derived: bool('derived', body.derived)! } : {}),
    ...(bool('exportable', body.exportable) !== undefined
      ? { exportable: bool('exportable', body.exportable)! }
      : {}),
    ...(bool('allow_plaintext_backup', body.allow_plaintext_backup) !== undefined
      ? { allowPlaintextBackup: bool('allow_plaintext_backup', body.allow_plaintext_backup)! }
      : {}),
    ...(period !== undefined ? { autoRotatePeriodMs: period } : {}),
    ...(keySize !== undefined && type === 'hmac' ? { hmacKeyBytes: keySize } : {}),
  };
}

function configUpdate(body: Body): KeyConfigUpdate {
  const u: KeyConfigUpdate = {};
  const minDec = int('min_decryption_version', body.min_decryption_version);
  const minEnc = int('min_encryption_version', body.min_encryption_version);
  if (minDec !== undefined) u.minDecryptionVersion = minDec;
  if (minEnc !== undefined) u.minEncryptionVersion = minEnc;
  for (const [field, key] of [
    ['deletion_allowed', 'deletionAllowed'],
    ['exportable', 'exportable'],
    ['allow_plaintext_backup', 'allowPlaintextBackup'],
  ] as const) {
    const v = bool(field, body[field]);
    if (v !== undefined) u[key] = v;
  }
  const period = durationMs('auto_rotate_period', body.auto_rotate_period);
  if (period !== undefined) u.autoRotatePeriodMs = period;
  return u;
}

const HASHES: Record<string, HashName> = {
  'sha2-224': 'sha224',
  'sha2-256': 'sha256',
  'sha2-384': 'sha384',
  'sha2-512': 'sha512',
};

const KEY_EXAMPLE = {
  name: 'orders',
  type: 'aes256-gcm96',
  derived: false,
  exportable: false,
  allow_plaintext_backup: false,
  deletion_allowed: false,
  latest_version: 2,
  min_available_version: 0,
  min_decryption_version: 1,
  min_encryption_version: 0,
  supports_encryption: true,
  supports_decryption: true,
  supports_derivation: true,
  supports_signing: false,
  auto_rotate_period: 0,
  keys: { '1': 1796290663, '2': 1796377063 },
  next_rotation: null,
  deletion_scheduled_at: null,
  max_encryptions_per_version: 4294967296,
  encryptions_reserved: { '1': 1024, '2': 512 },
};
const KEY = object({
  name: text('key name'),
  type: text('aes256-gcm96, chacha20-poly1305, xchacha20-poly1305, ed25519, ecdsa-p256, rsa-2048…, hmac'),
  derived: { type: 'boolean' },
  exportable: { type: 'boolean' },
  allow_plaintext_backup: { type: 'boolean' },
  deletion_allowed: { type: 'boolean' },
  latest_version: { type: 'integer' },
  min_available_version: { type: 'integer' },
  min_decryption_version: { type: 'integer' },
  min_encryption_version: { type: 'integer' },
  supports_encryption: { type: 'boolean' },
  supports_decryption: { type: 'boolean' },
  supports_derivation: { type: 'boolean' },
  supports_signing: { type: 'boolean' },
  auto_rotate_period: { type: 'integer', description: 'seconds; 0 is off' },
  keys: { type: 'object', description: 'creation time by version, or the public key for signing keys' },
  next_rotation: { type: 'string', nullable: true },
  deletion_scheduled_at: { type: 'string', nullable: true },
  max_encryptions_per_version: {
    type: 'integer',
    description: 'encryptions each version may make before it must be rotated; 0 is no bound',
  },
  encryptions_reserved: { type: 'object', description: 'encryptions reserved so far, by version' },
});
const KEY_NAMES = object({ keys: { type: 'array', items: { type: 'string' } } });
const CREATE_KEY = body(
  {
    type: text('key type (default aes256-gcm96)', 'aes256-gcm96'),
    derived: loose('derive a key per context', false),
    exportable: loose('allow export of the key material (cannot be undone)', false),
    allow_plaintext_backup: loose('allow single-key backups', false),
    auto_rotate_period: loose('rotate this often: seconds or "90d", "24h"; 0 is off', '90d'),
    key_size: loose('hmac key size in bytes', 32),
  },
  { type: 'aes256-gcm96', auto_rotate_period: '90d' },
);
const KEY_CONFIG = body(
  {
    min_decryption_version: loose('oldest version that still decrypts', 1),
    min_encryption_version: loose('oldest version that may encrypt; 0 is the latest', 0),
    deletion_allowed: loose('allow DELETE', true),
    exportable: loose('allow export (cannot be undone)', false),
    allow_plaintext_backup: loose('allow single-key backups (cannot be undone)', false),
    auto_rotate_period: loose('seconds or "90d"; 0 is off', '30d'),
  },
  { min_decryption_version: 2, deletion_allowed: true },
);
const CONTEXT = {
  associated_data: base64(
    'authenticated with the ciphertext, not encrypted; needed again to decrypt',
    'b3JkZXIgNw==',
  ),
  context: base64('key derivation context (derived keys)', 'dXNlciA0Mg=='),
};
const batchAnswer = (item: Schema, example: unknown, description: string) =>
  vault(
    object({
      ...(item.properties as Record<string, Schema>),
      batch_results: {
        type: 'array',
        description: 'with batch_input: one result or `error` per item, in order, with its `reference`',
        items: { type: 'object' },
      },
    }),
    example,
    description,
  );
const CT = 'vault:v2:k3F0q1Tz9yGv0J7xT2l5bYc8r1m0w4e6QhZ2a7nV0sYpX3o=';
const ENCRYPT_BODY = body(
  {
    plaintext: base64('the value to encrypt', 'NDExMSAxMTExIDExMTEgMTExMQ=='),
    ...CONTEXT,
    key_version: loose('version to encrypt with (default: the latest allowed)', 2),
    batch_input: batchInput([
      { plaintext: 'YQ==', reference: 'row-1' },
      { plaintext: 'Yg==', reference: 'row-2' },
    ]),
    partial_failure_response_code: loose('status when some (not all) items fail; default 400', 207),
  },
  { plaintext: 'NDExMSAxMTExIDExMTEgMTExMQ==', associated_data: 'b3JkZXIgNw==' },
);
const ENCRYPT_ANSWER = responses({
  200: batchAnswer(
    object({ ciphertext: text('vault:v<N>:…'), key_version: { type: 'integer' } }),
    { ciphertext: CT, key_version: 2 },
    'The ciphertext (or batch_results)',
  ),
});
const DECRYPT_BODY = body(
  {
    ciphertext: text('vault:v<N>:… as encrypt returned it', CT),
    ...CONTEXT,
    batch_input: batchInput([{ ciphertext: CT, reference: 'row-1' }]),
    partial_failure_response_code: loose('status when some (not all) items fail; default 400', 207),
  },
  { ciphertext: CT, associated_data: 'b3JkZXIgNw==' },
);
const DECRYPT_ANSWER = responses({
  200: batchAnswer(
    object({ plaintext: base64('the value', 'NDExMSAxMTExIDExMTEgMTExMQ==') }),
    { plaintext: 'NDExMSAxMTExIDExMTEgMTExMQ==' },
    'The plaintext (or batch_results)',
  ),
});
const REWRAP_BODY = body(
  { ciphertext: text('vault:v<N>:…', CT), ...CONTEXT, batch_input: batchInput([{ ciphertext: CT }]) },
  { ciphertext: 'vault:v1:8SDd3WHDOjf7mq69CyCqYjBXAiQQAVZRkFM13ok481zoCmHnSeDX9vyf7w==' },
);
const DATAKEY_BODY = body(
  { bits: loose('128, 256 (default) or 512', 256), context: CONTEXT.context },
  { bits: 256 },
);
const DATAKEY_ANSWER = responses({
  200: vault(
    object({
      ciphertext: text('the data key wrapped under the named key'),
      key_version: { type: 'integer' },
      plaintext: base64('the data key (plaintext kind only)', 'Gk2Qy9XJm3Vt5b8c1d0e7f6a4b3c2d1e0f9a8b7c6d5='),
    }),
    { ciphertext: CT, key_version: 2, plaintext: 'Gk2Qy9XJm3Vt5b8c1d0e7f6a4b3c2d1e0f9a8b7c6d5=' },
    'The wrapped data key (and its plaintext)',
  ),
});
const SIG = 'vault:v1:MEUCIQDp2wq3b9p1Vn0aZ8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0';
const SIGN_OPTIONS = {
  signature_algorithm: text('RSA keys: pss (default) or pkcs1v15', 'pss'),
  key_version: loose('version to sign with (default: the latest)', 1),
};
const SIGN_BODY = body(
  {
    input: base64('the message', 'Y29udHJhY3Q='),
    ...SIGN_OPTIONS,
    batch_input: batchInput([{ input: 'Y29udHJhY3Q=' }]),
  },
  { input: 'Y29udHJhY3Q=' },
);
const SIGN_ANSWER = responses({
  200: batchAnswer(
    object({ signature: text('vault:v<N>:…'), key_version: { type: 'integer' } }),
    { signature: SIG, key_version: 1 },
    'The signature (or batch_results)',
  ),
});
const VERIFY_BODY = body(
  {
    input: base64('the message', 'Y29udHJhY3Q='),
    signature: text('a signature from sign', SIG),
    hmac: text('an HMAC from hmac (instead of signature)'),
    ...SIGN_OPTIONS,
    batch_input: batchInput([{ input: 'Y29udHJhY3Q=', signature: SIG }]),
  },
  { input: 'Y29udHJhY3Q=', signature: SIG },
);
const VERIFY_ANSWER = responses({
  200: batchAnswer(object({ valid: { type: 'boolean' } }), { valid: true }, 'Whether it verifies'),
});
const HMAC_BODY = body(
  {
    input: base64('the message', 'cm93IDc='),
    key_version: loose('version (default: the latest)', 1),
    batch_input: batchInput([{ input: 'cm93IDc=' }]),
  },
  { input: 'cm93IDc=' },
);
const HMAC_ANSWER = responses({
  200: batchAnswer(
    object({ hmac: text('vault:v<N>:…') }),
    { hmac: 'vault:v1:0uUw2Rj9dTqWm5d8b3a1s0YH7yKJ2v9uQeVb1nX4cZ8=' },
    'The HMAC (or batch_results)',
  ),
});
const RANDOM_BODY = body(
  { bytes: loose('how many (1-131072, default 32)', 32), format: text('base64 (default) or hex', 'base64') },
  { bytes: 32, format: 'hex' },
);
const RANDOM_ANSWER = responses({
  200: vault(
    object({ random_bytes: text('the bytes, base64 or hex') }),
    { random_bytes: '9f1c0e4b7a2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6' },
    'Random bytes',
  ),
});
const HASH_BODY = body(
  {
    input: base64('the data', 'aGVsbG8='),
    algorithm: text('sha2-224, sha2-256 (default), sha2-384, sha2-512', 'sha2-256'),
    format: text('hex (default) or base64', 'hex'),
  },
  { input: 'aGVsbG8=', algorithm: 'sha2-256' },
);
const HASH_ANSWER = responses({
  200: vault(
    object({ sum: text('the digest, hex or base64') }),
    { sum: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824' },
    'The digest',
  ),
});
const BACKUP_BODY = body(
  {
    recipients: strings('age recipients', ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p']),
    passphrase: text('or a passphrase (scrypt)'),
  },
  { recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'] },
);
const BACKUP_ANSWER = responses({
  200: vault(
    object({ backup: base64('an age file', 'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSAuLi4=') }),
    {
      backup: 'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSAuLi4=',
    },
    'The backup',
  ),
});
const RESTORE_BODY = body(
  {
    backup: base64('the backup', 'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSAuLi4='),
    identity: text('age identity file text (AGE-SECRET-KEY-1…)'),
    passphrase: text('or the passphrase'),
    force: { type: 'boolean', description: 'merge into existing keys (only backups of this keyring)' },
  },
  { backup: 'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSAuLi4=', identity: 'AGE-SECRET-KEY-1…' },
);
const RESTORE_ANSWER = responses({
  200: vault(
    object({ restored: strings('restored key names', ['orders']) }),
    { restored: ['orders'] },
    'What was restored',
  ),
});

export function registerTransitRoutes(app: FastifyInstance, km: KeyManager): void {
  const NAME = params({ name: 'key name' });
  const nameParam = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 128 } },
    required: ['name'],
  } as const;
  /**
   * A transit route: its summary, its documentation (request and answer schemas, see route-docs.ts) and its
   * access rule. The key name is the one input Fastify checks, as it always has; `checkName` is false only
   * where it never was.
   */
  const r = (
    summary: string,
    doc: RouteSchema,
    access: RouteAccess = {},
    checkName = doc.params?.properties !== undefined && 'name' in (doc.params.properties as object),
  ) => {
    const { schema, docs } = documented(['transit'], summary, doc);
    return { schema: checkName ? { ...schema, params: nameParam } : schema, config: { access, docs } };
  };
  const keyAnswer = responses({ 200: vault(KEY, KEY_EXAMPLE, 'The key') });

  app.post(
    '/v1/transit/keys/:name',
    r('Create a named key', { params: NAME, body: CREATE_KEY, response: keyAnswer }),
    async (request) => {
      const info = await km.createKey(name(request), createOptions(bodyOf(request)), ctxOf(request));
      return vaultResponse(keyData(info));
    },
  );
  app.get(
    '/v1/transit/keys/:name',
    r('Read a key (policy, versions, public keys)', { params: NAME, response: keyAnswer }),
    async (request) => vaultResponse(keyData(await km.readKey(name(request), ctxOf(request)))),
  );
  const list = async (request: FastifyRequest) => {
    const q = request.query as { after?: string; limit?: string };
    const keys = await km.listKeys(
      { ...(q.after ? { after: q.after } : {}), ...(q.limit ? { limit: Number(q.limit) } : {}) },
      ctxOf(request),
    );
    if (keys.length === 0) throw new HttpError(404, 'no keys');
    return vaultResponse({ keys });
  };
  app.get(
    '/v1/transit/keys',
    r(
      'List keys (?list=true or the LIST method)',
      {
        querystring: query(
          {
            list: LIST_FLAG,
            after: text('list names after this one', 'orders'),
            limit: text('at most this many', '100'),
          },
          ['list'],
        ),
        response: responses({ 200: vault(KEY_NAMES, { keys: ['orders', 'signer'] }, 'Key names') }),
      },
      { list: true },
    ),
    list,
  );
  app.post(
    '/v1/transit/keys/:name/config',
    r('Change min versions, deletion, export switches, rotation period', {
      params: NAME,
      body: KEY_CONFIG,
      response: keyAnswer,
    }),
    async (request) =>
      vaultResponse(
        keyData(await km.updateKeyConfig(name(request), configUpdate(bodyOf(request)), ctxOf(request))),
      ),
  );
  app.delete(
    '/v1/transit/keys/:name',
    r('Schedule deletion (needs deletion_allowed; 7-day wait)', {
      params: NAME,
      response: responses({ 204: NO_CONTENT }),
    }),
    async (request, reply) => {
      await km.scheduleKeyDeletion(name(request), {}, ctxOf(request));
      return reply.code(204).send();
    },
  );
  app.post(
    '/v1/transit/keys/:name/cancel-deletion',
    r('Cancel a scheduled deletion', { params: NAME, body: EMPTY_BODY, response: keyAnswer }),
    async (request) => vaultResponse(keyData(await km.cancelKeyDeletion(name(request), ctxOf(request)))),
  );
  app.post(
    '/v1/transit/keys/:name/rotate',
    r('Add a version', { params: NAME, body: EMPTY_BODY, response: keyAnswer }),
    async (request) => vaultResponse(keyData(await km.rotateKey(name(request), ctxOf(request)))),
  );
  app.post(
    '/v1/transit/keys/:name/trim',
    r('Delete versions below min_available_version', {
      params: NAME,
      body: body({ min_available_version: loose('lowest version kept', 2) }, { min_available_version: 2 }),
      response: keyAnswer,
    }),
    async (request) => {
      const min = int('min_available_version', bodyOf(request).min_available_version);
      if (min === undefined) throw invalidArgument('min_available_version', 'is required');
      return vaultResponse(keyData(await km.trimKey(name(request), min, ctxOf(request))));
    },
  );
  app.get(
    '/v1/transit/export/:type/:name',
    r('Export key material (exportable keys only) or a public key, by type', {
      params: {
        ...params({ name: 'key name' }),
        properties: {
          type: {
            type: 'string',
            enum: ['encryption-key', 'signing-key', 'hmac-key', 'public-key'],
            description: 'what to export',
          },
          name: { type: 'string', maxLength: 128, description: 'key name' },
        },
        required: ['type', 'name'],
      },
      response: responses({
        200: vault(
          object({
            name: text('key name'),
            keys: { type: 'object', additionalProperties: { type: 'string' } },
          }),
          { name: 'orders', keys: { '1': 'q0K1p7Y4m2Wf3S1b0Xn6uJH3mT2o5yP8c9Vd4Ee7Rz0=' } },
          'Key material by version (base64; PEM for public keys)',
        ),
      }),
    }),
    async (request) => {
      const { type } = request.params as { type: string };
      if (!['encryption-key', 'signing-key', 'hmac-key', 'public-key'].includes(type))
        throw invalidArgument('export type', 'must be encryption-key, signing-key, hmac-key or public-key');
      const keys = await km.exportKey(name(request), undefined, ctxOf(request), type as ExportKind);
      return vaultResponse({
        name: name(request),
        keys: Object.fromEntries(keys.map((k) => [String(k.version), k.key])),
      });
    },
  );

  // Single-key backup: needs the key's allow_plaintext_backup, and, unlike Vault's plaintext blob, is an age
  // file encrypted to the recipients (or passphrase) the caller names.
  const backup = async (request: FastifyRequest, target: { recipients?: string[]; passphrase?: string }) => {
    if (!target.recipients?.length && target.passphrase === undefined) {
      throw invalidArgument(
        'recipient',
        'is required: enseal encrypts key backups (?recipient=age1… or a body with recipients or passphrase)',
      );
    }
    const file = await backupKey(km, name(request), target, ctxOf(request));
    return vaultResponse({ backup: base64Encode(file) });
  };
  app.get(
    '/v1/transit/backup/:name',
    r('Back up one key as an age file (?recipient=age1…, repeatable)', {
      params: NAME,
      querystring: query(
        {
          recipient: {
            anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
            description: 'age recipient; repeat for several',
            examples: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'],
          },
        },
        ['recipient'],
      ),
      response: BACKUP_ANSWER,
    }),
    async (request) => {
      const r = (request.query as { recipient?: string | string[] }).recipient;
      return backup(request, { recipients: r === undefined ? [] : Array.isArray(r) ? r : [r] });
    },
  );
  app.post(
    '/v1/transit/backup/:name',
    r(
      'Back up one key to recipients or a passphrase',
      { params: NAME, body: BACKUP_BODY, response: BACKUP_ANSWER },
      { capability: 'read' },
    ),
    async (request) => {
      const b = bodyOf(request);
      const recipients = Array.isArray(b.recipients)
        ? b.recipients.filter((x): x is string => typeof x === 'string')
        : [];
      return backup(request, {
        recipients,
        ...(typeof b.passphrase === 'string' ? { passphrase: b.passphrase } : {}),
      });
    },
  );
  const restore = async (request: FastifyRequest) => {
    const b = bodyOf(request);
    if (typeof b.backup !== 'string') throw invalidArgument('backup', 'must be the base64 backup');
    const wanted = (request.params as { name?: string }).name;
    const restored = await restoreBackup(
      km,
      b64('backup', b.backup)!,
      {
        identities: typeof b.identity === 'string' ? parseAgeIdentityFile(b.identity) : [],
        ...(typeof b.passphrase === 'string' ? { passphrase: b.passphrase } : {}),
        force: b.force === true,
        ...(wanted !== undefined ? { expectName: wanted } : {}),
      },
      ctxOf(request),
    );
    return vaultResponse({ restored });
  };
  app.post(
    '/v1/transit/restore',
    r('Restore keys from a backup', { body: RESTORE_BODY, response: RESTORE_ANSWER }),
    restore,
  );
  app.post(
    '/v1/transit/restore/:name',
    r('Restore one key from its backup', { params: NAME, body: RESTORE_BODY, response: RESTORE_ANSWER }),
    restore,
  );

  /** Parses each batch item on its own, so a malformed item becomes that item's error, not the request's. */
  const parseItems = <T>(
    items: unknown,
    parse: (item: Body) => T,
  ): ({ ok: T } | { error: Error; reference?: string })[] => {
    if (!Array.isArray(items) || items.length === 0)
      throw invalidArgument('batch_input', 'must be a non-empty list');
    if (items.length > MAX_BATCH)
      throw invalidArgument('batch_input', `must have at most ${MAX_BATCH} items`);
    return items.map((raw) => {
      const item = (typeof raw === 'object' && raw !== null ? raw : {}) as Body;
      try {
        return { ok: parse(item) };
      } catch (error) {
        return { error: error as Error };
      }
    });
  };
  const refOf = (item: unknown) =>
    typeof (item as Body | null)?.reference === 'string'
      ? { reference: (item as Body).reference as string }
      : {};
  const errorText = (err: Error) =>
    err instanceof EnsealError ? `${err.code}: ${err.message}` : 'internal error';
  const batchReply = (
    request: FastifyRequest,
    reply: { code(n: number): unknown },
    results: Record<string, unknown>[],
  ) => {
    const failed = results.filter((r) => r.error !== undefined).length;
    return batchStatus(bodyOf(request), reply, results, failed);
  };
  const contextOpts = (b: Body) => ({
    ...(b.context !== undefined ? { context: b64('context', b.context)! } : {}),
    ...(b.associated_data !== undefined
      ? { associatedData: b64('associated_data', b.associated_data)! }
      : {}),
  });

  app.post(
    '/v1/transit/encrypt/:name',
    r('Encrypt (single or batch_input)', { params: NAME, body: ENCRYPT_BODY, response: ENCRYPT_ANSWER }),
    async (request, reply) => {
      const body = bodyOf(request);
      // A batch item's own context or associated data wins over the request's (decoded once for all items).
      let shared: ReturnType<typeof contextOpts> | Error = {};
      try {
        if (body.batch_input !== undefined) shared = contextOpts(body);
      } catch (err) {
        shared = err as Error; // every item that relies on it fails with it, as before
      }
      const parseOne = (b: Body) => {
        const plaintext = b64('plaintext', b.plaintext)!;
        const keyVersion = int('key_version', b.key_version);
        const inherits = b.context === undefined && b.associated_data === undefined && b !== body;
        if (inherits && shared instanceof Error) throw shared;
        const own = inherits
          ? (shared as ReturnType<typeof contextOpts>)
          : contextOpts({ ...body, ...b, batch_input: undefined });
        return { plaintext, ...own, ...(keyVersion ? { keyVersion } : {}) };
      };
      if (body.batch_input === undefined) {
        const { plaintext, ...opts } = parseOne(body);
        const ciphertext = await km.encrypt(name(request), plaintext, opts, ctxOf(request));
        return vaultResponse({ ciphertext, key_version: Number(ciphertext.split(':')[1]!.slice(1)) });
      }
      const parsed = parseItems(body.batch_input, parseOne);
      const ok = parsed.flatMap((p) => ('ok' in p ? [p.ok] : []));
      const done = ok.length > 0 ? await km.encryptBatch(name(request), ok, ctxOf(request)) : [];
      let i = 0;
      const items = body.batch_input as unknown[];
      const results = parsed.map((p, n) => {
        const r = 'ok' in p ? done[i++]! : { error: p.error };
        return r.error === undefined
          ? { ciphertext: r.value, key_version: r.version, ...refOf(items[n]) }
          : { error: errorText(r.error), ...refOf(items[n]) };
      });
      return batchReply(request, reply, results);
    },
  );
  app.post(
    '/v1/transit/decrypt/:name',
    r('Decrypt (single or batch_input)', { params: NAME, body: DECRYPT_BODY, response: DECRYPT_ANSWER }),
    async (request, reply) => {
      const body = bodyOf(request);
      const parseOne = (b: Body) => ({
        ciphertext: String(b.ciphertext ?? ''),
        ...contextOpts({ ...body, ...b, batch_input: undefined }),
      });
      if (body.batch_input === undefined) {
        const { ciphertext, ...opts } = parseOne(body);
        return vaultResponse({
          plaintext: base64Encode(await km.decrypt(name(request), ciphertext, opts, ctxOf(request))),
        });
      }
      const parsed = parseItems(body.batch_input, parseOne);
      const ok = parsed.flatMap((p) => ('ok' in p ? [p.ok] : []));
      const done = ok.length > 0 ? await km.decryptBatch(name(request), ok, ctxOf(request)) : [];
      let i = 0;
      const items = body.batch_input as unknown[];
      const results = parsed.map((p, n) => {
        const r = 'ok' in p ? done[i++]! : { error: p.error };
        return r.error === undefined
          ? { plaintext: base64Encode(r.value), ...refOf(items[n]) }
          : { error: errorText(r.error), ...refOf(items[n]) };
      });
      return batchReply(request, reply, results);
    },
  );
  app.post(
    '/v1/transit/rewrap/:name',
    r('Re-encrypt under the latest version, never returning plaintext', {
      params: NAME,
      body: REWRAP_BODY,
      response: ENCRYPT_ANSWER,
    }),
    async (request, reply) =>
      batchOr(request, reply, async (b) => {
        const ciphertext = await km.rewrap(
          name(request),
          String(b.ciphertext ?? ''),
          {
            ...(b.context !== undefined ? { context: b64('context', b.context)! } : {}),
            ...(b.associated_data !== undefined
              ? { associatedData: b64('associated_data', b.associated_data)! }
              : {}),
          },
          ctxOf(request),
        );
        return { ciphertext, key_version: Number(ciphertext.split(':')[1]!.slice(1)) };
      }),
  );
  app.post(
    '/v1/transit/datakey/:kind/:name',
    r(
      'Generate a data key (plaintext or wrapped)',
      {
        params: {
          type: 'object',
          properties: {
            kind: {
              type: 'string',
              enum: ['plaintext', 'wrapped'],
              description: 'return the plaintext key too, or not',
            },
            name: { type: 'string', maxLength: 128, description: 'key that wraps the data key' },
          },
          required: ['kind', 'name'],
        },
        body: DATAKEY_BODY,
        response: DATAKEY_ANSWER,
      },
      {},
      false,
    ),
    async (request) => {
      const { kind } = request.params as { kind: string };
      if (kind !== 'plaintext' && kind !== 'wrapped')
        throw new HttpError(400, 'datakey type must be plaintext or wrapped');
      const b = bodyOf(request);
      const bits = (int('bits', b.bits) ?? 256) as 128 | 256 | 512;
      const out = await km.generateDataKey(
        name(request),
        {
          bits,
          plaintext: kind === 'plaintext',
          ...(b.context !== undefined ? { context: b64('context', b.context)! } : {}),
        },
        ctxOf(request),
      );
      return vaultResponse({
        ciphertext: out.ciphertext,
        key_version: out.keyVersion,
        ...(out.plaintext ? { plaintext: base64Encode(out.plaintext) } : {}),
      });
    },
  );

  const signOptions = (b: Body) => {
    const alg = b.signature_algorithm;
    if (alg !== undefined && alg !== 'pss' && alg !== 'pkcs1v15')
      throw invalidArgument('signature_algorithm', 'must be pss or pkcs1v15');
    return {
      ...(alg ? { scheme: alg as 'pss' | 'pkcs1v15' } : {}),
      ...(int('key_version', b.key_version) ? { keyVersion: int('key_version', b.key_version)! } : {}),
    };
  };
  app.post(
    '/v1/transit/sign/:name',
    r('Sign (single or batch_input)', { params: NAME, body: SIGN_BODY, response: SIGN_ANSWER }),
    async (request, reply) =>
      batchOr(request, reply, async (b) => {
        const signature = await km.sign(
          name(request),
          b64('input', b.input)!,
          signOptions(b),
          ctxOf(request),
        );
        return { signature, key_version: Number(signature.split(':')[1]!.slice(1)) };
      }),
  );
  app.post(
    '/v1/transit/verify/:name',
    r('Verify a signature or an HMAC (single or batch_input)', {
      params: NAME,
      body: VERIFY_BODY,
      response: VERIFY_ANSWER,
    }),
    async (request, reply) =>
      batchOr(request, reply, async (b) => {
        const input = b64('input', b.input)!;
        if (typeof b.hmac === 'string')
          return { valid: await km.verifyHmac(name(request), input, b.hmac, ctxOf(request)) };
        return {
          valid: await km.verify(
            name(request),
            input,
            String(b.signature ?? ''),
            signOptions(b),
            ctxOf(request),
          ),
        };
      }),
  );
  app.post(
    '/v1/transit/hmac/:name',
    r('HMAC-SHA256 with an hmac key (single or batch_input)', {
      params: NAME,
      body: HMAC_BODY,
      response: HMAC_ANSWER,
    }),
    async (request, reply) =>
      batchOr(request, reply, async (b) => ({
        hmac: await km.hmac(
          name(request),
          b64('input', b.input)!,
          int('key_version', b.key_version) ? { keyVersion: int('key_version', b.key_version)! } : {},
          ctxOf(request),
        ),
      })),
  );
  const random = async (request: FastifyRequest) => {
    const b = bodyOf(request);
    const param = (request.params as { bytes?: string }).bytes;
    const n = int('bytes', param ?? b.bytes) ?? 32;
    if (n < 1 || n > 128 * 1024) throw invalidArgument('bytes', 'must be 1-131072');
    const bytes = randomBytes(n);
    return vaultResponse({ random_bytes: b.format === 'hex' ? hexEncode(bytes) : base64Encode(bytes) });
  };
  app.post(
    '/v1/transit/random',
    r('Random bytes from the CSPRNG', { body: RANDOM_BODY, response: RANDOM_ANSWER }),
    random,
  );
  app.post(
    '/v1/transit/random/:bytes',
    r('Random bytes from the CSPRNG', {
      params: {
        type: 'object',
        properties: { bytes: text('how many bytes (1-131072)', '32') },
        required: ['bytes'],
      },
      body: RANDOM_BODY,
      response: RANDOM_ANSWER,
    }),
    random,
  );
  const hash = async (request: FastifyRequest) => {
    const b = bodyOf(request);
    const alg = String((request.params as { alg?: string }).alg ?? b.algorithm ?? 'sha2-256');
    const h = HASHES[alg];
    if (h === undefined)
      throw invalidArgument('algorithm', `must be one of ${Object.keys(HASHES).join(', ')}`);
    const sum = digest(h, b64('input', b.input)!);
    return vaultResponse({ sum: b.format === 'base64' ? base64Encode(sum) : hexEncode(sum) });
  };
  app.post('/v1/transit/hash', r('Hash input', { body: HASH_BODY, response: HASH_ANSWER }), hash);
  app.post(
    '/v1/transit/hash/:alg',
    r('Hash input', {
      params: {
        type: 'object',
        properties: { alg: { type: 'string', enum: Object.keys(HASHES), description: 'hash algorithm' } },
        required: ['alg'],
      },
      body: HASH_BODY,
      response: HASH_ANSWER,
    }),
    hash,
  );
}
