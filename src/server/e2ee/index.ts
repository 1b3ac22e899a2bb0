/**
 * The server half of end-to-end encryption under `/v1/e2ee` (the contract is docs/e2ee-service.md): device
 * login, the key directory and its transparency log, witness submission, the relay with its queues, and blobs.
 * One call registers it all.
 */
import type { AppOptions, FastifyInstance } from '../http.js';
import { registerBlobRoutes } from './blobs.js';
import { e2eeSettings } from './config.js';
import { registerDeviceAuthRoutes } from './device-auth.js';
import { registerDirectoryRoutes } from './directory.js';
import { E2eeLog } from './log-service.js';
import { registerLogRoutes } from './log-routes.js';
import { registerRecoveryBlobRoutes } from './recovery-blob.js';
import { InboxNotifier, registerRelayRoutes } from './relay.js';

export { e2eeSettings, type E2eeOptions, type E2eeSettings, type E2eeWitnessConfig } from './config.js';
export {
  checkFrame,
  encodeFrame,
  frameBucketFor,
  isFrameBucket,
  FRAME_MAX_BYTES,
  FRAME_MIN_BYTES,
} from './frames.js';
export { LOG_KEY_NAME } from './log-service.js';
export {
  FileWitnessState,
  loadWitnessKey,
  startWitnessServer,
  type RunningWitness,
  type WitnessServerOptions,
} from './witness-server.js';

/** How often expired messages, blobs and challenges are deleted. */
const EXPIRY_INTERVAL_MS = 60_000;

/** Registers every `/v1/e2ee` route on `app`, with the settings of `options.e2ee`. */
export function registerE2eeRoutes(app: FastifyInstance, options: AppOptions): void {
  const settings = e2eeSettings(options.e2ee);
  const { km, tokens } = options;
  const log = new E2eeLog(km, settings, (message) => app.log.warn(message));
  registerDeviceAuthRoutes(app, km, tokens, log);
  registerDirectoryRoutes(app, { km, log, tokens });
  registerLogRoutes(app, km, log);
  const notifier = new InboxNotifier();
  registerRelayRoutes(app, km, settings, notifier);
  // Long polls answer at once when the server closes, so a shutdown does not wait up to 30 s for them.
  app.addHook('preClose', async () => notifier.close());
  registerBlobRoutes(app, km, settings);
  registerRecoveryBlobRoutes(app, km);

  const timer = setInterval(() => {
    if (km.sealed) return;
    km.readRecords((tx) => tx.expireE2ee(Date.now())).catch((err: unknown) =>
      app.log.warn({ code: (err as { code?: string }).code }, 'e2ee expiry failed'),
    );
  }, EXPIRY_INTERVAL_MS);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));
}
