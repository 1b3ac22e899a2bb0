/** The LIST verb that Vault clients send, answered on every list route exactly as `GET ?list=true`, over HTTP/2 and HTTP/1.1. */
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
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

/** Bytes over one HTTP/1.1 TLS connection, read back as responses. */
class RawConnection {
  readonly socket: TLSSocket;
  #data = Buffer.alloc(0);
  closed = false;
  readonly ready: Promise<void>;

  constructor(url: string, ca: Buffer) {
    const { hostname, port } = new URL(url);
    this.socket = tlsConnect({ host: hostname, port: Number(port), ca, ALPNProtocols: ['http/1.1'] });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('secureConnect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('data', (d: Buffer) => (this.#data = Buffer.concat([this.#data, d])));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => (this.closed = true));
  }

  async send(bytes: string): Promise<void> {
    await this.ready;
    this.socket.write(bytes);
  }

  /** Waits for `count` whole responses (Content-Length framed) and returns them, consumed. */
  async responses(count: number, timeoutMs = 5000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = splitResponses(this.#data.toString('latin1'));
      if (parsed.length >= count || this.closed || Date.now() > deadline) {
        const taken = parsed.slice(0, count);
        const used = taken.reduce((n, r) => n + r.length, 0);
        this.#data = this.#data.subarray(used);
        return taken;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits until the server closes the connection (or `timeoutMs`); true when it did. */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }

  rest(): string {
    return this.#data.toString('latin1');
  }

  close(): void {
    this.socket.destroy();
  }
}

function splitResponses(text: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const head = text.indexOf('\r\n\r\n', at);
    if (head < 0) return out;
    const headers = text.slice(at, head);
    const length = /\r\ncontent-length: *(\d+)/i.exec(headers);
    const end = head + 4 + (length ? Number(length[1]) : 0);
    if (end > text.length) return out;
    out.push(text.slice(at, end));
    at = end;
  }
}

/**
 * A response with what differs between any two requests blanked: the Date header, the rate-limit window
 * (one request later, one fewer left) and Vault's per-request `request_id`.
 */
const undated = (response: string | undefined) =>
  (response ?? '')
    .replace(/\r\ndate: [^\r]*/i, '\r\ndate: -')
    .replace(/\r\nx-ratelimit-(remaining|reset): [^\r]*/gi, '\r\nx-ratelimit-$1: -')
    .replace(/"request_id":"[0-9a-f-]{36}"/, '"request_id":"-"');

describe('LIST verb over HTTP/1.1 (as node-vault sends it)', () => {
  let ctx: Ctx;
  let ca: Buffer;
  const open: RawConnection[] = [];
  const connection = () => {
    const c = new RawConnection(ctx.server.url, ca);
    open.push(c);
    return c;
  };
  const request = (method: string, path: string, extra = '', body = '') =>
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: ${ctx.token}\r\n${extra}` +
    `${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`;
  /** What one request on a fresh connection answers, and whether the server closed the connection. */
  const exchange = async (bytes: string, count = 1) => {
    const c = connection();
    await c.send(bytes);
    const responses = await c.responses(count);
    const closed = await c.waitClosed(responses.some((r) => /connection: close/i.test(r)) ? 3000 : 300);
    const rest = c.rest();
    c.close();
    return { responses, closed, rest };
  };

  beforeAll(async () => {
    ctx = await devServer({ logLevel: 'warn' } as never);
    ca = readFileSync(ctx.server.caFile!);
    await ctx.call('POST', '/v1/transit/keys/alpha', { body: {} });
    await ctx.call('POST', '/v1/transit/keys/beta', { body: {} });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await ctx?.server.close();
  });

  it('LIST answers exactly what GET ?list=true answers, byte for byte apart from Date', async () => {
    const viaList = await exchange(request('LIST', '/v1/transit/keys'));
    const viaGet = await exchange(request('GET', '/v1/transit/keys?list=true'));
    expect(viaList.responses[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(viaList.responses[0]).toContain('"alpha"');
    expect(undated(viaList.responses[0])).toBe(undated(viaGet.responses[0]));
    const policies = await exchange(request('LIST', '/v1/sys/policies/acl'));
    expect(undated(policies.responses[0])).toBe(
      undated((await exchange(request('GET', '/v1/sys/policies/acl?list=true'))).responses[0]),
    );
  });

  it('keeps the connection alive after a LIST: GET, LIST again, GET ?list=true on the same socket', async () => {
    const c = connection();
    await c.send(request('LIST', '/v1/transit/keys'));
    const [first] = await c.responses(1);
    expect(first).toMatch(/^HTTP\/1\.1 200 /);
    await c.send(request('GET', '/v1/sys/health'));
    expect((await c.responses(1))[0]).toMatch(/^HTTP\/1\.1 200 [\s\S]*"sealed":false/);
    await c.send(request('LIST', '/v1/transit/keys'));
    const [second] = await c.responses(1);
    expect(undated(second)).toBe(undated(first));
    await c.send(request('GET', '/v1/transit/keys?list=true'));
    expect(undated((await c.responses(1))[0])).toBe(undated(first));
    expect(c.closed).toBe(false);
  });

  it('a LIST with a query and a LIST on a route that is not a list route answer as GET with list=true', async () => {
    for (const path of ['/v1/transit/keys?limit=1', '/v1/transit/keys/alpha', '/v1/transit/keys?list=true']) {
      const viaList = await exchange(request('LIST', path));
      const viaGet = await exchange(request('GET', `${path}${path.includes('?') ? '&' : '?'}list=true`));
      expect(viaList.responses).toHaveLength(1);
      expect(undated(viaList.responses[0])).toBe(undated(viaGet.responses[0]));
    }
    const notList = await exchange(request('LIST', '/v1/transit/keys/alpha'));
    expect(notList.responses[0]).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('a LIST with a body answers as a GET ?list=true with the same body', async () => {
    const viaList = await exchange(request('LIST', '/v1/transit/keys', '', '{"x":1}'));
    const viaGet = await exchange(request('GET', '/v1/transit/keys?list=true', '', '{"x":1}'));
    expect(viaList.responses).toHaveLength(1);
    expect(undated(viaList.responses[0])).toBe(undated(viaGet.responses[0]));
  });

  it('a smuggling attempt after LIST (Content-Length with Transfer-Encoding) is refused as after GET', async () => {
    const smuggle = (method: string, path: string) =>
      request(method, path, 'Content-Length: 6\r\nTransfer-Encoding: chunked\r\n') +
      '0\r\n\r\nGET /v1/sys/seal-status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    const viaList = await exchange(smuggle('LIST', '/v1/transit/keys'));
    const viaGet = await exchange(smuggle('GET', '/v1/transit/keys?list=true'));
    expect(viaGet.responses).toHaveLength(1);
    expect(viaGet.responses[0]).toMatch(/^HTTP\/1\.1 400 /);
    expect(viaList.responses).toHaveLength(1);
    expect(undated(viaList.responses[0])).toBe(undated(viaGet.responses[0]));
    expect(viaList.closed).toBe(true);
    expect(viaList.rest).not.toContain('"sealed"');
  });

  it('a LIST pipelined after a GET in one packet: the GET is answered, the LIST refused, the connection closed', async () => {
    const { responses, closed, rest } = await exchange(
      request('GET', '/v1/sys/health') +
        request('LIST', '/v1/transit/keys') +
        request('GET', '/v1/sys/seal-status'),
      3,
    );
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200 [\s\S]*"sealed":false/);
    expect(responses[1]).toMatch(/^HTTP\/1\.1 400 [\s\S]*unknown HTTP method/);
    expect(closed).toBe(true);
    expect(rest).toBe('');
  });

  it('two LISTs in one packet: the first is answered, the second refused (its start is not provable)', async () => {
    const { responses, closed } = await exchange(
      request('LIST', '/v1/transit/keys') + request('LIST', '/v1/transit/keys'),
      2,
    );
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(responses[1]).toMatch(/^HTTP\/1\.1 400 /);
    expect(closed).toBe(true);
  });

  it('refuses lowercase list, LISTX, a LIST line split across packets, and closes the connection', async () => {
    for (const bytes of [request('list', '/v1/transit/keys'), request('LISTX', '/v1/transit/keys')]) {
      const { responses, closed } = await exchange(bytes);
      expect(responses[0]).toMatch(/^HTTP\/1\.1 400 [\s\S]*unknown HTTP method/);
      expect(closed).toBe(true);
    }
    const c = connection();
    await c.send('LI');
    await new Promise((r) => setTimeout(r, 100));
    await c.send(request('ST', '/v1/transit/keys'));
    expect((await c.responses(1))[0]).toMatch(/^HTTP\/1\.1 400 /);
    expect(await c.waitClosed()).toBe(true);
  });

  it('LIST without a token or with a read-only token is refused as GET ?list=true is', async () => {
    const anonymous = (method: string, path: string) =>
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    const a = await exchange(anonymous('LIST', '/v1/transit/keys'));
    const b = await exchange(anonymous('GET', '/v1/transit/keys?list=true'));
    expect(a.responses[0]).toMatch(/^HTTP\/1\.1 403 /);
    expect(undated(a.responses[0])).toBe(undated(b.responses[0]));
  });
});
