import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devServer } from './helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
let ctx: Awaited<ReturnType<typeof devServer>>;
let doc: any;

beforeAll(async () => {
  ctx = await devServer();
  // The document the /docs page renders.
  doc = (await ctx.call('GET', '/docs/json', { token: null })).body;
});
afterAll(async () => ctx.server.close());

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
/** POST routes whose only input is their path: they take no body, so they document none. */
const NO_BODY = new Set([
  'post /v1/e2ee/users/{user}/key-packages/claim',
  'post /v1/e2ee/groups/{gid}/blobs',
]);

function operations(): { key: string; path: string; method: string; op: any }[] {
  return Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ key: `${method} ${path}`, path, method, op })),
  );
}

/** The media type of a request body or response, whichever it declares first. */
const media = (x: any): any => (x?.content === undefined ? undefined : Object.values(x.content)[0]);
const hasExample = (m: any): boolean =>
  m !== undefined &&
  (m.example !== undefined ||
    (m.examples !== undefined && Object.keys(m.examples).length > 0) ||
    m.schema?.example !== undefined ||
    (Array.isArray(m.schema?.examples) && m.schema.examples.length > 0));

function problemsOf(path: string, method: string, op: any): string[] {
  const problems: string[] = [];
  if (typeof op.summary !== 'string' || op.summary === '') problems.push('no summary');
  if (!Array.isArray(op.tags) || op.tags.length === 0) problems.push('no tags');
  const parameters: any[] = op.parameters ?? [];
  for (const [, name] of path.matchAll(/\{([^}]+)\}/g))
    if (!parameters.some((p) => p.in === 'path' && p.name === name)) problems.push(`path parameter ${name}`);
  if (['post', 'put', 'patch'].includes(method) && !NO_BODY.has(`${method} ${path}`)) {
    const body = media(op.requestBody);
    if (body?.schema === undefined) problems.push('no request body schema');
    else if (!hasExample(body)) problems.push('no request body example');
  }
  const ok = op.responses?.['200'] ?? op.responses?.['201'];
  if (ok === undefined) {
    if (op.responses?.['204'] === undefined) problems.push('no 200 or 204 answer');
  } else {
    const m = media(ok);
    if (m?.schema === undefined) problems.push('no answer schema');
    else if (!hasExample(m)) problems.push('no answer example');
  }
  return problems;
}

describe('the OpenAPI document behind /docs', () => {
  it('documents every route: summary, tags, input, a success schema and an example', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(50);
    const offenders = ops.flatMap(({ path, method, op }) => {
      const problems = problemsOf(path, method, op);
      return problems.length === 0 ? [] : [`${method.toUpperCase()} ${path}: ${problems.join(', ')}`];
    });
    expect(offenders, `routes missing documentation:\n${offenders.join('\n')}`).toEqual([]);
  });

  it('lists every registered route', () => {
    const documented = new Set(operations().map(({ key }) => key));
    // A few routes of the server itself and the page's own files are not part of the API.
    const wanted = [
      'post /v1/transit/encrypt/{name}',
      'post /v1/transit/decrypt/{name}',
      'get /v1/sys/health',
      'get /v1/auth/token/lookup-self',
      'post /encrypt',
    ];
    for (const key of wanted) expect(documented, key).toContain(key);
  });
});

/** The example of a route's 200 answer. */
function answerExample(path: string, method: string): any {
  const m = media(doc.paths[path][method].responses['200']);
  if (m.example !== undefined) return m.example;
  if (m.examples !== undefined) return (Object.values(m.examples)[0] as any).value;
  return m.schema.examples?.[0] ?? m.schema.example;
}
/** The example of a route's request body. */
function bodyExample(path: string, method: string): any {
  const m = media(doc.paths[path][method].requestBody);
  if (m.example !== undefined) return m.example;
  if (m.examples !== undefined) return (Object.values(m.examples)[0] as any).value;
  return m.schema.examples?.[0] ?? m.schema.example;
}
const keys = (x: unknown): string[] =>
  typeof x === 'object' && x !== null && !Array.isArray(x) ? Object.keys(x).sort() : [];

