/**
 * The operator console at `/ui`: static files (HTML, CSS and small ES modules from the package's `ui/`
 * folder) and nothing else. The routes are public because they carry no data: the console signs in with a
 * token held in page memory and does everything through the same API, ACLs and audit as the CLI.
 *
 * The files are read once at start. Each script and style sheet is named in the page with its SHA-384
 * (Subresource Integrity), computed here, and the console's responses carry a strict CSP of their own (no
 * inline script or style), so the page works under the API's policy and under this one.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { base64Encode, digest, utf8Decode } from '../crypto/index.js';
import type { FastifyInstance } from './http.js';

/** `ui/` at the package root, next to `src/` and `dist/` (both are one level below it). */
const UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));

/** The policy of every console response: same-origin scripts, styles and API calls only. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  readonly body: Uint8Array;
  readonly type: string;
  readonly integrity: string;
}

/** `sha384-…` for an asset, as the `integrity` attribute wants it. */
export function integrityOf(body: Uint8Array): string {
  return `sha384-${base64Encode(digest('sha384', body))}`;
}

/** The console's files by name, and the page with every `{{integrity:name}}` filled in. */
function loadConsole(dir: string): { assets: Map<string, Asset>; page: string } | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  const assets = new Map<string, Asset>();
  for (const name of names.sort()) {
    const ext = name.slice(name.lastIndexOf('.'));
    const type = TYPES[ext];
    if (type === undefined || !/^[a-z0-9-]+\.[a-z]+$/.test(name)) continue;
    const body = new Uint8Array(readFileSync(join(dir, name)));
    assets.set(name, { body, type, integrity: integrityOf(body) });
  }
  const template = utf8Decode(new Uint8Array(readFileSync(join(dir, 'index.html'))));
  const page = template.replace(/\{\{integrity:([a-z0-9.-]+)\}\}/g, (_m, name: string) => {
    const asset = assets.get(name);
    if (asset === undefined) throw new Error(`the console page names a missing file: ${name}`);
    return asset.integrity;
  });
  return { assets, page };
}

const htmlExample =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>enseal console</title>…';

/** Registers `/ui` and one route per console file (`/ui/<name>`); all public, none serving data. */
export function registerConsoleRoutes(app: FastifyInstance, dir: string = UI_DIR): void {
  const loaded = loadConsole(dir);
  const access = { access: { public: true } } as const;
  const page = (summary: string) => ({
    schema: {
      tags: ['console'],
      summary,
      description: 'Static operator console; every datum comes from the API with the operator’s token.',
      response: {
        200: { content: { 'text/html': { schema: { type: 'string', examples: [htmlExample] } } } },
        404: {
          content: {
            'text/plain': { schema: { type: 'string', examples: ['the console files are not installed'] } },
          },
        },
      },
    },
    config: access,
  });

  // The page is `/ui` itself: a trailing slash is an empty path segment, which every route refuses.
  app.get('/ui', page('The operator console'), async (_request, reply) => {
    void reply
      .header('content-security-policy', CONSOLE_CSP)
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer');
    if (loaded === undefined)
      return reply.code(404).type('text/plain; charset=utf-8').send('the console files are not installed');
    return reply.type('text/html; charset=utf-8').send(loaded.page);
  });
  for (const [name, asset] of loaded?.assets ?? []) {
    app.get(
      `/ui/${name}`,
      {
        schema: {
          tags: ['console'],
          summary: `Console file ${name}`,
          description: `Static console file, named in the page with integrity ${asset.integrity}.`,
          response: {
            200: {
              content: {
                [asset.type.split(';')[0]!]: { schema: { type: 'string', examples: ['/* static file */'] } },
              },
            },
          },
        },
        config: access,
      },
      async (_request, reply) =>
        reply
          .header('content-security-policy', CONSOLE_CSP)
          .header('cache-control', 'no-cache')
          .type(asset.type)
          .send(Buffer.from(asset.body)),
    );
  }
}

/** For tests: the page as served, and each file's integrity value. */
export function consoleFiles(dir: string = UI_DIR): { page: string; integrity: Record<string, string> } {
  const loaded = loadConsole(dir);
  if (loaded === undefined) throw new Error(`no console files in ${dir}`);
  return {
    page: loaded.page,
    integrity: Object.fromEntries([...loaded.assets].map(([n, a]) => [n, a.integrity])),
  };
}
