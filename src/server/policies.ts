/**
 * Access control as Vault's ACL policies: a policy maps path patterns to capabilities; everything is denied
 * unless a policy allows it; an explicit `deny` wins. Patterns are exact paths, or end in `*` (any suffix), and
 * may use `+` for exactly one path segment. When several patterns match, the most specific one decides:
 * exact beats glob, a longer literal prefix beats a shorter one, fewer `+` beats more.
 *
 * Policies are written in Vault's HCL subset (`path "transit/encrypt/orders" { capabilities = ["update"] }`)
 * or its JSON form (`{"path": {"transit/encrypt/orders": {"capabilities": ["update"]}}}`).
 */
import { invalidArgument, malformed } from '../crypto/index.js';

export const CAPABILITIES = ['create', 'read', 'update', 'patch', 'delete', 'list', 'sudo', 'deny'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface PolicyRule {
  readonly path: string;
  readonly capabilities: readonly Capability[];
}

export interface Policy {
  readonly name: string;
  readonly rules: readonly PolicyRule[];
}

const POLICY_NAME = /^[a-z0-9][a-z0-9_.-]{0,127}$/;
const PATH = /^[A-Za-z0-9_.\-/+*]{1,512}$/;

export function checkPolicyName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !POLICY_NAME.test(name)) {
    throw invalidArgument('policy name', 'must be 1-128 of a-z 0-9 _ . - starting with a letter or digit');
  }
}

function rule(path: unknown, caps: unknown): PolicyRule {
  if (typeof path !== 'string' || !PATH.test(path) || path.slice(0, -1).includes('*')) {
    throw malformed('policy', `path ${JSON.stringify(path)} is not a valid pattern ("*" only at the end)`);
  }
  if (!Array.isArray(caps) || caps.some((c) => !(CAPABILITIES as readonly string[]).includes(c as string))) {
    throw malformed('policy', `capabilities of "${path}" must be a list of ${CAPABILITIES.join(', ')}`);
  }
  return { path: path.replace(/^\/+/, ''), capabilities: caps as Capability[] };
}

/** Parses a policy document in HCL (the `path` blocks subset) or JSON. */
export function parsePolicy(name: string, text: string): Policy {
  checkPolicyName(name);
  if (typeof text !== 'string' || text.length > 64 * 1024)
    throw malformed('policy', 'must be text up to 64 KiB');
  const trimmed = text.trim();
  const rules: PolicyRule[] = [];
  if (trimmed.startsWith('{')) {
    let doc: { path?: Record<string, { capabilities?: unknown }> };
    try {
      doc = JSON.parse(trimmed) as typeof doc;
    } catch {
      throw malformed('policy', 'is not valid JSON');
    }
    for (const [path, body] of Object.entries(doc.path ?? {})) rules.push(rule(path, body?.capabilities));
  } else {
    const withoutComments = trimmed.replace(/^\s*(#|\/\/).*$/gm, '');
    const block = /path\s+"([^"]*)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}/g;
    let consumed = withoutComments;
    for (const m of withoutComments.matchAll(block)) {
      const caps = [...m[2]!.matchAll(/"([^"]*)"/g)].map((c) => c[1]);
      rules.push(rule(m[1], caps));
      consumed = consumed.replace(m[0], '');
    }
    if (consumed.trim().length > 0)
      throw malformed('policy', 'has text outside `path "…" { capabilities = [...] }` blocks');
  }
  return { name, rules };
}

/** Built-in policies: `root` may do everything; `default` lets a token look itself up and revoke itself. */
export const ROOT_POLICY = 'root';
export const DEFAULT_POLICY: Policy = {
  name: 'default',
  rules: [
    { path: 'auth/token/lookup-self', capabilities: ['read'] },
    { path: 'auth/token/revoke-self', capabilities: ['update'] },
    { path: 'sys/capabilities-self', capabilities: ['update'] },
  ],
};

function matches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith('*');
  const body = glob ? pattern.slice(0, -1) : pattern;
  const pSeg = body.split('/');
  const tSeg = path.split('/');
  if (!glob && pSeg.length !== tSeg.length) return false;
  for (let i = 0; i < pSeg.length; i++) {
    const p = pSeg[i]!;
    const t = tSeg[i];
    if (t === undefined) return false;
    const last = i === pSeg.length - 1;
    if (p === '+') continue;
    if (glob && last) return t.startsWith(p);
    if (p !== t) return false;
  }
  return true;
}

/** Specificity for "most specific match wins": exact first, then longer literal prefix, then fewer `+`. */
function specificity(pattern: string): [number, number, number] {
  const exact = pattern.endsWith('*') ? 0 : 1;
  const literal = pattern.replace(/\*$/, '').replace(/\+/g, '').length;
  const plus = (pattern.match(/\+/g) ?? []).length;
  return [exact, literal, -plus];
}

function moreSpecific(a: string, b: string): boolean {
  const [x, y] = [specificity(a), specificity(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! > y[i]!;
  return false;
}

/**
 * The capabilities the given policies grant on `path` (no leading slash, no `v1/`). The root policy
 * grants everything including sudo.
 */
export function capabilitiesFor(
  policies: readonly Policy[],
  names: readonly string[],
  path: string,
): Set<Capability> {
  if (names.includes(ROOT_POLICY)) return new Set(CAPABILITIES.filter((c) => c !== 'deny'));
  const merged = new Map<string, Set<Capability>>();
  for (const policy of policies) {
    for (const r of policy.rules) {
      if (!matches(r.path, path)) continue;
      const set = merged.get(r.path) ?? new Set<Capability>();
      for (const c of r.capabilities) set.add(c);
      merged.set(r.path, set);
    }
  }
  let best: string | undefined;
  for (const pattern of merged.keys()) if (best === undefined || moreSpecific(pattern, best)) best = pattern;
  const caps = best === undefined ? new Set<Capability>() : merged.get(best)!;
  return caps.has('deny') ? new Set() : caps;
}
