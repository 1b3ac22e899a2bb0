/**
 * Versioned schema migrations, one list for both databases. A migration is applied once, in order, inside a
 * transaction, and recorded in `schema_migrations`; released versions are never edited, only appended to.
 */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sqlite: readonly string[];
  readonly postgres: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'keys, versions, contexts, metadata and the audit log',
    sqlite: [
      `CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)`,
      `CREATE TABLE keys (name TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at INTEGER NOT NULL)`,
      `CREATE TABLE key_versions (
         name TEXT NOT NULL REFERENCES keys(name) ON DELETE CASCADE,
         version INTEGER NOT NULL, term INTEGER NOT NULL, wrapped BLOB NOT NULL,
         created_at INTEGER NOT NULL, reserved INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (name, version))`,
      `CREATE INDEX key_versions_term ON key_versions (term)`,
      `CREATE TABLE key_contexts (
         name TEXT NOT NULL REFERENCES keys(name) ON DELETE CASCADE,
         context_id TEXT NOT NULL, term INTEGER NOT NULL, wrapped BLOB NOT NULL, created_at INTEGER NOT NULL,
         PRIMARY KEY (name, context_id))`,
      `CREATE INDEX key_contexts_term ON key_contexts (term)`,
      `CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT NOT NULL)`,
    ],
    postgres: [
      `CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL)`,
      `CREATE TABLE keys (name TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at BIGINT NOT NULL)`,
      `CREATE TABLE key_versions (
         name TEXT NOT NULL REFERENCES keys(name) ON DELETE CASCADE,
         version INTEGER NOT NULL, term INTEGER NOT NULL, wrapped BYTEA NOT NULL,
         created_at BIGINT NOT NULL, reserved BIGINT NOT NULL DEFAULT 0,
         PRIMARY KEY (name, version))`,
      `CREATE INDEX key_versions_term ON key_versions (term)`,
      `CREATE TABLE key_contexts (
         name TEXT NOT NULL REFERENCES keys(name) ON DELETE CASCADE,
         context_id TEXT NOT NULL, term INTEGER NOT NULL, wrapped BYTEA NOT NULL, created_at BIGINT NOT NULL,
         PRIMARY KEY (name, context_id))`,
      `CREATE INDEX key_contexts_term ON key_contexts (term)`,
      `CREATE TABLE audit_log (seq BIGINT PRIMARY KEY, entry TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT NOT NULL)`,
    ],
  },
  {
    version: 2,
    description: 'byte-order index for paging through key names',
    // Key names page in byte order on both databases. PostgreSQL compares text in the database's collation
    // (often en_US or ICU, where 'a' < 'B'), so listKeys compares under "C" and needs an index in that
    // collation; SQLite's BINARY collation already is byte order, so its primary key serves.
    sqlite: [],
    postgres: [`CREATE INDEX keys_name_c ON keys (name COLLATE "C")`],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
