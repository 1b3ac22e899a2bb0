/**
 * The end-to-end encrypted web client at `/app`: a page (the package's `app/index.html`), its style sheet
 * (`app/app.css`), the client's script (`dist/web/app.js`, bundled from src/web/app/) and the browser build
 * of the library (`dist/web/enseal-e2ee.js`, for developers who load it as an ES module). The routes are
 * public because they carry no data: every key lives in the browser, and the page reaches the e2ee API with
 * the device's own tokens.
 *
 * The files are read once at start. Each script and style sheet is named in the page with its SHA-384
 * (Subresource Integrity), and every response carries a strict CSP of its own. Its one exception to the
 * console's policy is `'wasm-unsafe-eval'`: Argon2id (passphrase backup and recovery of the identity key)
 * runs as WebAssembly, and compiling WebAssembly needs exactly that source keyword. It allows no JavaScript
 * `eval` and no inline script.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { utf8Decode } from '../crypto/index.js';
import { integrityOf } from './console-routes.js';
import type { FastifyInstance } from './http.js';

/** The package root: `src/server/` and `dist/server/` are both two levels below it. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The policy of every web client response: same-origin code and API calls only, no inline anything. */
export const APP_CSP =
  "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; " +
  "img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Where each served file comes from, relative to the package root. */
const FILES: Readonly<Record<string, { path: string; type: string }>> = {
  'app.js': { path: 'dist/web/app.js', type: 'text/javascript; charset=utf-8' },
  'app.css': { path: 'app/app.css', type: 'text/css; charset=utf-8' },
  'enseal-e2ee.js': { path: 'dist/web/enseal-e2ee.js', type: 'text/javascript; charset=utf-8' },
};

const NOT_BUILT = 'the web client is not built: run `npm run build` in the package, then restart the server';

interface Asset {
  readonly body: Uint8Array;
  readonly type: string;
  readonly integrity: string;
}

interface Loaded {
  readonly assets: Map<string, Asset>;
  /** The page, or undefined when a file it names is missing. */
  readonly page: string | undefined;
}

function loadApp(root: string): Loaded {
  const assets = new Map<string, Asset>();
  for (const [name, { path, type }] of Object.entries(FILES)) {
    let body: Uint8Array;
    try {
      body = new Uint8Array(readFileSync(join(root, path)));
    } catch {
      continue;
    }
    assets.set(name, { body, type, integrity: integrityOf(body) });
  }
  let template: string;
  try {
    template = utf8Decode(new Uint8Array(readFileSync(join(root, 'app', 'index.html'))));
  } catch {
    return { assets, page: undefined };
  }
  let missing = false;
  const page = template.replace(/\{\{integrity:([a-z0-9.-]+)\}\}/g, (_m, name: string) => {
    const asset = assets.get(name);
    if (asset === undefined) missing = true;
    return asset?.integrity ?? '';
  });
  return { assets, page: missing ? undefined : page };
}

const htmlExample = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>enseal</title>…';

function secure<T extends { header(name: string, value: string): T }>(reply: T): T {
  return reply
    .header('content-security-policy', APP_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin');
}

/** Registers `/app` and `/app/<file>`; all public, none serving data. A file not built answers 404. */
export function registerAppRoutes(app: FastifyInstance, root: string = ROOT): void {
  const loaded = loadApp(root);
  const access = { access: { public: true } } as const;
  const notFound = {
    404: { content: { 'text/plain': { schema: { type: 'string', examples: [NOT_BUILT] } } } },
  };

  // Like the console, the page is `/app` itself (a trailing slash is an empty segment every route refuses).
  app.get(
    '/app',
    {
      schema: {
        tags: ['web client'],
        summary: 'The end-to-end encrypted web client',
        description:
          'Static page; its keys stay in the browser (non-extractable WebCrypto keys, state sealed in IndexedDB).',
        response: {
          200: { content: { 'text/html': { schema: { type: 'string', examples: [htmlExample] } } } },
          ...notFound,
        },
      },
      config: access,
    },
    async (_request, reply) => {
      void secure(reply).header('cache-control', 'no-store');
      if (loaded.page === undefined) return reply.code(404).type('text/plain; charset=utf-8').send(NOT_BUILT);
      return reply.type('text/html; charset=utf-8').send(loaded.page);
    },
  );
  for (const [name, { type }] of Object.entries(FILES)) {
    const asset = loaded.assets.get(name);
    app.get(
      `/app/${name}`,
      {
        schema: {
          tags: ['web client'],
          summary: `Web client file ${name}`,
          description:
            asset === undefined
              ? `Static web client file (not built on this server).`
              : `Static web client file, named in the page with integrity ${asset.integrity}.`,
          response: {
            200: {
              content: {
                [type.split(';')[0]!]: { schema: { type: 'string', examples: ['/* static file */'] } },
              },
            },
            ...notFound,
          },
        },
        config: access,
      },
      async (_request, reply) => {
        void secure(reply).header('cache-control', 'no-cache');
        if (asset === undefined) return reply.code(404).type('text/plain; charset=utf-8').send(NOT_BUILT);
        return reply.type(asset.type).send(Buffer.from(asset.body));
      },
    );
  }
}

/** For tests: the page as served (undefined when not built) and each file's integrity value. */
export function appFiles(root: string = ROOT): {
  page: string | undefined;
  integrity: Record<string, string>;
} {
  const loaded = loadApp(root);
  return {
    page: loaded.page,
    integrity: Object.fromEntries([...loaded.assets].map(([n, a]) => [n, a.integrity])),
  };
}
