/**
 * Stored ACL policies (by name), kept as their source text so operators read back what they wrote. Each is
 * authenticated under a keyring subkey bound to its name (`KeyManager.records`): a policy forged or edited
 * in the store grants nothing, and is reported. Writes and deletes are audited in their own transaction.
 */
import { EnsealError, ErrorCode, utf8Decode, utf8Encode } from '../crypto/index.js';
import type { CallContext, KeyManager } from '../kms/index.js';
import { checkPolicyName, DEFAULT_POLICY, parsePolicy, ROOT_POLICY, type Policy } from './policies.js';

const PREFIX = 'policy/';
const KIND = 'policy';

export class PolicyStore {
  readonly #km: KeyManager;
  readonly #cache = new Map<string, { policy: Policy | undefined; at: number }>();

  constructor(km: KeyManager) {
    this.#km = km;
  }

  async put(name: string, text: string, ctx: CallContext = {}): Promise<Policy> {
    if (name === ROOT_POLICY || name === DEFAULT_POLICY.name) {
      parsePolicy('x', text);
      throw new EnsealError(ErrorCode.NOT_ALLOWED, `the built-in "${name}" policy cannot be changed`);
    }
    const policy = parsePolicy(name, text);
    await this.#km.changeRecords('policy.write', ctx, async (tx, records) => {
      await tx.putMeta(PREFIX + name, utf8Encode(records.seal(KIND, name, text)));
      return { result: undefined, detail: { policy: name, rules: policy.rules.length } };
    });
    this.#cache.delete(name);
    return policy;
  }

  /** The policy's text; undefined when absent; RECORD_TAMPERED (and reported) when forged or modified. */
  async text(name: string): Promise<string | undefined> {
    checkPolicyName(name);
    const raw = await this.#km.readRecords(async (tx) => tx.getMeta(PREFIX + name));
    if (raw === undefined) return undefined;
    try {
      return this.#km.records().open(KIND, name, utf8Decode(raw));
    } catch (err) {
      if (err instanceof EnsealError && err.code === ErrorCode.RECORD_TAMPERED)
        this.#km.reportTampered(KIND, name);
      throw err;
    }
  }

  async list(): Promise<string[]> {
    const keys = await this.#km.readRecords((tx) => tx.listMeta(PREFIX));
    return ['default', 'root', ...keys.map((k) => k.slice(PREFIX.length))];
  }

  async delete(name: string, ctx: CallContext = {}): Promise<void> {
    checkPolicyName(name);
    await this.#km.changeRecords('policy.delete', ctx, async (tx) => {
      await tx.deleteMeta(PREFIX + name);
      return { result: undefined, detail: { policy: name } };
    });
    this.#cache.delete(name);
  }

  /** The named policies (unknown or tampered names grant nothing), cached for one second. */
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
