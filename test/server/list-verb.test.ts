/** The LIST verb that Vault clients send, answered on every list route exactly as `GET ?list=true`. */
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devServer } from './helpers.js';

type Ctx = Awaited<ReturnType<typeof devServer>>;
interface ListBody {
  data: { keys: string[] };
}

function h2(session: ClientHttp2Session, method: string, path: string, token?: string) {
  return new Promise<{ status: number; body: ListBody }>((resolve, reject) => {
    const req = session.request({
      ':method': method,
      ':path': path,
      ...(token ? { 'x-vault-token': token } : {}),
    });
    let status = 0;
    let text = '';
    req.on('response', (headers) => (status = Number(headers[':status'])));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => resolve({ status, body: (text === '' ? undefined : JSON.parse(text)) as ListBody }));
    req.on('error', reject);
    req.end();
  });
}

describe('LIST verb (HTTP/2, as the vault CLI sends it)', () => {
  let ctx: Ctx;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    ctx = await devServer({ logLevel: 'warn' } as never);
    await ctx.call('POST', '/v1/transit/keys/alpha', { body: {} });
    await ctx.call('POST', '/v1/transit/keys/beta', { body: {} });
    session = connect(ctx.server.url, { ca: readFileSync(ctx.server.caFile!) });
  });
  afterAll(async () => {
    session?.close();
    await ctx?.server.close();
  });

  it('LIST /v1/transit/keys answers what GET ?list=true answers', async () => {
    const viaList = await h2(session, 'LIST', '/v1/transit/keys', ctx.token);
    const viaGet = await ctx.call('GET', '/v1/transit/keys?list=true');
    expect(viaList.status).toBe(200);
    expect(viaList.body.data.keys).toEqual(viaGet.body.data.keys);
    expect(viaList.body.data.keys).toEqual(expect.arrayContaining(['alpha', 'beta']));
  });

  it('LIST /v1/sys/policies/acl lists policies', async () => {
    const res = await h2(session, 'LIST', '/v1/sys/policies/acl', ctx.token);
    expect(res.status).toBe(200);
    expect(res.body.data.keys).toContain('root');
  });

  it('LIST needs the list capability like GET ?list=true: no token is refused, a read-only token too', async () => {
    expect((await h2(session, 'LIST', '/v1/transit/keys')).status).toBe(403);
    await ctx.call('PUT', '/v1/sys/policies/acl/reader', {
      body: { policy: 'path "transit/keys/*" { capabilities = ["read"] }' },
    });
    const created = await ctx.call('POST', '/v1/auth/token/create', { body: { policies: ['reader'] } });
    const reader = created.body.auth.client_token as string;
    expect((await h2(session, 'LIST', '/v1/transit/keys', reader)).status).toBe(403);
    expect((await ctx.call('GET', '/v1/transit/keys?list=true', { token: reader })).status).toBe(403);
  });

  it('LIST on a route that is not a list route is refused', async () => {
    const res = await h2(session, 'LIST', '/v1/transit/keys/alpha', ctx.token);
    expect(res.status).toBe(400); // as GET ?list=true on a route that does not list
  });
});
