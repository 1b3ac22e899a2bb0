/**
 * The ensr1 field-value format (values under a key-server data key): published vectors, the documented AAD
 * composition checked through FieldEncryption itself, and property tests of the decoder.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EnsealError,
  base64UrlEncode,
  hexDecode,
  hexEncode,
  randomBytes,
  utf8Encode,
} from '../../src/crypto/index.js';
import { DataKeyCache, FieldEncryption, type DataKeyProvider } from '../../src/fields/index.js';
import {
  isRemoteValue,
  openRemoteValue,
  parseRemoteValue,
  sealRemoteValue,
  sealRemoteValueBytes,
} from '../../src/fields/remote-value.js';
import { encodeValue, type FieldType } from '../../src/fields/value-codec.js';
import { asyncCodeOf, codeOf } from '../helpers/errors.js';

const VECTORS_FILE = fileURLToPath(new URL('../../docs/vectors/field-remote.json', import.meta.url));
const KEY = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
/** A wrapped key in the server's form (its bytes are arbitrary here: only the server could unwrap it). */
const WRAPPED = `vault:v3:${Buffer.from(Array.from({ length: 60 }, (_, i) => 0xc0 ^ i)).toString('base64')}`;
const OPAQUE = 'kms://keys/app/wrapped-0001';

interface Vector {
  name: string;
  key: string;
  wrapped: string;
  nonce: string;
  table: string;
  column: string;
  rowId: string | null;
  type: FieldType;
  value: unknown;
  aad: string;
  plaintext: string;
  bytes: string;
  text: string;
}

interface InvalidVector {
  name: string;
  key: string;
  aad: string;
  text: string;
  error: string;
}

/** The field AAD as docs/fields.md and docs/formats.md define it. */
function fieldAad(table: string, column: string, rowId: string | null): Uint8Array {
  return utf8Encode(`enseal/field/v1\u0000${table}\u0000${column}\u0000${rowId ?? ''}`);
}

function buildVectors(): { valid: Vector[]; invalid: InvalidVector[] } {
  const cases: Array<Omit<Vector, 'key' | 'aad' | 'plaintext' | 'bytes' | 'text'>> = [
    {
      name: 'string, row-bound, vault wrapped key',
      wrapped: WRAPPED,
      nonce: 'b0b0b0b0b0b0b0b0b0b0b0b0',
      table: 'patients',
      column: 'ssn',
      rowId: '42',
      type: 'string',
      value: '078-05-1120',
    },
    {
      name: 'number, table without row binding',
      wrapped: WRAPPED,
      nonce: 'b1b1b1b1b1b1b1b1b1b1b1b1',
      table: 'accounts',
      column: 'balance',
      rowId: null,
      type: 'number',
      value: -12.5,
    },
    {
      name: 'json, opaque wrapped key (another provider)',
      wrapped: OPAQUE,
      nonce: 'b2b2b2b2b2b2b2b2b2b2b2b2',
      table: 'patients',
      column: 'notes',
      rowId: '7',
      type: 'json',
      value: { allergies: ['penicillin'] },
    },
  ];
  const valid = cases.map((c) => {
    const aad = fieldAad(c.table, c.column, c.rowId);
    const plaintext = encodeValue(c.type, c.value);
    const input = { key: hexDecode(KEY), wrapped: c.wrapped, plaintext, aad, nonce: hexDecode(c.nonce) };
    const bytes = sealRemoteValueBytes(input);
    return {
      ...c,
      key: KEY,
      aad: hexEncode(aad),
      plaintext: hexEncode(plaintext),
      bytes: hexEncode(bytes),
      text: sealRemoteValue(input),
    };
  });
  const first = valid[0]!;
  const mutate = (name: string, error: string, f: (b: Uint8Array) => Uint8Array, aad = first.aad) => ({
    name,
    key: KEY,
    aad,
    text: `ensr1.${base64UrlEncode(f(hexDecode(first.bytes)))}`,
    error,
  });
  const flip = (at: (b: Uint8Array) => number) => (b: Uint8Array) => {
    const c = b.slice();
    c[at(c)]! ^= 1;
    return c;
  };
  const invalid: InvalidVector[] = [
    mutate(
      'tag modified',
      'ERR_DECRYPT_FAILED',
      flip((b) => b.length - 1),
    ),
    mutate(
      'ciphertext modified',
      'ERR_DECRYPT_FAILED',
      flip((b) => b.length - 17),
    ),
    mutate(
      'nonce modified',
      'ERR_DECRYPT_FAILED',
      flip((b) => b.length - 17 - 12),
    ),
    mutate(
      'wrapped key modified',
      'ERR_DECRYPT_FAILED',
      flip(() => 11),
    ),
    mutate(
      'key version modified',
      'ERR_DECRYPT_FAILED',
      flip(() => 8),
    ),
    mutate('another row id', 'ERR_DECRYPT_FAILED', (b) => b, hexEncode(fieldAad('patients', 'ssn', '43'))),
    mutate('another column', 'ERR_DECRYPT_FAILED', (b) => b, hexEncode(fieldAad('patients', 'email', '42'))),
    mutate(
      'unknown suite',
      'ERR_UNSUPPORTED',
      flip(() => 1),
    ),
    mutate('unknown wrapped-key form', 'ERR_UNSUPPORTED', (b) => {
      const c = b.slice();
      c[2] = 7;
      return c;
    }),
    mutate(
      'reserved bytes set',
      'ERR_MALFORMED',
      flip(() => 4),
    ),
    mutate('wrapped length past the end', 'ERR_MALFORMED', (b) => {
      const c = b.slice();
      c[9] = 0xff;
      return c;
    }),
    mutate('truncated', 'ERR_MALFORMED', (b) => b.subarray(0, b.length - 20)),
    mutate('format byte of an envelope', 'ERR_MALFORMED', (b) => {
      const c = b.slice();
      c[0] = 0x01;
      return c;
    }),
  ];
  return { valid, invalid };
}

