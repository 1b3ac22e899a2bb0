/** Files move both ways between enseal and the real `age` CLI. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUint32 } from '../../src/crypto/index.js';
import {
  AgeScryptIdentity,
  AgeScryptRecipient,
  AgeX25519Identity,
  ageDecrypt,
  ageEncrypt,
} from '../../src/formats/index.js';
import { python, run, tool } from '../helpers/peers.js';

const age = tool('age', ['--version'], 'apt-get install age');
const ageKeygen = tool('age-keygen', ['--version'], 'apt-get install age');
const py = python(['pty'], 'apt-get install python3');
const PTY = fileURLToPath(new URL('../helpers/pty-passphrase.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'enseal-age-'));

const SIZES = [0, 1, 65535, 65536, 65537, 10 * 1024 * 1024, 1 + (randomUint32() % (3 * 65536))];

describe.skipIf(!age.available || !ageKeygen.available)('age CLI interop', () => {
  let theirKeyFile: string;
  let theirRecipient: string;
  const ours = AgeX25519Identity.generate();
  const oursFile = join(dir, 'ours.txt');

  beforeAll(() => {
    theirKeyFile = join(dir, 'theirs.txt');
    run('age-keygen', ['-o', theirKeyFile]);
    theirRecipient = run('age-keygen', ['-y', theirKeyFile]).toString().trim();
    writeFileSync(oursFile, ours.toString() + '\n');
  });

  for (const size of SIZES) {
    it(`X25519, ${size} bytes: enseal → age and age → enseal`, () => {
      const data = randomBytes(size);
      const file = join(dir, `x-${size}.age`);
      writeFileSync(file, ageEncrypt(data, [theirRecipient]));
      expect(Buffer.compare(run('age', ['-d', '-i', theirKeyFile, file]), Buffer.from(data))).toBe(0);
      const plain = join(dir, `plain-${size}`);
      writeFileSync(plain, data);
      const theirs = run('age', ['-r', ours.recipient.toString(), plain]);
      expect(Buffer.compare(Buffer.from(ageDecrypt(theirs, [ours])), Buffer.from(data))).toBe(0);
    });
  }

  it('several recipients and armor, both ways', () => {
    const data = randomBytes(70_000);
    const other = AgeX25519Identity.generate();
    const armored = ageEncrypt(
      data,
      [theirRecipient, ours.recipient.toString(), other.recipient.toString()],
      { armor: true },
    );
    expect(Buffer.from(armored).toString().startsWith('-----BEGIN AGE ENCRYPTED FILE-----')).toBe(true);
    const file = join(dir, 'multi.age');
    writeFileSync(file, armored);
    expect(Buffer.compare(run('age', ['-d', '-i', theirKeyFile, file]), Buffer.from(data))).toBe(0);
    writeFileSync(join(dir, 'multi.bin'), data);
    const theirs = run('age', [
      '-a',
      '-r',
      theirRecipient,
      '-r',
      ours.recipient.toString(),
      join(dir, 'multi.bin'),
    ]);
    expect(Buffer.compare(Buffer.from(ageDecrypt(theirs, [other, ours])), Buffer.from(data))).toBe(0);
  });

  it('identity files written by one open files for the other', () => {
    const data = randomBytes(1000);
    const file = join(dir, 'idfile.age');
    writeFileSync(file, run('age', ['-r', theirRecipient], { input: data }));
    const theirIdentity = readFileSync(theirKeyFile, 'utf8');
    const parsed = theirIdentity.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
    expect(
      Buffer.compare(
        Buffer.from(ageDecrypt(readFileSync(file), [new AgeX25519Identity(parsed)])),
        Buffer.from(data),
      ),
    ).toBe(0);
    expect(run('age-keygen', ['-y', oursFile]).toString().trim()).toBe(ours.recipient.toString());
  });

  it.skipIf(!py.available)('scrypt passphrases, both ways (age reads them from a terminal)', () => {
    const data = randomBytes(100_000);
    const plain = join(dir, 'p.bin');
    writeFileSync(plain, data);
    const ourFile = join(dir, 'ours-p.age');
    writeFileSync(ourFile, ageEncrypt(data, [new AgeScryptRecipient('correct horse', 12)]));
    const back = join(dir, 'p.back');
    run(py.command, [PTY, 'correct horse', 'age', '-d', '-o', back, ourFile]);
    expect(Buffer.compare(readFileSync(back), Buffer.from(data))).toBe(0);
    const theirFile = join(dir, 'theirs-p.age');
    run(py.command, [PTY, 'correct horse', 'age', '-p', '-o', theirFile, plain]);
    expect(
      Buffer.compare(
        Buffer.from(ageDecrypt(readFileSync(theirFile), [new AgeScryptIdentity('correct horse')])),
        Buffer.from(data),
      ),
    ).toBe(0);
  });
});
