/**
 * The tamper-evident audit log. Every entry names its predecessor's hash, and its own hash is MACed with
 * the keyring's audit key, so without that key nobody can modify, insert, delete or reorder entries without
 * `verify` noticing, and a MACed head checkpoint catches entries cut off the end.
 *
 * Entries are written before a result is returned (fail closed): callers await {@link AuditLog.record},
 * and a failed write rejects it. To keep that cheap, concurrent records are group-committed, one store
 * transaction per batch, the way databases batch WAL flushes.
 *
 * Sensitive values (plaintexts, contexts, tokens, associated data) never appear in clear: only their keyed
 * hashes, which an operator can reproduce with {@link AuditLog.hashValue} to find an entry about a value.
 */
import {
  constantTimeEqualHex,
  EnsealError,
  ErrorCode,
  hexEncode,
  hmac,
  sha256,
  utf8Decode,
  utf8Encode,
} from '../crypto/index.js';
import type { AuditRow, Store, StoreTransaction } from '../store/index.js';

export type AuditOutcome = 'ok' | 'denied' | 'error';

/** What a caller asks to have recorded. */
export interface AuditEvent {
  /** Operation, for example `encrypt`, `key.rotate`, `unseal`. */
  readonly op: string;
  readonly caller: string;
  readonly outcome: AuditOutcome;
  readonly key?: string;
  readonly version?: number;
  /** Stable error code when the outcome is not `ok`. */
  readonly code?: string;
  /** Non-sensitive details (counts, flags, versions). */
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
  /** Sensitive values, recorded only as keyed hashes. */
  readonly sensitive?: Readonly<Record<string, Uint8Array>>;
}

/** An entry as stored and exported. */
export interface AuditEntry {
  readonly seq: number;
  readonly time: string;
  readonly prev: string;
  readonly op: string;
  readonly caller: string;
  readonly outcome: AuditOutcome;
  readonly key?: string;
  readonly version?: number;
  readonly code?: string;
  readonly detail?: Record<string, string | number | boolean>;
  /** Keyed hashes (`hmac-sha256:<hex>`) of the sensitive values. */
  readonly hashed?: Record<string, string>;
}

export type AuditProblemKind =
  'modified' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'rolled-back';

/** A position of the log, MACed by the key manager, to keep elsewhere and compare against later. */
export interface AuditCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly time: string;
  readonly mac: string;
}

/** What `verify` compares the log with, besides itself. */
export interface AuditVerifyOptions {
  /** The store is initialised, so a head checkpoint must exist (init writes the first entry). */
  readonly initialized?: boolean;
  /** The position recorded in the sealed keyring: the log must still contain it. */
  readonly anchor?: { readonly seq: number; readonly hash: string } | undefined;
  /** A checkpoint exported earlier: it must verify, and the log must still contain it. */
  readonly checkpoint?: AuditCheckpoint | undefined;
}

export interface AuditProblem {
  readonly kind: AuditProblemKind;
  /** The stored sequence number where the problem shows. */
  readonly seq: number;
  readonly message: string;
}

export interface AuditVerifyResult {
  readonly ok: boolean;
  readonly entries: number;
  readonly problems: AuditProblem[];
}

interface Pending {
  readonly event: AuditEvent;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

const GENESIS = '0'.repeat(64);
const HEAD_META = 'audit_head';
const MAX_BATCH = 2048;

export class AuditLog {
  readonly #store: Store;
  readonly #clock: () => number;
  readonly #macKey: Uint8Array;
  readonly #hashKey: Uint8Array;
  #pending: Pending[] = [];
  #flushing: Promise<void> | undefined;

  constructor(store: Store, keys: { macKey: Uint8Array; hashKey: Uint8Array }, clock: () => number) {
    this.#store = store;
    this.#macKey = keys.macKey;
    this.#hashKey = keys.hashKey;
    this.#clock = clock;
  }

  /** The keyed hash under which `value` appears in entries: compare it to find entries about a value. */
  hashValue(value: Uint8Array): string {
    return `hmac-sha256:${hexEncode(hmac('sha256', this.#hashKey, value))}`;
  }

