import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { Writable } from 'node:stream';
import { startServer, type RunningServer, type ServeConfig } from '../../src/server/index.js';
import { tempDir } from '../kms/helpers.js';

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

/** A dev-mode server on a free port with its log captured, and a client trusting its dev CA. */
export async function devServer(config: ServeConfig = {}): Promise<{
  server: RunningServer;
  call: (
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown; raw?: string },
  ) => Promise<Response>;
  logs: () => string;
  token: string;
}> {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const server = await startServer({
    dev: true,
    dataDir: tempDir(),
    port: 0,
    logLevel: 'info',
    ...config,
    logStream: stream,
  } as ServeConfig);
  const ca = server.caFile ? readFileSync(server.caFile) : undefined;
  const token = server.rootToken!;
  const call = (
    method: string,
    path: string,
    options: { token?: string | null; body?: unknown; raw?: string } = {},
  ) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(path, server.url);
      const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      const req = httpsRequest(
        url,
        {
          method,
          ...(ca ? { ca } : {}),
          headers: {
            ...(options.token === null ? {} : { 'x-vault-token': options.token ?? token }),
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString();
            let body: unknown;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              // not JSON (metrics, audit export): callers read `text`
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
          });
        },
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  return { server, call, logs: () => chunks.join(''), token };
}
