/**
 * The engine behind the column jobs (re-encryption, legacy migration, blind-index re-keying): keyset
 * pagination over a unique, ordered row id; one transaction per batch that locks the batch's rows, writes
 * them with one UPDATE and saves the job's checkpoint, so a job killed at any point resumes after its last
 * committed batch. The UPDATE only replaces a row whose guard column still holds the exact value the job
 * read, so an application write made meanwhile is never overwritten.
 *
 * On PostgreSQL a job can run several workers: the id range is cut into partitions (stored with the
 * checkpoints, so a resumed job pages the same ranges), each worker pages its own partition on its own
 * connection and locks with `FOR UPDATE SKIP LOCKED`, never waiting on rows the application holds. Rows it
 * skipped that way are not forgotten: once every partition is done, a sweep reads the table without locks,
 * picks the rows that still need work and processes them with ordinary (waiting) row locks.
 */
import { EnsealError, ErrorCode, invalidArgument } from '../crypto/index.js';

/** The little SQL the jobs need, so they run over pg, better-sqlite3 or any driver wrapped this way. */
export interface SqlExecutor {
  readonly dialect: 'postgres' | 'sqlite';
  query(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on error). */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * How many transactions may run at once (for example a pool's size). Parallel workers need one each; an
   * executor that does not say is taken to allow one.
   */
  readonly concurrency?: number;
}

/** One row to rewrite: its id, the guard value read, and the new value of the target column. Changes are
 * returned in the order of the rows given (id order). */
export interface BatchChange {
  readonly id: unknown;
  readonly old: unknown;
  readonly value: string | null;
}

export interface BatchOutcome {
  readonly changes: readonly BatchChange[];
  /** Rows left alone on purpose (already done), reported separately from unchanged NULLs. */
  readonly skipped?: number;
}

export interface BatchProgress {
  readonly scanned: number;
  readonly changed: number;
  readonly skipped: number;
  readonly batches: number;
  /** The last row id of the latest committed batch (of any worker). */
  readonly cursor: string | null;
  /** `partitions` while the workers page their ranges, then `sweep` (rows skipped while locked). */
  readonly phase: 'partitions' | 'sweep';
}

export interface BatchJobSpec {
  table: string;
  idColumn: string;
  /** Columns read with each row, by the name the row carries them under (`id` is always there). */
  columns: Readonly<Record<string, string>>;
  /** The column the UPDATE writes. */
  target: string;
  /** The column whose value must still be the one read (`old`) for the UPDATE to apply. */
  guard: string;
  /** Also require the target to be NULL (a separate target column the application may fill itself). */
  targetMustBeNull?: boolean;
  batchSize: number;
  /** The checkpoint's name. */
  job: string;
  dryRun: boolean;
  workers: number;
  /** Turns one batch of (locked) rows into changes; `dryRun` lets it skip the costly part it can skip. */
  process(rows: readonly Record<string, unknown>[], dryRun: boolean): Promise<BatchOutcome>;
  /** Whether a row read without locks still needs work; the sweep after SKIP LOCKED asks it. */
  pending(row: Readonly<Record<string, unknown>>): boolean;
  onProgress?: (progress: BatchProgress) => void;
}

export const CHECKPOINTS = 'enseal_job_checkpoints';
const SWEEP_PAGE = 10_000;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function quoteIdent(name: string): string {
  if (!IDENT.test(name)) throw invalidArgument('identifier', `"${name}" is not a plain SQL identifier`);
  return `"${name}"`;
}

/** Checks a batch size option (1-10,000). */
export function checkBatchSize(value: number | undefined, fallback: number): number {
  const size = value ?? fallback;
  if (!Number.isInteger(size) || size < 1 || size > 10_000)
    throw invalidArgument('batchSize', 'must be 1-10000');
  return size;
}

/** Checks a worker count against the dialect and the executor. */
export function checkWorkers(db: SqlExecutor, value: number | undefined): number {
  const workers = value ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    throw invalidArgument('workers', 'must be 1-64');
  if (workers > 1 && db.dialect !== 'postgres')
    throw invalidArgument('workers', 'above 1 needs PostgreSQL (SQLite has a single writer)');
  if (workers > (db.concurrency ?? 1)) {
    throw invalidArgument(
      'workers',
      `is ${workers} but the executor runs ${db.concurrency ?? 1} transaction(s) at once (give the pool max ≥ workers)`,
    );
  }
  return workers;
}

/** The declared type of a database column, or undefined when it does not exist. */
export async function sqlColumnType(
  db: SqlExecutor,
  table: string,
  column: string,
): Promise<string | undefined> {
  if (db.dialect === 'postgres') {
    const rows = await db.query(
      'SELECT format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a ' +
        'WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped',
      [quoteIdent(table), column],
    );
    return rows[0]?.type as string | undefined;
  }
  const rows = await db.query(`PRAGMA table_info(${quoteIdent(table)})`);
  const row = rows.find((r) => r.name === column);
  return row === undefined ? undefined : String(row.type);
}

/** A partition's saved state: the last id it committed, and whether it reached its end. */
interface PartitionState {
  after: string | null;
  done: boolean;
}

/** The partition plan saved with a parallel job's checkpoints: upper bounds of all ranges but the last. */
interface Plan {
  workers: number;
  bounds: string[];
}

const isCursor = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isPlan = (v: unknown): v is Plan =>
  typeof v === 'object' &&
  v !== null &&
  Number.isInteger((v as Plan).workers) &&
  Array.isArray((v as Plan).bounds) &&
  (v as Plan).bounds.every((b) => typeof b === 'string');
const isPartitionState = (v: unknown): v is PartitionState =>
  typeof v === 'object' &&
  v !== null &&
  isCursor((v as PartitionState).after) &&
  typeof (v as PartitionState).done === 'boolean';

/** A parallel job's checkpoint row, checked: a damaged one stops the job instead of paging wrong ranges. */
function readCheckpoint<T>(row: Record<string, unknown>, valid: (v: unknown) => v is T): T {
  let value: unknown;
  try {
    value = JSON.parse(String(row.cursor));
  } catch {
    value = undefined;
  }
  if (!valid(value)) {
    throw new EnsealError(
      ErrorCode.MALFORMED,
      `checkpoint "${String(row.job)}" in ${CHECKPOINTS} is not readable; delete the job's rows to start over`,
    );
  }
  return value;
}

const planKey = (job: string) => `${job}#plan`;
const partitionKey = (job: string, i: number) => `${job}#${i}`;

interface Range {
  /** Exclusive lower bound (the cursor); null from the start. */
  after: string | null;
  /** Inclusive upper bound; null to the end. */
  upTo: string | null;
}

/** Runs a batch job to completion and returns its totals. */
export async function runBatchJob(db: SqlExecutor, spec: BatchJobSpec): Promise<BatchProgress> {
  return new BatchJob(db, spec).run();
}

class BatchJob {
  readonly #db: SqlExecutor;
  readonly #spec: BatchJobSpec;
  readonly #t: string;
  readonly #id: string;
  readonly #select: string;
  #idType = '';
  #guardType = '';
  #failed = false;
  /** Id ranges where SKIP LOCKED left rows behind, for the sweep. */
  readonly #gaps: Range[] = [];
  /** Whether partitions had committed batches in an earlier run (whose skipped rows are unknown). */
  #resumed = false;
  #progress: BatchProgress = {
    scanned: 0,
    changed: 0,
    skipped: 0,
    batches: 0,
    cursor: null,
    phase: 'partitions',
  };