/** Opens a vector the way a reader with only the document would. */
function openVector(text: string, key: string, aad: string): Uint8Array {
  return openRemoteValue(parseRemoteValue(text), hexDecode(key), hexDecode(aad));
}

describe('ensr1 vectors (docs/vectors/field-remote.json)', () => {
  it('the published file matches what the implementation produces', () => {
    const json =
      JSON.stringify(
        { format: 'enseal field value under a server data key (ensr1)', ...buildVectors() },
        null,
        2,
      ) + '\n';
    if (process.env.ENSEAL_WRITE_VECTORS === '1') writeFileSync(VECTORS_FILE, json);
    expect(existsSync(VECTORS_FILE)).toBe(true);
    expect(readFileSync(VECTORS_FILE, 'utf8')).toBe(json);
  });

  it('every valid vector opens, in text and binary form, and FieldEncryption reads it to its typed value', async () => {
    const { valid } = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as { valid: Vector[] };
    // A provider that knows only the vectors' data key: FieldEncryption's own AAD must match the document.
    const provider: DataKeyProvider = {
      generate: () => Promise.reject(new Error('not used')),
      unwrap: async (w) => {
        if (w !== WRAPPED && w !== OPAQUE) throw new EnsealError('ERR_DECRYPT_FAILED', 'unknown key');
        return hexDecode(KEY);
      },
    };
    const dataKeys = new DataKeyCache(provider, { keepWarm: false });
    const fields = new FieldEncryption({
      dataKeys,
      schema: {
        patients: { rowId: 'id', columns: { ssn: { type: 'string' }, notes: { type: 'json' } } },
        accounts: { columns: { balance: { type: 'number' } } },
      },
    });
    for (const v of valid) {
      expect(hexEncode(openVector(v.text, v.key, v.aad)), v.name).toBe(v.plaintext);
      expect(
        hexEncode(openRemoteValue(parseRemoteValue(hexDecode(v.bytes)), hexDecode(v.key), hexDecode(v.aad))),
      ).toBe(v.plaintext);
      expect(parseRemoteValue(v.text).wrapped).toBe(v.wrapped);
      expect(await fields.decryptValueAsync(v.table, v.column, v.text, v.rowId ?? undefined), v.name).toEqual(
        v.value,
      );
      expect(
        await fields.decryptValueAsync(v.table, v.column, hexDecode(v.bytes), v.rowId ?? undefined),
      ).toEqual(v.value);
    }
    expect(parseRemoteValue(valid[0]!.text).keyVersion).toBe(3);
    dataKeys.close();
    console.log(`ensr1 vectors: ${valid.length} valid cases opened`);
  });

  it('every invalid vector fails with its documented code', () => {
    const { invalid } = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as { invalid: InvalidVector[] };
    for (const v of invalid)
      expect(
        codeOf(() => openVector(v.text, v.key, v.aad)),
        v.name,
      ).toBe(v.error);
    console.log(`ensr1 vectors: ${invalid.length} invalid cases rejected`);
  });
});

