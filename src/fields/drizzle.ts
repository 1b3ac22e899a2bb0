/**
 * Drizzle column types for field encryption. A Drizzle custom type sees one value at a time, never its row,
 * so it cannot bind a ciphertext to a row id: these columns are for tables declared WITHOUT `rowId` (a
 * ciphertext then stays bound to its table and column only). For row-bound tables, use the Kysely plugin
 * (`enseal/fields/kysely`) or `fields.encryptRow` / `fields.decryptRow` around your Drizzle queries.
 *
 * With data keys from a key server, `toDriver` and `fromDriver` are synchronous: await `fields.ready()`
 * before writing, and reads succeed only for values whose data key is cached (keys this process made, or
 * fetched by `await fields.warm(values)`); any other value fails with `ERR_DATA_KEY_UNAVAILABLE`, never
 * returns its ciphertext or a guess.
 *
 * @example
 * ```ts no-run
 * const users = pgTable('users', {
 *   id: serial('id').primaryKey(),
 *   email: encryptedText(fields, 'users', 'email'),
 *   email_bidx: text('email_bidx'),
 * });
 * await db.insert(users).values({ email: 'ada@example.org', email_bidx: blindIndexOf(fields, 'users', 'email', 'ada@example.org') });
 * await db.select().from(users).where(eq(users.email_bidx, blindIndexOf(fields, 'users', 'email', 'ada@example.org')));
 * ```
 */
import { customType } from 'drizzle-orm/pg-core';
import { customType as sqliteCustomType } from 'drizzle-orm/sqlite-core';
import { invalidArgument } from '../crypto/index.js';
import type { FieldEncryption } from './field-encryption.js';
import type { FieldValue } from './value-codec.js';

function checkUnbound(fields: FieldEncryption, table: string, column: string): void {
  const rowId = fields.rowIdColumn(table); // INVALID_ARGUMENT when the table is not in the schema
  if (rowId !== undefined) {
    throw invalidArgument(
      `${table}.${column}`,
      `cannot be a Drizzle encrypted column: "${table}" binds ciphertexts to its row id "${rowId}", which a Drizzle custom type never sees; use the Kysely plugin (enseal/fields/kysely) or fields.encryptRow / fields.decryptRow`,
    );
  }
}

/**
 * A PostgreSQL `text` column holding `table.column` encrypted (the value keeps its declared type in the
 * application). The table must not declare `rowId`.
 */
export function encryptedText<T = FieldValue>(fields: FieldEncryption, table: string, column: string) {
  checkUnbound(fields, table, column);
  return customType<{ data: T; driverData: string }>({
    dataType: () => 'text',
    toDriver: (value) => fields.encryptValue(table, column, value),
    fromDriver: (value) => fields.decryptValue(table, column, value) as T,
  })(column);
}

/** The SQLite variant of {@link encryptedText} (`drizzle-orm/sqlite-core`). */
export function encryptedTextSqlite<T = FieldValue>(fields: FieldEncryption, table: string, column: string) {
  checkUnbound(fields, table, column);
  return sqliteCustomType<{ data: T; driverData: string }>({
    dataType: () => 'text',
    toDriver: (value) => fields.encryptValue(table, column, value),
    fromDriver: (value) => fields.decryptValue(table, column, value) as T,
  })(column);
}

/**
 * The blind-index value to compare the index column with: `eq(users.email_bidx, blindIndexOf(…))`, and to
 * store in it on insert. Lookups may return false positives: compare the decrypted column afterwards.
 */
export function blindIndexOf(fields: FieldEncryption, table: string, column: string, value: unknown): string {
  return fields.equals(table, column, value).value;
}