describe('the examples are what the routes answer', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  /** Calls a route and checks the answer has the example's fields, no more and no fewer, at two levels. */
  async function matches(method: string, path: string, docPath: string, body?: unknown) {
    const r = await ctx.call(method.toUpperCase(), path, body === undefined ? {} : { body });
    expect(r.status, `${method} ${path}: ${r.text}`).toBe(200);
    const example = answerExample(docPath, method);
    expect(keys(r.body), `${method} ${docPath}: top-level fields`).toEqual(keys(example));
    if (keys(example).includes('data') && example.data !== null)
      expect(keys(r.body.data), `${method} ${docPath}: data fields`).toEqual(keys(example.data));
    if (keys(example).includes('auth') && example.auth !== null)
      expect(keys(r.body.auth), `${method} ${docPath}: auth fields`).toEqual(keys(example.auth));
    return r;
  }

  it('transit: keys, encrypt, decrypt, rewrap, datakey, hmac, sign, verify, random, hash', async () => {
    await matches('post', '/v1/transit/keys/docs-orders', '/v1/transit/keys/{name}', {
      type: 'aes256-gcm96',
    });
    await matches('get', '/v1/transit/keys/docs-orders', '/v1/transit/keys/{name}');
    await matches('post', '/v1/transit/keys/docs-orders/rotate', '/v1/transit/keys/{name}/rotate');
    const enc = await matches('post', '/v1/transit/encrypt/docs-orders', '/v1/transit/encrypt/{name}', {
      plaintext: b64('4111 1111 1111 1111'),
      associated_data: b64('order 7'),
    });
    // The example request itself is accepted, and decrypts what it encrypted.
    const sample = bodyExample('/v1/transit/encrypt/{name}', 'post');
    const enc2 = await ctx.call('POST', '/v1/transit/encrypt/docs-orders', { body: sample });
    expect(enc2.status).toBe(200);
    await matches('post', '/v1/transit/decrypt/docs-orders', '/v1/transit/decrypt/{name}', {
      ciphertext: enc2.body.data.ciphertext,
      associated_data: sample.associated_data,
    });
    await matches('post', '/v1/transit/rewrap/docs-orders', '/v1/transit/rewrap/{name}', {
      ciphertext: enc.body.data.ciphertext,
      associated_data: b64('order 7'),
    });
    await matches(
      'post',
      '/v1/transit/datakey/plaintext/docs-orders',
      '/v1/transit/datakey/{kind}/{name}',
      bodyExample('/v1/transit/datakey/{kind}/{name}', 'post'),
    );
    await ctx.call('POST', '/v1/transit/keys/docs-mac', { body: { type: 'hmac' } });
    await matches('post', '/v1/transit/hmac/docs-mac', '/v1/transit/hmac/{name}', {
      input: b64('row 7'),
    });
    await ctx.call('POST', '/v1/transit/keys/docs-signer', { body: { type: 'ed25519' } });
    const sig = await matches('post', '/v1/transit/sign/docs-signer', '/v1/transit/sign/{name}', {
      input: b64('contract'),
    });
    await matches('post', '/v1/transit/verify/docs-signer', '/v1/transit/verify/{name}', {
      input: b64('contract'),
      signature: sig.body.data.signature,
    });
    await matches(
      'post',
      '/v1/transit/random',
      '/v1/transit/random',
      bodyExample('/v1/transit/random', 'post'),
    );
    await matches('post', '/v1/transit/hash', '/v1/transit/hash', bodyExample('/v1/transit/hash', 'post'));
    await ctx.call('POST', '/v1/transit/keys/docs-portable', {
      body: { exportable: true, allow_plaintext_backup: true },
    });
    await ctx.call('POST', '/v1/transit/keys/docs-portable/rotate'); // the config example raises the minimum to 2
    await matches(
      'get',
      '/v1/transit/export/encryption-key/docs-portable',
      '/v1/transit/export/{type}/{name}',
    );
    await matches(
      'post',
      '/v1/transit/backup/docs-portable',
      '/v1/transit/backup/{name}',
      bodyExample('/v1/transit/backup/{name}', 'post'),
    );
    await matches(
      'post',
      '/v1/transit/keys/docs-portable/config',
      '/v1/transit/keys/{name}/config',
      bodyExample('/v1/transit/keys/{name}/config', 'post'),
    );
  });

  it('sys and auth: health, seal status, audit checkpoint, token lookup and create', async () => {
    await matches('get', '/v1/sys/health', '/v1/sys/health');
    await matches('get', '/v1/sys/seal-status', '/v1/sys/seal-status');
    await matches('get', '/v1/sys/audit/checkpoint', '/v1/sys/audit/checkpoint');
    await matches('get', '/v1/auth/token/lookup-self', '/v1/auth/token/lookup-self');
    await matches(
      'post',
      '/v1/auth/token/create',
      '/v1/auth/token/create',
      bodyExample('/v1/auth/token/create', 'post'),
    );
  });

  it('no example carries a real-looking token', () => {
    const text = JSON.stringify(doc);
    for (const [, token] of text.matchAll(/"(ens\.[^"]*)"/g)) expect(token).toMatch(/EXAMPLE|…/);
    expect(text).not.toContain(ctx.token);
  });
});

describe('every GET route without parameters answers with the fields of its example', () => {
  it('top level and data', async () => {
    await ctx.call('POST', '/v1/transit/keys/docs-listed', { body: {} });
    const mismatches: string[] = [];
    for (const { path, method, op } of operations()) {
      // The e2ee routes need device tokens and their own fixtures: test/server/e2ee-routes.test.ts calls them.
      const skip = ['/docs', '/ui', '/v1/e2ee/'].some((prefix) => path.startsWith(prefix));
      if (method !== 'get' || path.includes('{') || skip) continue;
      const m = media(op.responses?.['200']);
      if (m === undefined || !Object.keys(op.responses['200'].content).includes('application/json')) continue;
      const list = (op.parameters ?? []).some((p: any) => p.in === 'query' && p.name === 'list');
      const r = await ctx.call('GET', list ? `${path}?list=true` : path);
      if (r.status !== 200) {
        mismatches.push(`GET ${path}: status ${r.status}`);
        continue;
      }
      const example = answerExample(path, method);
      const top = [keys(r.body), keys(example)].map((k) => k.join(','));
      if (top[0] !== top[1]) mismatches.push(`GET ${path}: answer has ${top[0]}, example ${top[1]}`);
      const data = [keys(r.body?.data), keys(example?.data)].map((k) => k.join(','));
      if (data[0] !== data[1]) mismatches.push(`GET ${path}: data has ${data[0]}, example ${data[1]}`);
    }
    expect(mismatches, mismatches.join('\n')).toEqual([]);
  });
});
