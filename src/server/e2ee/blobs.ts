/**
 * Blobs: encrypted files of a group, uploaded in chunks of at most 4 MiB (`application/octet-stream`, the only
 * routes that take a binary body), completed once every chunk is there, then read chunk by chunk. Only current
 * roster members of the blob's group may write or read it; blobs expire with the queue TTL.
 */
import { EnsealError, ErrorCode, hexEncode, invalidArgument, randomBytes } from '../../crypto/index.js';
import type { KeyManager } from '../../kms/index.js';
import type { StoreTransaction } from '../../store/index.js';
import { HttpError, type FastifyInstance } from '../http.js';
import type { E2eeSettings } from './config.js';
import { memberGroup } from './relay.js';
import { GID, count, ctxOf, deviceOf, gidSchema, intQuery, obj, routeSchema, type Body } from './requests.js';

/** Largest chunk. */
export const CHUNK_MAX_BYTES = 4 * 1024 * 1024;
/** Most chunks in one blob (a 40 GiB file at 4 MiB per chunk). */
export const MAX_CHUNKS = 10_000;
const BLOB_ID = /^[0-9a-f]{32}$/;

const noBlob = () =>
  new EnsealError(ErrorCode.E2EE_NOT_FOUND, 'no such blob, or this device is not in its group');

