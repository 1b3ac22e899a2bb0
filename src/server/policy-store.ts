/** Stored ACL policies (by name), kept as their source text so operators read back what they wrote. */
import { EnsealError, ErrorCode, utf8Decode, utf8Encode } from '../crypto/index.js';
import type { Store } from '../store/index.js';
import { checkPolicyName, DEFAULT_POLICY, parsePolicy, ROOT_POLICY, type Policy } from './policies.js';

const PREFIX = 'policy/';

export class PolicyStore {
  readonly #store: Store;
  readonly #cache = new Map<string, { policy: Policy | undefined; at: number }>();

  constructor(store: Store) {
    this.#store = store;
  }

  async put(name: string, text: string): Promise<Policy> {
    if (name === ROOT_POLICY || name === DEFAULT_POLICY.name) {
      parsePolicy('x', text);
      throw new EnsealError(ErrorCode.NOT_ALLOWED, `the built-in "${name}" policy cannot be changed`);
    }
    const policy = parsePolicy(name, text);
    await this.#store.transaction((tx) => tx.putMeta(PREFIX + name, utf8Encode(text)));
    this.#cache.delete(name);
    return policy;
  }

  async text(name: string): Promise<string | undefined> {
    checkPolicyName(name);
    const raw = await this.#store.transaction((tx) => tx.getMeta(PREFIX + name));
    return raw === undefined ? undefined : utf8Decode(raw);
  }

  async list(): Promise<string[]> {
    const keys = await this.#store.transaction((tx) => tx.listMeta(PREFIX));
    return ['default', 'root', ...keys.map((k) => k.slice(PREFIX.length))];
  }

  async delete(name: string): Promise<void> {
    checkPolicyName(name);
    await this.#store.transaction((tx) => tx.deleteMeta(PREFIX + name));
    this.#cache.delete(name);
  }

  /** The named policies (unknown names grant nothing), cached for one second. */
  async resolve(names: readonly string[]): Promise<Policy[]> {
    const out: Policy[] = [DEFAULT_POLICY];
    const now = Date.now();
    for (const name of names) {
      if (name === ROOT_POLICY || name === DEFAULT_POLICY.name) continue;
      let entry = this.#cache.get(name);
      if (entry === undefined || now - entry.at > 1000) {
        const text = await this.text(name).catch(() => undefined);
        entry = { policy: text === undefined ? undefined : parsePolicy(name, text), at: now };
        this.#cache.set(name, entry);
      }
      if (entry.policy) out.push(entry.policy);
    }
    return out;
  }
}
