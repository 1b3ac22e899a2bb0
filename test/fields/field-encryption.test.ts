import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/index.js';
import { FieldEncryption, planBlindIndex, type EncryptedSchema } from '../../src/fields/index.js';
import { Keyset } from '../../src/keys/index.js';
import { codeOf } from '../helpers/errors.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

const schema: EncryptedSchema = {
  patients: {
    rowId: 'id',
    columns: {
      ssn: { type: 'string', indexes: { ssn_bidx: { bits: 12, normalize: ['digits'] } } },
      email: { type: 'string', indexes: { email_bidx: { bits: 12, normalize: ['trim', 'lowercase'] } } },
      last_name: { type: 'string' },
      dob: { type: 'date' },
      score: { type: 'number' },
      active: { type: 'boolean' },
      notes: { type: 'json' },
      photo: { type: 'bytes' },
    },
    compoundIndexes: { name_dob_bidx: { columns: ['last_name', 'dob'], bits: 12, normalize: ['lowercase'] } },
  },
  plain_ids: { columns: { token: { type: 'string' } } },
};

const keyset = Keyset.generate({ purpose: 'encrypt' });
const fields = new FieldEncryption({ keyset, indexKey: randomBytes(32), schema });

describe('field encryption: values', () => {
  it('round-trips every type, bound to table, column and row', () => {
    const row = {
      id: 42,
      ssn: '078-05-1120',
      email: ' Ada@Example.org ',
      last_name: 'Lovelace',
      dob: new Date('1815-12-10T00:00:00Z'),
      score: -3.25,
      active: true,
      notes: { allergies: ['penicillin'], n: 2 },
      photo: new Uint8Array([0, 255, 7]),
      untouched: 'kept as is',
    };
    const enc = fields.encryptRow('patients', row);
    for (const k of ['ssn', 'email', 'dob', 'score', 'active', 'notes', 'photo'])
      expect(typeof enc[k]).toBe('string');
    expect(enc.untouched).toBe('kept as is');
    expect(enc.ssn_bidx).toMatch(/^[0-9a-f]{4}$/);
    expect(fields.decryptRow('patients', enc)).toEqual(row);
    // Index columns are gone after decryption; NULL stays NULL.
    expect(fields.decryptRow('patients', fields.encryptRow('patients', { id: 1, ssn: null })).ssn).toBeNull();
  });

  it('a ciphertext copied to another row or column does not decrypt', () => {
    const a = fields.encryptRow('patients', { id: 1, ssn: '111-11-1111', email: 'a@x' });
    expect(codeOf(() => fields.decryptValue('patients', 'ssn', a.ssn, 2))).toBe('ERR_DECRYPT_FAILED');
    expect(codeOf(() => fields.decryptValue('patients', 'email', a.ssn, 1))).toBe('ERR_DECRYPT_FAILED');
    expect(codeOf(() => fields.decryptValue('patients', 'ssn', a.ssn))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('is strict: plaintext in an encrypted column is an error, equality without an index is refused', () => {
    expect(codeOf(() => fields.decryptValue('patients', 'ssn', 12345, 1))).toBe('ERR_MALFORMED');
    expect(codeOf(() => fields.decryptValue('patients', 'ssn', '078-05-1120', 1))).toBe('ERR_MALFORMED');
    expect(codeOf(() => fields.equals('patients', 'last_name', 'Lovelace'))).toBe('ERR_NOT_ALLOWED');
    expect(codeOf(() => fields.encryptValue('patients', 'score', 'ten', 1))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => fields.encryptValue('nope', 'x', 'v'))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('blind indexes: normalizers, compound indexes, keyed per index', () => {
    expect(fields.equals('patients', 'ssn', '078051120').value).toBe(
      fields.blindIndex('patients', 'ssn', 'ssn_bidx', '078-05-1120'),
    );
    expect(fields.blindIndex('patients', 'email', 'email_bidx', 'ADA@example.org ')).toBe(
      fields.blindIndex('patients', 'email', 'email_bidx', 'ada@example.org'),
    );
    const dob = new Date('1815-12-10T00:00:00Z');
    expect(fields.compoundIndex('patients', 'name_dob_bidx', { last_name: 'LOVELACE', dob })).toBe(
      fields.compoundIndex('patients', 'name_dob_bidx', { last_name: 'lovelace', dob }),
    );
    const other = new FieldEncryption({ keyset, indexKey: randomBytes(32), schema });
    expect(other.blindIndex('patients', 'ssn', 'ssn_bidx', '078-05-1120')).not.toBe(
      fields.blindIndex('patients', 'ssn', 'ssn_bidx', '078-05-1120'),
    );
  });

  it('rejects bad schemas with clear errors', () => {
    const bad: EncryptedSchema[] = [
      { 't;drop': { columns: {} } },
      { t: { columns: { c: { type: 'float' as 'number' } } } },
      { t: { columns: { c: { type: 'number', indexes: { i: { bits: 8, normalize: ['lowercase'] } } } } } },
      { t: { columns: { c: { type: 'string', indexes: { c: { bits: 8 } } } } } },
      { t: { columns: { c: { type: 'string', indexes: { i: { bits: 0 } } } } } },
    ];
    for (const s of bad)
      expect(codeOf(() => new FieldEncryption({ keyset, indexKey: randomBytes(32), schema: s }))).toBe(
        'ERR_INVALID_ARGUMENT',
      );
  });

  it('the planner keeps 2 ≤ rows per index value ≤ √rows', () => {
    expect(planBlindIndex(1_000_000, 30)).toMatchObject({ bits: 18, safe: true });
    expect(planBlindIndex(100_000, 30).coincidences).toBeGreaterThanOrEqual(2);
    expect(planBlindIndex(1_000_000, 1).safe).toBe(false); // a boolean cannot be indexed safely
  });

  it('property: random values of every type round-trip; mutated ciphertexts never decrypt', () => {
    const arb = fc.record({
      id: fc.nat(),
      ssn: fc.string(),
      score: fc.double({ noNaN: true, noDefaultInfinity: true }),
      active: fc.boolean(),
      notes: fc.jsonValue(),
      photo: fc.uint8Array({ maxLength: 64 }),
    });
    fc.assert(
      fc.property(arb, fc.nat(), (row, flip) => {
        const enc = fields.encryptRow('patients', row);
        const dec = fields.decryptRow('patients', enc);
        expect(dec.ssn).toBe(row.ssn);
        expect(Object.is(dec.score, row.score) || dec.score === row.score).toBe(true);
        expect(dec.active).toBe(row.active);
        expect(dec.notes).toEqual(JSON.parse(JSON.stringify(row.notes)));
        expect(dec.photo).toEqual(row.photo);
        const ct = enc.ssn as string;
        const i = flip % ct.length;
        const mutated = ct.slice(0, i) + (ct[i] === 'A' ? 'B' : 'A') + ct.slice(i + 1);
        if (mutated !== ct) expect(() => fields.decryptValue('patients', 'ssn', mutated, row.id)).toThrow();
      }),
      { numRuns: 300 },
    );
  });
});

const ROWS = 5000;
const ssnOf = (i: number) =>
  `${String(100 + (i % 900)).padStart(3, '0')}-${String(i % 100).padStart(2, '0')}-${String(i).padStart(4, '0')}`;
function rows() {
  return Array.from({ length: ROWS }, (_, i) =>
    fields.encryptRow('patients', { id: i + 1, ssn: ssnOf(i), email: `user${i}@example.org` }),
  );
}

describe('field encryption on real databases', () => {
  let pgServer: TestPostgres | undefined;
  beforeAll(async () => {
    pgServer = await startPostgres();
  });
  afterAll(async () => pgServer?.stop());

  it('SQLite: equality through the blind index returns the right row, using the index', () => {
    const db = new Database(':memory:');
    db.exec(
      'CREATE TABLE patients (id INTEGER PRIMARY KEY, ssn TEXT, ssn_bidx TEXT, email TEXT, email_bidx TEXT)',
    );
    db.exec('CREATE INDEX patients_ssn_bidx ON patients (ssn_bidx)');
    const insert = db.prepare(
      'INSERT INTO patients (id, ssn, ssn_bidx, email, email_bidx) VALUES (@id, @ssn, @ssn_bidx, @email, @email_bidx)',
    );
    db.transaction(() => {
      for (const r of rows()) insert.run(r);
    })();
    const target = ssnOf(1234);
    const f = fields.equals('patients', 'ssn', target);
    const sql = `SELECT * FROM patients WHERE ${f.column} = ?`;
    const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(f.value) as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/USING INDEX patients_ssn_bidx/);
    const candidates = (db.prepare(sql).all(f.value) as Record<string, unknown>[]).map((r) =>
      fields.decryptRow('patients', r),
    );
    expect(candidates.length).toBeGreaterThanOrEqual(1);
    expect(candidates.filter((r) => r.ssn === target).map((r) => r.id)).toEqual([1235]);
    db.close();
  });

  it('PostgreSQL: equality through the blind index returns the right row, and EXPLAIN shows the index', async () => {
    if (!pgServer) return;
    const client = new pg.Client({ connectionString: pgServer.connectionString });
    await client.connect();
    await client.query(
      'CREATE TABLE patients (id INTEGER PRIMARY KEY, ssn TEXT, ssn_bidx TEXT, email TEXT, email_bidx TEXT)',
    );
    await client.query('CREATE INDEX patients_ssn_bidx ON patients (ssn_bidx)');
    const all = rows();
    for (let i = 0; i < all.length; i += 500) {
      const chunk = all.slice(i, i + 500);
      const values = chunk
        .map((_, j) => `($${j * 5 + 1}, $${j * 5 + 2}, $${j * 5 + 3}, $${j * 5 + 4}, $${j * 5 + 5})`)
        .join(', ');
      await client.query(
        `INSERT INTO patients (id, ssn, ssn_bidx, email, email_bidx) VALUES ${values}`,
        chunk.flatMap((r) => [r.id, r.ssn, r.ssn_bidx, r.email, r.email_bidx]),
      );
    }
    await client.query('ANALYZE patients');
    const target = ssnOf(4321);
    const f = fields.equals('patients', 'ssn', target);
    const sql = `SELECT * FROM patients WHERE ${f.column} = $1`;
    const plan = (await client.query(`EXPLAIN ${sql}`, [f.value])).rows
      .map((r) => r['QUERY PLAN'] as string)
      .join('\n');
    expect(plan).toMatch(/Index Scan using patients_ssn_bidx|Bitmap Index Scan on patients_ssn_bidx/);
    const found = (await client.query(sql, [f.value])).rows.map((r) => fields.decryptRow('patients', r));
    expect(found.filter((r) => r.ssn === target).map((r) => r.id)).toEqual([4322]);
    // A ciphertext swapped between rows in the database does not decrypt in its new row.
    await client.query('UPDATE patients SET ssn = (SELECT ssn FROM patients WHERE id = 1) WHERE id = 2');
    const swapped = (await client.query('SELECT * FROM patients WHERE id = 2')).rows[0] as Record<
      string,
      unknown
    >;
    expect(codeOf(() => fields.decryptRow('patients', swapped))).toBe('ERR_DECRYPT_FAILED');
    await client.end();
  });
});
