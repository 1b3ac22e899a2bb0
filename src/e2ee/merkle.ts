/**
 * RFC 9162 §2.1 Merkle trees (the RFC 6962 tree of Certificate Transparency): leaf and interior hashing with
 * the 0x00 / 0x01 domain-separation prefixes, the root of n leaves, and generation and verification of
 * inclusion and consistency proofs. Also the subtree proofs of the Merkle Tree Certificates draft, which
 * witnesses use to cosign parts of a log.
 *
 * Written here because no well-kept TypeScript library does this (the candidates are pre-1.0 or follow
 * another tree shape), and the verifier is small enough to hold to the published vectors. Sizes and indexes
 * are JavaScript safe integers; the arithmetic below never uses 32-bit bitwise operators, so trees beyond
 * 2^32 leaves are handled correctly.
 */
import {
  EnsealError,
  ErrorCode,
  concatBytes,
  constantTimeEqual,
  invalidArgument,
  sha256,
} from '../crypto/index.js';

/** Length in bytes of every hash in the tree (SHA-256). */
export const MERKLE_HASH_LENGTH = 32;

/** Proofs longer than this cannot belong to any tree of a safe-integer size. */
const MAX_PROOF_LENGTH = 2 * 53;

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** MTH({}) = SHA-256(""), the root of the empty tree. */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** The hash of one leaf: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(concatBytes(LEAF_PREFIX, data));
}

/** The hash of an interior node: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concatBytes(NODE_PREFIX, left, right));
}

/**
 * Where proof generation reads leaf hashes from. An in-memory array satisfies it ({@link MemoryLeafSource});
 * a store can back it later without the tree code changing.
 */
export interface LeafHashSource {
  /** Leaf hashes `[start, end)`, in order. */
  leafHashes(start: number, end: number): Promise<readonly Uint8Array[]>;
}

/** A {@link LeafHashSource} over an array of leaf hashes. */
export class MemoryLeafSource implements LeafHashSource {
  readonly #hashes: Uint8Array[] = [];

  constructor(hashes: Iterable<Uint8Array> = []) {
    for (const h of hashes) this.append(h);
  }

  get size(): number {
    return this.#hashes.length;
  }

  /** Appends one leaf hash (already hashed with {@link leafHash}). */
  append(hash: Uint8Array): void {
    if (!(hash instanceof Uint8Array) || hash.length !== MERKLE_HASH_LENGTH) {
      throw invalidArgument('leaf hash', `must be ${MERKLE_HASH_LENGTH} bytes`);
    }
    this.#hashes.push(hash.slice());
  }

  leafHashes(start: number, end: number): Promise<readonly Uint8Array[]> {
    if (start < 0 || end > this.#hashes.length || start > end) {
      return Promise.reject(invalidArgument('leaf range', `[${start}, ${end}) is outside the tree`));
    }
    return Promise.resolve(this.#hashes.slice(start, end));
  }
}

function proofInvalid(detail: string): EnsealError {
  return new EnsealError(ErrorCode.E2EE_PROOF_INVALID, `Merkle proof rejected: ${detail}`);
}

function assertSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw invalidArgument(name, 'must be a non-negative safe integer');
}

/** The largest power of two strictly smaller than n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The smallest power of two ≥ n (n ≥ 1). */
function bitCeil(n: number): number {
  let k = 1;
  while (k < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && bitCeil(n) === n;
}

/** MTH over an array of leaf hashes (RFC 9162 §2.1.1). */
export function rootFromLeafHashes(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return emptyRoot();
  return rangeHash(hashes, 0, hashes.length);
}

function rangeHash(hashes: readonly Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 1) return hashes[start]!;
  const k = splitPoint(n);
  return nodeHash(rangeHash(hashes, start, start + k), rangeHash(hashes, start + k, end));
}

/** The root of the first `size` leaves of `source`. */
export async function treeRoot(source: LeafHashSource, size: number): Promise<Uint8Array> {
  assertSize('size', size);
  return rootFromLeafHashes(await source.leafHashes(0, size));
}

/** The hash of leaves [start, end) of a tree, however it is found. */
type RangeHasher = (start: number, end: number) => Promise<Uint8Array>;

/** PATH(m, D[n]) of RFC 9162 §2.1.3.1, over leaves[start, end), with range hashes from `hash`. */
async function pathWith(
  hash: RangeHasher,
  m: number,
  start: number,
  end: number,
  out: Uint8Array[],
): Promise<void> {
  const n = end - start;
  if (n <= 1) return;
  const k = splitPoint(n);
  if (m < k) {
    await pathWith(hash, m, start, start + k, out);
    out.push(await hash(start + k, end));
  } else {
    await pathWith(hash, m - k, start + k, end, out);
    out.push(await hash(start, start + k));
  }
}

/** SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1, over leaves[start, end), with range hashes from `hash`. */
async function subproofWith(
  hash: RangeHasher,
  m: number,
  start: number,
  end: number,
  known: boolean,
  out: Uint8Array[],
): Promise<void> {
  const n = end - start;
  if (m === n) {
    if (!known) out.push(await hash(start, end));
    return;
  }
  const k = splitPoint(n);
  if (m <= k) {
    await subproofWith(hash, m, start, start + k, known, out);
    out.push(await hash(start + k, end));
  } else {
    await subproofWith(hash, m - k, start + k, end, false, out);
    out.push(await hash(start, start + k));
  }
}

/** Complete subtrees narrower than this are hashed again from their leaves rather than remembered. */
const CACHED_WIDTH = 256;

/**
 * Roots and proofs over a store-backed, append-only log without reading every leaf each time. A complete
 * subtree (aligned, a power of two wide, inside the tree) never changes once its last leaf is appended, so its
 * hash stays true for every later tree size; this remembers those at least {@link CACHED_WIDTH} leaves wide.
 * A root or a proof then costs O(log n) remembered hashes plus at most a few hundred leaf hashes per partial
 * subtree, instead of reading all n leaves. Memory: about 2n / 256 hashes for a tree of n leaves.
 *
 * Use one cache per log, and only with sources that read that log: a cached hash is never checked again.
 *
 * @example
 * ```ts
 * const leaves = new MemoryLeafSource([leafHash(new Uint8Array([1])), leafHash(new Uint8Array([2]))]);
 * const tree = new SubtreeCache();
 * const root = await tree.root(leaves, 2);
 * root.length; // 32
 * ```
 */
export class SubtreeCache {
  readonly #hashes = new Map<string, Uint8Array>();

  /** How many subtree hashes are remembered. */
  get size(): number {
    return this.#hashes.size;
  }

  async #range(source: LeafHashSource, start: number, end: number): Promise<Uint8Array> {
    const n = end - start;
    if (n <= CACHED_WIDTH) return rangeHash(await source.leafHashes(start, end), 0, n);
    const complete = isPowerOfTwo(n);
    const key = `${start}+${n}`;
    if (complete) {
      const hit = this.#hashes.get(key);
      if (hit !== undefined) return hit;
    }
    const k = splitPoint(n);
    const h = nodeHash(
      await this.#range(source, start, start + k),
      await this.#range(source, start + k, end),
    );
    if (complete) this.#hashes.set(key, h);
    return h;
  }

  #hasher(source: LeafHashSource): RangeHasher {
    return (start, end) => this.#range(source, start, end);
  }

  /** The root of the first `size` leaves (as {@link treeRoot}). */
  async root(source: LeafHashSource, size: number): Promise<Uint8Array> {
    assertSize('size', size);
    return size === 0 ? emptyRoot() : this.#range(source, 0, size);
  }

  /** The inclusion proof of leaf `index` in the tree of `size` leaves (as {@link inclusionProof}). */
  inclusionProof(source: LeafHashSource, index: number, size: number): Promise<Uint8Array[]> {
    return proveInclusion(index, size, async () => this.#hasher(source));
  }

  /** The consistency proof between `size1` ≤ `size2` (as {@link consistencyProof}). */
  consistencyProof(source: LeafHashSource, size1: number, size2: number): Promise<Uint8Array[]> {
    return proveConsistency(size1, size2, async () => this.#hasher(source));
  }
}

/** Range hashes over the first `size` leaves of `source`, read at once (the plain functions' way). */
async function allLeaves(source: LeafHashSource, size: number): Promise<RangeHasher> {
  const hashes = await source.leafHashes(0, size);
  return (start, end) => Promise.resolve(rangeHash(hashes, start, end));
}

async function proveInclusion(
  index: number,
  size: number,
  hasher: () => Promise<RangeHasher>,
): Promise<Uint8Array[]> {
  assertSize('size', size);
  assertSize('index', index);
  if (index >= size) throw invalidArgument('index', `must be below the tree size ${size}`);
  const out: Uint8Array[] = [];
  await pathWith(await hasher(), index, 0, size, out);
  return out;
}

async function proveConsistency(
  size1: number,
  size2: number,
  hasher: () => Promise<RangeHasher>,
): Promise<Uint8Array[]> {
  assertSize('size1', size1);
  assertSize('size2', size2);
  if (size1 > size2) throw invalidArgument('size1', 'must not exceed size2');
  const out: Uint8Array[] = [];
  if (size1 === 0 || size1 === size2) return out;
  await subproofWith(await hasher(), size1, 0, size2, true, out);
  return out;
}

/** The inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1). */
export function inclusionProof(source: LeafHashSource, index: number, size: number): Promise<Uint8Array[]> {
  return proveInclusion(index, size, () => allLeaves(source, size));
}

/** The consistency proof between tree sizes `size1` ≤ `size2` (RFC 9162 §2.1.4.1). Empty when either is 0 or they are equal. */
export function consistencyProof(
  source: LeafHashSource,
  size1: number,
  size2: number,
): Promise<Uint8Array[]> {
  return proveConsistency(size1, size2, () => allLeaves(source, size2));
}

function checkHashes(proof: readonly Uint8Array[], what: string): void {
  if (!Array.isArray(proof)) throw proofInvalid(`${what} must be an array of hashes`);
  if (proof.length > MAX_PROOF_LENGTH) throw proofInvalid(`${what} is too long`);
  for (const h of proof) {
    if (!(h instanceof Uint8Array) || h.length !== MERKLE_HASH_LENGTH) {
      throw proofInvalid(`${what} holds a hash that is not ${MERKLE_HASH_LENGTH} bytes`);
    }
  }
}

function checkHash(h: Uint8Array, what: string): void {
  if (!(h instanceof Uint8Array) || h.length !== MERKLE_HASH_LENGTH) {
    throw proofInvalid(`${what} is not a ${MERKLE_HASH_LENGTH}-byte hash`);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && constantTimeEqual(a, b)
  );
}

function checkProofSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw proofInvalid(`${what} is not a non-negative safe integer`);
}

