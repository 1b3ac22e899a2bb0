import { runtime } from '#runtime';

/** Which runtime seam is active: 'node' (OpenSSL) or 'browser' (WebCrypto + noble). */
export function runtimeName(): 'node' | 'browser' {
  return runtime.name;
}
