/** The tls layer: certificates and TLS settings. This file is the layer's public surface. */
export { ensureDevCertificates, issueDevClientCertificate, type DevCertificateFiles } from './dev-ca.js';
export { tlsProfile, TLS_PROFILES, type TlsProfileName } from './profiles.js';
