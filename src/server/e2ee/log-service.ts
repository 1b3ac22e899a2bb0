/**
 * The directory's transparency log on the store: leaves in `e2ee_log_leaves`, appended under a lock on the log
 * head (so several nodes on one PostgreSQL take turns and never fork the log), checkpoints signed with the
 * log's Ed25519 key and cosigned by the configured witnesses.
 *
 * The log key is a named key of the key manager (`enseal-e2ee-log`, type ed25519, created at first use), so it
 * is wrapped under the keyring like every other key, re-wrapped when the keyring rotates, and every signature
 * is audited. Only version 1 signs checkpoints: rotating that key would change the log's identity, which
 * clients pin. Signing happens after the append's transaction commits (the key manager runs its own), so a
 * crash in between leaves a log whose newest checkpoint is older than its size; the next append or read of
 * the checkpoint signs the current size.
 */
import { EnsealError, ErrorCode, base64Decode, utf8Encode } from '../../crypto/index.js';
import {
  SignatureType,
  SubtreeCache,
  formatCheckpoint,
  formatNote,
  formatVerifierKey,
  leafHash,
  noteKeyId,
  type LeafHashSource,
} from '../../e2ee/index.js';
import {
  SYSTEM_CALL,
  parseVersioned,
  type AuditEvent,
  type CallContext,
  type KeyManager,
} from '../../kms/index.js';
import type { E2eeCheckpointRow, E2eeLeafRow, StoreTransaction } from '../../store/index.js';
import type { E2eeSettings } from './config.js';
import { WitnessClient } from './witness-client.js';

/** The key manager's name for the log's signing key. */
export const LOG_KEY_NAME = 'enseal-e2ee-log';
const LOG_KEY_VERSION = 1;
/** The log's calls on its own key; the only calls the key manager lets use a reserved key. */
const SYSTEM: CallContext = { caller: 'system:e2ee-log', system: SYSTEM_CALL };
const RETRY_MS = 10_000;

/** A {@link LeafHashSource} over the store's log leaves, read inside one transaction. */
export class StoreLeafSource implements LeafHashSource {
  readonly #tx: StoreTransaction;

  constructor(tx: StoreTransaction) {
    this.#tx = tx;
  }

  async leafHashes(start: number, end: number): Promise<readonly Uint8Array[]> {
    const hashes = await this.#tx.readE2eeLeafHashes(start, end);
    if (hashes.length !== end - start)
      throw new EnsealError(ErrorCode.STORE, `log leaves ${start}..${end} are not all in the store`);
    return hashes;
  }
}

/** What an append's builder returns: the entries to append, and the audit detail of the change. */
export interface AppendPlan {
  readonly entries: readonly Uint8Array[];
  readonly detail: NonNullable<AuditEvent['detail']>;
  /** More writes in the same transaction, after the leaves (for example a revoked device's tokens). */
  readonly after?: (tx: StoreTransaction) => Promise<void>;
}

export class E2eeLog {
  readonly origin: string;
  readonly #km: KeyManager;
  readonly #settings: E2eeSettings;
  readonly #witnesses: WitnessClient[];
  #publicKey: Promise<Uint8Array> | undefined;
  /** When this node last submitted each checkpoint size to the witnesses. */
  readonly #lastTry = new Map<number, number>();
  /** Complete subtrees' hashes: roots and proofs read O(log n) of them, not every leaf of the log. */
  readonly #tree = new SubtreeCache();

  constructor(km: KeyManager, settings: E2eeSettings, warn: (message: string) => void = () => undefined) {
    this.#km = km;
    this.#settings = settings;
    this.origin = settings.origin;
    this.#witnesses = settings.witnesses.map((w) => new WitnessClient(w, settings.witnessTimeoutMs, warn));
  }

