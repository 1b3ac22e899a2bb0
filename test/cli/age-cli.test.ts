import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/index.js';
import { CLI, buildOnce, enseal } from '../helpers/cli.js';
import { tool } from '../helpers/peers.js';

const dir = mkdtempSync(join(tmpdir(), 'enseal-age-cli-'));
const age = tool('age', ['--version'], 'apt-get install age');
const script = tool('script', ['--version'], 'apt-get install util-linux');
const FAST = { ENSEAL_TEST_SCRYPT_LOG_N: '10' };

beforeAll(() => buildOnce());

function keygen(name: string): { file: string; recipient: string } {
  const file = join(dir, name);
  const r = enseal(['keygen', '-o', file]);
  expect(r.status).toBe(0);
  return { file, recipient: r.stderr.match(/Public key: (age1\S+)/)![1]! };
}

describe('enseal keygen / encrypt / decrypt', () => {
  it('keygen writes a 0600 identity file and prints the recipient', () => {
    const { file, recipient } = keygen('k1.txt');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(
      /^# created: .*\n# public key: age1.*\nAGE-SECRET-KEY-1[0-9A-Z]+\n$/,
    );
    expect(enseal(['keygen', '-y', file]).stdout.toString().trim()).toBe(recipient);
    expect(enseal(['keygen', '-o', file]).status).toBe(6);
  });

  it('encrypts and decrypts files and pipes with age flags', () => {
    const { file, recipient } = keygen('k2.txt');
    const data = randomBytes(150_000);
    const input = join(dir, 'in.bin');
    writeFileSync(input, data);
    expect(enseal(['encrypt', '-r', recipient, '-o', join(dir, 'in.age'), input]).status).toBe(0);
    expect(enseal(['decrypt', '-i', file, join(dir, 'in.age')]).stdout).toEqual(Buffer.from(data));
    const piped = enseal(['encrypt', '-a', '-r', recipient], data);
    expect(piped.stdout.toString().startsWith('-----BEGIN AGE ENCRYPTED FILE-----\n')).toBe(true);
    expect(enseal(['decrypt', '-i', file], piped.stdout).stdout).toEqual(Buffer.from(data));
    const recipientsFile = join(dir, 'recipients.txt');
    writeFileSync(recipientsFile, `# team\n${recipient}\n\n`);
    const viaR = enseal(['encrypt', '-R', recipientsFile], data);
    expect(enseal(['decrypt', '-i', file], viaR.stdout).stdout).toEqual(Buffer.from(data));
  });

  it('passphrases come from --passphrase-file in scripts', () => {
    const pass = join(dir, 'pass.txt');
    writeFileSync(pass, 'hunter2\n');
    const enc = enseal(['encrypt', '--passphrase-file', pass], 'secret', FAST);
    expect(enc.status).toBe(0);
    expect(enseal(['decrypt', '--passphrase-file', pass], enc.stdout).stdout.toString()).toBe('secret');
    writeFileSync(join(dir, 'wrong.txt'), 'hunter3\n');
    const wrong = enseal(['decrypt', '--passphrase-file', join(dir, 'wrong.txt')], enc.stdout);
    expect(wrong.status).toBe(5);
    expect(wrong.stderr).toContain('ERR_NO_IDENTITY_MATCH');
    expect(wrong.stderr).not.toContain('hunter');
  });

  it('a truncated or tampered file leaves no partial output with -o', () => {
    const { file, recipient } = keygen('k3.txt');
    const enc = enseal(['encrypt', '-r', recipient], randomBytes(200_000)).stdout;
    const truncated = join(dir, 'trunc.age');
    writeFileSync(truncated, enc.subarray(0, 100_000));
    const out = join(dir, 'trunc.out');
    const r = enseal(['decrypt', '-i', file, '-o', out, truncated]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('ERR_DECRYPT_FAILED');
    expect(existsSync(out)).toBe(false);
    expect(readFileSyncDir().filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('-o behaves as in age: devices are written to, an existing file is replaced only on success', () => {
    const { file, recipient } = keygen('k8.txt');
    const data = randomBytes(70_000);
    const input = join(dir, 'parity.bin');
    writeFileSync(input, data);
    // A device is always writable (this was refused as "exists; pass --force").
    expect(enseal(['encrypt', '-r', recipient, '-o', '/dev/null', input]).status).toBe(0);
    const out = join(dir, 'parity.age');
    expect(enseal(['encrypt', '-r', recipient, '-o', out, input]).status).toBe(0);
    expect(enseal(['decrypt', '-i', file, '-o', '/dev/null', out]).status).toBe(0);
    // Re-running over an existing file replaces it, as age does; --force is still accepted.
    const first = readFileSync(out);
    expect(enseal(['encrypt', '-r', recipient, '-o', out, input]).status).toBe(0);
    expect(readFileSync(out)).not.toEqual(first);
    expect(enseal(['encrypt', '--force', '-r', recipient, '-o', out, input]).status).toBe(0);
    const plain = join(dir, 'parity.out');
    writeFileSync(plain, 'previous contents');
    expect(enseal(['decrypt', '-i', file, '-o', plain, out]).status).toBe(0);
    expect(readFileSync(plain)).toEqual(Buffer.from(data));
    // A failed decryption leaves the existing file as it was.
    const bad = readFileSync(out);
    bad[bad.length - 1]! ^= 1;
    writeFileSync(join(dir, 'parity-bad.age'), bad);
    writeFileSync(plain, 'previous contents');
    expect(enseal(['decrypt', '-i', file, '-o', plain, join(dir, 'parity-bad.age')]).status).toBe(3);
    expect(readFileSync(plain, 'utf8')).toBe('previous contents');
    expect(enseal(['decrypt', '-i', file, '-o', dir, out]).status).toBe(6); // a directory is refused
    // keygen, like age-keygen, still never replaces a file without --force.
    expect(enseal(['keygen', '-o', file]).status).toBe(6);
    expect(enseal(['keygen', '--force', '-o', file]).status).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('clear errors and exit statuses', () => {
    const { recipient } = keygen('k4.txt');
    const other = keygen('k5.txt');
    const enc = enseal(['encrypt', '-r', recipient], 'x').stdout;
    const noMatch = enseal(['decrypt', '-i', other.file], enc);
    expect([noMatch.status, noMatch.stderr.includes('ERR_NO_IDENTITY_MATCH')]).toEqual([5, true]);
    const badHeader = enseal(['decrypt', '-i', other.file], 'age-encryption.org/v2\n');
    expect([badHeader.status, badHeader.stderr.includes('ERR_MALFORMED')]).toEqual([4, true]);
    const unreadable = enseal(['encrypt', '-r', recipient, join(dir, 'does-not-exist')]);
    expect([unreadable.status, unreadable.stderr.includes('ERR_IO')]).toEqual([6, true]);
    const conflict = enseal(['encrypt', '-p', '-r', recipient], 'x');
    expect(conflict.status).toBe(2);
    expect(conflict.stderr).toContain('hint:');
    const noRecipients = enseal(['encrypt'], 'x');
    expect(noRecipients.stderr).toContain('missing recipients');
  });

  it.skipIf(!script.available)('refuses to write binary ciphertext to a terminal without -a', () => {
    const { recipient } = keygen('k6.txt');
    const input = join(dir, 'tty.bin');
    writeFileSync(input, 'x');
    const r = spawnSync(
      'script',
      ['-qec', `${process.execPath} ${CLI} encrypt -r ${recipient} ${input}`, '/dev/null'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.stdout).toContain('refusing to write binary ciphertext to a terminal');
    const armored = spawnSync(
      'script',
      ['-qec', `${process.execPath} ${CLI} encrypt -a -r ${recipient} ${input}`, '/dev/null'],
      {
        encoding: 'utf8',
      },
    );
    expect(armored.stdout).toContain('-----BEGIN AGE ENCRYPTED FILE-----');
  });

  it.skipIf(!age.available)('files from the CLI open with age and the reverse', () => {
    const { file, recipient } = keygen('k7.txt');
    const data = randomBytes(100_000);
    const input = join(dir, 'cli.bin');
    writeFileSync(input, data);
    const ours = join(dir, 'cli.age');
    enseal(['encrypt', '-r', recipient, '-o', ours, input]);
    expect(spawnSync('age', ['-d', '-i', file, ours]).stdout).toEqual(Buffer.from(data));
    const theirs = spawnSync('age', ['-r', recipient, input]).stdout;
    expect(enseal(['decrypt', '-i', file], theirs).stdout).toEqual(Buffer.from(data));
  });
});

function readFileSyncDir(): string[] {
  return spawnSync('ls', ['-a', dir], { encoding: 'utf8' }).stdout.split('\n');
}
