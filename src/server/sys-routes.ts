/**
 * `/v1/sys/*`: health, init, unseal, seal, seal status, rekey, audit (query, verify, export), metrics and
 * whole-keyring backup and restore. Init, unseal, seal-status and health answer without a token, as in Vault.
 */
import { base64Decode, base64Encode, invalidArgument } from '../crypto/index.js';
import { parseAgeIdentityFile } from '../formats/index.js';
import {
  backupAllKeys,
  restoreBackup,
  type AuditCheckpoint,
  type AuditEntry,
  type SealStatus,
} from '../kms/index.js';
import {
  callerOf,
  HttpError,
  vaultResponse,
  type AppOptions,
  type FastifyInstance,
  type FastifyRequest,
} from './http.js';
import { registeredRoutes, type RouteAccess } from './route-access.js';
import {
  body as bodySchema,
  EMPTY_BODY,
  ERRORS,
  LIST_FLAG,
  loose,
  NO_CONTENT,
  NO_TOKEN,
  object,
  params,
  query,
  responses,
  strings as stringList,
  text,
  vault,
  documented,
  type RouteSchema,
} from './route-docs.js';
import { capabilitiesFor, parsePolicy, patternMatches } from './policies.js';

const VERSION = '0.1.0';

function body(request: FastifyRequest): Record<string, unknown> {
  const b = request.body;
  return typeof b === 'object' && b !== null && !Array.isArray(b) ? (b as Record<string, unknown>) : {};
}

function sealStatus(s: SealStatus): Record<string, unknown> {
  return {
    type: s.type ?? 'shamir',
    initialized: s.initialized,
    sealed: s.sealed,
    t: s.threshold ?? 0,
    n: s.shares ?? 0,
    progress: s.progress,
    version: VERSION,
    storage_type: 'enseal',
  };
}

const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const;

/** The `data` of `GET /v1/sys/usage` (inside Vault's envelope), with an example, for the OpenAPI document. */
const USAGE_RESPONSE = {
  type: 'object',
  properties: {
    request_id: { type: 'string' },
    data: {
      type: 'object',
      properties: {
        window_ms: { type: 'integer' },
        windows: {
          type: 'array',
          items: {
            type: 'object',
            properties: { start: { type: 'string' }, by_key: counts, by_caller: counts },
            required: ['start', 'by_key', 'by_caller'],
          },
        },
        warnings: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              kind: { type: 'string', enum: ['rate_spike', 'denied_burst'] },
              caller: { type: 'string' },
              count: { type: 'integer' },
              baseline: { type: 'number' },
              window_start: { type: 'string' },
              message: { type: 'string' },
            },
            required: ['kind', 'caller', 'count', 'window_start', 'message'],
          },
        },
        warning_counts: counts,
      },
      required: ['window_ms', 'windows', 'warnings', 'warning_counts'],
    },
  },
  examples: [
    {
      request_id: '6f1c2a9e-0d1b-4e58-9a43-2f6c1e0b7d11',
      data: {
        window_ms: 60000,
        windows: [
          {
            start: '2026-12-03T09:00:00.000Z',
            by_key: { orders: 1250, '': 3 },
            by_caller: { 'token:billing:3f9a0c1d2e4b5a69': 1253 },
          },
        ],
        warnings: [
          {
            kind: 'denied_burst',
            caller: 'token:batch:9b1e7d3c5a2f4e80',
            count: 20,
            window_start: '2026-12-03T09:00:00.000Z',
            message: 'caller "token:batch:9b1e7d3c5a2f4e80" had 20 requests denied this window',
          },
        ],
        warning_counts: { rate_spike: 0, denied_burst: 1 },
      },
    },
  ],
} as const;

function strings(what: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    throw invalidArgument(what, 'must be a list of strings');
  return value as string[];
}

/** More Prometheus text for /v1/sys/metrics, per key manager: `enseal serve` adds TLS certificate expiry. */
const extraMetrics = new WeakMap<object, () => string>();

/** Appends `source()` to the metrics served for `km` (one source per key manager; a later call replaces it). */
export function setExtraMetrics(km: object, source: () => string): void {
  extraMetrics.set(km, source);
}

