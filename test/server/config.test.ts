import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/server/index.js';
import { asyncCodeOf } from '../helpers/errors.js';
import { tempDir } from '../kms/helpers.js';
import { devServer } from './helpers.js';

describe('serve configuration', () => {
  it('reads TOML with the flag names, and refuses unknown keys and bad TOML', async () => {
    const dir = tempDir();
    const file = join(dir, 'enseal.toml');
    writeFileSync(
      file,
      'storage = "postgres://db/enseal"\ntls-cert = "/etc/enseal/cert.pem"\ntls-profile = "intermediate"\nport = 8300\n',
    );
    expect(await loadConfigFile(file)).toEqual({
      storage: 'postgres://db/enseal',
      tlsCert: '/etc/enseal/cert.pem',
      tlsProfile: 'intermediate',
      port: 8300,
    });
    writeFileSync(file, 'stroage = "typo"\n');
    expect(await asyncCodeOf(loadConfigFile(file))).toBe('ERR_INVALID_ARGUMENT');
    writeFileSync(file, 'storage = \n');
    expect(await asyncCodeOf(loadConfigFile(file))).toBe('ERR_MALFORMED');
  });
});

describe('per-token rate limit', () => {
  let ctx: Awaited<ReturnType<typeof devServer>> | undefined;
  afterAll(async () => ctx?.server.close());
  it('answers 429 once a token exceeds its requests per minute', async () => {
    ctx = await devServer({ rateLimitPerMinute: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await ctx.call('GET', '/v1/auth/token/lookup-self')).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    const r = await ctx.call('GET', '/v1/auth/token/lookup-self');
    expect(r.body.errors[0]).toMatch(/rate limit/);
  });
});
