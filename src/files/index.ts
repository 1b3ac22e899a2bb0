/**
 * The files layer: writing files on disk safely (Node only). Below every layer that writes files (the TLS
 * tooling, the CLI), above crypto, which holds no I/O.
 */
export {
  createAtomicFile,
  writeFileAtomic,
  writeFileAtomicSync,
  type AtomicFile,
  type AtomicFileOptions,
} from './atomic-file.js';
