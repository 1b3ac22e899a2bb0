/**
 * The formats layer: encodings of ciphertexts and keys that enseal or its peers read and write. Each format
 * lives in its own module; this file is the layer's public surface.
 */
