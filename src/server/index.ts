/**
 * The server layer: `enseal serve`, a Vault-Transit-compatible HTTPS API over the key manager, with tokens,
 * ACL policies and TLS set up the Mozilla way. This file is the layer's public surface.
 */
export { buildApp } from './app.js';
export type { AppOptions } from './http.js';
export {
  startServer,
  loadConfigFile,
  deploymentFiles,
  type ServeConfig,
  type RunningServer,
  type DeploymentFiles,
  type StoreLocation,
} from './serve.js';
export { TokenStore, type TokenInfo } from './tokens.js';
export { PolicyStore } from './policy-store.js';
export { parsePolicy, capabilitiesFor, type Policy, type Capability } from './policies.js';
export { registeredRoutes, type RegisteredRoute, type RouteAccess } from './route-access.js';
export { runDoctor, formatReport, CHECKS, type DoctorOptions, type DoctorReport } from './doctor/doctor.js';
export type { DoctorApi, DoctorServer, SealStatusReply } from './doctor/context.js';
export { REQUIREMENTS, TITLES, type CheckResult, type CheckStatus, type CheckId } from './doctor/result.js';
export {
  parseMountinfo,
  mountOf,
  mountVerdict,
  placementOf,
  type SystemRoots,
  type MountEntry,
  type DeviceVerdict,
} from './doctor/block-device.js';
export {
  FileWitnessState,
  loadWitnessKey,
  startWitnessServer,
  type RunningWitness,
  type WitnessServerOptions,
  type E2eeOptions,
} from './e2ee/index.js';
