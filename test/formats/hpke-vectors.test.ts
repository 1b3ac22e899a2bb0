/** RFC 9180 Appendix A: every vector, through @hpke/core, the HPKE implementation enseal builds on. */
import {
  Aes128Gcm,
  Aes256Gcm,
  CipherSuite,
  DhkemP256HkdfSha256,
  DhkemP384HkdfSha384,
  DhkemP521HkdfSha512,
  DhkemX25519HkdfSha256,
  DhkemX448HkdfSha512,
  ExportOnly,
  HkdfSha256,
  HkdfSha384,
  HkdfSha512,
} from '@hpke/core';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { describe, expect, it } from 'vitest';
import { hexDecode, hexEncode } from '../../src/crypto/index.js';
import { loadJson } from '../helpers/vectors.js';

interface Vector {
  mode: string;
  kem_id: string;
  kdf_id: string;
  aead_id: string;
  info: string;
  ikmE: string;
  ikmR: string;
  ikmS?: string;
  pkEm: string;
  enc: string;
  psk?: string;
  psk_id?: string;
  encryptions: { sequence_number: number; pt: string; aad: string; nonce: string; ct: string }[];
  exports: { exporter_context: string; L: number; exported_value: string }[];
}

const KEMS: Record<string, () => DhkemX25519HkdfSha256> = {
  '16': () => new DhkemP256HkdfSha256() as never,
  '17': () => new DhkemP384HkdfSha384() as never,
  '18': () => new DhkemP521HkdfSha512() as never,
  '32': () => new DhkemX25519HkdfSha256(),
  '33': () => new DhkemX448HkdfSha512() as never,
};
const KDFS: Record<string, () => HkdfSha256> = {
  '1': () => new HkdfSha256(),
  '2': () => new HkdfSha384() as never,
  '3': () => new HkdfSha512() as never,
};
const AEADS: Record<string, () => Aes128Gcm> = {
  '1': () => new Aes128Gcm(),
  '2': () => new Aes256Gcm() as never,
  '3': () => new Chacha20Poly1305() as never,
  '65535': () => new ExportOnly() as never,
};
const MODES = ['base', 'psk', 'auth', 'auth_psk'];

describe('RFC 9180 HPKE vectors', () => {
  it('every vector: enc, every encryption in sequence, every export', async () => {
    const vectors = loadJson<Vector[]>('hpke', 'rfc9180-appendix-a.json');
    const perMode = new Map<string, number>();
    let encryptions = 0;
    let exports = 0;
    for (const v of vectors) {
      const suite = new CipherSuite({
        kem: KEMS[v.kem_id]!(),
        kdf: KDFS[v.kdf_id]!(),
        aead: AEADS[v.aead_id]!(),
      });
      const recipient = await suite.kem.deriveKeyPair(hexDecode(v.ikmR));
      const mode = MODES[Number(v.mode)]!;
      const psk = v.psk ? { psk: { key: hexDecode(v.psk), id: hexDecode(v.psk_id!) } } : {};
      const sender = v.ikmS ? await suite.kem.deriveKeyPair(hexDecode(v.ikmS)) : undefined;
      const senderCtx = await suite.createSenderContext({
        recipientPublicKey: recipient.publicKey,
        info: hexDecode(v.info),
        ekm: hexDecode(v.ikmE),
        ...psk,
        ...(sender ? { senderKey: sender } : {}),
      });
      expect(hexEncode(new Uint8Array(senderCtx.enc)), `${v.kem_id}/${v.kdf_id}/${v.aead_id} ${mode}`).toBe(
        v.enc,
      );
      const recipientCtx = await suite.createRecipientContext({
        recipientKey: recipient,
        enc: hexDecode(v.enc),
        info: hexDecode(v.info),
        ...psk,
        ...(sender ? { senderPublicKey: sender.publicKey } : {}),
      });
      if (v.aead_id !== '65535') {
        let seq = 0;
        for (const e of [...v.encryptions].sort((a, b) => a.sequence_number - b.sequence_number)) {
          // The RFC lists sequence numbers with gaps (0, 1, 2, 4, …, 255, 256): advance both contexts.
          for (; seq < e.sequence_number; seq++) {
            await recipientCtx.open(await senderCtx.seal(new Uint8Array(0)));
          }
          seq++;
          const ct = new Uint8Array(await senderCtx.seal(hexDecode(e.pt), hexDecode(e.aad)));
          expect(hexEncode(ct)).toBe(e.ct);
          expect(hexEncode(new Uint8Array(await recipientCtx.open(hexDecode(e.ct), hexDecode(e.aad))))).toBe(
            e.pt,
          );
          encryptions++;
        }
      }
      for (const x of v.exports) {
        const value = new Uint8Array(await recipientCtx.export(hexDecode(x.exporter_context), x.L));
        expect(hexEncode(value)).toBe(x.exported_value);
        expect(hexEncode(new Uint8Array(await senderCtx.export(hexDecode(x.exporter_context), x.L)))).toBe(
          x.exported_value,
        );
        exports++;
      }
      perMode.set(mode, (perMode.get(mode) ?? 0) + 1);
    }
    console.log(
      `hpke rfc9180-appendix-a.json: ${vectors.length} vectors (${[...perMode].map(([m, n]) => `${m} ${n}`).join(', ')}), ` +
        `${encryptions} encryptions, ${exports} exports verified`,
    );
    expect(vectors.length).toBe(28);
    expect(encryptions).toBe(144);
    expect(exports).toBe(84);
  });
});
