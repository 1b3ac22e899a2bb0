/** age v1 file encryption: the public surface of this folder. */
export {
  AgeEncryptor,
  AgeDecryptor,
  ageEncrypt,
  ageDecrypt,
  ageEncryptStream,
  ageDecryptStream,
  type AgeEncryptOptions,
} from './age.js';
export { type Emit as AgeEmit } from './stream.js';
export {
  armor as ageArmor,
  dearmor as ageDearmor,
  isArmored as isAgeArmored,
  ArmorEncoder as AgeArmorEncoder,
  ArmorDecoder as AgeArmorDecoder,
} from './armor.js';
export {
  X25519Recipient as AgeX25519Recipient,
  X25519Identity as AgeX25519Identity,
  ScryptRecipient as AgeScryptRecipient,
  ScryptIdentity as AgeScryptIdentity,
  parseIdentityFile as parseAgeIdentityFile,
  parseRecipientsFile as parseAgeRecipientsFile,
  DEFAULT_SCRYPT_LOG_N as AGE_DEFAULT_SCRYPT_LOG_N,
  MAX_SCRYPT_LOG_N as AGE_MAX_SCRYPT_LOG_N,
  type AgeIdentity,
  type AgeRecipient,
} from './recipients.js';
export {
  StreamEncryptor as AgeStreamEncryptor,
  StreamDecryptor as AgeStreamDecryptor,
  CHUNK_SIZE as AGE_STREAM_CHUNK_SIZE,
} from './stream.js';
