/** Locates ../shared/vectors (the public test vectors beside the repository) and loads them. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of the shared vectors folder; ENSEAL_VECTORS overrides it. */
export const VECTORS_DIR = process.env.ENSEAL_VECTORS ?? resolve(root, '..', 'shared', 'vectors');

export function vectorPath(...parts: string[]): string {
  const p = join(VECTORS_DIR, ...parts);
  if (!existsSync(p)) throw new Error(`test vectors not found at ${p}; set ENSEAL_VECTORS`);
  return p;
}

export function loadJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(vectorPath(...parts), 'utf8')) as T;
}

/** Whether slow vectors (16M-iteration PBKDF2, 1 GiB scrypt) should run; CI sets ENSEAL_SLOW_VECTORS=1. */
export const slowVectors = process.env.ENSEAL_SLOW_VECTORS === '1';
