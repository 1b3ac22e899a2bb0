// The container's health check: exits 0 when enseal's API answers /v1/sys/health at all (200 unsealed,
// 503 sealed, 501 not initialised), 1 otherwise. It sends no token and no secret, so it does not need to
// verify the certificate (issued for the public name, not for 127.0.0.1). ENSEAL_HEALTH_ADDR overrides the
// address (default https://127.0.0.1:8200).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const url = new URL('/v1/sys/health', process.env.ENSEAL_HEALTH_ADDR ?? 'https://127.0.0.1:8200');
const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
const req = send(url, { method: 'GET', timeout: 4000, rejectUnauthorized: false }, (res) => {
  res.resume();
  process.exit([200, 429, 501, 503].includes(res.statusCode ?? 0) ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
req.end();
