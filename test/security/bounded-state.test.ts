/**
 * Refused requests with random key names and tokens leave memory and `/v1/sys/metrics` flat: unknown names
 * fold into one series, failed lookups are not cached without bound. Alone in its file, so no other server
 * in the process disturbs the heap readings.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { devServer } from '../server/helpers.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
// A real collection before each heap reading, so the comparison is of live memory.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Live heap: after pending callbacks ran and a full collection, the least of three readings. */
const liveHeap = async () => {
  const readings: number[] = [];
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 100));
    gc();
    readings.push(process.memoryUsage().heapUsed);
  }
  return Math.min(...readings);
};

describe('refused requests leave memory and metrics flat', () => {
  it('100,000 refusals with random key names and tokens', async () => {
    // Logging warnings only: the test helper keeps every log line in memory.
    const ctx = await devServer({ authFailuresPerMinute: 1_000_000, logLevel: 'warn' });
    await ctx.call('PUT', '/v1/sys/policies/acl/nothing', {
      body: { policy: 'path "x" { capabilities = ["read"] }' },
    });
    const nobody = (
      await ctx.call('POST', '/v1/auth/token/create', { body: { policies: ['nothing'], ttl: '1h' } })
    ).body.auth.client_token as string;
    const metricLines = async () => (await ctx.call('GET', '/v1/sys/metrics')).text.split('\n').length;
    const app = ctx.server.app;
    const refuse = async (i: number) => {
      const name = `k${i}-${Math.random().toString(36).slice(2)}`;
      const r = await app.inject({
        method: 'POST',
        url: `/v1/transit/encrypt/${name}`,
        headers: { 'x-vault-token': i % 2 === 0 ? nobody : `ens.${name}` },
        payload: { plaintext: b64('x') },
      });
      if (r.statusCode !== 403) throw new Error(`expected 403, got ${r.statusCode}`);
    };
    // 64 in flight at a time, as concurrent clients would be (their audit entries share commits).
    const round = async (n: number, offset: number) => {
      for (let i = 0; i < n; i += 64)
        await Promise.all(Array.from({ length: Math.min(64, n - i) }, (_, j) => refuse(offset + i + j)));
    };
    await round(5_000, 0);
    const linesBefore = await metricLines();
    const heapBefore = await liveHeap();
    await round(95_000, 5_000);
    const heapAfter = await liveHeap();
    expect(await metricLines()).toBe(linesBefore);
    // Flat within noise: per-name state would be tens of MiB here.
    console.log(`heap growth over 95,000 refusals: ${((heapAfter - heapBefore) / 1048576).toFixed(1)} MiB`);
    expect(heapAfter - heapBefore).toBeLessThan(16 * 1024 * 1024);
    await ctx.server.close();
  }, 300_000);
});
