/** `/v1/e2ee/log/*`: the signed checkpoint, the log's keys, entries and proofs. */
import { base64Encode, invalidArgument } from '../../crypto/index.js';
import type { KeyManager } from '../../kms/index.js';
import type { FastifyInstance, FastifyRequest } from '../http.js';
import type { E2eeLog } from './log-service.js';
import { count, ctxOf, intQuery, obj, routeSchema } from './requests.js';

const MAX_ENTRIES = 1000;

export function registerLogRoutes(app: FastifyInstance, km: KeyManager, log: E2eeLog): void {
  const proofResponse = obj({ proof: { type: 'array', items: { type: 'string' } } });
  const anyToken = { access: { e2ee: { tokens: 'any' } } } as const;
  const audit = (request: FastifyRequest, op: string, detail: Record<string, number>) =>
    km.recordEvent({ op, outcome: 'ok', detail }, ctxOf(request));

  app.get(
    '/v1/e2ee/log/checkpoint',
    {
      schema: routeSchema(
        "The log's latest signed checkpoint (text/plain), with the witnesses' cosignatures",
        { response: { type: 'string' } },
        {
          response:
            'example.com/enseal-e2ee\n3\nq5v…=\n\n— example.com/enseal-e2ee Az3…=\n— witness.example/w1 …\n',
        },
      ),
      config: { access: { public: true } },
    },
    async (_request, reply) => reply.type('text/plain; charset=utf-8').send(await log.latest()),
  );

  app.get(
    '/v1/e2ee/log/key',
    {
      schema: routeSchema(
        "The log's origin and verifier key, the witnesses' verifier keys and the quorum (for setting up clients)",
        {
          response: obj({
            origin: { type: 'string' },
            verifier_key: { type: 'string' },
            witnesses: { type: 'array', items: { type: 'string' } },
            quorum: { type: 'integer' },
          }),
        },
        {
          response: {
            origin: 'example.com/enseal-e2ee',
            verifier_key: 'example.com/enseal-e2ee+8f1e2d3c+AUo…',
            witnesses: ['witness.example/w1+01234567+BHc…'],
            quorum: 1,
          },
        },
      ),
      config: { access: { public: true } },
    },
    async () => ({ origin: log.origin, verifier_key: await log.verifierKey(), ...log.witnessPolicy }),
  );

  app.get(
    '/v1/e2ee/log/entries',
    {
      schema: routeSchema(
        `Log entries [start, end), at most ${MAX_ENTRIES}`,
        {
          querystring: obj({ start: intQuery, end: intQuery }),
          response: obj({ entries: { type: 'array', items: { type: 'string' } } }),
        },
        { querystring: { start: '0', end: '2' }, response: { entries: ['AQVhbGljZQ…', 'AQFhbGljZQ…'] } },
      ),
      config: anyToken,
    },
    async (request) => {
      const q = request.query as Record<string, string>;
      const start = count('start', q.start);
      const end = count('end', q.end);
      const size = await log.size();
      if (start >= end || end > size)
        throw invalidArgument('start and end', `must satisfy start < end ≤ ${size}`);
      if (end - start > MAX_ENTRIES) throw invalidArgument('end', `must be at most start + ${MAX_ENTRIES}`);
      const rows = await log.entries(start, end);
      await audit(request, 'e2ee.log.entries', { start, end });
      return { entries: rows.map((r) => base64Encode(r.entry)) };
    },
  );

  app.get(
    '/v1/e2ee/log/proof/inclusion',
    {
      schema: routeSchema(
        'The inclusion proof of leaf `index` in the tree of `size` leaves',
        { querystring: obj({ index: intQuery, size: intQuery }), response: proofResponse },
        { querystring: { index: '1', size: '3' }, response: { proof: ['3q2…=', 'vu8…='] } },
      ),
      config: anyToken,
    },
    async (request) => {
      const q = request.query as Record<string, string>;
      const index = count('index', q.index);
      const size = count('size', q.size);
      if (index >= size || size > (await log.size()))
        throw invalidArgument('index and size', 'must satisfy index < size ≤ the log size');
      const proof = await log.inclusionProof(index, size);
      await audit(request, 'e2ee.log.proof', { index, size });
      return { proof: proof.map(base64Encode) };
    },
  );

  app.get(
    '/v1/e2ee/log/proof/consistency',
    {
      schema: routeSchema(
        'The consistency proof between tree sizes `from` and `to`',
        { querystring: obj({ from: intQuery, to: intQuery }), response: proofResponse },
        { querystring: { from: '2', to: '5' }, response: { proof: ['3q2…=', 'vu8…='] } },
      ),
      config: anyToken,
    },
    async (request) => {
      const q = request.query as Record<string, string>;
      const from = count('from', q.from);
      const to = count('to', q.to);
      if (from > to || to > (await log.size()))
        throw invalidArgument('from and to', 'must satisfy from ≤ to ≤ the log size');
      const proof = await log.consistencyProof(from, to);
      await audit(request, 'e2ee.log.proof', { from, to });
      return { proof: proof.map(base64Encode) };
    },
  );
}
