/**
 * A Kysely plugin that applies {@link FieldEncryption} to queries: inserts encrypt the declared columns and
 * fill their blind-index columns, `where(column, '=', value)` on an encrypted column becomes a blind-index
 * lookup, results are decrypted and the index's false positives dropped. Anything that would send an
 * encrypted column's plaintext to the database, or silently return wrong rows, is refused with
 * `ERR_NOT_ALLOWED` before the query is sent.
 *
 * With data keys from a key server (`dataKeys`), writes are encrypted synchronously under cached keys (await
 * `fields.ready()` first) and results are decrypted asynchronously: the distinct data keys of a result set
 * that are not cached are unwrapped in one batch request.
 *
 * @example
 * ```ts no-run
 * const db = new Kysely<DB>({ dialect, plugins: [new EnsealKyselyPlugin(fields)] });
 * await db.insertInto('patients').values({ id: 7, ssn: '078-05-1120' }).execute(); // ssn_bidx filled in
 * await db.selectFrom('patients').selectAll().where('ssn', '=', '078-05-1120').execute(); // decrypted rows
 * ```
 */
import {
  AliasNode,
  BinaryOperationNode,
  ColumnNode,
  ColumnUpdateNode,
  DeleteQueryNode,
  InsertQueryNode,
  OperationNodeTransformer,
  OperatorNode,
  PrimitiveValueListNode,
  type RawNode,
  ReferenceNode,
  SelectAllNode,
  SelectionNode,
  SelectQueryNode,
  TableNode,
  UpdateQueryNode,
  ValueListNode,
  ValueNode,
  ValuesNode,
  type KyselyPlugin,
  type OperationNode,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryId,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
  type WhereNode,
} from 'kysely';
import { EnsealError, ErrorCode, invalidArgument } from '../crypto/index.js';
import type { EncryptedSchema, FieldEncryption, TableSpec } from './field-encryption.js';
import { encodeValue, type FieldType } from './value-codec.js';

interface Filter {
  column: string;
  value: unknown;
}

interface ResultPlan {
  table: string;
  filters: Filter[];
  /** Columns the plugin added to the selection, removed from the returned rows. */
  strip: string[];
}

interface Target {
  table: string;
  column: string;
}

interface WhereContext {
  fields: FieldEncryption;
  /** The encrypted column a reference points at, if any. */
  resolve(node: OperationNode): Target | undefined;
  /** The encrypted columns of the query's tables. */
  encryptedColumns: string[];
}

function refuse(message: string): EnsealError {
  return new EnsealError(ErrorCode.NOT_ALLOWED, message);
}

/** The type a decrypted value came back as (decryption restores the declared type). */
function typeOf(value: unknown): FieldType {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (value instanceof Date) return 'date';
  if (value instanceof Uint8Array) return 'bytes';
  return 'json';
}

