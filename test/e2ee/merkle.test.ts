/** Generated proofs verify, and every mutation of a proof, index, size or root is rejected. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, utf8Encode } from '../../src/crypto/index.js';
import {
  MemoryLeafSource,
  SubtreeCache,
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
  type LeafHashSource,
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

/** A source that counts how many leaf hashes were read. */
class CountingSource implements LeafHashSource {
  read = 0;
  constructor(readonly inner: MemoryLeafSource) {}
  async leafHashes(start: number, end: number): Promise<readonly Uint8Array[]> {
    this.read += end - start;
    return this.inner.leafHashes(start, end);
  }
}

describe('SubtreeCache over an append-only log', () => {
  it('gives the same roots and proofs as the plain functions while the log grows', async () => {
    const leaves = new MemoryLeafSource();
    const cache = new SubtreeCache();
    const sizes = [1, 2, 255, 256, 257, 511, 512, 513, 1000, 1024, 1025, 2047, 2048, 3000];
    for (const size of sizes) {
      while (leaves.size < size) leaves.append(leafHash(utf8Encode(`leaf ${leaves.size}`)));
      expect(await cache.root(leaves, size)).toEqual(await treeRoot(leaves, size));
      for (const index of [0, Math.floor(size / 3), size - 1]) {
        expect(await cache.inclusionProof(leaves, index, size)).toEqual(
          await inclusionProof(leaves, index, size),
        );
      }
      for (const old of sizes.filter((o) => o <= size)) {
        expect(await cache.consistencyProof(leaves, old, size)).toEqual(
          await consistencyProof(leaves, old, size),
        );
      }
    }
    expect(await cache.root(leaves, 0)).toEqual(emptyRoot());
  });

  it('matches the plain functions for random sizes, indexes and old sizes', async () => {
    const leaves = tree(1500);
    const cache = new SubtreeCache();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1500 }), fc.nat(), fc.nat(), async (size, i, o) => {
        const index = i % size;
        const old = o % (size + 1);
        expect(await cache.inclusionProof(leaves, index, size)).toEqual(
          await inclusionProof(leaves, index, size),
        );
        expect(await cache.consistencyProof(leaves, old, size)).toEqual(
          await consistencyProof(leaves, old, size),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('reads a few hundred leaves per root or proof once warm, not the whole log', async () => {
    const n = 100_000;
    const source = new CountingSource(tree(n));
    const cache = new SubtreeCache();
    await cache.root(source, n);
    expect(source.read).toBe(n); // the first root reads every leaf once
    source.read = 0;
    await cache.root(source, n);
    await cache.inclusionProof(source, 54_321, n);
    await cache.consistencyProof(source, 77_777, n);
    // Each call reads at most the leaves of the partial subtrees narrower than 256 on its paths.
    expect(source.read).toBeLessThan(3 * 2 * 256);
    expect(cache.size).toBeLessThan((2 * n) / 256);
    const plain = new CountingSource(tree(n));
    await inclusionProof(plain, 54_321, n);
    expect(plain.read).toBe(n);
  });

  it('refuses what the plain functions refuse', async () => {
    const cache = new SubtreeCache();
    const leaves = tree(10);
    expect(await asyncCodeOf(cache.inclusionProof(leaves, 10, 10))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(await asyncCodeOf(cache.consistencyProof(leaves, 11, 10))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(await asyncCodeOf(cache.root(leaves, -1))).toBe(ErrorCode.INVALID_ARGUMENT);
    await expect(cache.root(leaves, 11)).rejects.toThrow();
  });
});