/**
 * The root implied by an inclusion proof (RFC 9162 §2.1.3.2, steps 1–5). Throws ERR_E2EE_PROOF_INVALID when
 * the proof has the wrong shape for (index, size).
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  checkProofSize(index, 'leaf index');
  checkProofSize(size, 'tree size');
  checkHash(leaf, 'leaf hash');
  checkHashes(proof, 'inclusion proof');
  if (index >= size) throw proofInvalid(`leaf index ${index} is not below tree size ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw proofInvalid('inclusion proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      // Climb past the levels where this node is the last one (it has no right sibling there).
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofInvalid('inclusion proof is too short');
  return r;
}

/** Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`. Throws ERR_E2EE_PROOF_INVALID. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkHash(root, 'root hash');
  if (!constantTimeEqual(rootFromInclusionProof(index, size, leaf, proof), root)) {
    throw proofInvalid('inclusion proof does not lead to the root');
  }
}

/**
 * RFC 9162 §2.1.4.2: checks the proof against `oldRoot` and returns the new root it implies. Requires
 * 0 < size1 < size2 and a non-empty proof.
 */
function consistencyRoots(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  oldRoot: Uint8Array,
): Uint8Array {
  if (proof.length === 0) throw proofInvalid('consistency proof is empty');
  const path = isPowerOfTwo(size1) ? [oldRoot, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) throw proofInvalid('consistency proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofInvalid('consistency proof is too short');
  if (!constantTimeEqual(fr, oldRoot)) throw proofInvalid('consistency proof does not lead to the old root');
  return sr;
}

/**
 * Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves with root
 * `root1` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal roots. A proof from the empty tree
 * proves nothing and is rejected, as the reference verifier does. Throws ERR_E2EE_PROOF_INVALID.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  checkProofSize(size1, 'old size');
  checkProofSize(size2, 'new size');
  checkHashes(proof, 'consistency proof');
  // Roots are compared as given; their length is checked only where they enter a hash computation.
  if (size2 < size1) throw proofInvalid(`new size ${size2} is below old size ${size1}`);
  if (size1 === 0) throw proofInvalid('a consistency proof from the empty tree proves nothing');
  if (size1 === size2) {
    if (proof.length !== 0) throw proofInvalid('equal sizes need an empty proof');
    if (!sameBytes(root1, root2)) throw proofInvalid('equal sizes with different roots');
    return;
  }
  checkHash(root1, 'old root');
  checkHash(root2, 'new root');
  const computed = consistencyRoots(size1, size2, proof, root1);
  if (!constantTimeEqual(computed, root2))
    throw proofInvalid('consistency proof does not lead to the new root');
}

/** A subtree [start, end) is valid when start is a multiple of the smallest power of two ≥ end − start. */
function checkSubtree(start: number, end: number): void {
  checkProofSize(start, 'subtree start');
  checkProofSize(end, 'subtree end');
  if (end < start) throw proofInvalid(`subtree [${start}, ${end}) is reversed`);
  if (end === start) return;
  if (start % bitCeil(end - start) !== 0) throw proofInvalid(`[${start}, ${end}) is not a subtree`);
}

/**
 * The number of hashes in the inclusion proof of node `index` at a level whose nodes, in a tree of `width`
 * of them, are the units (the tree above any level has the same shape as a tree of that many leaves).
 */
function inclusionProofLength(index: number, width: number): number {
  let len = 0;
  let fn = index;
  let sn = width - 1;
  while (sn > 0) {
    if (fn % 2 === 0 && fn === sn) {
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    }
    len++;
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return len;
}

/**
 * Verifies a subtree inclusion proof: leaf `index` is in the subtree [start, end) whose hash is `root`. The
 * proof is the ordinary inclusion proof of the leaf within the subtree. Throws ERR_E2EE_PROOF_INVALID.
 */
export function verifySubtreeInclusion(
  index: number,
  start: number,
  end: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkSubtree(start, end);
  checkProofSize(index, 'leaf index');
  if (index < start || index >= end)
    throw proofInvalid(`leaf ${index} is outside subtree [${start}, ${end})`);
  verifyInclusion(index - start, end - start, leaf, proof, root);
}

/**
 * Verifies a subtree consistency proof: the subtree [start, end) with hash `subRoot` is part of the tree of
 * `size` leaves with root `root`. Throws ERR_E2EE_PROOF_INVALID.
 *
 * The subtree lies inside the node N of width w = bitceil(end − start) that starts at `start` (clipped to the
 * tree). The proof is a consistency proof inside N from end − start leaves to N's width, followed by the
 * inclusion path of N up to the root. When the subtree is N itself, only the path remains.
 */
export function verifySubtreeConsistency(
  start: number,
  end: number,
  size: number,
  proof: readonly Uint8Array[],
  subRoot: Uint8Array,
  root: Uint8Array,
): void {
  checkSubtree(start, end);
  checkProofSize(size, 'tree size');
  checkHashes(proof, 'subtree consistency proof');
  if (end > size) throw proofInvalid(`subtree end ${end} is beyond tree size ${size}`);
  if (start === end) {
    if (proof.length !== 0) throw proofInvalid('an empty subtree needs an empty proof');
    if (!sameBytes(subRoot, emptyRoot())) throw proofInvalid('an empty subtree must have the empty root');
    // The empty subtree is part of every tree: the tree's root is not constrained.
    return;
  }
  if (start === 0 && end === size) {
    if (proof.length !== 0) throw proofInvalid('a subtree that is the whole tree needs an empty proof');
    if (!sameBytes(subRoot, root)) throw proofInvalid('a subtree that is the whole tree must have its root');
    return;
  }
  checkHash(subRoot, 'subtree hash');
  checkHash(root, 'root hash');
  const m = end - start;
  const w = bitCeil(m);
  const nodeWidth = Math.min(w, size - start);
  // Nodes at the level of N: how many there are, and which one N is.
  const levelWidth = Math.ceil(size / w);
  const nodeIndex = start / w;
  const pathLength = inclusionProofLength(nodeIndex, levelWidth);
  if (proof.length < pathLength) throw proofInvalid('subtree consistency proof is too short');
  const inner = proof.slice(0, proof.length - pathLength);
  const upper = proof.slice(proof.length - pathLength);
  let nodeRoot: Uint8Array;
  if (m === nodeWidth) {
    if (inner.length !== 0) throw proofInvalid('subtree consistency proof is too long');
    nodeRoot = subRoot;
  } else {
    nodeRoot = consistencyRoots(m, nodeWidth, inner, subRoot);
  }
  const computed = rootFromInclusionProof(nodeIndex, levelWidth, nodeRoot, upper);
  if (!constantTimeEqual(computed, root))
    throw proofInvalid('subtree consistency proof does not lead to the root');
}

/** The hash of the subtree [start, end) of `source`. */
export async function subtreeHash(source: LeafHashSource, start: number, end: number): Promise<Uint8Array> {
  assertSize('start', start);
  assertSize('end', end);
  if (end < start || (end > start && start % bitCeil(end - start) !== 0)) {
    throw invalidArgument('subtree', `[${start}, ${end}) is not a subtree`);
  }
  return rootFromLeafHashes(await source.leafHashes(start, end));
}
