/** The tls layer: certificates and TLS settings. This file is the layer's public surface. */
export {
  devCertificateFiles,
  ensureDevCertificates,
  issueDevClientCertificate,
  type DevCertificateFiles,
} from './dev-ca.js';
export { tlsProfile, TLS_PROFILES, type TlsProfileName } from './profiles.js';
export {
  createCa,
  loadCa,
  saveCa,
  isCaKeySealed,
  caConstraints,
  issueCertificate,
  saveIssued,
  parseSanName,
  parsePermittedName,
  permittedBy,
  caFilesIn,
  initLocalCa,
  findLocalCa,
  openLocalCa,
  CA_KEY_TYPES,
  LEAF_KEY_TYPES,
  MAX_LEAF_DAYS,
  DEFAULT_LEAF_DAYS,
  DEFAULT_CA_DAYS,
  type CaKeyType,
  type LeafKeyType,
  type LocalCa,
  type CaFiles,
  type CreateCaOptions,
  type SaveCaOptions,
  type IssueOptions,
  type IssuedCertificate,
  type SanName,
  type PermittedName,
} from './local-ca.js';
export {
  AcmeClient,
  dns01TxtValue,
  type AcmeClientOptions,
  type AcmeClientStats,
  type ExternalAccountBinding,
} from './acme-client.js';
export {
  AcmeProblemError,
  parseAuthorization,
  parseChallenge,
  parseDirectory,
  parseOrder,
  parseProblem,
  parseRenewalInfo,
  parseRetryAfter,
  type AcmeAuthorization,
  type AcmeChallenge,
  type AcmeDirectory,
  type AcmeIdentifier,
  type AcmeOrder,
  type AcmeStatus,
  type RenewalInfo,
} from './acme-messages.js';
export {
  dns01Hook,
  dns01RecordName,
  http01Responder,
  http01Webroot,
  sniName,
  tlsAlpn01Certificate,
  tlsAlpn01Responder,
  type ChallengeSolver,
  type ChallengeType,
  type DnsHookOptions,
} from './acme-challenges.js';
export {
  loadOrCreateAccountKey,
  openAcmeAccount,
  type AccountKeyOptions,
  type OpenAccountOptions,
} from './acme-account.js';
export {
  CERTIFICATE_KEY_TYPES,
  createCsr,
  identifiersFor,
  issueAcmeCertificate,
  type CertificateKeyType,
  type AcmeIssueOptions,
  type AcmeIssuedCertificate,
} from './acme-order.js';
export {
  certificateInfo,
  expiryMetrics,
  expiryWarning,
  readCertificateFile,
  splitPemChain,
  writeCertificateFiles,
  writeFileAtomic,
  type CertificateInfo,
} from './certificate-files.js';
export {
  ariCertificateId,
  DEFAULT_RENEW_FRACTION,
  renewalDecision,
  renewalTime,
  renewIfDue,
  type RenewalDecision,
  type RenewalPolicy,
  type RenewalReason,
  type RenewOptions,
  type RenewResult,
} from './renewal.js';
export {
  generateNginxConfig,
  certificateAdvice,
  wrapInHttpBlock,
  parseVersion,
  versionAtLeast,
  checkConfigPath,
  MIN_NGINX_VERSION,
  HSTS_MAX_AGE,
  type NginxConfigOptions,
  type Version,
} from './nginx-config.js';
export {
  auditTls,
  parseTarget,
  targetPath,
  NOT_TESTED,
  type AuditOptions,
  type AuditReport,
  type SuiteReport,
} from './audit/audit.js';
export {
  rate,
  meets,
  parseGrade,
  letterFor,
  GRADE_ORDER,
  type Cap,
  type Grade,
  type Letter,
  type Rating,
  type RatingInput,
  type Warning,
} from './audit/rating.js';
export { parseHsts, HSTS_MIN_MAX_AGE, SECURITY_HEADERS, type Hsts } from './audit/http-checks.js';
export { CIPHER_SUITES, suiteById, suiteHex, type CipherSuite } from './audit/cipher-suites.js';
export {
  decodeServerAnswer,
  encodeClientHello,
  type ServerAnswer,
  type ServerHello,
} from './audit/client-hello.js';
export type { CertificateReport } from './audit/certificate-checks.js';
