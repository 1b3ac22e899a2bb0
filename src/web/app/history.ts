/**
 * The chat history of each group, kept in the device's encrypted state (each group one sealed record, like
 * the client's own records), so a reload or a browser restart shows the conversation again and a copy of the
 * profile shows nothing. Bounded: the newest {@link HISTORY_LIMIT} entries per group.
 */
import type { EncryptedState, SharedFile } from '../index.js';

export const HISTORY_LIMIT = 500;

/** One line of a conversation. */
export interface HistoryEntry {
  /** The relay's sequence number (0 for lines this device wrote itself). */
  readonly seq: number;
  /** `user/device` of the sender, or '' for a notice of the client. */
  readonly from: string;
  readonly at: number;
  readonly text?: string;
  readonly file?: SharedFile;
  readonly notice?: string;
}

const recordName = (groupId: string) => `app/history/${groupId}`;

/** Every group's history, loaded on demand and saved in one transaction per change. */
export class History {
  readonly #state: EncryptedState;
  readonly #cache = new Map<string, HistoryEntry[]>();

  constructor(state: EncryptedState) {
    this.#state = state;
  }

  async of(groupId: string): Promise<readonly HistoryEntry[]> {
    let entries = this.#cache.get(groupId);
    if (entries === undefined) {
      entries = (await this.#state.getJson<HistoryEntry[]>(recordName(groupId))) ?? [];
      this.#cache.set(groupId, entries);
    }
    return entries;
  }

  /** Appends entries to groups and saves every changed group at once. */
  async append(additions: readonly { groupId: string; entry: HistoryEntry }[]): Promise<void> {
    if (additions.length === 0) return;
    const changed = new Set<string>();
    for (const { groupId, entry } of additions) {
      const entries = [...(await this.of(groupId)), entry].slice(-HISTORY_LIMIT);
      this.#cache.set(groupId, entries);
      changed.add(groupId);
    }
    const tx = this.#state.transaction();
    for (const g of changed) tx.putJson(recordName(g), this.#cache.get(g));
    await tx.commit();
  }
}