describe('a provider whose wrapped keys carry no version', () => {
  it('round-trips, and needsReencrypt is false once a key was fetched (unknown before)', async () => {
    const store = new Map<string, Uint8Array>();
    let n = 0;
    const provider: DataKeyProvider = {
      generate: async () => {
        const plaintext = randomBytes(32);
        const wrapped = `kms://app/${n++}`;
        store.set(wrapped, plaintext.slice());
        return { plaintext, wrapped };
      },
      unwrap: async (w) => store.get(w)!.slice(),
    };
    const dataKeys = new DataKeyCache(provider, { keepWarm: false, maxUses: 2 });
    const fields = new FieldEncryption({ dataKeys, schema: { t: { columns: { v: { type: 'json' } } } } });
    expect(codeOf(() => fields.needsReencrypt('ensr1.AAAA'))).toBe('ERR_DATA_KEY_UNAVAILABLE');
    await fields.ready(5);
    const values = [1, 2, 3, 4, 5].map((i) => fields.encryptValue('t', 'v', { i }));
    expect(new Set(values.map((v) => parseRemoteValue(v).wrapped)).size).toBe(3);
    expect(values.every((v) => parseRemoteValue(v).keyVersion === 0 && !fields.needsReencrypt(v))).toBe(true);
    dataKeys.close();
    const reader = new FieldEncryption({
      dataKeys: new DataKeyCache(provider, { keepWarm: false }),
      schema: { t: { columns: { v: { type: 'json' } } } },
    });
    expect(
      await reader.decryptRowsAsync(
        't',
        values.map((v) => ({ v })),
      ),
    ).toEqual([1, 2, 3, 4, 5].map((i) => ({ v: { i } })));
    reader.dataKeys!.close();
  });
});

describe('a misbehaving provider', () => {
  it('gets typed errors, never a crash or a short key in use', async () => {
    const schema = { t: { columns: { v: { type: 'string' as const } } } };
    let serial = 0;
    const bad = (over: Partial<DataKeyProvider>): FieldEncryption =>
      new FieldEncryption({
        dataKeys: new DataKeyCache(
          {
            generate: async () => ({ plaintext: randomBytes(32), wrapped: `w${serial++}` }),
            unwrap: async () => randomBytes(32),
            ...over,
          },
          { keepWarm: false },
        ),
        schema,
      });
    const odd = [
      { plaintext: 'x', wrapped: 'w' },
      { plaintext: randomBytes(16), wrapped: 'w' },
      { plaintext: randomBytes(32), wrapped: 5 },
      { plaintext: randomBytes(32), wrapped: '' },
      { plaintext: randomBytes(32), wrapped: 'x'.repeat(5000) },
      undefined,
    ];
    for (const out of odd) {
      const f = bad({ generate: async () => out as never });
      expect(await asyncCodeOf(f.ready())).toBe('ERR_DATA_KEY_UNAVAILABLE');
      expect(codeOf(() => f.encryptValue('t', 'v', 'x'))).toBe('ERR_DATA_KEY_UNAVAILABLE');
    }
    const good = bad({});
    await good.ready();
    const value = good.encryptValue('t', 'v', 'x');
    for (const unwrap of [
      async () => randomBytes(16),
      async () => 'key' as never,
      async () => Promise.reject(new Error('down')),
    ]) {
      expect(await asyncCodeOf(bad({ unwrap }).decryptValueAsync('t', 'v', value))).toBe(
        'ERR_DATA_KEY_UNAVAILABLE',
      );
    }
    // Two values under two distinct data keys, so that decryption takes the batch path.
    const other = bad({});
    await other.ready();
    const rows = [{ v: value }, { v: other.encryptValue('t', 'v', 'z') }];
    const batches = [
      async () => 'no' as never,
      async () => [randomBytes(32)],
      async () => [randomBytes(32), randomBytes(8)],
      async () => [new Error('x'), new Error('y')],
      async () => Promise.reject(new Error('down')),
    ];
    for (const unwrapMany of batches) {
      expect(await asyncCodeOf(bad({ unwrapMany }).decryptRowsAsync('t', rows))).toBe(
        'ERR_DATA_KEY_UNAVAILABLE',
      );
    }
  });
});

