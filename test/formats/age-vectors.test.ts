/** The C2SP age test vectors: every file, every expected outcome. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EnsealError } from '../../src/crypto/index.js';
import {
  AgeDecryptor,
  AgeScryptIdentity,
  AgeX25519Identity,
  ageDearmor,
  type AgeIdentity,
} from '../../src/formats/index.js';
import { vectorPath } from '../helpers/vectors.js';

interface Vector {
  name: string;
  expect: string;
  payload?: string;
  identities: string[];
  passphrases: string[];
  armored: boolean;
  file: Uint8Array;
}

function parseVector(name: string, raw: Buffer): Vector {
  const split = raw.indexOf('\n\n');
  const head = raw.subarray(0, split).toString('utf8');
  let file: Uint8Array = raw.subarray(split + 2);
  const v: Vector = { name, expect: '', identities: [], passphrases: [], armored: false, file };
  for (const line of head.split('\n')) {
    const colon = line.indexOf(': ');
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (key === 'expect') v.expect = value;
    else if (key === 'payload') v.payload = value;
    else if (key === 'identity') v.identities.push(value);
    else if (key === 'passphrase') v.passphrases.push(value);
    else if (key === 'armored') v.armored = value === 'yes';
    else if (key === 'compressed') file = inflateSync(file);
  }
  v.file = file;
  return v;
}

const EXPECTED_CODES: Record<string, string[]> = {
  'no match': ['ERR_NO_IDENTITY_MATCH'],
  'HMAC failure': ['ERR_DECRYPT_FAILED'],
  'header failure': ['ERR_MALFORMED', 'ERR_UNSUPPORTED'],
  'payload failure': ['ERR_DECRYPT_FAILED'],
  'armor failure': ['ERR_MALFORMED'],
};

/** Decrypts in 4 KiB pieces, collecting what is released before any error, as a streaming reader would. */
function run(v: Vector, identities: AgeIdentity[]): { released: Buffer; error?: EnsealError } {
  const parts: Uint8Array[] = [];
  try {
    const binary = v.armored ? ageDearmor(v.file) : v.file;
    const dec = new AgeDecryptor(identities);
    const emit = (chunk: Uint8Array) => void parts.push(chunk);
    for (let i = 0; i < binary.length; i += 4096) dec.push(binary.subarray(i, i + 4096), emit);
    dec.finish(emit);
    return { released: Buffer.concat(parts) };
  } catch (err) {
    if (!(err instanceof EnsealError)) throw err;
    return { released: Buffer.concat(parts), error: err };
  }
}

describe('C2SP age vectors', () => {
  it('every vector yields its expected outcome', () => {
    const dir = vectorPath('age', 'testdata');
    const names = readdirSync(dir).sort();
    const outcomes = new Map<string, number>();
    const notApplicable: string[] = [];
    const failures: string[] = [];
    for (const name of names) {
      const v = parseVector(name, readFileSync(`${dir}/${name}`));
      if (v.identities.some((id) => id.startsWith('AGE-SECRET-KEY-PQ-'))) {
        notApplicable.push(name);
        continue;
      }
      const identities: AgeIdentity[] = [
        ...v.identities.map((id) => new AgeX25519Identity(id)),
        ...v.passphrases.map((p) => new AgeScryptIdentity(p)),
      ];
      if (identities.length === 0) identities.push(AgeX25519Identity.generate());
      const { released, error } = run(v, identities);
      const hash = createHash('sha256').update(released).digest('hex');
      let ok: boolean;
      if (v.expect === 'success') ok = error === undefined && hash === v.payload;
      else ok = error !== undefined && EXPECTED_CODES[v.expect]!.includes(error.code);
      if (ok && v.expect === 'payload failure' && v.payload !== undefined) ok = hash === v.payload;
      if (!ok)
        failures.push(
          `${name}: expected ${v.expect}, got ${error ? `${error.code} ${error.message}` : 'success'}`,
        );
      outcomes.set(v.expect, (outcomes.get(v.expect) ?? 0) + 1);
    }
    console.log(
      `age vectors: ${names.length} files; ` +
        [...outcomes].map(([k, n]) => `${k} ${n}`).join(', ') +
        `; not applicable (ML-KEM hybrid identities) ${notApplicable.length}`,
    );
    if (failures.length > 0) console.log(failures.join('\n'));
    expect(failures).toEqual([]);
    expect(names.length).toBe(143);
  });
});
