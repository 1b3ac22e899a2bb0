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
  {
    version: 3,
    description:
      'e2ee: the directory log, checkpoints, key packages, relay groups, queues, blobs, login challenges',
    sqlite: [
      `CREATE TABLE e2ee_log_head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL)`,
      `INSERT INTO e2ee_log_head (id, size) VALUES (1, 0)`,
      `CREATE TABLE e2ee_log_leaves (
         idx INTEGER PRIMARY KEY, user_id TEXT NOT NULL, entry BLOB NOT NULL, leaf_hash BLOB NOT NULL,
         created_at INTEGER NOT NULL)`,
      `CREATE INDEX e2ee_log_leaves_user ON e2ee_log_leaves (user_id, idx)`,
      `CREATE TABLE e2ee_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL, created_at INTEGER NOT NULL)`,
      `CREATE TABLE e2ee_cosignatures (
         size INTEGER NOT NULL REFERENCES e2ee_checkpoints(size) ON DELETE CASCADE,
         witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness))`,
      `CREATE TABLE e2ee_key_packages (
         id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, device_id TEXT NOT NULL,
         package BLOB NOT NULL, created_at INTEGER NOT NULL)`,
      `CREATE INDEX e2ee_key_packages_device ON e2ee_key_packages (user_id, device_id, id)`,
      `CREATE TABLE e2ee_last_resort (
         user_id TEXT NOT NULL, device_id TEXT NOT NULL, package BLOB NOT NULL, created_at INTEGER NOT NULL,
         PRIMARY KEY (user_id, device_id))`,
      `CREATE TABLE e2ee_groups (
         group_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL, roster TEXT NOT NULL,
         created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
      `CREATE TABLE e2ee_commits (
         group_id TEXT NOT NULL REFERENCES e2ee_groups(group_id) ON DELETE CASCADE, epoch INTEGER NOT NULL,
         sender_user TEXT NOT NULL, sender_device TEXT NOT NULL, frame BLOB NOT NULL, created_at INTEGER NOT NULL,
         PRIMARY KEY (group_id, epoch))`,
      `CREATE TABLE e2ee_messages (
         seq INTEGER PRIMARY KEY AUTOINCREMENT, group_id TEXT NOT NULL, epoch INTEGER NOT NULL, kind TEXT NOT NULL,
         sender_user TEXT NOT NULL, sender_device TEXT NOT NULL, frame BLOB NOT NULL,
         received_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
      `CREATE INDEX e2ee_messages_expiry ON e2ee_messages (expires_at)`,
      `CREATE TABLE e2ee_queue (
         user_id TEXT NOT NULL, device_id TEXT NOT NULL,
         seq INTEGER NOT NULL REFERENCES e2ee_messages(seq) ON DELETE CASCADE,
         PRIMARY KEY (user_id, device_id, seq))`,
      `CREATE INDEX e2ee_queue_seq ON e2ee_queue (seq)`,
      `CREATE TABLE e2ee_blobs (
         blob_id TEXT PRIMARY KEY, group_id TEXT NOT NULL, owner_user TEXT NOT NULL, owner_device TEXT NOT NULL,
         chunks INTEGER, size INTEGER, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
      `CREATE INDEX e2ee_blobs_expiry ON e2ee_blobs (expires_at)`,
      `CREATE TABLE e2ee_blob_chunks (
         blob_id TEXT NOT NULL REFERENCES e2ee_blobs(blob_id) ON DELETE CASCADE, n INTEGER NOT NULL,
         data BLOB NOT NULL, PRIMARY KEY (blob_id, n))`,
      `CREATE TABLE e2ee_challenges (
         challenge TEXT PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT NOT NULL, expires_at INTEGER NOT NULL)`,
      `CREATE INDEX e2ee_challenges_expiry ON e2ee_challenges (expires_at)`,
    ],
    postgres: [
      `CREATE TABLE e2ee_log_head (id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL)`,
      `INSERT INTO e2ee_log_head (id, size) VALUES (1, 0)`,
      `CREATE TABLE e2ee_log_leaves (
         idx BIGINT PRIMARY KEY, user_id TEXT NOT NULL, entry BYTEA NOT NULL, leaf_hash BYTEA NOT NULL,
         created_at BIGINT NOT NULL)`,
      `CREATE INDEX e2ee_log_leaves_user ON e2ee_log_leaves (user_id, idx)`,
      `CREATE TABLE e2ee_checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL, created_at BIGINT NOT NULL)`,
      `CREATE TABLE e2ee_cosignatures (
         size BIGINT NOT NULL REFERENCES e2ee_checkpoints(size) ON DELETE CASCADE,
         witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness))`,
      `CREATE TABLE e2ee_key_packages (
         id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT NOT NULL,
         package BYTEA NOT NULL, created_at BIGINT NOT NULL)`,
      `CREATE INDEX e2ee_key_packages_device ON e2ee_key_packages (user_id, device_id, id)`,
      `CREATE TABLE e2ee_last_resort (
         user_id TEXT NOT NULL, device_id TEXT NOT NULL, package BYTEA NOT NULL, created_at BIGINT NOT NULL,
         PRIMARY KEY (user_id, device_id))`,
      `CREATE TABLE e2ee_groups (
         group_id TEXT PRIMARY KEY, epoch BIGINT NOT NULL, roster TEXT NOT NULL,
         created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      `CREATE TABLE e2ee_commits (
         group_id TEXT NOT NULL REFERENCES e2ee_groups(group_id) ON DELETE CASCADE, epoch BIGINT NOT NULL,
         sender_user TEXT NOT NULL, sender_device TEXT NOT NULL, frame BYTEA NOT NULL, created_at BIGINT NOT NULL,
         PRIMARY KEY (group_id, epoch))`,
      `CREATE TABLE e2ee_messages (
         seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, group_id TEXT NOT NULL, epoch BIGINT NOT NULL, kind TEXT NOT NULL,
         sender_user TEXT NOT NULL, sender_device TEXT NOT NULL, frame BYTEA NOT NULL,
         received_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)`,
      `CREATE INDEX e2ee_messages_expiry ON e2ee_messages (expires_at)`,
      `CREATE TABLE e2ee_queue (
         user_id TEXT NOT NULL, device_id TEXT NOT NULL,
         seq BIGINT NOT NULL REFERENCES e2ee_messages(seq) ON DELETE CASCADE,
         PRIMARY KEY (user_id, device_id, seq))`,
      `CREATE INDEX e2ee_queue_seq ON e2ee_queue (seq)`,
      `CREATE TABLE e2ee_blobs (
         blob_id TEXT PRIMARY KEY, group_id TEXT NOT NULL, owner_user TEXT NOT NULL, owner_device TEXT NOT NULL,
         chunks BIGINT, size BIGINT, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)`,
      `CREATE INDEX e2ee_blobs_expiry ON e2ee_blobs (expires_at)`,
      `CREATE TABLE e2ee_blob_chunks (
         blob_id TEXT NOT NULL REFERENCES e2ee_blobs(blob_id) ON DELETE CASCADE, n BIGINT NOT NULL,
         data BYTEA NOT NULL, PRIMARY KEY (blob_id, n))`,
      `CREATE TABLE e2ee_challenges (
         challenge TEXT PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
      `CREATE INDEX e2ee_challenges_expiry ON e2ee_challenges (expires_at)`,
    ],
  },
  {
    version: 4,
    description: "e2ee: each user's recovery backup (ciphertext the user's device made)",
    sqlite: [
      `CREATE TABLE e2ee_recovery_blobs (user_id TEXT PRIMARY KEY, blob BLOB NOT NULL, updated_at INTEGER NOT NULL)`,
    ],
    postgres: [
      `CREATE TABLE e2ee_recovery_blobs (user_id TEXT PRIMARY KEY, blob BYTEA NOT NULL, updated_at BIGINT NOT NULL)`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
