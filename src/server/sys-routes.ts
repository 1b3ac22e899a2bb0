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

/** The response of `GET /v1/sys/usage`, with an example (also what the OpenAPI document shows). */
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

export function registerSysRoutes(app: FastifyInstance, options: AppOptions): void {
  const { km, tokens, policies } = options;
  const tag = (summary: string, access: RouteAccess = {}) => ({
    schema: { tags: ['sys'], summary },
    config: { access },
  });
  const PUBLIC = { public: true } as const;
  const SUDO = { sudo: true } as const;
  const ctx = (request: FastifyRequest) => ({ caller: callerOf(request) });

  app.get(
    '/v1/sys/health',
    tag('Health for load balancers: 200 unsealed, 503 sealed, 501 not initialised', PUBLIC),
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
  app.get('/v1/sys/seal-status', tag('Seal status and unseal progress', PUBLIC), async () =>
    sealStatus(await km.status()),
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
  app.put('/v1/sys/init', tag('Initialise: root key, unseal shares, root token (shown once)', PUBLIC), init);
  app.post('/v1/sys/init', tag('Initialise (POST form)', PUBLIC), init);

  const unseal = async (request: FastifyRequest) => {
    const b = body(request);
    if (typeof b.key !== 'string') throw invalidArgument('key', 'must be an unseal share');
    return sealStatus(await km.unseal(b.key, ctx(request)));
  };
  app.put('/v1/sys/unseal', tag('Submit one unseal share', PUBLIC), unseal);
  app.post('/v1/sys/unseal', tag('Submit one unseal share', PUBLIC), unseal);

  const seal = async (request: FastifyRequest, reply: { code(n: number): { send(): unknown } }) => {
    await km.seal(ctx(request));
    return reply.code(204).send();
  };
  app.put('/v1/sys/seal', tag('Seal this node (wipes keys from memory)', SUDO), seal);
  app.post('/v1/sys/seal', tag('Seal this node', SUDO), seal);

  app.post(
    '/v1/sys/rekey',
    tag('New unseal shares for the same root key; needs current shares', SUDO),
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
  app.post('/v1/sys/rotate', tag('Rotate the keyring (re-wraps every key online)', SUDO), async (request) =>
    vaultResponse(await km.rotateKeyring(ctx(request))),
  );

  app.get('/v1/sys/audit/verify', tag('Verify the audit chain', SUDO), async () =>
    vaultResponse(await km.verifyAudit()),
  );
  app.post(
    '/v1/sys/audit/verify',
    tag('Verify the audit chain against a checkpoint exported earlier ({"checkpoint": {...}})', SUDO),
    async (request) => {
      const c = body(request).checkpoint;
      if (typeof c !== 'object' || c === null)
        throw invalidArgument('checkpoint', 'must be a checkpoint object');
      return vaultResponse(await km.verifyAudit(c as AuditCheckpoint));
    },
  );
  app.get(
    '/v1/sys/audit/checkpoint',
    tag('A MACed checkpoint of the audit head, to keep outside the service', SUDO),
    async () => vaultResponse(await km.auditCheckpoint()),
  );
  app.get('/v1/sys/audit/export', tag('Audit entries as JSON lines', SUDO), async (_request, reply) => {
    const lines: string[] = [];
    for await (const line of km.exportAudit()) lines.push(line);
    return reply.type('application/x-ndjson').send(lines.join(''));
  });
  app.get(
    '/v1/sys/audit/query',
    tag('Audit entries filtered by key, op, caller or outcome', SUDO),
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
    tag('The keyed hash under which a value appears in the audit log', SUDO),
    async (request) => {
      const b = body(request);
      if (typeof b.input !== 'string') throw invalidArgument('input', 'must be a string');
      return vaultResponse({ hash: km.auditHash(new TextEncoder().encode(b.input)) });
    },
  );
  app.get('/v1/sys/metrics', tag('Prometheus metrics'), async (_request, reply) => {
    const base = km.metrics();
    const extra = extraMetrics.get(km)?.() ?? '';
    return reply
      .type('text/plain; version=0.0.4')
      .send(extra === '' ? base : `${base}${base === '' || base.endsWith('\n') ? '' : '\n'}${extra}`);
  });

  app.get(
    '/v1/sys/usage',
    {
      schema: {
        tags: ['sys'],
        summary: 'Requests per window by key and by caller, and the recent anomaly warnings',
        description:
          'What the usage monitor keeps for charts: up to 60 windows (one minute each by default) of request ' +
          'counts by key and by caller (at most 100 series per window; more fold into "(other)"), the last ' +
          '50 anomaly warnings and the warning totals. Read-only; needs read on sys/usage, like sys/metrics.',
        response: { 200: USAGE_RESPONSE },
      },
      config: { access: {} },
    },
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
    tag('Back up every key, as an age file to recipients or a passphrase', SUDO),
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
  app.post('/v1/sys/restore', tag('Restore keys from a backup', SUDO), async (request) => {
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
  });

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
  app.put('/v1/sys/policies/acl/:name', tag('Write an ACL policy (HCL path blocks or JSON)'), writePolicy);
  app.post('/v1/sys/policies/acl/:name', tag('Write an ACL policy'), writePolicy);
  app.get('/v1/sys/policies/acl/:name', tag('Read an ACL policy'), async (request) => {
    const { name } = request.params as { name: string };
    const text = await policies.text(name);
    if (text === undefined) throw new HttpError(404, `no policy named "${name}"`);
    return vaultResponse({ name, policy: text });
  });
  app.delete('/v1/sys/policies/acl/:name', tag('Delete an ACL policy'), async (request, reply) => {
    await policies.delete((request.params as { name: string }).name, ctx(request));
    return reply.code(204).send();
  });
  app.get('/v1/sys/policies/acl', tag('List ACL policies (?list=true)', { list: true }), async () =>
    vaultResponse({ keys: await policies.list() }),
  );
}
