/**
 * The device key as the client uses it: something that holds an Ed25519 private key and signs with it. In Node
 * (and by default) it is {@link rawDeviceSigner}, a raw key kept sealed in the client state; in a browser it is
 * a non-extractable WebCrypto key (`WebCryptoDeviceSigner` of `enseal/e2ee` under the `browser` condition), so
 * the private half never exists as bytes the page could read or a profile copy could leak.
 */
import { invalidArgument, sign, signingPublicKey } from '../crypto/index.js';

/** An Ed25519 device key that signs on request. `publicKey` is the 32-byte raw public key. */
export interface DeviceSigner {
  readonly publicKey: Uint8Array;
  /** An Ed25519 signature (64 bytes) of `message`. */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** A {@link DeviceSigner} over a 32-byte Ed25519 private key held in memory. */
export function rawDeviceSigner(privateKey: Uint8Array): DeviceSigner {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32)
    throw invalidArgument('privateKey', 'must be a 32-byte Ed25519 private key');
  const key = privateKey.slice();
  return {
    publicKey: signingPublicKey('ed25519', key),
    async sign(message) {
      return sign('ed25519', key, message);
    },
  };
}
