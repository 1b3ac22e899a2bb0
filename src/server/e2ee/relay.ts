/**
 * The relay: groups known only as ids with an epoch and a roster of devices, commits ordered per group (the
 * first commit for an epoch wins, under a lock on the group row), fan-out into per-device queues, and an inbox
 * that long-polls. It stores frames, never keys; access is limited to the group's current roster.
 *
 * Waiting inboxes wake on an in-process notification when this node queued something for them, and poll the
 * store every 200 ms otherwise, so a message queued on another node sharing the store arrives within that.
 */
import { EnsealError, ErrorCode, base64Encode } from '../../crypto/index.js';
import { INBOX_MEDIA_TYPE, encodeInboxMessage, inboxAnswerHeader } from '../../e2ee/index.js';
import type { KeyManager } from '../../kms/index.js';
import type { E2eeMember, E2eeQueuedMessage, StoreTransaction } from '../../store/index.js';
import { HttpError, statusOf, type FastifyInstance, type FastifyRequest } from '../http.js';
import type { E2eeSettings } from './config.js';
import {
  GID,
  count,
  ctxOf,
  deviceOf,
  frameField,
  frameSchema,
  gidSchema,
  groupId,
  inRoster,
  intQuery,
  memberSchema,
  obj,
  roster,
  rosterSchema,
  routeSchema,
  sameMember,
  seqSchema,
  type Body,
} from './requests.js';

const POLL_MS = 200;
const MAX_WAIT_S = 30;
const INBOX_LIMIT = 500;
/** Rows read per query: an answer is read in pages, so no more than one page of frames is past the byte cap. */
const INBOX_PAGE = 100;
/** An inbox answer stops adding messages past this many frame bytes (one message always fits). */
const INBOX_BYTES = 16 * 1024 * 1024;
const COMMITS_LIMIT = 100;
/** Application messages in one batch POST, and their frames' total size (decoded). */
export const BATCH_MAX_MESSAGES = 64;
export const BATCH_MAX_BYTES = 8 * 1024 * 1024;

/** A commit that lost its epoch: answered 409 with the group's current epoch. */
export class EpochConflictError extends EnsealError {
  constructor(readonly epoch: number) {
    super(
      ErrorCode.E2EE_CONFLICT,
      `the group is at epoch ${epoch}: process the commits after your epoch and retry`,
    );
  }
}

const noGroup = () =>
  new EnsealError(ErrorCode.E2EE_NOT_FOUND, 'no such group, or this device is not in its roster');

/** Wakes the inbox requests waiting on this node for a device. */
export class InboxNotifier {
  readonly #waiters = new Map<string, Set<() => void>>();
  #closed = false;

