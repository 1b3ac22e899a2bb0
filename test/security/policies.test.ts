/** ACL policies: Vault's priority rules, and a parser that is linear in its input and fails closed. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnsealError } from '../../src/crypto/index.js';
import { capabilitiesFor, parsePolicy, type Policy } from '../../src/server/index.js';
import { higherPriority } from '../../src/server/policies.js';

const policy = (rules: Record<string, string[]>): Policy => ({
  name: 'p',
  rules: Object.entries(rules).map(([path, capabilities]) => ({
    path,
    capabilities: capabilities as Policy['rules'][number]['capabilities'],
  })),
});
const caps = (rules: Record<string, string[]>, path: string) =>
  [...capabilitiesFor([policy(rules)], ['p'], path)].sort();

describe('ACL priority, as Vault documents it', () => {
  // Each row: two patterns that both match `path`; the first one must decide.
  const table: [rule: string, winner: string, loser: string, path: string][] = [
    ['1: an exact path has no wildcard, so it wins', 'secret/foo', 'secret/*', 'secret/foo'],
    ['1: the later first wildcard wins', 'secret/foo/*', 'secret/+/bar', 'secret/foo/bar'],
    ['1: "+" earlier loses to a glob later', 'secret/a/b/*', 'secret/+/b/c', 'secret/a/b/c'],
    ['2: not ending in * wins at the same first wildcard', 'secret/foo/+', 'secret/foo/*', 'secret/foo/x'],
    ["3: Vault's example: fewer + segments win", 'secret/*', 'secret/+/+/foo/*', 'secret/a/b/foo/c'],
    ['3: fewer + segments win', 'secret/+/b/c', 'secret/+/+/c', 'secret/a/b/c'],
    ['4: the longer pattern wins', 'secret/foo/bar*', 'secret/foo/b*', 'secret/foo/barn'],
    ['4: the longer glob wins', 'secret/+/bar*', 'secret/+/b*', 'secret/x/bark'],
  ];
  for (const [rule, winner, loser, path] of table) {
    it(`rule ${rule}: ${winner} over ${loser}`, () => {
      expect(higherPriority(winner, loser)).toBe(true);
      expect(higherPriority(loser, winner)).toBe(false);
      // The decision shows in the capabilities: the winner's alone, in either order of the rules.
      expect(caps({ [winner]: ['read'], [loser]: ['update', 'delete'] }, path)).toEqual(['read']);
      expect(caps({ [loser]: ['update', 'delete'], [winner]: ['read'] }, path)).toEqual(['read']);
      expect(caps({ [winner]: ['deny'], [loser]: ['update'] }, path)).toEqual([]);
    });
  }
  it('rule 5: at equal length, the lexicographically greater pattern wins', () => {
    expect(higherPriority('k/+/b*', 'k/+/a*')).toBe(true);
    expect(higherPriority('k/+/a*', 'k/+/b*')).toBe(false);
  });
  it('the same pattern in several policies merges, and deny on it wins', () => {
    const a = policy({ 'transit/encrypt/k': ['update'] });
    const b = { ...policy({ 'transit/encrypt/k': ['read'] }), name: 'q' };
    expect([...capabilitiesFor([a, b], ['p', 'q'], 'transit/encrypt/k')].sort()).toEqual(['read', 'update']);
    const c = { ...policy({ 'transit/encrypt/k': ['deny'] }), name: 'r' };
    expect([...capabilitiesFor([a, b, c], ['p', 'q', 'r'], 'transit/encrypt/k')]).toEqual([]);
  });
  it('priority is a strict order: never both ways, and transitive on random patterns', () => {
    const segment = fc.constantFrom('a', 'b', 'ab', '+');
    const pattern = fc
      .tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([segs, glob]) => segs.join('/') + (glob ? '*' : ''));
    fc.assert(
      fc.property(pattern, pattern, pattern, (a, b, c) => {
        if (a !== b) expect(higherPriority(a, b)).not.toBe(higherPriority(b, a));
        if (higherPriority(a, b) && higherPriority(b, c)) expect(higherPriority(a, c)).toBe(true);
      }),
    );
  });
});

describe('policy parsing', () => {
  it('reads HCL blocks with comments, trailing commas and several capabilities', () => {
    const p = parsePolicy(
      'app',
      `# orders service
      path "transit/encrypt/orders" { capabilities = ["update", "create",] }
      // a second block
      /* block comment */ path "transit/keys/*" {
        capabilities = ["list"]
      }`,
    );
    expect(p.rules).toEqual([
      { path: 'transit/encrypt/orders', capabilities: ['update', 'create'] },
      { path: 'transit/keys/*', capabilities: ['list'] },
    ]);
  });
  it('refuses attributes it does not enforce instead of ignoring them', () => {
    for (const text of [
      'path "transit/encrypt/k" { capabilities = ["update"] denied_parameters = { "context" = [] } }',
      '{"path": {"transit/encrypt/k": {"capabilities": ["update"], "allowed_parameters": {}}}}',
    ]) {
      expect(() => parsePolicy('p', text)).toThrow(/not supported/);
    }
  });
  it('refuses a 1 MiB policy at once, and hostile 64 KiB inputs in linear time', () => {
    expect(() => parsePolicy('p', 'path "a" { capabilities = ["read"] }\n'.repeat(30_000))).toThrow(
      /up to 64 KiB/,
    );
    // Each of these costs a backtracking parser time quadratic in its length (seconds at this size).
    const n = 64 * 1024 - 64;
    for (const text of [
      'path "a" ' + ' '.repeat(n),
      'x' + ' \t'.repeat(n / 2),
      'path "'.repeat(n / 6),
      '#'.repeat(n),
      '\n'.repeat(n) + 'x',
      'path "a" { capabilities = ["' + 'a", "'.repeat(n / 6),
    ]) {
      try {
        parsePolicy('p', text);
      } catch (err) {
        expect(err).toBeInstanceOf(EnsealError);
      }
    }
  }, 3_000);
  it('random and mutated documents give a policy or a typed error, never a crash', () => {
    const valid =
      'path "transit/encrypt/k" { capabilities = ["update"] }\npath "sys/*" { capabilities = ["deny"] }';
    const mutated = fc
      .tuple(fc.nat(valid.length), fc.nat(valid.length), fc.string({ maxLength: 8 }))
      .map(
        ([at, cut, insert]) =>
          valid.slice(0, at) + insert + valid.slice(Math.min(valid.length, at + (cut % 4))),
      );
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string({ maxLength: 200 })), (text) => {
        try {
          const p = parsePolicy('p', text);
          for (const r of p.rules) expect(typeof r.path).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(EnsealError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
