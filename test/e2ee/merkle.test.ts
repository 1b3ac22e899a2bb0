/** Generated proofs verify, and every mutation of a proof, index, size or root is rejected. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, utf8Encode } from '../../src/crypto/index.js';
import {
  MemoryLeafSource,
  consistencyProof,
  emptyRoot,
  inclusionProof,
  leafHash,
  nodeHash,
  subtreeHash,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  verifySubtreeConsistency,
} from '../../src/e2ee/index.js';
import { asyncCodeOf, codeOf } from '../helpers/errors.js';

function tree(n: number): MemoryLeafSource {
  const source = new MemoryLeafSource();
  for (let i = 0; i < n; i++) source.append(leafHash(utf8Encode(`leaf ${i}`)));
  return source;
}

function flip(proof: Uint8Array[], i: number, bit: number): Uint8Array[] {
  const copy = proof.map((p) => p.slice());
  copy[i]![bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('merkle tree', () => {
  it('hashes with the RFC 9162 prefixes', async () => {
    const a = leafHash(Uint8Array.of(1));
    const b = leafHash(Uint8Array.of(2));
    expect(await treeRoot(new MemoryLeafSource([a, b]), 2)).toEqual(nodeHash(a, b));
    expect(await treeRoot(new MemoryLeafSource(), 0)).toEqual(emptyRoot());
    // The empty-tree root is SHA-256 of nothing.
    expect(Buffer.from(emptyRoot()).toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('inclusion proofs verify and mutations are rejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 70 })
          .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
        fc.nat(),
        async ([n, index], salt) => {
          const source = tree(n);
          const root = await treeRoot(source, n);
          const proof = await inclusionProof(source, index, n);
          const [leaf] = await source.leafHashes(index, index + 1);
          verifyInclusion(index, n, leaf!, proof, root);
          const bad = ErrorCode.E2EE_PROOF_INVALID;
          if (proof.length > 0) {
            expect(
              codeOf(() =>
                verifyInclusion(index, n, leaf!, flip(proof, salt % proof.length, salt % 256), root),
              ),
            ).toBe(bad);
            expect(codeOf(() => verifyInclusion(index, n, leaf!, proof.slice(1), root))).toBe(bad);
          }
          expect(codeOf(() => verifyInclusion(index, n, leaf!, [...proof, root], root))).toBe(bad);
          if (n > 1) expect(codeOf(() => verifyInclusion((index + 1) % n, n, leaf!, proof, root))).toBe(bad);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('consistency proofs verify and mutations are rejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 2, max: 70 })
          .chain((n) => fc.tuple(fc.integer({ min: 1, max: n - 1 }), fc.constant(n))),
        fc.nat(),
        async ([m, n], salt) => {
          const source = tree(n);
          const r1 = await treeRoot(source, m);
          const r2 = await treeRoot(source, n);
          const proof = await consistencyProof(source, m, n);
          verifyConsistency(m, n, proof, r1, r2);
          const bad = ErrorCode.E2EE_PROOF_INVALID;
          expect(
            codeOf(() => verifyConsistency(m, n, flip(proof, salt % proof.length, salt % 256), r1, r2)),
          ).toBe(bad);
          expect(codeOf(() => verifyConsistency(m, n, proof.slice(0, -1), r1, r2))).toBe(bad);
          expect(codeOf(() => verifyConsistency(m, n, proof, r2, r1))).toBe(bad);
          expect(codeOf(() => verifyConsistency(m + 1, n, proof, r1, r2))).not.toBe('no error');
          expect(codeOf(() => verifyConsistency(n, m, proof, r2, r1))).toBe(bad);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('subtree consistency matches generated subtrees', async () => {
    const n = 37;
    const source = tree(n);
    const root = await treeRoot(source, n);
    // [32, 37) inside the node [32, 40) clipped to 37 leaves: the subtree is that node, so only the path remains.
    const sub = await subtreeHash(source, 32, 37);
    verifySubtreeConsistency(32, 37, n, [await subtreeHash(source, 0, 32)], sub, root);
    expect(codeOf(() => verifySubtreeConsistency(32, 37, n, [], sub, root))).toBe(
      ErrorCode.E2EE_PROOF_INVALID,
    );
    expect(await asyncCodeOf(subtreeHash(source, 3, 7))).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('rejects hostile proof values with a typed error', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (a, b) => {
        const code = codeOf(() =>
          verifyInclusion(0, 1, a as Uint8Array, b as Uint8Array[], new Uint8Array(32)),
        );
        expect(code).not.toBe('no error');
      }),
    );
  });
});
