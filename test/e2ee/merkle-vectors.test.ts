/**
 * Every RFC 6962 / RFC 9162 proof vector of transparency-dev/merkle (and its draft subtree proofs) through
 * src/e2ee/merkle.ts. Cases with `wantErr` must be rejected with ERR_E2EE_PROOF_INVALID; the others must verify.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { base64Decode, EnsealError, ErrorCode } from '../../src/crypto/index.js';
import {
  verifyConsistency,
  verifyInclusion,
  verifySubtreeConsistency,
  verifySubtreeInclusion,
} from '../../src/e2ee/index.js';
import { vectorPath } from '../helpers/vectors.js';

interface Case {
  desc: string;
  wantErr: boolean;
  leafIdx?: number;
  treeSize?: number;
  start?: number;
  end?: number;
  size?: number;
  size1?: number;
  size2?: number;
  root?: string;
  root1?: string;
  root2?: string;
  leafHash?: string;
  proof: string[] | null;
}

const base = vectorPath('merkle', 'testdata');

function files(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? files(p) : name.endsWith('.json') ? [p] : [];
    });
}

const b64 = (s: string | undefined): Uint8Array => base64Decode(s ?? '');
const proofOf = (c: Case): Uint8Array[] => (c.proof ?? []).map((p) => base64Decode(p));

const run: Record<string, (c: Case) => void> = {
  inclusion: (c) => verifyInclusion(c.leafIdx!, c.treeSize!, b64(c.leafHash), proofOf(c), b64(c.root)),
  consistency: (c) => verifyConsistency(c.size1!, c.size2!, proofOf(c), b64(c.root1), b64(c.root2)),
  subtreeinclusion: (c) =>
    verifySubtreeInclusion(c.leafIdx!, c.start!, c.end!, b64(c.leafHash), proofOf(c), b64(c.root)),
  subtreeconsistency: (c) =>
    verifySubtreeConsistency(c.start!, c.end!, c.size!, proofOf(c), b64(c.root1), b64(c.root2)),
};

const counts = new Map<string, { pass: number; total: number; rejected: number }>();

afterAll(() => {
  const line = [...counts]
    .map(([k, v]) => `${k} ${v.pass}/${v.total} (${v.rejected} wantErr rejected)`)
    .join(', ');
  console.log(`merkle vectors: ${line}`);
});

describe('merkle vectors', () => {
  for (const kind of Object.keys(run)) {
    const all = files(join(base, kind));
    it(`${kind}: ${all.length} files`, () => {
      expect(all.length).toBeGreaterThan(0);
      const tally = { pass: 0, total: all.length, rejected: 0 };
      counts.set(kind, tally);
      const failures: string[] = [];
      for (const file of all) {
        const c = JSON.parse(readFileSync(file, 'utf8')) as Case;
        let code = 'no error';
        try {
          run[kind]!(c);
        } catch (err) {
          if (!(err instanceof EnsealError)) throw err;
          code = err.code;
        }
        const ok = c.wantErr ? code === ErrorCode.E2EE_PROOF_INVALID : code === 'no error';
        if (ok) tally.pass++;
        else failures.push(`${relative(base, file)} (${c.desc}): got ${code}`);
        if (ok && c.wantErr) tally.rejected++;
      }
      expect(failures).toEqual([]);
    });
  }
});