/** Exact, typed equality of a decrypted value and a filter value (what SQL `=` on the plaintext would do). */
function sameValue(decrypted: unknown, wanted: unknown): boolean {
  const type = typeOf(decrypted);
  let a: Uint8Array;
  let b: Uint8Array;
  try {
    a = encodeValue(type, decrypted);
    b = encodeValue(type, wanted);
  } catch {
    return false;
  }
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The table name and the name it is referred to by (its alias, if any) of a FROM / INTO / UPDATE item. */
function tableOf(node: OperationNode | undefined): { name: string; qualifier: string } | undefined {
  if (node === undefined) return undefined;
  if (TableNode.is(node)) {
    const name = node.table.identifier.name;
    return { name, qualifier: name };
  }
  if (AliasNode.is(node) && TableNode.is(node.node)) {
    const name = node.node.table.identifier.name;
    const alias = node.alias as OperationNode & { name?: unknown };
    return { name, qualifier: typeof alias.name === 'string' ? alias.name : name };
  }
  return undefined;
}

function columnName(node: OperationNode): string | undefined {
  if (ColumnNode.is(node)) return node.column.name;
  if (ReferenceNode.is(node) && ColumnNode.is(node.column)) return node.column.column.name;
  return undefined;
}

/** The output names of a selection list; undefined when it selects every column of `qualifier`. */
function selectedNames(
  selections: ReadonlyArray<SelectionNode> | undefined,
  qualifier: string,
): Set<string> | undefined {
  const names = new Set<string>();
  for (const { selection } of selections ?? []) {
    if (SelectAllNode.is(selection)) return undefined;
    if (ReferenceNode.is(selection) && SelectAllNode.is(selection.column)) {
      if (selection.table?.table.identifier.name === qualifier) return undefined;
      continue;
    }
    if (AliasNode.is(selection)) {
      const alias = selection.alias as OperationNode & { name?: unknown };
      if (typeof alias.name === 'string') names.add(alias.name);
      continue;
    }
    const name = columnName(selection);
    if (name !== undefined) names.add(name);
  }
  return names;
}

/** Rewrites the WHERE of one query and refuses every other use of an encrypted column in it. */
class WhereRewriter extends OperationNodeTransformer {
  readonly filters: Filter[] = [];

  constructor(
    private readonly ctx: WhereContext,
    private readonly mode: 'read' | 'write',
  ) {
    super();
  }

  protected override transformBinaryOperation(
    node: BinaryOperationNode,
    queryId?: QueryId,
  ): BinaryOperationNode {
    const target = this.ctx.resolve(node.leftOperand);
    if (target === undefined) return super.transformBinaryOperation(node, queryId);
    const name = `${target.table}.${target.column}`;
    const op = OperatorNode.is(node.operator) ? node.operator.operator : undefined;
    const right = node.rightOperand;
    if ((op === 'is' || op === 'is not') && ValueNode.is(right) && right.value === null) return node;
    if (op !== '=' || !ValueNode.is(right)) {
      throw refuse(
        `${name} is encrypted: only "${name} = <value>" (through its blind index) can filter on it, not "${String(op)}" or an expression`,
      );
    }
    if (this.mode === 'write') {
      throw refuse(
        `${name} is encrypted: an UPDATE or DELETE filtered through its blind index would also hit the index's false positives; select the rows (the plugin drops false positives), then write by row id`,
      );
    }
    const topLevel =
      this.nodeStack[0]?.kind === 'WhereNode' &&
      this.nodeStack.slice(1, -1).every((n) => n.kind === 'AndNode' || n.kind === 'ParensNode');
    if (!topLevel) {
      throw refuse(
        `${name} = <value> must be a top-level AND condition of the WHERE (under OR or NOT, blind-index false positives cannot be removed)`,
      );
    }
    const eq = this.ctx.fields.equals(target.table, target.column, right.value);
    this.filters.push({ column: target.column, value: right.value });
    const table = ReferenceNode.is(node.leftOperand) ? node.leftOperand.table : undefined;
    return BinaryOperationNode.create(
      ReferenceNode.create(ColumnNode.create(eq.column), table),
      node.operator,
      ValueNode.create(eq.value),
    );
  }

  protected override transformRaw(node: RawNode, queryId?: QueryId): RawNode {
    const words = new Set(node.sqlFragments.join(' ').match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
    const column = this.ctx.encryptedColumns.find((c) => words.has(c));
    if (column !== undefined) {
      throw refuse(
        `raw SQL naming the encrypted column "${column}" is refused in a WHERE: it would compare plaintext in the database`,
      );
    }
    return super.transformRaw(node, queryId);
  }

  protected override transformReference(node: ReferenceNode): ReferenceNode {
    const target = this.ctx.resolve(node);
    if (target !== undefined) {
      throw refuse(
        `${target.table}.${target.column} is encrypted: it can appear in a WHERE only as "${target.column} = <value>"`,
      );
    }
    return node;
  }

  protected override transformColumn(node: ColumnNode): ColumnNode {
    const target = this.ctx.resolve(node);
    if (target !== undefined) {
      throw refuse(
        `${target.table}.${target.column} is encrypted: it can appear in a WHERE only as "${target.column} = <value>"`,
      );
    }
    return node;
  }
}

/**
 * Kysely plugin for field encryption. `schema` must be the schema the {@link FieldEncryption} was built with
 * (the plugin reads which columns are encrypted and which columns hold their indexes from it).
 */
export class EnsealKyselyPlugin implements KyselyPlugin {
  readonly fields: FieldEncryption;
  readonly #schema: EncryptedSchema;
  readonly #plans = new WeakMap<QueryId, ResultPlan>();

  /** `schema` defaults to the one `fields` was built with; passing it is kept for older callers. */
  constructor(fields: FieldEncryption, schema: EncryptedSchema = fields.schema) {
    for (const [table, spec] of Object.entries(schema)) {
      if (fields.rowIdColumn(table) !== spec.rowId)
        throw invalidArgument('schema', `does not match the FieldEncryption's schema (table "${table}")`);
    }
    this.fields = fields;
    this.#schema = schema;
  }

  #spec(table: string): TableSpec | undefined {
    return Object.hasOwn(this.#schema, table) ? this.#schema[table] : undefined;
  }

  #encrypted(table: string, column: string): boolean {
    const spec = this.#spec(table);
    return spec !== undefined && Object.hasOwn(spec.columns, column);
  }

  #encryptedColumns(tables: Map<string, string>): string[] {
    return [...new Set(tables.values())].flatMap((t) => Object.keys(this.#spec(t)?.columns ?? {}));
  }

  /** The encrypted column a reference points at, if any. */
  #resolve(node: OperationNode, tables: Map<string, string>): Target | undefined {
    const column = columnName(node);
    if (column === undefined) return undefined;
    const qualifier = ReferenceNode.is(node) ? node.table?.table.identifier.name : undefined;
    if (qualifier !== undefined) {
      const table = tables.get(qualifier) ?? qualifier;
      return this.#encrypted(table, column) ? { table, column } : undefined;
    }
    const candidates = [...new Set(tables.values())].filter((t) => this.#encrypted(t, column));
    if (candidates.length > 1)
      throw refuse(`"${column}" is ambiguous between encrypted tables ${candidates.join(', ')}`);
    return candidates[0] === undefined ? undefined : { table: candidates[0], column };
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const { node, queryId } = args;
    if (InsertQueryNode.is(node)) {
      const into = tableOf(node.into);
      if (into === undefined || this.#spec(into.name) === undefined) return node;
      if (node.returning !== undefined)
        this.#plans.set(queryId, { table: into.name, filters: [], strip: [] });
      return this.#insert(node, into.name);
    }
    if (UpdateQueryNode.is(node)) {
      const tables = this.#tables([node.table, ...(node.from?.froms ?? []), ...this.#joins(node.joins)]);
      const target = tableOf(node.table);
      let out: UpdateQueryNode = node;
      if (target !== undefined && this.#spec(target.name) !== undefined) {
        out = this.#update(node, target.name);
        if (node.returning !== undefined)
          this.#plans.set(queryId, { table: target.name, filters: [], strip: [] });
      }
      return Object.freeze({ ...out, where: this.#where(out.where, tables, 'write').where });
    }
    if (DeleteQueryNode.is(node)) {
      const tables = this.#tables([
        ...node.from.froms,
        ...(node.using?.tables ?? []),
        ...this.#joins(node.joins),
      ]);
      const target = tableOf(node.from.froms[0]);
      if (node.returning !== undefined && target !== undefined && this.#spec(target.name) !== undefined)
        this.#plans.set(queryId, { table: target.name, filters: [], strip: [] });
      return Object.freeze({ ...node, where: this.#where(node.where, tables, 'write').where });
    }
    if (SelectQueryNode.is(node)) {
      const tables = this.#tables([...(node.from?.froms ?? []), ...this.#joins(node.joins)]);
      const encrypted = [...new Set(tables.values())].filter((t) => this.#spec(t) !== undefined);
      if (encrypted.length > 1)
        throw refuse(`a query over several encrypted tables (${encrypted.join(', ')}) is not supported`);
      const { where, filters } = this.#where(node.where, tables, 'read');
      if (filters.length > 0 && (node.limit !== undefined || node.offset !== undefined)) {
        throw refuse(
          'LIMIT/OFFSET with an encrypted equality filter is refused: blind-index false positives, removed after the query, would take result slots',
        );
      }
      const table = encrypted[0];
      let out: SelectQueryNode = Object.freeze({ ...node, where });
      if (table === undefined) return out;
      const qualifier = [...tables].find(([, t]) => t === table)![0];
      const spec = this.#spec(table)!;
      const selected = selectedNames(node.selections, qualifier);
      let strip: string[] = [];
      if (selected !== undefined) {
        // Add the row id (to decrypt) and the filtered columns (to drop false positives), hidden afterwards.
        const decrypts = filters.length > 0 || [...selected].some((n) => Object.hasOwn(spec.columns, n));
        const needed = [
          ...(decrypts && spec.rowId !== undefined ? [spec.rowId] : []),
          ...filters.map((f) => f.column),
        ];
        strip = [...new Set(needed)].filter((c) => !selected.has(c));
        if (strip.length > 0) {
          out = SelectQueryNode.cloneWithSelections(
            out,
            strip.map((c) =>
              SelectionNode.create(ReferenceNode.create(ColumnNode.create(c), TableNode.create(qualifier))),
            ),
          );
        }
      }
      this.#plans.set(queryId, { table, filters, strip });
      return out;
    }
    return node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const plan = this.#plans.get(args.queryId);
    const { result } = args;
    if (plan === undefined || result.rows.length === 0) return result;
    const rows: UnknownRow[] = [];
    // Async: data keys from a key server that are not cached are fetched, each distinct one once.
    for (const row of await this.fields.decryptRowsAsync(plan.table, result.rows)) {
      const keep = plan.filters.every((f) => {
        if (!Object.hasOwn(row, f.column)) {
          throw refuse(
            `select ${plan.table}.${f.column} when filtering on it, so that blind-index false positives can be removed`,
          );
        }
        return sameValue(row[f.column], f.value);
      });
      if (!keep) continue;
      for (const c of plan.strip) delete row[c];
      rows.push(row);
    }
    return { ...result, rows };
  }

  #joins(joins: ReadonlyArray<{ table: OperationNode }> | undefined): OperationNode[] {
    return (joins ?? []).map((j) => j.table);
  }

  /** Qualifier (alias or name) → table name, for the tables a query reads or writes. */
  #tables(items: ReadonlyArray<OperationNode | undefined>): Map<string, string> {
    const map = new Map<string, string>();
    for (const item of items) {
      const t = tableOf(item);
      if (t !== undefined) map.set(t.qualifier, t.name);
    }
    return map;
  }

  #where(
    where: WhereNode | undefined,
    tables: Map<string, string>,
    mode: 'read' | 'write',
  ): { where: WhereNode | undefined; filters: Filter[] } {
    if (where === undefined) return { where, filters: [] };
    const ctx: WhereContext = {
      fields: this.fields,
      resolve: (node) => this.#resolve(node, tables),
      encryptedColumns: this.#encryptedColumns(tables),
    };
    const rewriter = new WhereRewriter(ctx, mode);
    return { where: rewriter.transformNode(where), filters: rewriter.filters };
  }

  #insert(node: InsertQueryNode, table: string): InsertQueryNode {
    const spec = this.#spec(table)!;
    const names = (node.columns ?? []).map((c) => c.column.name);
    const touches = names.some((n) => Object.hasOwn(spec.columns, n));
    if (node.onConflict?.updates?.some((u) => this.#encrypted(table, columnName(u.column) ?? ''))) {
      throw refuse(`ON CONFLICT DO UPDATE of an encrypted column of ${table} is not supported`);
    }
    if (!touches) return node;
    if (node.values === undefined || !ValuesNode.is(node.values)) {
      throw refuse(`INSERT INTO ${table} of encrypted columns must use VALUES (not INSERT … SELECT)`);
    }
    if (spec.rowId !== undefined && !names.includes(spec.rowId)) {
      throw invalidArgument(
        'insert',
        `into "${table}" must give its row id "${spec.rowId}": ciphertexts are bound to it`,
      );
    }
    const rows = node.values.values.map((item) => {
      const row: Record<string, unknown> = {};
      names.forEach((name, i) => {
        if (PrimitiveValueListNode.is(item)) {
          row[name] = item.values[i];
          return;
        }
        const value = item.values[i];
        if (value !== undefined && ValueNode.is(value)) row[name] = value.value;
        else if (Object.hasOwn(spec.columns, name) || name === spec.rowId) {
          if (value?.kind === 'DefaultInsertValueNode' && name !== spec.rowId) return; // column left out
          throw refuse(`${table}.${name} must be inserted as a plain value, not an SQL expression`);
        }
      });
      if (spec.rowId !== undefined && (row[spec.rowId] === undefined || row[spec.rowId] === null)) {
        throw invalidArgument('insert', `into "${table}" must give each row its id "${spec.rowId}"`);
      }
      return { item, enc: this.fields.encryptRow(table, row) };
    });
    const extra: string[] = [];
    for (const { enc } of rows)
      for (const k of Object.keys(enc)) if (!names.includes(k) && !extra.includes(k)) extra.push(k);
    const values = rows.map(({ item, enc }) => {
      if (PrimitiveValueListNode.is(item)) {
        return PrimitiveValueListNode.create([
          ...names.map((n, i) => (Object.hasOwn(enc, n) ? enc[n] : item.values[i])),
          ...extra.map((k) => enc[k] ?? null),
        ]);
      }
      return ValueListNode.create([
        ...names.map((n, i) =>
          Object.hasOwn(enc, n) && ValueNode.is(item.values[i]!) ? ValueNode.create(enc[n]) : item.values[i]!,
        ),
        ...extra.map((k) => ValueNode.create(enc[k] ?? null)),
      ]);
    });
    return Object.freeze({
      ...node,
      columns: Object.freeze([...(node.columns ?? []), ...extra.map((k) => ColumnNode.create(k))]),
      values: ValuesNode.create(values),
    });
  }

  #update(node: UpdateQueryNode, table: string): UpdateQueryNode {
    const spec = this.#spec(table)!;
    const updates = node.updates ?? [];
    const touched = updates.filter((u) => Object.hasOwn(spec.columns, columnName(u.column) ?? ''));
    if (touched.length === 0) return node;
    const row: Record<string, unknown> = {};
    for (const u of touched) {
      const name = columnName(u.column)!;
      if (!ValueNode.is(u.value))
        throw refuse(`${table}.${name} must be set to a plain value, not an SQL expression`);
      row[name] = u.value.value;
    }
    if (spec.rowId !== undefined) {
      const w = node.where?.where;
      const id =
        w !== undefined &&
        BinaryOperationNode.is(w) &&
        columnName(w.leftOperand) === spec.rowId &&
        OperatorNode.is(w.operator) &&
        w.operator.operator === '=' &&
        ValueNode.is(w.rightOperand)
          ? w.rightOperand.value
          : undefined;
      if (id === undefined || id === null) {
        throw refuse(
          `setting encrypted columns of ${table} needs "WHERE ${spec.rowId} = <value>" and nothing else: each ciphertext is bound to its row id`,
        );
      }
      row[spec.rowId] = id;
    }
    const indexColumns = new Set<string>();
    for (const u of touched)
      for (const idx of Object.keys(spec.columns[columnName(u.column)!]!.indexes ?? {}))
        indexColumns.add(idx);
    for (const [idx, c] of Object.entries(spec.compoundIndexes ?? {})) {
      const set = c.columns.filter((k) => Object.hasOwn(row, k));
      if (set.length === 0) continue;
      if (set.length < c.columns.length) {
        throw refuse(
          `compound index ${table}.${idx} covers ${c.columns.join(', ')}: set all of them together or none`,
        );
      }
      indexColumns.add(idx);
    }
    const enc = this.fields.encryptRow(table, row);
    const kept = updates
      .filter((u) => !indexColumns.has(columnName(u.column) ?? ''))
      .map((u) => {
        const name = columnName(u.column) ?? '';
        return Object.hasOwn(spec.columns, name)
          ? ColumnUpdateNode.create(u.column, ValueNode.create(enc[name]))
          : u;
      });
    const added = [...indexColumns].map((idx) =>
      ColumnUpdateNode.create(ColumnNode.create(idx), ValueNode.create(enc[idx] ?? null)),
    );
    return Object.freeze({ ...node, updates: Object.freeze([...kept, ...added]) });
  }
}