  /** True once the server is shutting down: waiting inboxes answer at once instead of holding it up. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Wakes every waiting inbox for good (the server is closing). */
  close(): void {
    this.#closed = true;
    for (const set of [...this.#waiters.values()]) for (const done of [...set]) done();
  }

  wait(member: E2eeMember, ms: number): Promise<void> {
    const key = `${member.user}/${member.device}`;
    return new Promise((resolve) => {
      if (this.#closed) return resolve();
      let set = this.#waiters.get(key);
      if (set === undefined) this.#waiters.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set!.delete(done);
        if (set!.size === 0) this.#waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  notify(members: readonly E2eeMember[]): void {
    for (const m of members)
      for (const done of [...(this.#waiters.get(`${m.user}/${m.device}`) ?? [])]) done();
  }
}

/** Up to {@link INBOX_LIMIT} queued messages after `after`, read page by page until the byte cap is passed. */
async function readInbox(tx: StoreTransaction, caller: E2eeMember, after: number) {
  const rows: E2eeQueuedMessage[] = [];
  const now = Date.now();
  let bytes = 0;
  for (let from = after; rows.length < INBOX_LIMIT;) {
    const page = await tx.readE2eeInbox(caller, from, now, Math.min(INBOX_PAGE, INBOX_LIMIT - rows.length));
    for (const m of page) {
      rows.push(m);
      bytes += m.frame.length;
    }
    if (page.length < INBOX_PAGE || bytes > INBOX_BYTES) break;
    from = page[page.length - 1]!.seq;
  }
  return rows;
}

/** Queues one application message from `sender` for `recipients`, in the caller's transaction. */
function enqueueApplication(
  tx: StoreTransaction,
  m: { gid: string; epoch: number; sender: E2eeMember; frame: Uint8Array },
  recipients: readonly E2eeMember[],
  receivedAt: number,
  expiresAt: number,
): Promise<number> {
  return tx.enqueueE2ee(
    {
      groupId: m.gid,
      epoch: m.epoch,
      kind: 'application',
      sender: m.sender,
      frame: m.frame,
      receivedAt,
      expiresAt,
    },
    recipients,
  );
}

/** The group, if the caller is in its current roster (otherwise the same 404 as an unknown group). */
export async function memberGroup(tx: StoreTransaction, gid: string, caller: E2eeMember, forUpdate = false) {
  const group = await tx.getE2eeGroup(gid, { forUpdate });
  if (group === undefined || !inRoster(group.roster, caller)) throw noGroup();
  return group;
}

/**
 * The encoded form (JSON text or binary record) of queued messages in inbox answers. A message fanned out to n
 * devices is the same text in each of their answers, so it is written once and kept (the latest, up to
 * {@link AnswerCache.BYTES}): base64 and JSON escaping of the frame were a tenth of the server's time under
 * load when done for every delivery. An entry is used only for a row equal to the one it was written from
 * (seq, every field, and the frame's bytes), so a reused or rewritten seq can never bring back another
 * message's text; the store's query, run for every request, still decides which messages a device gets.
 */
export class AnswerCache<T extends string | Uint8Array> {
  /** Bytes held at most (frames and their encodings); larger messages are written for each answer instead. */
  static readonly BYTES = 16 * 1024 * 1024;
  static readonly ENTRY_BYTES = 64 * 1024;
  readonly #entries = new Map<number, { row: E2eeQueuedMessage; out: T; size: number }>();
  readonly #encode: (m: E2eeQueuedMessage) => T;
  #bytes = 0;

  constructor(encode: (m: E2eeQueuedMessage) => T) {
    this.#encode = encode;
  }

  /** The encoding of `m`, from the cache when it holds one for this very row. */
  get(m: E2eeQueuedMessage): T {
    const held = this.#entries.get(m.seq);
    if (held !== undefined && sameRow(held.row, m)) return held.out;
    const out = this.#encode(m);
    if (held !== undefined) {
      this.#entries.delete(m.seq);
      this.#bytes -= held.size;
    }
    const size = m.frame.length + out.length;
    if (size > AnswerCache.ENTRY_BYTES) return out;
    for (const [seq, e] of this.#entries) {
      if (this.#bytes + size <= AnswerCache.BYTES) break;
      this.#entries.delete(seq);
      this.#bytes -= e.size;
    }
    this.#entries.set(m.seq, { row: m, out, size });
    this.#bytes += size;
    return out;
  }
}

/** A queued message as the JSON inbox answer carries it (the route's response schema). */
export function inboxJson(m: E2eeQueuedMessage): string {
  // The frame is base64 (its alphabet needs no escaping); the rest goes through JSON.stringify.
  return (
    `{"seq":${JSON.stringify(m.seq)},"group_id":${JSON.stringify(m.groupId)},"epoch":${JSON.stringify(m.epoch)},` +
    `"kind":${JSON.stringify(m.kind)},"sender":{"user":${JSON.stringify(m.sender.user)},` +
    `"device":${JSON.stringify(m.sender.device)}},"frame":"${base64Encode(m.frame)}",` +
    `"received_at":"${new Date(m.receivedAt).toISOString()}"}`
  );
}

/** A queued message as the binary inbox answer carries it (docs/e2ee-service.md). */
export function inboxBinary(m: E2eeQueuedMessage): Uint8Array {
  return encodeInboxMessage(m);
}

function sameRow(a: E2eeQueuedMessage, b: E2eeQueuedMessage): boolean {
  return (
    a.seq === b.seq &&
    a.groupId === b.groupId &&
    a.epoch === b.epoch &&
    a.kind === b.kind &&
    a.receivedAt === b.receivedAt &&
    sameMember(a.sender, b.sender) &&
    a.frame.length === b.frame.length &&
    Buffer.compare(a.frame, b.frame) === 0
  );
}

export function registerRelayRoutes(
  app: FastifyInstance,
  km: KeyManager,
  settings: E2eeSettings,
  notifier: InboxNotifier,
): void {
  const deviceOnly = { access: { path: () => 'e2ee/relay', e2ee: { tokens: 'device' } } } as const;
  const gidRoute = { access: { ...deviceOnly.access, params: { gid: GID } } } as const;
  const gidParams = obj({ gid: gidSchema });
  const gidExample = 'q83vEjRWeJq83vEjRWeJqw';
  const frameExample = 'AAAAEAABAAIA…AAAA';
  const expires = (now: number) => now + settings.queueTtlMs;
  const without = (list: readonly E2eeMember[], m: E2eeMember) => list.filter((x) => !sameMember(x, m));
  const jsonCache = new AnswerCache(inboxJson);
  const binaryCache = new AnswerCache(inboxBinary);

  app.post(
    '/v1/e2ee/groups',
    {
      schema: routeSchema(
        'Create a relay group at epoch 0 (the caller must be in the roster)',
        {
          body: obj({ group_id: gidSchema, roster: rosterSchema }),
          response: obj({ epoch: { type: 'integer' } }),
        },
        {
          body: {
            group_id: gidExample,
            roster: [
              { user: 'alice', device: 'phone' },
              { user: 'bob', device: 'laptop' },
            ],
          },
          response: { epoch: 0 },
        },
      ),
      config: deviceOnly,
    },
    async (request) => {
      const caller = deviceOf(request);
      const b = (request.body ?? {}) as Body;
      const gid = groupId(b.group_id);
      const members = roster('roster', b.roster);
      if (!inRoster(members, caller))
        throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'roster must include the caller');
      return km.changeRecords('e2ee.group.create', ctxOf(request), async (tx) => {
        const now = Date.now();
        if (
          !(await tx.insertE2eeGroup({
            groupId: gid,
            epoch: 0,
            roster: members,
            createdAt: now,
            updatedAt: now,
          }))
        )
          throw new EnsealError(ErrorCode.E2EE_CONFLICT, 'a group with this id exists');
        return { result: { epoch: 0 }, detail: { group: gid, members: members.length } };
      });
    },
  );

  app.post(
    '/v1/e2ee/groups/:gid/commits',
    {
      schema: routeSchema(
        'Submit the commit for the current epoch (409 with the current epoch when another commit won it)',
        {
          params: gidParams,
          body: obj(
            {
              epoch: { type: 'integer', minimum: 0 },
              commit: frameSchema,
              roster: rosterSchema,
              welcome: obj({
                frame: frameSchema,
                recipients: { type: 'array', minItems: 1, maxItems: 10_000, items: memberSchema },
              }),
            },
            ['welcome'],
          ),
          response: obj({ epoch: { type: 'integer' }, seq: seqSchema }),
        },
        {
          params: { gid: gidExample },
          body: { epoch: 3, commit: frameExample, roster: [{ user: 'alice', device: 'phone' }] },
          response: { epoch: 4, seq: 1207 },
        },
      ),
      config: gidRoute,
    },
    async (request) => {
      const caller = deviceOf(request);
      const { gid } = request.params as { gid: string };
      const b = (request.body ?? {}) as Body;
      const epoch = count('epoch', b.epoch);
      const commit = frameField('commit', b.commit);
      const next = roster('roster', b.roster);
      const w = b.welcome as Body | undefined;
      const welcome =
        w === undefined
          ? undefined
          : {
              frame: frameField('welcome.frame', w.frame),
              recipients: roster('welcome.recipients', w.recipients),
            };
      if (welcome && welcome.recipients.some((r) => !inRoster(next, r)))
        throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'welcome recipients must be in the new roster');
      let notify: E2eeMember[] = [];
      try {
        const out = await km.changeRecords('e2ee.commit', ctxOf(request), async (tx) => {
          const group = await memberGroup(tx, gid, caller, true);
          if (epoch !== group.epoch) throw new EpochConflictError(group.epoch);
          const now = Date.now();
          const fanout = without(
            [...group.roster, ...next.filter((m) => !inRoster(group.roster, m))],
            caller,
          );
          await tx.insertE2eeCommit({ groupId: gid, epoch, sender: caller, frame: commit, createdAt: now });
          await tx.updateE2eeGroup(gid, epoch + 1, next, now);
          const message = { groupId: gid, epoch, sender: caller, receivedAt: now, expiresAt: expires(now) };
          const seq = await tx.enqueueE2ee({ ...message, kind: 'commit', frame: commit }, fanout);
          if (welcome)
            await tx.enqueueE2ee(
              { ...message, epoch: epoch + 1, kind: 'welcome', frame: welcome.frame },
              welcome.recipients,
            );
          notify = [...fanout, ...(welcome?.recipients ?? [])];
          return {
            result: { epoch: epoch + 1, seq },
            detail: {
              group: gid,
              epoch: epoch + 1,
              members: next.length,
              welcomed: welcome?.recipients.length ?? 0,
            },
          };
        });
        notifier.notify(notify);
        return out;
      } catch (err) {
        if (err instanceof EpochConflictError)
          throw new HttpError(409, `${err.code}: ${err.message}`, { epoch: err.epoch });
        throw err;
      }
    },
  );

  app.post(
    '/v1/e2ee/groups/:gid/messages',
    {
      schema: routeSchema(
        'Queue an application message for the roster (except the sender)',
        {
          params: gidParams,
          body: obj({ epoch: { type: 'integer', minimum: 0 }, frame: frameSchema }),
          response: obj({ seq: seqSchema }),
        },
        { params: { gid: gidExample }, body: { epoch: 4, frame: frameExample }, response: { seq: 1208 } },
      ),
      config: gidRoute,
    },
    async (request) => {
      const caller = deviceOf(request);
      const { gid } = request.params as { gid: string };
      const b = (request.body ?? {}) as Body;
      const epoch = count('epoch', b.epoch);
      const frame = frameField('frame', b.frame);
      let notify: E2eeMember[] = [];
      const out = await km.changeRecords('e2ee.message', ctxOf(request), async (tx) => {
        const group = await memberGroup(tx, gid, caller);
        if (epoch > group.epoch)
          throw new EnsealError(ErrorCode.INVALID_ARGUMENT, `epoch ${epoch} is ahead of the group's`);
        const now = Date.now();
        notify = without(group.roster, caller);
        const seq = await enqueueApplication(
          tx,
          { gid, epoch, sender: caller, frame },
          notify,
          now,
          expires(now),
        );
        return { result: { seq }, detail: { group: gid, epoch } };
      });
      notifier.notify(notify);
      return out;
    },
  );

  registerMessageBatchRoute(app, km, notifier, { deviceOnly, gidExample, frameExample, expires, without });

  app.get(
    '/v1/e2ee/groups/:gid/commits',
    {
      schema: routeSchema(
        'The accepted commits from `after_epoch` on (the commit of epoch e moves the group to e + 1)',
        {
          params: gidParams,
          querystring: obj({ after_epoch: intQuery }),
          response: obj({
            epoch: { type: 'integer' },
            commits: {
              type: 'array',
              items: obj({ epoch: { type: 'integer' }, sender: memberSchema, commit: { type: 'string' } }),
            },
          }),
        },
        {
          params: { gid: gidExample },
          querystring: { after_epoch: '3' },
          response: {
            epoch: 4,
            commits: [{ epoch: 3, sender: { user: 'alice', device: 'phone' }, commit: frameExample }],
          },
        },
      ),
      config: gidRoute,
    },
    async (request) => {
      const caller = deviceOf(request);
      const { gid } = request.params as { gid: string };
      const after = count('after_epoch', (request.query as Record<string, string>).after_epoch);
      const { group, commits } = await km.readRecords(async (tx) => {
        const group = await memberGroup(tx, gid, caller);
        return { group, commits: await tx.listE2eeCommits(gid, after, COMMITS_LIMIT) };
      });
      await km.recordEvent(
        { op: 'e2ee.commits.read', outcome: 'ok', detail: { group: gid, after, commits: commits.length } },
        ctxOf(request),
      );
      return {
        epoch: group.epoch,
        commits: commits.map((c) => ({ epoch: c.epoch, sender: c.sender, commit: base64Encode(c.frame) })),
      };
    },
  );

  const queued = obj({
    seq: seqSchema,
    group_id: { type: 'string' },
    epoch: { type: 'integer' },
    kind: { type: 'string', enum: ['commit', 'welcome', 'application'] },
    sender: memberSchema,
    frame: { type: 'string' },
    received_at: { type: 'string' },
  });
  const inboxSchema = routeSchema(
    `The device's queued messages after \`after\`, oldest first; waits up to \`wait\` seconds (≤ ${MAX_WAIT_S}) when empty`,
    {
      querystring: obj(
        { after: intQuery, wait: intQuery, format: { type: 'string', enum: ['json', 'binary'] } },
        ['after', 'wait', 'format'],
      ),
      response: obj({ messages: { type: 'array', items: queued } }),
    },
    {
      querystring: { after: '1200', wait: '25' },
      response: {
        messages: [
          {
            seq: 1207,
            group_id: gidExample,
            epoch: 3,
            kind: 'commit',
            sender: { user: 'alice', device: 'phone' },
            frame: frameExample,
            received_at: '2026-01-01T00:00:00.000Z',
          },
        ],
      },
    },
  );
  const inboxExample = (inboxSchema.response as Record<string, Record<string, unknown>>)['200']!;
  app.get(
    '/v1/e2ee/inbox',
    {
      schema: {
        ...inboxSchema,
        description:
          'JSON by default. With `format=binary` (or `Accept: ' +
          INBOX_MEDIA_TYPE +
          '`) the same messages come as `' +
          INBOX_MEDIA_TYPE +
          '`: `"EIB" || u8 version (1) || u32 count`, then per message `u64 seq || u8 kind (1 commit, 2 welcome, ' +
          '3 application) || u64 epoch || u8 n || group id || u8 n || sender user || u8 n || sender device || ' +
          'u64 received_at (ms) || u32 n || frame`, big-endian, nothing after (docs/e2ee-service.md).',
      },
      config: {
        access: { path: () => 'e2ee/inbox', e2ee: { tokens: 'device' } },
        // Documentation only (route-docs.ts): both media types of the answer.
        docs: {
          response: {
            200: {
              description: 'The queued messages, oldest first',
              content: {
                'application/json': { schema: inboxExample },
                [INBOX_MEDIA_TYPE]: {
                  schema: {
                    type: 'string',
                    format: 'binary',
                    description: 'The binary answer (format=binary): the same messages, frames as raw bytes',
                    examples: ['EIB\\x01\\x00\\x00\\x00\\x01…'],
                  },
                },
              },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const caller = deviceOf(request);
      const q = request.query as Record<string, string>;
      const after = q.after === undefined ? 0 : count('after', q.after);
      const wait = q.wait === undefined ? 0 : count('wait', q.wait, MAX_WAIT_S);
      if (q.format !== undefined && q.format !== 'json' && q.format !== 'binary')
        throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'format must be json or binary');
      const binary = q.format === 'binary' || request.headers.accept === INBOX_MEDIA_TYPE;
      const deadline = Date.now() + wait * 1000;
      let gone = false;
      request.raw.once('close', () => (gone = true));
      let rows: E2eeQueuedMessage[];
      for (;;) {
        rows = await km.readRecords((tx) => readInbox(tx, caller, after));
        const left = deadline - Date.now();
        if (rows.length > 0 || left <= 0 || gone || notifier.closed) break;
        await notifier.wait(caller, Math.min(POLL_MS, left));
      }
      let bytes = 0;
      const messages = rows.filter((m, i) => (bytes += m.frame.length) <= INBOX_BYTES || i === 0);
      await km.recordEvent(
        {
          op: 'e2ee.inbox',
          outcome: 'ok',
          detail: { messages: messages.length, format: binary ? 'binary' : 'json' },
        },
        ctxOf(request),
      );
      // Closing: this connection must not idle on (keep-alive) and hold the shutdown up.
      if (notifier.closed && request.raw.httpVersionMajor === 1) void reply.header('connection', 'close');
      // Written here rather than by the schema's serializer, from the shared per-message encodings; as bytes,
      // so the answer (often a megabyte) is encoded once and not measured again for its length.
      void reply.header('vary', 'accept');
      if (binary) {
        void reply.type(INBOX_MEDIA_TYPE);
        return Buffer.concat([
          inboxAnswerHeader(messages.length),
          ...messages.map((m) => binaryCache.get(m)),
        ]);
      }
      void reply.type('application/json; charset=utf-8');
      return Buffer.from(`{"messages":[${messages.map((m) => jsonCache.get(m)).join(',')}]}`);
    },
  );

  app.post(
    '/v1/e2ee/inbox/ack',
    {
      schema: routeSchema(
        "Delete the device's queued messages up to `up_to`",
        { body: obj({ up_to: seqSchema }), response: obj({ deleted: { type: 'integer' } }) },
        { body: { up_to: 1207 }, response: { deleted: 1 } },
      ),
      config: { access: { path: () => 'e2ee/inbox', e2ee: { tokens: 'device' } } },
    },
    async (request) => {
      const caller = deviceOf(request);
      const upTo = count('up_to', ((request.body ?? {}) as Body).up_to);
      return km.changeRecords('e2ee.inbox.ack', ctxOf(request), async (tx) => {
        const deleted = await tx.ackE2eeInbox(caller, upTo);
        return { result: { deleted }, detail: { up_to: upTo, deleted } };
      });
    },
  );
}

/** What the batch route shares with the others in {@link registerRelayRoutes}. */
interface RelayShared {
  readonly deviceOnly: { readonly access: Record<string, unknown> };
  readonly gidExample: string;
  readonly frameExample: string;
  readonly expires: (now: number) => number;
  readonly without: (list: readonly E2eeMember[], m: E2eeMember) => E2eeMember[];
}

/** One item's outcome in a batch answer: its seq, or the status and error the single route would answer. */
type BatchResult = { seq: number } | { status: number; error: string };

/** Counts one more request against the caller's rate limit (the plugin's own counter); absent without it. */
type RateCheck = (request: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded?: boolean }>;

/**
 * `POST /v1/e2ee/messages`: several application messages, for one group or several, accepted in one store
 * transaction with one audit entry. Each item is checked exactly as the single route checks it (the device is
 * in that group's current roster, its epoch is not ahead), and an item that fails gets its own error in the
 * answer while the others are queued. Every message counts against the rate limit, not just the request.
 */
function registerMessageBatchRoute(
  app: FastifyInstance,
  km: KeyManager,
  notifier: InboxNotifier,
  shared: RelayShared,
): void {
  const { expires, without } = shared;
  const createRateLimit = (app as unknown as { createRateLimit?: () => RateCheck }).createRateLimit;
  const rateCheck = createRateLimit?.call(app);
  const item = obj({ group_id: gidSchema, epoch: { type: 'integer', minimum: 0 }, frame: frameSchema });
  const result = {
    type: 'object',
    additionalProperties: false,
    properties: { seq: seqSchema, status: { type: 'integer' }, error: { type: 'string' } },
  };
  app.post(
    '/v1/e2ee/messages',
    {
      schema: routeSchema(
        `Queue up to ${BATCH_MAX_MESSAGES} application messages (one group or several) in one request; each is checked and answered on its own, in order`,
        {
          body: obj({
            messages: { type: 'array', minItems: 1, maxItems: BATCH_MAX_MESSAGES, items: item },
          }),
          response: obj({ results: { type: 'array', items: result } }),
        },
        {
          body: {
            messages: [
              { group_id: shared.gidExample, epoch: 4, frame: shared.frameExample },
              { group_id: shared.gidExample, epoch: 4, frame: shared.frameExample },
            ],
          },
          response: { results: [{ seq: 1208 }, { seq: 1209 }] },
        },
      ),
      config: shared.deviceOnly,
      // A full batch of frames as base64, plus room for the JSON around them.
      bodyLimit: Math.ceil(BATCH_MAX_BYTES / 3) * 4 + 64 * 1024,
    },
    async (request) => {
      const caller = deviceOf(request);
      const list = ((request.body ?? {}) as Body).messages;
      if (!Array.isArray(list) || list.length === 0 || list.length > BATCH_MAX_MESSAGES)
        throw new EnsealError(
          ErrorCode.INVALID_ARGUMENT,
          `messages must list 1 to ${BATCH_MAX_MESSAGES} messages`,
        );
      let bytes = 0;
      const items = list.map((m: unknown, i) => {
        const o = (typeof m === 'object' && m !== null ? m : {}) as Body;
        const frame = frameField(`messages[${i}].frame`, o.frame);
        bytes += frame.length;
        if (bytes > BATCH_MAX_BYTES)
          throw new EnsealError(
            ErrorCode.INVALID_ARGUMENT,
            `the frames of one batch must total at most ${BATCH_MAX_BYTES} bytes`,
          );
        return { gid: groupId(o.group_id), epoch: count(`messages[${i}].epoch`, o.epoch), frame };
      });
      // The plugin counted the request once; each further message counts too, before anything is queued.
      if (rateCheck !== undefined)
        for (let i = 1; i < items.length; i++) {
          const r = await rateCheck(request);
          if (!r.isAllowed && r.isExceeded === true)
            throw new HttpError(429, 'rate limit exceeded; slow down');
        }
      const notify = new Map<string, E2eeMember>();
      const refused: { gid: string; code: string }[] = [];
      const ctx = ctxOf(request);
      const results = await km.changeRecords('e2ee.messages', ctx, async (tx) => {
        const groups = new Map<string, Awaited<ReturnType<typeof memberGroup>> | EnsealError>();
        const out: BatchResult[] = [];
        const accepted = new Set<string>();
        const now = Date.now();
        for (const { gid, epoch, frame } of items) {
          // Looked up once per group and batch, but checked for every item: the roster is the group's.
          let group = groups.get(gid);
          if (group === undefined) {
            try {
              group = await memberGroup(tx, gid, caller);
            } catch (err) {
              if (!(err instanceof EnsealError)) throw err;
              group = err;
            }
            groups.set(gid, group);
          }
          const refusal =
            group instanceof EnsealError
              ? group
              : !inRoster(group.roster, caller)
                ? noGroup()
                : epoch > group.epoch
                  ? new EnsealError(ErrorCode.INVALID_ARGUMENT, `epoch ${epoch} is ahead of the group's`)
                  : undefined;
          if (refusal !== undefined || group instanceof EnsealError) {
            const e = refusal!; // set whenever the group is an error
            refused.push({ gid, code: e.code });
            out.push({ status: statusOf(e.code), error: `${e.code}: ${e.message}` });
            continue;
          }
          const recipients = without(group.roster, caller);
          for (const r of recipients) notify.set(`${r.user}/${r.device}`, r);
          const seq = await enqueueApplication(
            tx,
            { gid, epoch, sender: caller, frame },
            recipients,
            now,
            expires(now),
          );
          accepted.add(gid);
          out.push({ seq });
        }
        return {
          result: out,
          detail: {
            messages: items.length - refused.length,
            refused: refused.length,
            groups: [...accepted].join(','),
          },
        };
      });
      notifier.notify([...notify.values()]);
      // Each refused item is a denial of its own, audited and counted as the single route's would be.
      for (const r of refused) await km.recordDenied('e2ee.message', '', r.code, ctx);
      return { results };
    },
  );
}
