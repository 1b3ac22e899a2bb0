// Runs a re-encryption job in its own process (so the test can SIGKILL it midway); prints progress lines.
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { FieldEncryption, reencryptColumn, sqliteExecutor } from '../../dist/fields/index.js';
import { Keyset } from '../../dist/keys/index.js';

const [dbPath, keysetFile, indexKeyHex] = process.argv.slice(2);
const keyset = Keyset.fromPlaintext(JSON.parse(readFileSync(keysetFile, 'utf8')), {
  allowPlaintextKeyMaterial: true,
});
const fields = new FieldEncryption({
  keyset,
  indexKey: Buffer.from(indexKeyHex, 'hex'),
  schema: { people: { rowId: 'id', columns: { ssn: { type: 'string' } } } },
});
const db = new Database(dbPath);
db.pragma('journal_mode = WAL');
await reencryptColumn(fields, sqliteExecutor(db), {
  table: 'people',
  column: 'ssn',
  batchSize: 20,
  onProgress: (p) => process.stdout.write(JSON.stringify(p) + '\n'),
});
process.stdout.write('done\n');