  /**
   * Records `event`; resolves once it is durably in the store. Rejects with ERR_AUDIT_FAILED when it could
   * not be written, in which case the caller must withhold its result.
   */
  record(event: AuditEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ event, resolve, reject });
      if (this.#flushing === undefined) this.#flushing = this.#flushLoop();
    });
  }

  /** Waits until every record made so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
  }

  async #flushLoop(): Promise<void> {
    // Yield once so that records made in the same tick join this batch.
    await new Promise<void>((r) => setImmediate(r));
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      try {
        await this.#store.transaction((tx) =>
          this.appendInTransaction(
            tx,
            batch.map((p) => p.event),
          ),
        );
        for (const p of batch) p.resolve();
      } catch (cause) {
        const err = new EnsealError(
          ErrorCode.AUDIT_FAILED,
          'the audit log could not record this operation, so its result was withheld; check the store',
          { cause },
        );
        for (const p of batch) p.reject(err);
      }
    }
    this.#flushing = undefined;
  }

  /**
   * Appends entries inside the caller's transaction, so a state change and its audit entry commit together.
   * Takes the chain lock: appenders on other nodes wait for this transaction.
   */
  async appendInTransaction(tx: StoreTransaction, events: readonly AuditEvent[]): Promise<void> {
    const last = await tx.lastAudit({ lock: true });
    let seq = last?.seq ?? 0;
    let prev = last?.hash ?? GENESIS;
    const time = new Date(this.#clock()).toISOString();
    const rows: AuditRow[] = [];
    for (const event of events) {
      seq += 1;
      const entry = JSON.stringify(this.#entry(seq, time, prev, event));
      const hash = hexEncode(sha256(utf8Encode(entry)));
      rows.push({ seq, entry, hash, mac: this.#mac(hash) });
      prev = hash;
    }
    await tx.appendAudit(rows);
    await tx.putMeta(
      HEAD_META,
      utf8Encode(JSON.stringify({ seq, hash: prev, mac: this.#mac(`${seq}:${prev}`) })),
    );
  }

  #entry(seq: number, time: string, prev: string, e: AuditEvent): AuditEntry {
    const hashed: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.sensitive ?? {})) hashed[k] = this.hashValue(v);
    return {
      seq,
      time,
      prev,
      op: e.op,
      caller: e.caller,
      outcome: e.outcome,
      ...(e.key === undefined ? {} : { key: e.key }),
      ...(e.version === undefined ? {} : { version: e.version }),
      ...(e.code === undefined ? {} : { code: e.code }),
      ...(e.detail === undefined ? {} : { detail: { ...e.detail } }),
      ...(e.sensitive === undefined ? {} : { hashed }),
    };
  }

  #mac(text: string): string {
    return hexEncode(hmac('sha256', this.#macKey, utf8Encode(text)));
  }

  #macValid(text: string, mac: string): boolean {
    return constantTimeEqualHex(mac, hmac('sha256', this.#macKey, utf8Encode(text)));
  }

  /** Stored entries in order, as parsed objects (for export as JSON lines). */
  async *entries(pageSize = 1000): AsyncGenerator<AuditEntry> {
    let after = 0;
    for (;;) {
      const rows = await this.#store.transaction((tx) => tx.readAudit(after, pageSize));
      for (const row of rows) yield JSON.parse(row.entry) as AuditEntry;
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  /**
   * Checks the whole chain and the head checkpoint, and names each problem: a modified entry (content or
   * MAC does not match), an inserted one (valid-looking row whose MAC was not made with our key), deleted
   * entries (a gap, or a broken link), reordered entries (an entry stored under another sequence number),
   * or entries cut off the end.
   */
  async verify(options: AuditVerifyOptions = {}, pageSize = 1000): Promise<AuditVerifyResult> {
    const problems: AuditProblem[] = [];
    const checkpoint = options.checkpoint;
    if (checkpoint !== undefined && !this.#checkpointValid(checkpoint)) {
      problems.push({
        kind: 'modified',
        seq: 0,
        message: 'the checkpoint given was not made by this key manager',
      });
    }
    const wanted = new Map<number, string>();
    for (const at of [options.anchor, checkpoint]) if (at) wanted.set(at.seq, '');
    let count = 0;
    let prevSeq = 0;
    let prevHash = GENESIS;
    let after = 0;
    for (;;) {
      const rows = await this.#store.transaction((tx) => tx.readAudit(after, pageSize));
      for (const row of rows) {
        count += 1;
        this.#checkRow(row, prevSeq, prevHash, problems);
        if (wanted.has(row.seq)) wanted.set(row.seq, row.hash);
        prevSeq = row.seq;
        prevHash = row.hash;
      }
      if (rows.length < pageSize) break;
      after = rows[rows.length - 1]!.seq;
    }
    await this.#checkHead(prevSeq, prevHash, problems, options.initialized === true);
    for (const [what, at] of [
      ['the position sealed in the keyring', options.anchor],
      ['the checkpoint given', checkpoint],
    ] as const) {
      if (at === undefined || wanted.get(at.seq) === at.hash) continue;
      problems.push({
        kind: 'rolled-back',
        seq: at.seq,
        message: `the log no longer contains ${what} (entry ${at.seq}): it was rolled back or replaced`,
      });
    }
    return { ok: problems.length === 0, entries: count, problems };
  }

  /** The newest position of the log (seq 0 and the genesis hash when it is empty). */
  async head(): Promise<{ seq: number; hash: string }> {
    const last = await this.#store.transaction((tx) => tx.lastAudit());
    return { seq: last?.seq ?? 0, hash: last?.hash ?? GENESIS };
  }

  /** A MACed checkpoint of the current head, to store outside the service and pass to `verify` later. */
  async checkpoint(): Promise<AuditCheckpoint> {
    const { seq, hash } = await this.head();
    const time = new Date(this.#clock()).toISOString();
    return { seq, hash, time, mac: this.#mac(`checkpoint:${seq}:${hash}:${time}`) };
  }

  #checkpointValid(c: AuditCheckpoint): boolean {
    return (
      Number.isSafeInteger(c?.seq) &&
      typeof c.hash === 'string' &&
      typeof c.time === 'string' &&
      typeof c.mac === 'string' &&
      this.#macValid(`checkpoint:${c.seq}:${c.hash}:${c.time}`, c.mac)
    );
  }

  #checkRow(row: AuditRow, prevSeq: number, prevHash: string, problems: AuditProblem[]): void {
    const add = (kind: AuditProblemKind, message: string) => problems.push({ kind, seq: row.seq, message });
    if (!this.#macValid(row.hash, row.mac)) {
      add('inserted', `entry ${row.seq} was not written by this key manager (its MAC does not verify)`);
      return;
    }
    if (hexEncode(sha256(utf8Encode(row.entry))) !== row.hash) {
      add(
        'modified',
        `entry ${row.seq} was modified after it was written (its content does not match its hash)`,
      );
      return;
    }
    let entry: AuditEntry;
    try {
      entry = JSON.parse(row.entry) as AuditEntry;
    } catch {
      add('modified', `entry ${row.seq} is not valid JSON`);
      return;
    }
    if (entry.seq !== row.seq) {
      add('reordered', `entry written as ${entry.seq} is stored as ${row.seq}`);
    } else if (row.seq !== prevSeq + 1) {
      add('deleted', `entries ${prevSeq + 1}-${row.seq - 1} are missing`);
    } else if (entry.prev !== prevHash) {
      add('reordered', `entry ${row.seq} does not follow entry ${prevSeq} (the chain link is broken)`);
    }
  }

  async #checkHead(
    lastSeq: number,
    lastHash: string,
    problems: AuditProblem[],
    initialized: boolean,
  ): Promise<void> {
    const raw = await this.#store.transaction((tx) => tx.getMeta(HEAD_META));
    if (raw === undefined) {
      if (lastSeq !== 0 || initialized)
        problems.push({
          kind: lastSeq === 0 ? 'truncated' : 'modified',
          seq: lastSeq,
          message:
            lastSeq === 0
              ? 'the log is empty and its head checkpoint is missing: the log was wiped'
              : 'the head checkpoint is missing',
        });
      return;
    }
    let head: { seq: number; hash: string; mac: string };
    try {
      head = JSON.parse(utf8Decode(raw)) as typeof head;
    } catch {
      problems.push({ kind: 'modified', seq: lastSeq, message: 'the head checkpoint is not valid JSON' });
      return;
    }
    if (!this.#macValid(`${head.seq}:${head.hash}`, head.mac)) {
      problems.push({ kind: 'modified', seq: lastSeq, message: 'the head checkpoint was modified' });
    } else if (head.seq > lastSeq) {
      problems.push({
        kind: 'truncated',
        seq: lastSeq,
        message: `entries ${lastSeq + 1}-${head.seq} were cut off the end`,
      });
    } else if (head.seq !== lastSeq || head.hash !== lastHash) {
      problems.push({
        kind: 'inserted',
        seq: lastSeq,
        message: `entries after ${head.seq} were appended outside the key manager`,
      });
    }
  }
}