describe('ensr1 decoder', () => {
  const TYPED = ['ERR_MALFORMED', 'ERR_UNSUPPORTED', 'ERR_DECRYPT_FAILED'];
  const key = randomBytes(32);
  const aad = utf8Encode('t');
  const good = sealRemoteValueBytes({ key, wrapped: WRAPPED, plaintext: utf8Encode('secret'), aad });

  it('property: random text and bytes are rejected with a typed error, never a crash', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `ensr1.${s}`),
        ),
        (s) => {
          const code = codeOf(() => openRemoteValue(parseRemoteValue(s), key, aad));
          expect(TYPED).toContain(code);
        },
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const bytes = b.length > 0 ? Uint8Array.of(0x81, ...b.subarray(1)) : b;
        expect(TYPED).toContain(codeOf(() => openRemoteValue(parseRemoteValue(bytes), key, aad)));
      }),
      { numRuns: 2000 },
    );
  });

  it('property: any mutation of a valid value (bit flips, truncation, extension) fails with a typed error', () => {
    fc.assert(
      fc.property(
        fc.nat(good.length - 1),
        fc.integer({ min: 1, max: 255 }),
        fc.nat(good.length - 1),
        fc.uint8Array({ maxLength: 8 }),
        (at, xor, cut, tail) => {
          const flipped = good.slice();
          flipped[at]! ^= xor;
          for (const bad of [flipped, good.subarray(0, cut), new Uint8Array([...good, ...tail, 0])]) {
            const code = codeOf(() => openRemoteValue(parseRemoteValue(bad), key, aad));
            expect(TYPED).toContain(code);
            const text = `ensr1.${base64UrlEncode(bad)}`;
            expect(TYPED).toContain(codeOf(() => openRemoteValue(parseRemoteValue(text), key, aad)));
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('is distinct from envelopes: the prefix and the first byte differ, and each encoding is canonical', () => {
    expect(isRemoteValue(`ensr1.${base64UrlEncode(good)}`)).toBe(true);
    expect(isRemoteValue('ens1.AQEB')).toBe(false);
    expect(isRemoteValue(Uint8Array.of(1, 1))).toBe(false);
    // Non-canonical base64url (a padding character, trailing bits) is refused.
    expect(codeOf(() => parseRemoteValue(`ensr1.${base64UrlEncode(good)}=`))).toBe('ERR_MALFORMED');
    // A vault key stored in the opaque form would give a second encoding of the same value: refused.
    const opaque = sealRemoteValueBytes({ key, wrapped: 'x', plaintext: utf8Encode('s'), aad });
    const vaultBytes = utf8Encode(WRAPPED);
    const forged = new Uint8Array(11 + vaultBytes.length + opaque.length - 12);
    forged.set(opaque.subarray(0, 11));
    new DataView(forged.buffer).setUint16(9, vaultBytes.length);
    forged.set(vaultBytes, 11);
    forged.set(opaque.subarray(12), 11 + vaultBytes.length);
    expect(codeOf(() => parseRemoteValue(forged))).toBe('ERR_MALFORMED');
  });

  it('a huge input is refused before decoding', () => {
    expect(codeOf(() => parseRemoteValue(`ensr1.${'A'.repeat(17 * 1024 * 1024)}`))).toBe('ERR_MALFORMED');
  });
});
