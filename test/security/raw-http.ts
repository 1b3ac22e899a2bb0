/**
 * A raw HTTPS/1.1 client for the attacker's tests: it sends the request target exactly as given (absolute
 * form, percent-encodings, dot segments, backslashes) where Node's and undici's clients would normalise it.
 */
import { connect } from 'node:tls';

export interface RawResponse {
  status: number;
  body: string;
}

export function rawRequest(
  url: string,
  ca: Buffer | undefined,
  method: string,
  target: string,
  options: { token?: string; body?: string } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: hostname, port: Number(port), ...(ca ? { ca } : {}), ALPNProtocols: ['http/1.1'] },
      () => {
        const body = options.body ?? '';
        socket.write(
          `${method} ${target} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n` +
            (options.token ? `X-Vault-Token: ${options.token}\r\n` : '') +
            (body ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '') +
            `\r\n${body}`,
        );
      },
    );
    const parts: Buffer[] = [];
    socket.on('data', (d: Buffer) => parts.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(parts).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : 0, body: split === -1 ? '' : text.slice(split + 4) });
    });
  });
}