export function registerBlobRoutes(app: FastifyInstance, km: KeyManager, settings: E2eeSettings): void {
  const access = { path: () => 'e2ee/blobs', e2ee: { tokens: 'device' } } as const;
  const idParams = obj({ id: { type: 'string', pattern: BLOB_ID.source } });
  const chunkParams = obj({ id: { type: 'string', pattern: BLOB_ID.source }, n: intQuery });
  const idExample = '9f86d081884c7d659a2feaa0c55ad015';

  /** The blob, if the caller is in its group's current roster. */
  const readable = async (tx: StoreTransaction, id: string, caller: ReturnType<typeof deviceOf>) => {
    const blob = await tx.getE2eeBlob(id);
    if (blob === undefined || blob.expiresAt <= Date.now()) throw noBlob();
    try {
      await memberGroup(tx, blob.groupId, caller);
    } catch {
      throw noBlob();
    }
    return blob;
  };

  app.post(
    '/v1/e2ee/groups/:gid/blobs',
    {
      schema: routeSchema(
        'Start a blob in the group',
        { params: obj({ gid: gidSchema }), response: obj({ blob_id: { type: 'string' } }) },
        { params: { gid: 'q83vEjRWeJq83vEjRWeJqw' }, response: { blob_id: idExample } },
      ),
      config: { access: { ...access, params: { gid: GID } } },
    },
    async (request) => {
      const caller = deviceOf(request);
      const { gid } = request.params as { gid: string };
      return km.changeRecords('e2ee.blob.create', ctxOf(request), async (tx) => {
        await memberGroup(tx, gid, caller);
        const now = Date.now();
        const blobId = hexEncode(randomBytes(16));
        await tx.insertE2eeBlob({
          blobId,
          groupId: gid,
          owner: caller,
          createdAt: now,
          expiresAt: now + settings.queueTtlMs,
        });
        return { result: { blob_id: blobId }, detail: { group: gid, blob: blobId } };
      });
    },
  );

  // The chunk upload is the one route with a binary body: its parser lives in this encapsulated context only.
  void app.register(async (binary) => {
    binary.addContentTypeParser(
      'application/octet-stream',
      { parseAs: 'buffer', bodyLimit: CHUNK_MAX_BYTES },
      (_request, body, done) => done(null, body),
    );
    binary.put(
      '/v1/e2ee/blobs/:id/chunks/:n',
      {
        bodyLimit: CHUNK_MAX_BYTES,
        schema: routeSchema(
          'Upload chunk n of an incomplete blob (application/octet-stream, at most 4 MiB)',
          { params: chunkParams, body: {}, response: obj({ size: { type: 'integer' } }) },
          { params: { id: idExample, n: '0' }, body: '<chunk bytes>', response: { size: 4194304 } },
        ),
        config: { access },
      },
      async (request) => {
        const caller = deviceOf(request);
        const { id, n: nText } = request.params as { id: string; n: string };
        const n = count('n', nText, MAX_CHUNKS - 1);
        const data = request.body;
        if (!(data instanceof Uint8Array) || data.length === 0)
          throw new HttpError(
            415,
            'ERR_INVALID_ARGUMENT: a chunk is a non-empty application/octet-stream body',
          );
        return km.changeRecords('e2ee.blob.chunk', ctxOf(request), async (tx) => {
          const blob = await readable(tx, id, caller);
          if (blob.chunks !== undefined || !(await tx.putE2eeBlobChunk(id, n, data)))
            throw new EnsealError(ErrorCode.E2EE_CONFLICT, 'the blob is complete; it takes no more chunks');
          return { result: { size: data.length }, detail: { blob: id, chunk: n, size: data.length } };
        });
      },
    );
  });

  app.post(
    '/v1/e2ee/blobs/:id/complete',
    {
      schema: routeSchema(
        'Complete a blob that holds exactly chunks 0 … chunks − 1',
        {
          params: idParams,
          body: obj({ chunks: { type: 'integer', minimum: 1, maximum: MAX_CHUNKS } }),
          response: obj({ chunks: { type: 'integer' }, size: { type: 'integer' } }),
        },
        { params: { id: idExample }, body: { chunks: 2 }, response: { chunks: 2, size: 5242880 } },
      ),
      config: { access },
    },
    async (request) => {
      const caller = deviceOf(request);
      const { id } = request.params as { id: string };
      const chunks = count('chunks', ((request.body ?? {}) as Body).chunks, MAX_CHUNKS);
      if (chunks === 0) throw invalidArgument('chunks', 'must be at least 1');
      return km.changeRecords('e2ee.blob.complete', ctxOf(request), async (tx) => {
        await readable(tx, id, caller);
        const size = await tx.completeE2eeBlob(id, chunks);
        if (size === undefined)
          throw new EnsealError(
            ErrorCode.E2EE_CONFLICT,
            `the blob is complete already, or does not hold exactly chunks 0 to ${chunks - 1}`,
          );
        return { result: { chunks, size }, detail: { blob: id, chunks, size } };
      });
    },
  );

  app.get(
    '/v1/e2ee/blobs/:id',
    {
      schema: routeSchema(
        "A complete blob's chunk count and size",
        { params: idParams, response: obj({ chunks: { type: 'integer' }, size: { type: 'integer' } }) },
        { params: { id: idExample }, response: { chunks: 2, size: 5242880 } },
      ),
      config: { access },
    },
    async (request) => {
      const caller = deviceOf(request);
      const { id } = request.params as { id: string };
      const blob = await km.readRecords((tx) => readable(tx, id, caller));
      if (blob.chunks === undefined)
        throw new EnsealError(ErrorCode.E2EE_CONFLICT, 'the blob is not complete yet');
      await km.recordEvent({ op: 'e2ee.blob.read', outcome: 'ok', detail: { blob: id } }, ctxOf(request));
      return { chunks: blob.chunks, size: blob.size };
    },
  );

  app.get(
    '/v1/e2ee/blobs/:id/chunks/:n',
    {
      schema: routeSchema(
        'Chunk n of a complete blob (application/octet-stream)',
        { params: chunkParams, response: { type: 'string', format: 'binary' } },
        { params: { id: idExample, n: '0' }, response: '<bytes>' },
      ),
      config: { access },
    },
    async (request, reply) => {
      const caller = deviceOf(request);
      const { id, n: nText } = request.params as { id: string; n: string };
      const n = count('n', nText, MAX_CHUNKS - 1);
      const data = await km.readRecords(async (tx) => {
        const blob = await readable(tx, id, caller);
        if (blob.chunks === undefined)
          throw new EnsealError(ErrorCode.E2EE_CONFLICT, 'the blob is not complete yet');
        return tx.getE2eeBlobChunk(id, n);
      });
      if (data === undefined) throw new EnsealError(ErrorCode.E2EE_NOT_FOUND, `the blob has no chunk ${n}`);
      await km.recordEvent(
        { op: 'e2ee.blob.chunk.read', outcome: 'ok', detail: { blob: id, chunk: n } },
        ctxOf(request),
      );
      return reply
        .type('application/octet-stream')
        .send(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    },
  );
}
