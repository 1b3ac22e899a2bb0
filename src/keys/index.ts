/**
 * The keys layer: keysets with versions, purposes and rotation; key-encryption keys; password hashing and
 * password-derived keys. This file is the layer's public surface.
 */