  /** The log key's public half, creating the key at first use (another node may win that race). */
  publicKey(): Promise<Uint8Array> {
    this.#publicKey ??= this.#loadKey().catch((err: unknown) => {
      this.#publicKey = undefined;
      throw err;
    });
    return this.#publicKey;
  }

  /**
   * Refuses a log key whose private half could leave the key manager: one created beforehand through transit as
   * exportable, or switched to exportable or plaintext backup since. Checked before each signature.
   */
  async #checkKey(): Promise<void> {
    const info = await this.#km.readKey(LOG_KEY_NAME, SYSTEM);
    if (info.type !== 'ed25519' || info.exportable || info.allowPlaintextBackup)
      throw new EnsealError(
        ErrorCode.INVALID_STATE,
        `the key "${LOG_KEY_NAME}" must be a non-exportable ed25519 key without plaintext backup; the e2ee log refuses to sign with it`,
      );
  }

  async #loadKey(): Promise<Uint8Array> {
    const exported = async () => {
      await this.#checkKey();
      return base64Decode(
        (await this.#km.exportKey(LOG_KEY_NAME, LOG_KEY_VERSION, SYSTEM, 'public-key'))[0]!.key,
      );
    };
    try {
      return await exported();
    } catch (err) {
      if (!(err instanceof EnsealError && err.code === ErrorCode.KEY_NOT_FOUND)) throw err;
    }
    try {
      await this.#km.createKey(LOG_KEY_NAME, { type: 'ed25519' }, SYSTEM);
    } catch (err) {
      if (!(err instanceof EnsealError && err.code === ErrorCode.KEY_EXISTS)) throw err;
    }
    return exported();
  }

  /** The log's verifier key (`origin+id+base64(0x01 || key)`). */
  async verifierKey(): Promise<string> {
    return formatVerifierKey(this.origin, SignatureType.ED25519, await this.publicKey());
  }

  /** The witnesses' verifier keys and the quorum, as configured. */
  get witnessPolicy(): { witnesses: string[]; quorum: number } {
    return { witnesses: this.#settings.witnesses.map((w) => w.verifierKey), quorum: this.#settings.quorum };
  }

  /**
   * Appends the entries `build` returns, in one transaction that holds the log head lock and writes the audit
   * entry `op`; then signs (and has witnessed) the checkpoint of the new size. `build` sees the log as it is
   * under the lock, so its checks cannot race another node's append.
   */
  async append(
    op: string,
    ctx: CallContext,
    userId: string,
    build: (tx: StoreTransaction) => Promise<AppendPlan>,
  ): Promise<{ indexes: number[]; checkpoint: string }> {
    await this.publicKey();
    const now = Date.now();
    const { indexes, size } = await this.#km.changeRecords(op, ctx, async (tx) => {
      const size = await tx.lockE2eeLog();
      const plan = await build(tx);
      const rows: E2eeLeafRow[] = plan.entries.map((entry, i) => ({
        index: size + i,
        userId,
        entry,
        leafHash: leafHash(entry),
        createdAt: now,
      }));
      await tx.appendE2eeLeaves(rows);
      await plan.after?.(tx);
      const indexes = rows.map((r) => r.index);
      return {
        result: { indexes, size: size + rows.length },
        detail: { ...plan.detail, indexes: indexes.join(',') },
      };
    });
    return { indexes, checkpoint: await this.#answerFor(size) };
  }

  /** The log's size now. */
  size(): Promise<number> {
    return this.#km.readRecords((tx) => tx.e2eeLogSize());
  }

  /** The signed checkpoint of the current log, with the cosignatures collected for it. */
  async latest(): Promise<string> {
    return this.checkpointAt(await this.size());
  }

  /**
   * The signed checkpoint of size `size` (signing it, storing it and submitting it to the witnesses if no node
   * has yet), with the cosignatures collected for it.
   */
  async checkpointAt(size: number): Promise<string> {
    return (await this.#checkpoint(size)).note;
  }

  /**
   * The checkpoint to answer an append of size `size` with: its own, or, when a witness already cosigned a
   * larger tree (another node's append overtook this one) and so refused it, the latest one if that has the
   * quorum. Either includes the appended entries.
   */
  async #answerFor(size: number): Promise<string> {
    const own = await this.#checkpoint(size);
    if (own.cosigned >= this.#settings.quorum) return own.note;
    const now = await this.size();
    if (now <= size) return own.note;
    const latest = await this.#checkpoint(now);
    return latest.cosigned >= this.#settings.quorum ? latest.note : own.note;
  }

  async #checkpoint(size: number): Promise<{ note: string; cosigned: number }> {
    const stored = await this.#km.readRecords((tx) => tx.getE2eeCheckpoint(size));
    const joined = (row: E2eeCheckpointRow) => ({
      note: row.note + Object.values(row.cosignatures).join(''),
      cosigned: Object.keys(row.cosignatures).length,
    });
    // Short of the quorum (a witness was down), the witnesses are asked again, at most every 10 s per size,
    // so a flood of checkpoint reads cannot become a flood of submissions.
    const tried = this.#lastTry.get(size);
    if (stored !== undefined) {
      const out = joined(stored);
      if (out.cosigned >= this.#settings.quorum || (tried ?? 0) > Date.now() - RETRY_MS) return out;
    }
    if (this.#lastTry.size > 1000) this.#lastTry.clear();
    this.#lastTry.set(size, Date.now());
    const note = stored?.note ?? (await this.#sign(size));
    if (stored === undefined)
      await this.#km.readRecords((tx) => tx.insertE2eeCheckpoint(size, note, Date.now()));
    await this.#witness(size, note);
    const row = await this.#km.readRecords((tx) => tx.getE2eeCheckpoint(size));
    return row === undefined ? { note, cosigned: 0 } : joined(row);
  }

  async #sign(size: number): Promise<string> {
    const publicKey = await this.publicKey();
    await this.#checkKey();
    const rootHash = await this.#km.readRecords((tx) => this.#tree.root(new StoreLeafSource(tx), size));
    const text = formatCheckpoint({ origin: this.origin, size, rootHash, extensions: [] });
    const signed = await this.#km.sign(
      LOG_KEY_NAME,
      utf8Encode(text),
      { keyVersion: LOG_KEY_VERSION },
      SYSTEM,
    );
    const signature = parseVersioned('log signature', signed).bytes;
    return formatNote({
      text,
      signatures: [
        { name: this.origin, keyId: noteKeyId(this.origin, SignatureType.ED25519, publicKey), signature },
      ],
    });
  }

  /** Submits the checkpoint to every witness at once and stores the cosignatures that verify. */
  async #witness(size: number, note: string): Promise<void> {
    if (this.#witnesses.length === 0) return;
    const proofFrom = (oldSize: number) =>
      this.#km.readRecords((tx) => this.#tree.consistencyProof(new StoreLeafSource(tx), oldSize, size));
    await Promise.all(
      this.#witnesses.map(async (w) => {
        const line = await w.submit(size, note, proofFrom);
        if (line !== undefined) await this.#km.readRecords((tx) => tx.putE2eeCosignature(size, w.name, line));
      }),
    );
  }

  /** Entries `[start, end)`, as stored. */
  entries(start: number, end: number): Promise<E2eeLeafRow[]> {
    return this.#km.readRecords((tx) => tx.readE2eeLeaves(start, end));
  }

  inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    return this.#km.readRecords((tx) => this.#tree.inclusionProof(new StoreLeafSource(tx), index, size));
  }

  consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    return this.#km.readRecords((tx) => this.#tree.consistencyProof(new StoreLeafSource(tx), from, to));
  }

  /** A user's leaves with their inclusion proofs in the checkpoint of `size`. */
  async userEntries(
    userId: string,
    size: number,
  ): Promise<{ index: number; entry: Uint8Array; proof: Uint8Array[] }[]> {
    return this.#km.readRecords(async (tx) => {
      const rows = (await tx.listE2eeUserLeaves(userId)).filter((r) => r.index < size);
      const source = new StoreLeafSource(tx);
      const out = [];
      for (const r of rows)
        out.push({
          index: r.index,
          entry: r.entry,
          proof: await this.#tree.inclusionProof(source, r.index, size),
        });
      return out;
    });
  }
}
