import { describe, expect, it } from 'vitest';
import {
  aeadOpen,
  aeadSeal,
  EnsealError,
  hexDecode,
  hexEncode,
  type AeadAlgorithm,
} from '../../src/crypto/index.js';
import { runtime as browserRuntime } from '../../src/crypto/runtime/browser.js';
import { runtime as nodeRuntime } from '../../src/crypto/runtime/node.js';
import type { CryptoRuntime, RuntimeAead } from '../../src/crypto/runtime/types.js';
import { PASS, runWycheproof, type Outcome, type WycheproofCase } from '../helpers/wycheproof.js';

interface Group {
  ivSize: number;
  keySize: number;
  tagSize: number;
}

/** [file, algorithm, cases applicable through the layer, cases applicable against a runtime]. */
const FILES: [string, AeadAlgorithm, number, number][] = [
  ['aes_gcm_test.json', 'aes-256-gcm', 66, 133],
  ['chacha20_poly1305_test.json', 'chacha20-poly1305', 316, 316],
  ['xchacha20_poly1305_test.json', 'xchacha20-poly1305', 306, 306],
];

function fields(tc: WycheproofCase) {
  return {
    key: hexDecode(tc.key as string),
    iv: hexDecode(tc.iv as string),
    aad: hexDecode(tc.aad as string),
    msg: hexDecode(tc.msg as string),
    sealed: hexDecode((tc.ct as string) + (tc.tag as string)),
  };
}

/** Through the public crypto layer (the Node runtime under it). */
function viaLayer(alg: AeadAlgorithm) {
  return (g: Group, tc: WycheproofCase): Outcome => {
    if (g.tagSize !== 128) return { kind: 'na', reason: `${g.tagSize}-bit tags (only 128 is offered)` };
    if (alg === 'aes-256-gcm' && g.keySize !== 256)
      return { kind: 'na', reason: 'AES-128/192 keys (the layer offers AES-256 only)' };
    const expectedIv = alg === 'xchacha20-poly1305' ? 192 : 96;
    if (g.ivSize !== expectedIv) {
      // Non-standard nonce sizes must be refused, never silently accepted.
      expect(() =>
        aeadSeal(alg, hexDecode(tc.key as string), hexDecode(tc.iv as string), new Uint8Array(0)),
      ).toThrow(EnsealError);
      return { kind: 'na', reason: 'non-standard nonce sizes (refused with ERR_INVALID_ARGUMENT)' };
    }
    const f = fields(tc);
    if (tc.result === 'invalid') {
      expect(() => aeadOpen(alg, f.key, f.iv, f.sealed, f.aad)).toThrow(
        expect.objectContaining({ code: 'ERR_DECRYPT_FAILED' }),
      );
      return PASS;
    }
    expect(hexEncode(aeadSeal(alg, f.key, f.iv, f.msg, f.aad))).toBe(hexEncode(f.sealed));
    expect(hexEncode(aeadOpen(alg, f.key, f.iv, f.sealed, f.aad))).toBe(hexEncode(f.msg));
    return PASS;
  };
}

/** Directly against one runtime object, so the browser (noble) path is vector-tested too. */
function viaRuntime(rt: CryptoRuntime, alg: AeadAlgorithm) {
  return (g: Group, tc: WycheproofCase): Outcome => {
    if (g.tagSize !== 128) return { kind: 'na', reason: `${g.tagSize}-bit tags` };
    const f = fields(tc);
    let name: RuntimeAead;
    let key = f.key;
    let iv = f.iv;
    if (alg === 'xchacha20-poly1305') {
      if (g.ivSize !== 192) return { kind: 'na', reason: 'non-standard nonce sizes' };
      key = rt.hchacha20(f.key, f.iv.subarray(0, 16));
      iv = new Uint8Array(12);
      iv.set(f.iv.subarray(16), 4);
      name = 'chacha20-poly1305';
    } else {
      if (g.ivSize !== 96) return { kind: 'na', reason: 'non-standard nonce sizes' };
      if (alg === 'aes-256-gcm') {
        if (g.keySize !== 128 && g.keySize !== 256) return { kind: 'na', reason: `${g.keySize}-bit keys` };
        name = g.keySize === 128 ? 'aes-128-gcm' : 'aes-256-gcm';
      } else {
        name = alg;
      }
    }
    const opened = rt.aeadOpen(name, key, iv, f.sealed, f.aad);
    if (tc.result === 'invalid') {
      expect(opened).toBeNull();
      return PASS;
    }
    expect(hexEncode(rt.aeadSeal(name, key, iv, f.msg, f.aad))).toBe(hexEncode(f.sealed));
    expect(opened === null ? null : hexEncode(opened)).toBe(hexEncode(f.msg));
    return PASS;
  };
}

describe('Wycheproof AEAD vectors', () => {
  for (const [file, alg, viaLayerCount, viaRuntimeCount] of FILES) {
    it(`${file} through the crypto layer`, () => {
      const counts = runWycheproof<Group>(file, viaLayer(alg));
      expect(counts.valid + counts.invalid).toBe(viaLayerCount);
    });
    for (const rt of [nodeRuntime, browserRuntime]) {
      it(`${file} against the ${rt.name} runtime`, () => {
        const counts = runWycheproof<Group>(file, viaRuntime(rt, alg));
        expect(counts.valid + counts.invalid).toBe(viaRuntimeCount);
      });
    }
  }
});
