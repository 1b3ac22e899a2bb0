/**
 * TLS settings after Mozilla's server-side TLS guidelines (version 5.7). `modern` is TLS 1.3 only, the
 * default; `intermediate` adds TLS 1.2 with ECDHE and AEAD cipher suites only, for older clients. Groups are
 * X25519, P-256 and P-384 in both. TLS 1.3 suites are OpenSSL's defaults, which match Mozilla's list.
 */
import { invalidArgument } from '../crypto/index.js';

export type TlsProfileName = 'modern' | 'intermediate';

export interface TlsProfile {
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly maxVersion: 'TLSv1.3';
  /** OpenSSL cipher string for TLS 1.2 (ignored by TLS 1.3). */
  readonly ciphers: string;
  readonly ecdhCurve: string;
  readonly honorCipherOrder: boolean;
}

const TLS13 = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
/** Mozilla intermediate's TLS 1.2 suites (OpenSSL names): ECDHE key exchange and AEAD only. */
export const INTERMEDIATE_TLS12_CIPHERS: readonly string[] = Object.freeze([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
]);

export const TLS_PROFILES: Readonly<Record<TlsProfileName, TlsProfile>> = Object.freeze({
  modern: {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: TLS13,
    ecdhCurve: 'X25519:P-256:P-384',
    honorCipherOrder: false,
  },
  intermediate: {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: `${TLS13}:${INTERMEDIATE_TLS12_CIPHERS.join(':')}`,
    ecdhCurve: 'X25519:P-256:P-384',
    honorCipherOrder: false,
  },
});

export function tlsProfile(name: string): TlsProfile {
  if (name !== 'modern' && name !== 'intermediate')
    throw invalidArgument('TLS profile', 'must be modern or intermediate');
  return TLS_PROFILES[name];
}
