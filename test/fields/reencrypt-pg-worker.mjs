// Runs a two-worker re-encryption on PostgreSQL in its own process (so the test can SIGKILL it midway);
// prints a progress line per committed batch.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { FieldEncryption, postgresExecutor, reencryptColumn } from '../../dist/fields/index.js';
import { Keyset } from '../../dist/keys/index.js';

const [url, keysetFile] = process.argv.slice(2);
const keyset = Keyset.fromPlaintext(JSON.parse(readFileSync(keysetFile, 'utf8')), {
  allowPlaintextKeyMaterial: true,
});
const fields = new FieldEncryption({
  keyset,
  schema: { people: { rowId: 'id', columns: { ssn: { type: 'string' } } } },
});
const pool = new pg.Pool({ connectionString: url, max: 3, application_name: 'killed-worker' });
await reencryptColumn(fields, postgresExecutor(pool), {
  table: 'people',
  column: 'ssn',
  batchSize: 50,
  workers: 2,
  // Slowed down so that the test reliably kills it midway.
  onProgress: (p) => {
    process.stdout.write(JSON.stringify(p) + '\n');
    const until = Date.now() + 20;
    while (Date.now() < until);
  },
});
process.stdout.write('done\n');
await pool.end();