const HEALTH = object(
  {
    initialized: { type: 'boolean' },
    sealed: { type: 'boolean' },
    standby: { type: 'boolean' },
    version: { type: 'string' },
    server_time_utc: { type: 'integer' },
  },
  { initialized: true, sealed: false, standby: false, version: VERSION, server_time_utc: 1796290663 },
  'Unsealed and serving',
);
const SEAL_ANSWER = responses({
  200: object(
    {
      type: { type: 'string' },
      initialized: { type: 'boolean' },
      sealed: { type: 'boolean' },
      t: { type: 'integer', description: 'threshold' },
      n: { type: 'integer', description: 'shares' },
      progress: { type: 'integer', description: 'shares submitted so far' },
      version: { type: 'string' },
      storage_type: { type: 'string' },
    },
    {
      type: 'shamir',
      initialized: true,
      sealed: true,
      t: 3,
      n: 5,
      progress: 1,
      version: VERSION,
      storage_type: 'enseal',
    },
    'Seal status',
  ),
});
const INIT_BODY = bodySchema(
  {
    secret_shares: loose('how many unseal shares (default 5)', 5),
    secret_threshold: loose('how many unseal (default 3)', 3),
  },
  { secret_shares: 5, secret_threshold: 3 },
);
const INIT_ANSWER = responses({
  200: object(
    {
      keys: { type: 'array', items: { type: 'string' } },
      keys_base64: { type: 'array', items: { type: 'string' } },
      root_token: { type: 'string' },
    },
    { keys: ['AQJk3f…', 'AgL9x2…'], keys_base64: ['AQJk3f…', 'AgL9x2…'], root_token: 'ens.…' },
    'The shares and the root token, shown once',
  ),
});
const CHECKPOINT_EXAMPLE = {
  seq: 1234,
  hash: '9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab',
  time: '2026-12-03T09:00:00.000Z',
  mac: '3f2a6d1e8b0c4f7a9e5d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19',
};
const CHECKPOINT = object(
  {
    seq: { type: 'integer', description: 'sequence number of the newest entry' },
    hash: text('hash of the newest entry (hex)'),
    time: text('when the checkpoint was taken (ISO 8601)'),
    mac: text('HMAC-SHA256 over seq, hash and time (hex)'),
  },
  CHECKPOINT_EXAMPLE,
);
const VERIFY_AUDIT = responses({
  200: vault(
    object({
      ok: { type: 'boolean' },
      entries: { type: 'integer' },
      problems: {
        type: 'array',
        items: object({ kind: text('what is wrong'), seq: { type: 'integer' }, message: text('details') }),
      },
    }),
    { ok: true, entries: 1234, problems: [] },
    'The verdict',
  ),
});
const AUDIT_ENTRY_EXAMPLE = {
  seq: 1,
  at: '2026-12-03T09:00:00.000Z',
  op: 'encrypt',
  key: 'orders',
  caller: 'token:app:636e58cd0959ef7d',
  outcome: 'ok',
};
const POLICY_EXAMPLE = 'path "transit/encrypt/orders" { capabilities = ["update"] }';
const BACKUP_EXAMPLE = 'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSAuLi4=';
const BACKUP_BODY = bodySchema(
  {
    recipients: stringList('age recipients', [
      'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p',
    ]),
    passphrase: text('or a passphrase (scrypt)'),
  },
  { recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'] },
);
const BACKUP_ANSWER = responses({
  200: vault(object({ backup: text('an age file (base64)') }), { backup: BACKUP_EXAMPLE }, 'The backup'),
});
const RESTORE_BODY = bodySchema(
  {
    backup: text('the backup (base64)', BACKUP_EXAMPLE),
    identity: text('age identity file text (AGE-SECRET-KEY-1…)'),
    passphrase: text('or the passphrase'),
    force: { type: 'boolean', description: 'merge into existing keys (only backups of this keyring)' },
  },
  { backup: BACKUP_EXAMPLE, identity: 'AGE-SECRET-KEY-1…' },
);
const RESTORE_ANSWER = responses({
  200: vault(
    object({ restored: { type: 'array', items: { type: 'string' } } }),
    { restored: ['orders', 'signer'] },
    'What was restored',
  ),
});

export function registerSysRoutes(app: FastifyInstance, options: AppOptions): void {
  const { km, tokens, policies } = options;
  /** A sys route: its summary, request and answer schemas, access rule; public ones need no token. */
  const tag = (summary: string, doc: RouteSchema, access: RouteAccess = {}) => {
    const { schema, docs } = documented(['sys'], summary, {
      ...doc,
      ...(access.public ? { security: NO_TOKEN } : {}),
    });
    return { schema, config: { access, docs } };
  };
  const PUBLIC = { public: true } as const;
  const SUDO = { sudo: true } as const;
  const ctx = (request: FastifyRequest) => ({ caller: callerOf(request) });

  app.get(
    '/v1/sys/health',
    tag(
      'Health for load balancers: 200 unsealed, 503 sealed, 501 not initialised',
      {
        response: {
          200: HEALTH,
          501: { ...HEALTH, description: 'Not initialised' },
          503: { ...HEALTH, description: 'Sealed' },
          '4xx': ERRORS,
        },
      },
      PUBLIC,
    ),
    async (_request, reply) => {
      const s = await km.status();
      const code = !s.initialized ? 501 : s.sealed ? 503 : 200;
      return reply.code(code).send({
        initialized: s.initialized,
        sealed: s.sealed,
        standby: false,
        version: VERSION,
        server_time_utc: Math.floor(Date.now() / 1000),
      });
    },
  );
  app.get(
    '/v1/sys/seal-status',
    tag('Seal status and unseal progress', { response: SEAL_ANSWER }, PUBLIC),
    async () => sealStatus(await km.status()),
  );

  const init = async (request: FastifyRequest) => {
    const b = body(request);
    const shares = Number(b.secret_shares ?? 5);
    const threshold = Number(b.secret_threshold ?? 3);
    // The root token is created in the initialising transaction and shown once, like the shares.
    let token = '';
    const result = await km.init({ shares, threshold }, async (tx, records) => {
      const root = await tokens.createIn(tx, records, { policies: ['root'], ttlMs: 0, displayName: 'root' });
      token = root.token;
      return { root_token_accessor: root.info.accessor };
    });
    return { keys: result.shares, keys_base64: result.shares, root_token: token };
  };
  const initDoc = { body: INIT_BODY, response: INIT_ANSWER };
  app.put(
    '/v1/sys/init',
    tag('Initialise: root key, unseal shares, root token (shown once)', initDoc, PUBLIC),
    init,
  );
  app.post('/v1/sys/init', tag('Initialise (POST form)', initDoc, PUBLIC), init);

  const unseal = async (request: FastifyRequest) => {
    const b = body(request);
    if (typeof b.key !== 'string') throw invalidArgument('key', 'must be an unseal share');
    return sealStatus(await km.unseal(b.key, ctx(request)));
  };
  const unsealDoc = {
    body: bodySchema({ key: text('one unseal share', 'AQJk3f…') }, { key: 'AQJk3f…' }),
    response: SEAL_ANSWER,
  };
  app.put('/v1/sys/unseal', tag('Submit one unseal share', unsealDoc, PUBLIC), unseal);
  app.post('/v1/sys/unseal', tag('Submit one unseal share', unsealDoc, PUBLIC), unseal);

  const seal = async (request: FastifyRequest, reply: { code(n: number): { send(): unknown } }) => {
    await km.seal(ctx(request));
    return reply.code(204).send();
  };
  const sealDoc = { body: EMPTY_BODY, response: responses({ 204: NO_CONTENT }) };
  app.put('/v1/sys/seal', tag('Seal this node (wipes keys from memory)', sealDoc, SUDO), seal);
  app.post('/v1/sys/seal', tag('Seal this node', sealDoc, SUDO), seal);

  app.post(
    '/v1/sys/rekey',
    tag(
      'New unseal shares for the same root key; needs current shares',
      {
        body: bodySchema(
          {
            keys: stringList('current shares, as many as the threshold', ['AQJk3f…', 'AgL9x2…', 'A3Mz0q…']),
            secret_shares: loose('new share count (default 5)', 5),
            secret_threshold: loose('new threshold (default 3)', 3),
          },
          { keys: ['AQJk3f…', 'AgL9x2…', 'A3Mz0q…'], secret_shares: 5, secret_threshold: 3 },
        ),
        response: responses({
          200: vault(
            object({
              keys: { type: 'array', items: { type: 'string' } },
              keys_base64: { type: 'array', items: { type: 'string' } },
              t: { type: 'integer' },
            }),
            { keys: ['AQJk3f…', 'AgL9x2…'], keys_base64: ['AQJk3f…', 'AgL9x2…'], t: 3 },
            'The new shares (shown once)',
          ),
        }),
      },
      SUDO,
    ),
    async (request) => {
      const b = body(request);
      const result = await km.rekey(
        { shares: strings('keys', b.keys) },
        { shares: Number(b.secret_shares ?? 5), threshold: Number(b.secret_threshold ?? 3) },
        ctx(request),
      );
      return vaultResponse({ keys: result.shares, keys_base64: result.shares, t: result.threshold });
    },
  );
  app.post(
    '/v1/sys/rotate',
    tag(
      'Rotate the keyring (re-wraps every key online)',
      {
        body: EMPTY_BODY,
        response: responses({
          200: vault(
            object({}, undefined, 'the new keyring version and what was re-wrapped'),
            { term: 2, rewrapped: 3 },
            'Rotated',
          ),
        }),
      },
      SUDO,
    ),
    async (request) => vaultResponse(await km.rotateKeyring(ctx(request))),
  );

  app.get('/v1/sys/audit/verify', tag('Verify the audit chain', { response: VERIFY_AUDIT }, SUDO), async () =>
    vaultResponse(await km.verifyAudit()),
  );
  app.post(
    '/v1/sys/audit/verify',
    tag(
      'Verify the audit chain against a checkpoint exported earlier ({"checkpoint": {...}})',
      {
        body: bodySchema(
          {
            checkpoint: { ...CHECKPOINT, description: 'what GET /v1/sys/audit/checkpoint returned as data' },
          },
          { checkpoint: CHECKPOINT_EXAMPLE },
        ),
        response: VERIFY_AUDIT,
      },
      SUDO,
    ),
    async (request) => {
      const c = body(request).checkpoint;
      if (typeof c !== 'object' || c === null)
        throw invalidArgument('checkpoint', 'must be a checkpoint object');
      return vaultResponse(await km.verifyAudit(c as AuditCheckpoint));
    },
  );
  app.get(
    '/v1/sys/audit/checkpoint',
    tag(
      'A MACed checkpoint of the audit head, to keep outside the service',
      { response: responses({ 200: vault(CHECKPOINT, CHECKPOINT_EXAMPLE, 'The checkpoint') }) },
      SUDO,
    ),
    async () => vaultResponse(await km.auditCheckpoint()),
  );
  app.get(
    '/v1/sys/audit/export',
    tag(
      'Audit entries as JSON lines',
      {
        response: responses({
          200: {
            description: 'One audit entry per line',
            content: {
              'application/x-ndjson': {
                schema: { type: 'string' },
                example: `${JSON.stringify(AUDIT_ENTRY_EXAMPLE)}\n`,
              },
            },
          },
        }),
      },
      SUDO,
    ),
    async (_request, reply) => {
      const lines: string[] = [];
      for await (const line of km.exportAudit()) lines.push(line);
      return reply.type('application/x-ndjson').send(lines.join(''));
    },
  );
  app.get(
    '/v1/sys/audit/query',
    tag(
      'Audit entries filtered by key, op, caller or outcome',
      {
        querystring: query({
          key: text('key name', 'orders'),
          op: text('operation', 'encrypt'),
          caller: text('caller', 'token:dev-root:636e58cd0959ef7d'),
          outcome: text('ok or denied', 'denied'),
          limit: text('at most this many of the latest (default 100, at most 1000)', '100'),
        }),
        response: responses({
          200: vault(
            object({ entries: { type: 'array', items: { type: 'object' } } }),
            { entries: [AUDIT_ENTRY_EXAMPLE] },
            'Matching entries, oldest first',
          ),
        }),
      },
      SUDO,
    ),
    async (request) => {
      const q = request.query as Record<string, string | undefined>;
      const limit = Math.min(Number(q.limit ?? 100) || 100, 1000);
      const out: AuditEntry[] = [];
      for await (const line of km.exportAudit()) {
        const e = JSON.parse(line) as AuditEntry;
        if (q.key && e.key !== q.key) continue;
        if (q.op && e.op !== q.op) continue;
        if (q.caller && e.caller !== q.caller) continue;
        if (q.outcome && e.outcome !== q.outcome) continue;
        out.push(e);
      }
      return vaultResponse({ entries: out.slice(-limit) });
    },
  );
  app.post(
    '/v1/sys/audit-hash',
    tag(
      'The keyed hash under which a value appears in the audit log',
      {
        body: bodySchema({ input: text('the value', 'orders') }, { input: 'orders' }),
        response: responses({
          200: vault(
            object({ hash: text('hmac-sha256:…') }),
            { hash: 'hmac-sha256:5d41402abc4b2a76b9719d911017c592' },
            'The hash',
          ),
        }),
      },
      SUDO,
    ),
    async (request) => {
      const b = body(request);
      if (typeof b.input !== 'string') throw invalidArgument('input', 'must be a string');
      return vaultResponse({ hash: km.auditHash(new TextEncoder().encode(b.input)) });
    },
  );
  app.get(
    '/v1/sys/metrics',
    tag('Prometheus metrics', {
      response: responses({
        200: {
          description: 'Prometheus text format',
          content: {
            'text/plain': {
              schema: { type: 'string' },
              example: 'enseal_key_operations_total{key="orders",op="encrypt"} 42\n',
            },
          },
        },
      }),
    }),
    async (_request, reply) => {
      const base = km.metrics();
      const extra = extraMetrics.get(km)?.() ?? '';
      return reply
        .type('text/plain; version=0.0.4')
        .send(extra === '' ? base : `${base}${base === '' || base.endsWith('\n') ? '' : '\n'}${extra}`);
    },
  );

  app.get(
    '/v1/sys/usage',
    tag('Requests per window by key and by caller, and the recent anomaly warnings', {
      description:
        'What the usage monitor keeps for charts: up to 60 windows (one minute each by default) of request ' +
        'counts by key and by caller (at most 100 series per window; more fold into "(other)"), the last ' +
        '50 anomaly warnings and the warning totals. Read-only; needs read on sys/usage, like sys/metrics.',
      response: responses({
        200: vault(USAGE_RESPONSE.properties.data, USAGE_RESPONSE.examples[0].data, 'Usage by window'),
      }),
    }),
    async () => {
      const r = km.usageReport();
      return vaultResponse({
        window_ms: r.windowMs,
        windows: r.windows.map((w) => ({
          start: new Date(w.start).toISOString(),
          by_key: w.byKey,
          by_caller: w.byCaller,
        })),
        warnings: r.warnings.map((w) => ({
          kind: w.kind,
          caller: w.caller,
          count: w.count,
          ...(w.baseline !== undefined ? { baseline: w.baseline } : {}),
          window_start: new Date(w.windowStart).toISOString(),
          message: w.message,
        })),
        warning_counts: r.warningCounts,
      });
    },
  );

  app.post(
    '/v1/sys/backup',
    tag(
      'Back up every key, as an age file to recipients or a passphrase',
      { body: BACKUP_BODY, response: BACKUP_ANSWER },
      SUDO,
    ),
    async (request) => {
      const b = body(request);
      const file = await backupAllKeys(
        km,
        {
          ...(b.recipients !== undefined ? { recipients: strings('recipients', b.recipients) } : {}),
          ...(typeof b.passphrase === 'string' ? { passphrase: b.passphrase } : {}),
        },
        ctx(request),
      );
      return vaultResponse({ backup: base64Encode(file) });
    },
  );
  app.post(
    '/v1/sys/restore',
    tag('Restore keys from a backup', { body: RESTORE_BODY, response: RESTORE_ANSWER }, SUDO),
    async (request) => {
      const b = body(request);
      if (typeof b.backup !== 'string') throw invalidArgument('backup', 'must be base64');
      const identities = typeof b.identity === 'string' ? parseAgeIdentityFile(b.identity) : [];
      const restored = await restoreBackup(
        km,
        base64Decode(b.backup),
        {
          identities,
          ...(typeof b.passphrase === 'string' ? { passphrase: b.passphrase } : {}),
          force: b.force === true,
        },
        ctx(request),
      );
      return vaultResponse({ restored });
    },
  );

  /**
   * Writing a policy that grants sudo, or reaches a root-protected path, is itself root-protected: without
   * this a token allowed to edit its own policy could make itself root.
   */
  const writePolicy = async (request: FastifyRequest, reply: { code(n: number): { send(): unknown } }) => {
    const { name } = request.params as { name: string };
    const b = body(request);
    if (typeof b.policy !== 'string') throw invalidArgument('policy', 'must be the policy text');
    const parsed = parsePolicy(name, b.policy);
    const sudoPaths = registeredRoutes(app)
      .filter((r) => r.access.sudo && r.url.startsWith('/v1/'))
      .map((r) => r.url.slice(4));
    const rootProtected = parsed.rules.some(
      (r) => r.capabilities.includes('sudo') || sudoPaths.some((p) => patternMatches(r.path, p)),
    );
    if (rootProtected) {
      const token = request.token!;
      const caps = capabilitiesFor(
        await policies.resolve(token.policies),
        token.policies,
        `sys/policies/acl/${name}`,
      );
      if (!caps.has('sudo')) {
        throw new HttpError(
          403,
          'ERR_PERMISSION_DENIED: this policy grants sudo or reaches a root-protected path; writing it needs sudo on sys/policies/acl/' +
            name,
        );
      }
    }
    await policies.put(name, b.policy, ctx(request));
    return reply.code(204).send();
  };
  const POLICY_NAME = params({ name: 'policy name' });
  const writeDoc = {
    params: POLICY_NAME,
    body: bodySchema({ policy: text('HCL path blocks or JSON', POLICY_EXAMPLE) }, { policy: POLICY_EXAMPLE }),
    response: responses({ 204: NO_CONTENT }),
  };
  app.put(
    '/v1/sys/policies/acl/:name',
    tag('Write an ACL policy (HCL path blocks or JSON)', writeDoc),
    writePolicy,
  );
  app.post('/v1/sys/policies/acl/:name', tag('Write an ACL policy', writeDoc), writePolicy);
  app.get(
    '/v1/sys/policies/acl/:name',
    tag('Read an ACL policy', {
      params: POLICY_NAME,
      response: responses({
        200: vault(
          object({ name: text('policy name'), policy: text('its text') }),
          { name: 'billing', policy: POLICY_EXAMPLE },
          'The policy',
        ),
      }),
    }),
    async (request) => {
      const { name } = request.params as { name: string };
      const text = await policies.text(name);
      if (text === undefined) throw new HttpError(404, `no policy named "${name}"`);
      return vaultResponse({ name, policy: text });
    },
  );
  app.delete(
    '/v1/sys/policies/acl/:name',
    tag('Delete an ACL policy', { params: POLICY_NAME, response: responses({ 204: NO_CONTENT }) }),
    async (request, reply) => {
      await policies.delete((request.params as { name: string }).name, ctx(request));
      return reply.code(204).send();
    },
  );
  app.get(
    '/v1/sys/policies/acl',
    tag(
      'List ACL policies (?list=true or the LIST method)',
      {
        querystring: query({ list: LIST_FLAG }, ['list']),
        response: responses({
          200: vault(
            object({ keys: { type: 'array', items: { type: 'string' } } }),
            { keys: ['billing', 'root'] },
            'Policy names',
          ),
        }),
      },
      { list: true },
    ),
    async () => vaultResponse({ keys: await policies.list() }),
  );
}
