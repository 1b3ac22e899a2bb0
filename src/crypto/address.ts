/**
 * The address of an `enseal serve` a client talks to. It lives in the base layer because every client shares
 * it — the key-manager client, and the e2ee transports of Node and browsers — and this is the one layer they
 * all may import without loading the others.
 */
import { invalidArgument } from './errors.js';

/** Parses `address` as an http(s) URL; INVALID_ARGUMENT otherwise. */
export function serviceAddress(address: string): URL {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw invalidArgument('address', 'must be a URL such as https://127.0.0.1:8200');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw invalidArgument('address', 'must be http(s)');
  return url;
}
