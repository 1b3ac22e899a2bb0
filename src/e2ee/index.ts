/**
 * The end-to-end encryption layer: MLS groups through one adapter over ts-mls, a key directory with a
 * transparency log (RFC 9162 Merkle tree, C2SP signed notes, checkpoints and cosignatures), device identity
 * and safety numbers. Runs in Node and in browsers: platform crypto is reached only through src/crypto.
 */
export {
  MERKLE_HASH_LENGTH,
  MemoryLeafSource,
  consistencyProof,
  emptyRoot,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromInclusionProof,
  rootFromLeafHashes,
  subtreeHash,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  verifySubtreeConsistency,
  verifySubtreeInclusion,
  type LeafHashSource,
} from './merkle.js';