  constructor(db: SqlExecutor, spec: BatchJobSpec) {
    this.#db = db;
    this.#spec = spec;
    this.#t = quoteIdent(spec.table);
    this.#id = quoteIdent(spec.idColumn);
    quoteIdent(spec.target);
    quoteIdent(spec.guard);
    this.#select = [
      `${this.#id} AS id`,
      ...Object.entries(spec.columns).map(([alias, col]) => `${quoteIdent(col)} AS ${quoteIdent(alias)}`),
    ].join(', ');
  }

  #p(n: number): string {
    return this.#db.dialect === 'postgres' ? `$${n}` : '?';
  }

  async run(): Promise<BatchProgress> {
    const db = this.#db;
    const spec = this.#spec;
    if (db.dialect === 'postgres') {
      // The UPDATE binds its rows as arrays typed like the columns they are compared with.
      const idType = await sqlColumnType(db, spec.table, spec.idColumn);
      if (idType === undefined)
        throw invalidArgument('idColumn', `"${spec.table}.${spec.idColumn}" does not exist`);
      const guardType = await sqlColumnType(db, spec.table, spec.guard);
      if (guardType === undefined)
        throw invalidArgument('column', `"${spec.table}.${spec.guard}" does not exist`);
      this.#idType = idType;
      this.#guardType = guardType;
    }
    await db.query(
      `CREATE TABLE IF NOT EXISTS ${CHECKPOINTS} (job TEXT PRIMARY KEY, cursor TEXT, updated_at BIGINT NOT NULL)`,
    );
    const saved = await this.#savedState();
    if (spec.workers === 1) {
      if (saved.plan !== undefined) throw this.#planMismatch(saved.plan.workers);
      await this.#runRange(
        { after: saved.single ?? null, upTo: null },
        { key: spec.job, json: false },
        false,
      );
      if (!spec.dryRun) await this.#clear([spec.job]);
      return this.#progress;
    }
    if (saved.single !== undefined) throw this.#planMismatch(1);
    if (saved.plan !== undefined && saved.plan.workers !== spec.workers)
      throw this.#planMismatch(saved.plan.workers);
    const plan = saved.plan ?? (await this.#makePlan());
    const keys = plan.bounds
      .map((_, i) => partitionKey(spec.job, i))
      .concat(partitionKey(spec.job, plan.bounds.length));
    const states = await this.#partitionStates(keys);
    this.#resumed = states.size > 0;
    const outcomes = await Promise.allSettled(
      keys.map(async (key, i) => {
        const state = states.get(key) ?? { after: null, done: false };
        if (state.done) return;
        const upTo = i < plan.bounds.length ? plan.bounds[i]! : null;
        const lower = i === 0 ? null : plan.bounds[i - 1]!;
        try {
          await this.#runRange({ after: state.after ?? lower, upTo }, { key, json: true }, true);
        } catch (err) {
          this.#failed = true; // the other workers stop after their current batch
          throw err;
        }
      }),
    );
    // Every worker has stopped before the job reports a failure, so nothing runs on behind the caller.
    const failure = outcomes.find((o) => o.status === 'rejected');
    if (failure !== undefined) throw (failure as PromiseRejectedResult).reason;
    this.#progress = { ...this.#progress, phase: 'sweep' };
    await this.#sweep();
    if (!spec.dryRun) await this.#clear([...keys, planKey(spec.job)]);
    return this.#progress;
  }

  #planMismatch(workers: number): EnsealError {
    return invalidArgument(
      'workers',
      `job "${this.#spec.job}" was started with ${workers} worker(s) and has a checkpoint: resume it with the same ` +
        'worker count, or give a new job name to start over (safe: finished rows are skipped)',
    );
  }

  async #savedState(): Promise<{ single?: string | null; plan?: Plan }> {
    if (this.#spec.dryRun) return {};
    const job = this.#spec.job;
    const rows = await this.#db.query(
      `SELECT job, cursor FROM ${CHECKPOINTS} WHERE job = ${this.#p(1)} OR job = ${this.#p(2)}`,
      [job, planKey(job)],
    );
    const out: { single?: string | null; plan?: Plan } = {};
    for (const row of rows) {
      if (row.job === job) out.single = (row.cursor as string | null) ?? null;
      else out.plan = readCheckpoint(row, isPlan);
    }
    return out;
  }

  async #partitionStates(keys: string[]): Promise<Map<string, PartitionState>> {
    const out = new Map<string, PartitionState>();
    if (this.#spec.dryRun) return out;
    const rows = await this.#db.query(`SELECT job, cursor FROM ${CHECKPOINTS} WHERE job = ANY($1::text[])`, [
      keys,
    ]);
    for (const row of rows) out.set(String(row.job), readCheckpoint(row, isPartitionState));
    return out;
  }

  /** Cuts the id range into `workers` ranges of about equal row counts, and saves the plan (not in a dry run). */
  async #makePlan(): Promise<Plan> {
    const { workers, dryRun, job } = this.#spec;
    const count = Number((await this.#db.query(`SELECT count(*) AS n FROM ${this.#t}`))[0]?.n ?? 0);
    const bounds: string[] = [];
    for (let k = 1; k < workers; k++) {
      const rows = await this.#db.query(
        `SELECT ${this.#id}::text AS id FROM ${this.#t} ORDER BY ${this.#id} OFFSET $1 LIMIT 1`,
        [Math.floor((count * k) / workers)],
      );
      const id = rows[0]?.id as string | undefined;
      if (id !== undefined && id !== bounds.at(-1)) bounds.push(id);
    }
    const plan: Plan = { workers, bounds };
    if (!dryRun) {
      await this.#db.query(
        `INSERT INTO ${CHECKPOINTS} (job, cursor, updated_at) VALUES ($1, $2, $3) ON CONFLICT (job) DO NOTHING`,
        [planKey(job), JSON.stringify(plan), Date.now()],
      );
      // Two runs started at once agree on the plan that was saved first.
      const saved = (await this.#savedState()).plan;
      if (saved !== undefined && saved.workers !== workers) throw this.#planMismatch(saved.workers);
      return saved ?? plan;
    }
    return plan;
  }

  async #clear(keys: string[]): Promise<void> {
    if (this.#db.dialect === 'postgres')
      await this.#db.query(`DELETE FROM ${CHECKPOINTS} WHERE job = ANY($1::text[])`, [keys]);
    else for (const key of keys) await this.#db.query(`DELETE FROM ${CHECKPOINTS} WHERE job = ?`, [key]);
  }

  /** Pages one id range to its end, one transaction per batch. */
  async #runRange(
    range: Range,
    checkpoint: { key: string; json: boolean },
    skipLocked: boolean,
  ): Promise<void> {
    const { batchSize, dryRun } = this.#spec;
    let after = range.after;
    while (!this.#failed) {
      const step = await this.#db.transaction(async (tx) => {
        const rows = await this.#selectBatch(tx, after, range.upTo, skipLocked);
        const last = rows.length === 0 ? after : String(rows[rows.length - 1]!.id);
        // A short batch ends the range (SKIP LOCKED still fills a batch past locked rows).
        const done = rows.length < batchSize;
        if (skipLocked && !dryRun) {
          // Rows of the paged range that SKIP LOCKED left out make the count exceed the batch (the batch's own
          // rows are locked, so none can vanish); that range goes to the sweep.
          const paged: Range = { after, upTo: done ? range.upTo : last };
          if ((await this.#countRange(tx, paged)) > rows.length) this.#gaps.push(paged);
        }
        const outcome = rows.length === 0 ? { changes: [] } : await this.#spec.process(rows, dryRun);
        if (!dryRun) {
          await this.#write(tx, outcome.changes);
          const cursor = checkpoint.json
            ? JSON.stringify({ after: last, done } satisfies PartitionState)
            : last;
          await tx.query(
            `INSERT INTO ${CHECKPOINTS} (job, cursor, updated_at) VALUES (${this.#p(1)}, ${this.#p(2)}, ${this.#p(3)}) ` +
              `ON CONFLICT (job) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
            [checkpoint.key, cursor, Date.now()],
          );
        }
        return { rows: rows.length, outcome, last, done };
      });
      after = step.last;
      if (step.rows > 0) this.#report(step.rows, step.outcome, step.last);
      if (step.done) return;
    }
  }

  /** `WHERE id > after AND id <= upTo` (either side optional) and its parameters. */
  #rangeWhere(after: string | null, upTo: string | null): { where: string; params: unknown[] } {
    const where: string[] = [];
    const params: unknown[] = [];
    if (after !== null) {
      params.push(after);
      where.push(`${this.#id} > ${this.#p(params.length)}`);
    }
    if (upTo !== null) {
      params.push(upTo);
      where.push(`${this.#id} <= ${this.#p(params.length)}`);
    }
    return { where: where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '', params };
  }

  async #countRange(tx: SqlExecutor, range: Range): Promise<number> {
    const { where, params } = this.#rangeWhere(range.after, range.upTo);
    const rows = await tx.query(`SELECT count(*) AS n FROM ${this.#t}${where}`, params);
    return Number(rows[0]?.n ?? 0);
  }

  async #selectBatch(
    tx: SqlExecutor,
    after: string | null,
    upTo: string | null,
    skipLocked: boolean,
  ): Promise<Record<string, unknown>[]> {
    const { where, params } = this.#rangeWhere(after, upTo);
    const lock =
      this.#db.dialect === 'postgres' && !this.#spec.dryRun
        ? skipLocked
          ? ' FOR UPDATE SKIP LOCKED'
          : ' FOR UPDATE'
        : '';
    return tx.query(
      `SELECT ${this.#select} FROM ${this.#t}${where} ORDER BY ${this.#id} LIMIT ${this.#spec.batchSize}${lock}`,
      params,
    );
  }

  /** One UPDATE for the whole batch, applied only where the guard column still holds the value read. */
  async #write(tx: SqlExecutor, changes: readonly BatchChange[]): Promise<void> {
    if (changes.length === 0) return;
    const { t, target, guard } = {
      t: this.#t,
      target: quoteIdent(this.#spec.target),
      guard: quoteIdent(this.#spec.guard),
    };
    const nullTarget = this.#spec.targetMustBeNull ? ` AND ${t}.${target} IS NULL` : '';
    if (this.#db.dialect === 'postgres') {
      // Array parameters whatever the batch size: cheap to bind and one plan for every batch. The id bounds
      // (changes come in id order, as the rows were selected) keep the planner from merge-joining against an
      // index scan from the table's first row, which made every batch cost as much as the rows before it.
      await tx.query(
        `UPDATE ${t} SET ${target} = v.new_value ` +
          `FROM unnest($1::${this.#idType}[], $2::${this.#guardType}[], $3::text[]) AS v(row_id, old_value, new_value) ` +
          `WHERE ${t}.${this.#id} = v.row_id AND ${t}.${guard} = v.old_value${nullTarget} ` +
          `AND ${t}.${this.#id} >= $4::${this.#idType} AND ${t}.${this.#id} <= $5::${this.#idType}`,
        [
          changes.map((c) => c.id),
          changes.map((c) => c.old),
          changes.map((c) => c.value),
          changes[0]!.id,
          changes[changes.length - 1]!.id,
        ],
      );
      return;
    }
    const values = changes.map(() => '(?, ?, ?)').join(', ');
    // SQLite names VALUES columns column1…; the ids compare under the column's affinity.
    await tx.query(
      `UPDATE ${t} SET ${target} = v.new_value FROM (SELECT column1 AS row_id, column2 AS old_value, ` +
        `column3 AS new_value FROM (VALUES ${values})) AS v WHERE ${t}.${this.#id} = v.row_id AND ${t}.${guard} = v.old_value${nullTarget}`,
      changes.flatMap((c) => [c.id, c.old, c.value]),
    );
  }

  /**
   * After SKIP LOCKED paging: reads the table without locks (cheap), keeps the rows that still need work, and
   * processes those with waiting row locks. A row the application changed meanwhile is judged again under
   * the lock, so nothing is written twice and nothing is lost.
   */
  async #sweep(): Promise<void> {
    const { batchSize, dryRun } = this.#spec;
    if (dryRun) return; // a dry run took no locks, so it skipped nothing
    // After a resume, what the earlier run skipped is unknown: the whole table is swept.
    const ranges = this.#resumed ? [{ after: null, upTo: null }] : this.#gaps;
    const pending: unknown[] = [];
    for (const range of ranges) {
      let after = range.after;
      for (;;) {
        const { where, params } = this.#rangeWhere(after, range.upTo);
        const rows = await this.#db.query(
          `SELECT ${this.#select} FROM ${this.#t}${where} ORDER BY ${this.#id} LIMIT ${SWEEP_PAGE}`,
          params,
        );
        for (const row of rows) if (this.#spec.pending(row)) pending.push(row.id);
        if (rows.length < SWEEP_PAGE) break;
        after = String(rows[rows.length - 1]!.id);
      }
    }
    for (let i = 0; i < pending.length; i += batchSize) {
      const ids = pending.slice(i, i + batchSize);
      const step = await this.#db.transaction(async (tx) => {
        const rows = await tx.query(
          `SELECT ${this.#select} FROM ${this.#t} WHERE ${this.#id} = ANY($1::${this.#idType}[]) ORDER BY ${this.#id} FOR UPDATE`,
          [ids],
        );
        const outcome = await this.#spec.process(rows, false);
        await this.#write(tx, outcome.changes);
        return {
          rows: rows.length,
          outcome,
          last: rows.length > 0 ? String(rows[rows.length - 1]!.id) : null,
        };
      });
      // Rows the sweep re-reads were counted as scanned by no worker (they were skipped), so count them here.
      if (step.rows > 0) this.#report(step.rows, step.outcome, step.last);
    }
  }

  #report(rows: number, outcome: BatchOutcome, last: string | null): void {
    const p = this.#progress;
    this.#progress = {
      scanned: p.scanned + rows,
      changed: p.changed + outcome.changes.length,
      skipped: p.skipped + (outcome.skipped ?? 0),
      batches: p.batches + 1,
      cursor: last,
      phase: p.phase,
    };
    this.#spec.onProgress?.(this.#progress);
  }
}

/** Reads a stored value as text, or fails naming the row (strict: never treats other data as a ciphertext). */
export function requireText(value: unknown, where: string, id: unknown): string {
  if (typeof value !== 'string')
    throw new EnsealError(ErrorCode.MALFORMED, `${where} of row ${String(id)} is not a ciphertext; stopping`);
  return value;
}
