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
export {
  NOTE_MAX_BYTES,
  NOTE_MAX_SIGNATURES,
  SignatureType,
  addSignatures,
  checkKeyName,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatNote,
  formatVerifierKey,
  noteKeyId,
  noteVerifierFromKey,
  openNote,
  parseNote,
  parseVerifierKey,
  signNote,
  type Note,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type VerifiedNote,
  type VerifierKey,
} from './signed-note.js';
export {
  CHECKPOINT_MAX_EXTENSIONS,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
  type Checkpoint,
  type OpenedCheckpoint,
} from './checkpoint.js';
export {
  cosignatureMessage,
  cosignerKeyId,
  decodeCosignature,
  ed25519CosignatureVerifier,
  ed25519Cosigner,
  type CosignatureVerifier,
  type Cosigner,
} from './cosignature.js';
export {
  LAST_RESORT_EXTENSION,
  MLS_MAX_MESSAGE_BYTES,
  MLS_MAX_STATE_BYTES,
  MlsClient,
  MlsGroup,
  MlsSuite,
  type MlsAuthenticator,
  type MlsClientOptions,
  type MlsIdentity,
  type MlsIncoming,
  type MlsKeyPackage,
  type MlsMember,
  type PendingCommit,
} from './mls.js';
