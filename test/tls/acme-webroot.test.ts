import { lstatSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { http01Webroot } from '../../src/tls/index.js';

describe('http-01 webroot solver', () => {
  it('replaces a symlink planted at the token name instead of writing through it', async () => {
    // The token is chosen by the ACME server and the webroot is often writable by the web application, so a
    // plain "w" open of <webroot>/.well-known/acme-challenge/<token> would overwrite whatever file a symlink
    // planted there points to, with the privileges of the renewal job.
    const root = mkdtempSync(join(tmpdir(), 'enseal-webroot-'));
    const dir = join(root, '.well-known', 'acme-challenge');
    mkdirSync(dir, { recursive: true });
    const victim = join(root, 'victim.conf');
    writeFileSync(victim, 'important');
    const token = 'tok_ABC-123';
    symlinkSync(victim, join(dir, token));
    const solver = http01Webroot(root);
    await solver.present('example.com', token, 'tok_ABC-123.thumbprint');
    expect(readFileSync(victim, 'utf8')).toBe('important');
    expect(lstatSync(join(dir, token)).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(dir, token), 'utf8')).toBe('tok_ABC-123.thumbprint');
    expect(lstatSync(join(dir, token)).mode & 0o777).toBe(0o644);
    await solver.cleanup('example.com', token, 'tok_ABC-123.thumbprint');
  });
});
