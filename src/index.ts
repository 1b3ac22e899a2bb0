/**
 * enseal: the library. Import from 'enseal' for the common surface, or from the subpaths
 * ('enseal/crypto', 'enseal/formats', 'enseal/keys') for everything in one layer.
 */
export * from './crypto/index.js';
export * from './formats/index.js';
export * from './keys/index.js';
