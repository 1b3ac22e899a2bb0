/**
 * Access control as Vault's ACL policies: a policy maps path patterns to capabilities; everything is denied
 * unless a policy allows it; an explicit `deny` wins. Patterns are exact paths, or end in `*` (any suffix), and
 * may use `+` for exactly one path segment. When several patterns match, the one of highest priority decides,
 * by Vault's documented rules ({@link higherPriority}); the same pattern in several policies merges.
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

/** Largest policy document accepted. */
export const MAX_POLICY_BYTES = 64 * 1024;

/**
 * Parses a policy document in HCL (the `path` blocks subset) or JSON. The HCL reader is a single pass over
 * the text (no backtracking regular expressions), so hostile input costs time linear in its length. An
 * attribute it does not know (Vault's `allowed_parameters`, `denied_parameters`, …) is refused rather than
 * ignored: ignoring a restriction would grant more than its author meant.
 */
export function parsePolicy(name: string, text: string): Policy {
  checkPolicyName(name);
  if (typeof text !== 'string' || text.length > MAX_POLICY_BYTES)
    throw malformed('policy', `must be text up to ${MAX_POLICY_BYTES / 1024} KiB`);
  const trimmed = text.trim();
  const rules: PolicyRule[] = [];
  if (trimmed.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch {
      throw malformed('policy', 'is not valid JSON');
    }
    const paths = (doc as { path?: unknown }).path;
    if (typeof paths !== 'object' || paths === null || Array.isArray(paths))
      throw malformed('policy', 'must be {"path": {"<pattern>": {"capabilities": [...]}}}');
    for (const [path, body] of Object.entries(paths as Record<string, unknown>)) {
      const keys = typeof body === 'object' && body !== null ? Object.keys(body) : [];
      const unknown = keys.find((k) => k !== 'capabilities');
      if (unknown !== undefined) throw malformed('policy', `attribute "${unknown}" is not supported`);
      rules.push(rule(path, (body as { capabilities?: unknown } | null)?.capabilities));
    }
  } else {
    rules.push(...parseHcl(tokenize(text)));
  }
  return { name, rules };
}

type Token =
  | { readonly kind: 'word' | 'string'; readonly text: string; readonly at: number }
  | { readonly kind: 'punct'; readonly text: '{' | '}' | '[' | ']' | '=' | ','; readonly at: number };

/** Splits HCL into words, strings and punctuation, dropping whitespace and comments; one pass. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end === -1) throw malformed('policy', `has an unterminated comment at offset ${i}`);
      i = end + 2;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      const nl = text.indexOf('\n', i + 1);
      if (end === -1 || (nl !== -1 && nl < end))
        throw malformed('policy', `has an unterminated string at offset ${i}`);
      tokens.push({ kind: 'string', text: text.slice(i + 1, end), at: i });
      i = end + 1;
    } else if ('{}[]=,'.includes(c)) {
      tokens.push({ kind: 'punct', text: c as '{', at: i });
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < n && /[A-Za-z0-9_-]/.test(text[i]!)) i++;
      tokens.push({ kind: 'word', text: text.slice(start, i), at: start });
    } else {
      throw malformed('policy', `has an unexpected character at offset ${i}`);
    }
  }
  return tokens;
}

/** `path "<pattern>" { capabilities = ["…", …] }`, repeated. */
function parseHcl(tokens: readonly Token[]): PolicyRule[] {
  const rules: PolicyRule[] = [];
  let i = 0;
  const expect = (kind: Token['kind'], text?: string): Token => {
    const t = tokens[i];
    if (t === undefined || t.kind !== kind || (text !== undefined && t.text !== text)) {
      const where = t === undefined ? 'at the end' : `at offset ${t.at}`;
      throw malformed(
        'policy',
        `expected ${text ?? kind} ${where}: write path "…" { capabilities = [...] } blocks`,
      );
    }
    i++;
    return t;
  };
  while (i < tokens.length) {
    expect('word', 'path');
    const path = expect('string').text;
    expect('punct', '{');
    let caps: string[] | undefined;
    while (tokens[i]?.text !== '}' || tokens[i]?.kind !== 'punct') {
      const attr = expect('word').text;
      if (attr !== 'capabilities') throw malformed('policy', `attribute "${attr}" is not supported`);
      if (caps !== undefined) throw malformed('policy', `"${path}" sets capabilities twice`);
      expect('punct', '=');
      expect('punct', '[');
      caps = [];
      while (!(tokens[i]?.kind === 'punct' && tokens[i]?.text === ']')) {
        caps.push(expect('string').text);
        if (tokens[i]?.kind === 'punct' && tokens[i]?.text === ',') i++;
        else break;
      }
      expect('punct', ']');
    }
    expect('punct', '}');
    rules.push(rule(path, caps));
  }
  return rules;
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

/** Whether an ACL pattern matches a path. */
export function patternMatches(pattern: string, path: string): boolean {
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

/** Where the first `+` or `*` is, or the pattern's length when it has neither (an exact path). */
function firstWildcard(pattern: string): number {
  const plus = pattern.indexOf('+');
  const glob = pattern.indexOf('*');
  const found = [plus, glob].filter((i) => i !== -1);
  return found.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...found);
}

/**
 * Vault's priority between two patterns that both match a path: `a` wins over `b` when, in order,
 * its first wildcard comes later, it does not end in `*` while `b` does, it has fewer `+` segments, it is
 * longer, or it is greater lexicographically.
 */
export function higherPriority(a: string, b: string): boolean {
  const wa = firstWildcard(a);
  const wb = firstWildcard(b);
  if (wa !== wb) return wa > wb;
  const ga = a.endsWith('*');
  const gb = b.endsWith('*');
  if (ga !== gb) return gb;
  const pa = a.split('+').length;
  const pb = b.split('+').length;
  if (pa !== pb) return pa < pb;
  if (a.length !== b.length) return a.length > b.length;
  return a > b;
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
      if (!patternMatches(r.path, path)) continue;
      const set = merged.get(r.path) ?? new Set<Capability>();
      for (const c of r.capabilities) set.add(c);
      merged.set(r.path, set);
    }
  }
  let best: string | undefined;
  for (const pattern of merged.keys())
    if (best === undefined || higherPriority(pattern, best)) best = pattern;
  const caps = best === undefined ? new Set<Capability>() : merged.get(best)!;
  return caps.has('deny') ? new Set() : caps;
}
