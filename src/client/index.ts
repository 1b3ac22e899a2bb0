/** The client layer: a typed client for `enseal serve`. This file is the layer's public surface. */
export {
  EnsealClient,
  type ClientOptions,
  type BatchItemResult,
  type AuditCheckpointJson,
  type AuditEntryJson,
} from './client.js';
export {
  NodeTransport,
  SqliteStateBackend,
  type NodeTransportOptions,
  type SqliteStateOptions,
} from './e2ee-node.js';
