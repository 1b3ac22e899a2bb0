import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, buildOnce, enseal } from '../helpers/cli.js';
import { python, runPython } from '../helpers/peers.js';

const dir = mkdtempSync(join(tmpdir(), 'enseal-cli-'));
const py = python(['cryptography'], 'apt-get install python3-cryptography');

beforeAll(() => buildOnce());

describe('enseal CLI basics', () => {
  it('prints help and version', () => {
    const help = enseal(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout.toString()).toContain('keyset');
    expect(enseal(['--version']).stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('a reader that closes the pipe early (| head) ends the output quietly', () => {
    // The shell: enseal --help | head -c 1. The parent reads one byte and closes its end of the pipe.
    const r = spawnSync(
      'sh',
      ['-c', `"${process.execPath}" "${CLI}" tls nginx --help | head -c 1 >/dev/null`],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    expect(r.stderr).not.toContain('EPIPE');
  });

  it('usage errors exit 2 with an enseal: error: line', () => {
    const r = enseal(['fernet', 'decrypt', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^enseal: error: unknown option/m);
  });
});

describe('enseal fernet', () => {
  it('generates keys, encrypts and decrypts through stdin/stdout', () => {
    const key = enseal(['fernet', 'generate-key']).stdout.toString().trim();
    expect(key).toHaveLength(44);
    const keyFile = join(dir, 'fernet.key');
    writeFileSync(keyFile, key + '\n');
    const token = enseal(['fernet', 'encrypt', '--key-file', keyFile], 'hello').stdout.toString().trim();
    expect(token.startsWith('gAAAAA')).toBe(true);
    expect(enseal(['fernet', 'decrypt', '--key-file', keyFile], token).stdout.toString()).toBe('hello');
    expect(enseal(['fernet', 'decrypt'], token, { ENSEAL_FERNET_KEY: key }).stdout.toString()).toBe('hello');
    const json = JSON.parse(enseal(['fernet', 'decrypt', '--key', key, '--json'], token).stdout.toString());
    expect(json).toEqual({ plaintext: 'hello' });
  });

  it('rotates tokens to the first key', () => {
    const oldKey = enseal(['fernet', 'generate-key']).stdout.toString().trim();
    const newKey = enseal(['fernet', 'generate-key']).stdout.toString().trim();
    const token = enseal(['fernet', 'encrypt', '--key', oldKey], 'r').stdout.toString();
    const rotated = enseal(['fernet', 'rotate', '--key', newKey, '--key', oldKey], token).stdout.toString();
    expect(enseal(['fernet', 'decrypt', '--key', newKey], rotated).stdout.toString()).toBe('r');
  });

  it('a wrong key fails with exit 3 and the code, and never prints the key or the token', () => {
    const key = enseal(['fernet', 'generate-key']).stdout.toString().trim();
    const other = enseal(['fernet', 'generate-key']).stdout.toString().trim();
    const token = enseal(['fernet', 'encrypt', '--key', key], 'secret-plaintext').stdout.toString().trim();
    const r = enseal(['fernet', 'decrypt', '--key', other], token);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('(ERR_DECRYPT_FAILED)');
    for (const secret of [key, other, token, 'secret-plaintext']) expect(r.stderr).not.toContain(secret);
    const j = enseal(['fernet', 'decrypt', '--key', other, '--json'], token);
    expect(JSON.parse(j.stderr).error.code).toBe('ERR_DECRYPT_FAILED');
  });

  it('a missing key says how to give one', () => {
    const r = enseal(['fernet', 'encrypt'], 'x', { ENSEAL_FERNET_KEY: '' });
    expect(r.status).toBe(5);
    expect(r.stderr).toContain('ENSEAL_FERNET_KEY');
  });

  it.skipIf(!py.available)('a token from the CLI decrypts in Python, and the reverse', () => {
    const key = enseal(['fernet', 'generate-key']).stdout.toString().trim();
    const token = enseal(['fernet', 'encrypt', '--key', key], 'from enseal').stdout.toString().trim();
    const program = `
import sys
from cryptography.fernet import Fernet
key, token = sys.stdin.read().split()
f = Fernet(key.encode())
print(f.decrypt(token.encode()).decode())
print(f.encrypt(b"from python").decode())
`;
    const [plain, theirs] = runPython(py, program, `${key} ${token}`).toString().trim().split('\n');
    expect(plain).toBe('from enseal');
    expect(enseal(['fernet', 'decrypt', '--key', key], theirs).stdout.toString()).toBe('from python');
  });
});

describe('enseal keyset', () => {
  it('creates, encrypts, rotates and decrypts, with the keyset sealed on disk', () => {
    const kek = enseal(['keyset', 'kek']).stdout.toString().trim();
    const env = { ENSEAL_KEK: kek };
    const file = join(dir, 'app.keyset');
    expect(enseal(['keyset', 'create', '--purpose', 'encrypt', '-o', file], undefined, env).status).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toContain('"sealed-keyset"');
    const v1 = enseal(['keyset', 'encrypt', file, '--aad', 'row-1'], '123-45-6789', env).stdout.toString();
    expect(v1.startsWith('ens1.')).toBe(true);
    expect(enseal(['keyset', 'rotate', file], undefined, env).status).toBe(0);
    const v2 = enseal(['keyset', 'encrypt', file, '--aad', 'row-2'], 'second', env).stdout.toString();
    expect(enseal(['keyset', 'decrypt', file, '--aad', 'row-1'], v1, env).stdout.toString()).toBe(
      '123-45-6789',
    );
    expect(enseal(['keyset', 'decrypt', file, '--aad', 'row-2'], v2, env).stdout.toString()).toBe('second');
    const wrongAad = enseal(['keyset', 'decrypt', file, '--aad', 'row-2'], v1, env);
    expect(wrongAad.status).toBe(3);
    const info = JSON.parse(enseal(['keyset', 'info', file, '--json'], undefined, env).stdout.toString());
    expect(info.versions.map((v: { uses: number }) => v.uses)).toEqual([1, 1]);
    expect(JSON.stringify(info)).not.toContain(kek);
    expect(enseal(['keyset', 'create', '--purpose', 'encrypt', '-o', file], undefined, env).status).toBe(6);
  });

  it('refuses to run without a key-encryption key, and names the wrong one', () => {
    const file = join(dir, 'k2.keyset');
    const kek = enseal(['keyset', 'kek']).stdout.toString().trim();
    enseal(['keyset', 'create', '--purpose', 'mac', '-o', file], undefined, { ENSEAL_KEK: kek });
    const none = enseal(['keyset', 'info', file], undefined, { ENSEAL_KEK: '' });
    expect(none.status).toBe(5);
    expect(none.stderr).toContain('ENSEAL_KEK');
    const other = enseal(['keyset', 'kek']).stdout.toString().trim();
    const wrong = enseal(['keyset', 'info', file], undefined, { ENSEAL_KEK: other });
    expect(wrong.stderr).toContain('ERR_KEY_NOT_FOUND');
    expect(wrong.stderr).not.toContain(other);
  });
});

describe('enseal password', () => {
  it('hashes from stdin and verifies', () => {
    const hash = enseal(['password', 'hash', '--algorithm', 'scrypt'], 'hunter2\n').stdout.toString().trim();
    expect(hash.startsWith('$scrypt$')).toBe(true);
    expect(enseal(['password', 'verify', hash], 'hunter2\n').status).toBe(0);
    const bad = enseal(['password', 'verify', hash, '--json'], 'hunter3\n');
    expect(bad.status).toBe(5);
    expect(JSON.parse(bad.stdout.toString())).toEqual({ match: false, needsRehash: false });
  });
});
