/**
 * The auditor's pure parts: the ClientHello encoder, the ServerHello/Alert/SSLv2 decoder (property tests:
 * random and mutated bytes give a typed MALFORMED error or "need more", never another exception), the HSTS
 * parser, target parsing, and the SSL Labs rating arithmetic and caps.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnsealError, ErrorCode } from '../../src/crypto/index.js';
import {
  CIPHER_SUITES,
  decodeServerAnswer,
  encodeClientHello,
  meets,
  parseGrade,
  parseHsts,
  parseTarget,
  targetPath,
  rate,
  suiteById,
  type RatingInput,
} from '../../src/tls/index.js';

const u16 = (v: number) => [v >> 8, v & 0xff];
const u24 = (v: number) => [v >> 16, (v >> 8) & 0xff, v & 0xff];

/** A ServerHello handshake message body, built independently of the decoder. */
function serverHelloBody(o: {
  version?: number;
  suite: number;
  compression?: number;
  random?: number[];
  extensions?: [number, number[]][];
}): number[] {
  const ext = (o.extensions ?? []).flatMap(([type, data]) => [...u16(type), ...u16(data.length), ...data]);
  return [
    ...u16(o.version ?? 0x0303),
    ...(o.random ?? Array.from({ length: 32 }, (_, i) => i)),
    32,
    ...Array.from({ length: 32 }, () => 7),
    ...u16(o.suite),
    o.compression ?? 0,
    ...(ext.length > 0 ? [...u16(ext.length), ...ext] : []),
  ];
}

function records(type: number, payload: number[], split = payload.length): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < payload.length; i += split) {
    const part = payload.slice(i, i + split);
    out.push(type, 3, 3, ...u16(part.length), ...part);
  }
  return Uint8Array.from(out);
}

const handshake = (body: number[]) => [2, ...u24(body.length), ...body];
const HRR = 'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c'
  .match(/../g)!
  .map((h) => parseInt(h, 16));

function typedOrNothing(bytes: Uint8Array, ssl2 = false): void {
  try {
    decodeServerAnswer(bytes, ssl2);
  } catch (err) {
    expect(err).toBeInstanceOf(EnsealError);
    expect((err as EnsealError).code).toBe(ErrorCode.MALFORMED);
  }
}

describe('ClientHello encoder', () => {
  it('writes one handshake record offering exactly the given version and suites', () => {
    const hello = encodeClientHello({
      version: 0x0302,
      suites: [0xc013, 0x002f],
      serverName: 'example.test',
    });
    expect(hello[0]).toBe(22);
    expect((hello[3]! << 8) | hello[4]!).toBe(hello.length - 5);
    expect(hello[5]).toBe(1); // ClientHello
    expect([hello[9], hello[10]]).toEqual([3, 2]); // legacy_version TLS 1.1
    const sessionLength = hello[43]!;
    const suitesAt = 44 + sessionLength;
    expect((hello[suitesAt]! << 8) | hello[suitesAt + 1]!).toBe(4);
    expect([...hello.subarray(suitesAt + 2, suitesAt + 6)]).toEqual([0xc0, 0x13, 0x00, 0x2f]);
    expect(Buffer.from(hello).includes(Buffer.from('example.test'))).toBe(true);
  });

  it('offers TLS 1.3 through supported_versions with legacy_version 1.2, and decodes as not-a-ServerHello', () => {
    const hello = encodeClientHello({ version: 0x0304, suites: [0x1301] });
    expect([hello[9], hello[10]]).toEqual([3, 3]);
    expect(Buffer.from(hello).includes(Buffer.from([0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]))).toBe(true);
    expect(() => decodeServerAnswer(hello)).toThrow(/first handshake message is type 1, not ServerHello/);
  });
});

describe('server answer decoder', () => {
  it('reads a ServerHello, also when split across records and delivered byte by byte', () => {
    const body = serverHelloBody({ suite: 0xc02f, compression: 1, extensions: [[0xff01, [0]]] });
    const bytes = records(22, handshake(body), 7);
    for (let n = 0; n < bytes.length; n++) expect(decodeServerAnswer(bytes.subarray(0, n))).toBeUndefined();
    expect(decodeServerAnswer(bytes)).toEqual({
      kind: 'server-hello',
      version: 0x0303,
      cipherSuite: 0xc02f,
      compression: 1,
      helloRetry: false,
      extensions: [0xff01],
      secureRenegotiation: true,
    });
  });

  it('takes the TLS 1.3 version from supported_versions and recognises a HelloRetryRequest', () => {
    const body = serverHelloBody({
      suite: 0x1302,
      random: HRR,
      extensions: [
        [43, [3, 4]],
        [51, [0x00, 0x17]],
      ],
    });
    const answer = decodeServerAnswer(records(22, handshake(body)));
    expect(answer).toMatchObject({
      version: 0x0304,
      cipherSuite: 0x1302,
      helloRetry: true,
      keyShareGroup: 0x17,
    });
  });

  it('reads alerts and SSLv2 SERVER-HELLOs', () => {
    expect(decodeServerAnswer(records(21, [2, 40]))).toEqual({ kind: 'alert', level: 2, description: 40 });
    const ssl2 = [
      4,
      0,
      1,
      0,
      2,
      0,
      0,
      0,
      6,
      0,
      16,
      0x01,
      0x00,
      0x80,
      0x07,
      0x00,
      0xc0,
      ...new Array(16).fill(9),
    ];
    const bytes = Uint8Array.from([0x80 | (ssl2.length >> 8), ssl2.length & 0xff, ...ssl2]);
    expect(decodeServerAnswer(bytes, true)).toEqual({
      kind: 'ssl2-server-hello',
      cipherSpecs: [0x010080, 0x0700c0],
    });
  });

  it('names what a non-TLS peer answered', () => {
    expect(() => decodeServerAnswer(new TextEncoder().encode('HTTP/1.1 400 Bad Request\r\n\r\n'))).toThrow(
      /not a TLS record \(it answered "HTTP\/1\.1 400 Bad Request…"\)/,
    );
    expect(() => decodeServerAnswer(Uint8Array.of(0x16, 3, 3, 0, 0))).toThrow(/record length 0/);
  });

  it('random bytes: a typed MALFORMED error or "need more", never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, ssl2) =>
        typedOrNothing(bytes, ssl2),
      ),
      { numRuns: 3000 },
    );
  });

  it('random bytes behind a plausible record header, and mutated ServerHellos: typed errors only', () => {
    const valid = Array.from(
      records(
        22,
        handshake(
          serverHelloBody({
            suite: 0x1301,
            extensions: [
              [43, [3, 4]],
              [51, [0, 0x1d, 0, 32, ...new Array(32).fill(1)]],
            ],
          }),
        ),
      ),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(21, 22), (body, type) =>
        typedOrNothing(Uint8Array.from([type, 3, 3, ...u16(body.length), ...body])),
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(valid.length),
        (flips, cut) => {
          const bytes = valid.slice(0, Math.max(cut, 1));
          for (const [i, v] of flips) if (i < bytes.length) bytes[i] = v;
          typedOrNothing(Uint8Array.from(bytes));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('refuses to buffer without bound', () => {
    const big = new Uint8Array(70_000);
    expect(() => decodeServerAnswer(big)).toThrow(/64 KiB/);
  });
});

describe('cipher-suite table', () => {
  it('has unique code points and derives properties from the IANA names', () => {
    expect(new Set(CIPHER_SUITES.map((s) => s.id)).size).toBe(CIPHER_SUITES.length);
    expect(suiteById(0xc02f)).toMatchObject({
      openssl: 'ECDHE-RSA-AES128-GCM-SHA256',
      forwardSecrecy: true,
      aead: true,
      tls12Only: true,
    });
    expect(suiteById(0x002f)).toMatchObject({
      keyExchange: 'RSA',
      forwardSecrecy: false,
      aead: false,
      cbc: true,
    });
    expect(suiteById(0x000a)).toMatchObject({ des: true, bits: 112 });
    expect(suiteById(0x0003)).toMatchObject({ export: true, rc4: true, bits: 40 });
    expect(suiteById(0x1303)).toMatchObject({ tls13: true, keyExchange: 'TLS1.3', forwardSecrecy: true });
    expect(suiteById(0xc018)).toMatchObject({ anonymous: true });
  });
});

describe('HSTS parser', () => {
  it('reads max-age, includeSubDomains and preload, case-insensitively and quoted', () => {
    expect(parseHsts('max-age=63072000; includeSubDomains; preload')).toEqual({
      maxAge: 63072000,
      includeSubDomains: true,
      preload: true,
      problems: [],
    });
    expect(parseHsts('MAX-AGE="300"')).toMatchObject({ maxAge: 300, includeSubDomains: false });
    expect(parseHsts('includeSubDomains').problems).toEqual([
      'max-age is missing (the header is ignored without it)',
    ]);
    expect(parseHsts('max-age=abc; max-age=1').problems).toContain(
      'directive max-age appears more than once',
    );
  });

  it('never throws, whatever the header says', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const h = parseHsts(s);
        expect(h.maxAge === null || Number.isSafeInteger(h.maxAge)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('target parsing', () => {
  it('reads HOST, HOST:PORT, [IPv6]:PORT, bare IPv6 and an https:// URL', () => {
    expect(parseTarget('example.com')).toEqual({ host: 'example.com', port: 443 });
    expect(parseTarget('example.com:8443')).toEqual({ host: 'example.com', port: 8443 });
    expect(parseTarget('[::1]:8443')).toEqual({ host: '::1', port: 8443 });
    expect(parseTarget('::1')).toEqual({ host: '::1', port: 443 });
    expect(parseTarget('https://example.com:444/path')).toEqual({ host: 'example.com', port: 444 });
  });

  it('keeps the path of a URL target for the header check, and / otherwise', () => {
    expect(targetPath('https://example.com:444/app')).toBe('/app');
    expect(targetPath('https://example.com/a/b?x=1')).toBe('/a/b?x=1');
    expect(targetPath('https://example.com')).toBe('/');
    expect(targetPath('example.com:8443')).toBe('/');
  });

  it('refuses what is not a target', () => {
    for (const bad of ['', 'host:0', 'host:70000', 'a b', 'host;rm:1']) {
      expect(() => parseTarget(bad)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    }
  });
});

const suite = (id: number) => suiteById(id)!;
const MOZILLA_INTERMEDIATE_TLS12 = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];

function input(over: Partial<RatingInput> = {}): RatingInput {
  return {
    protocols: new Set(['TLSv1.2', 'TLSv1.3'] as const),
    suites: [
      ...MOZILLA_INTERMEDIATE_TLS12.filter((id) => [0xc02f, 0xc030, 0xcca8].includes(id)).map((id) => ({
        protocol: 'TLSv1.2' as const,
        suite: suite(id),
      })),
      ...[0x1301, 0x1302, 0x1303].map((id) => ({ protocol: 'TLSv1.3' as const, suite: suite(id) })),
    ],
    certificate: {
      subject: 'CN=x',
      issuer: 'CN=ca',
      names: ['x'],
      notBefore: '2026-01-01T00:00:00.000Z',
      notAfter: '2027-01-01T00:00:00.000Z',
      daysLeft: 100,
      expired: false,
      notYetValid: false,
      selfSigned: false,
      trusted: true,
      trustError: null,
      checkedName: 'x',
      nameMatches: true,
      keyType: 'rsa',
      keyBits: 2048,
      curve: null,
      signatureAlgorithm: 'SHA-256 with RSASSA-PKCS1-v1_5',
      weakSignature: null,
      chain: [],
    },
    ecdhBits: 253,
    dhBits: null,
    compression: false,
    secureRenegotiation: true,
    hsts: { maxAge: 63072000, includeSubDomains: true, preload: false, problems: [] },
    ...over,
  };
}

describe('rating (SSL Labs guide 2009r)', () => {
  it("scores the guide's example: Mozilla intermediate with RSA-2048 is 30 + 27 + 36 = 93, A+", () => {
    const r = rate(input());
    expect([r.protocolScore, r.keyExchangeScore, r.cipherScore, r.score]).toEqual([100, 90, 90, 93]);
    expect(r.grade).toBe('A+');
  });

  it('turns an A into A− for each warning: no TLS 1.3, short HSTS, no secure renegotiation', () => {
    const noTls13 = rate(input({ protocols: new Set(['TLSv1.2'] as const) }));
    expect(noTls13.warnings.map((w) => w.reason)).toEqual(['TLS 1.3 not offered']);
    expect(noTls13.grade).toBe('A-');
    const shortHsts = rate(
      input({ hsts: { maxAge: 86400, includeSubDomains: false, preload: false, problems: [] } }),
    );
    expect(shortHsts.warnings[0]!.reason).toBe('HSTS max-age under 180 days (86400)');
    expect(rate(input({ secureRenegotiation: false })).grade).toBe('A-');
    expect(rate(input({ hsts: undefined })).grade).toBe('A+'); // HTTP not checked: no warning invented
  });

  it('caps: F for export, SSLv3-only and tiny keys; C for compression, POODLE, RC4 on TLS 1.2; B for no FS/AEAD', () => {
    const caps = (over: Partial<RatingInput>) => rate(input(over)).caps.map((c) => `${c.grade} ${c.reason}`);
    const base = input();
    expect(caps({ suites: [...base.suites, { protocol: 'TLSv1.2', suite: suite(0x0003) }] })).toEqual(
      expect.arrayContaining([
        'F export cipher suites offered',
        'F cipher suites weaker than 112 bits offered',
        'C RC4 or 3DES offered with TLS 1.1 or newer',
      ]),
    );
    expect(
      caps({ protocols: new Set(['SSLv3'] as const), suites: [{ protocol: 'SSLv3', suite: suite(0x002f) }] }),
    ).toEqual(
      expect.arrayContaining([
        'F SSLv3 is the best protocol offered',
        'C neither TLS 1.2 nor TLS 1.3 offered',
        'C vulnerable to POODLE (SSLv3 with CBC)',
      ]),
    );
    expect(caps({ compression: true })).toEqual(['C TLS compression enabled (CRIME)']);
    const plainRsa = [{ protocol: 'TLSv1.2' as const, suite: suite(0x002f) }];
    expect(caps({ suites: plainRsa })).toEqual(['B no forward secrecy', 'B no AEAD cipher suites']);
    const tiny = { ...base.certificate!, keyBits: 512 };
    expect(rate(input({ certificate: tiny })).grade).toBe('F');
    expect(rate(input({ certificate: { ...base.certificate!, keyBits: 1024 } })).grade).toBe('B');
  });

  it('T and M replace the letter; the grade ignoring trust is kept', () => {
    const base = input().certificate!;
    const expired = rate(
      input({ certificate: { ...base, expired: true, trusted: false, trustError: 'CERT_HAS_EXPIRED' } }),
    );
    expect([expired.grade, expired.gradeIgnoringTrust]).toEqual(['T', 'A+']);
    const mismatch = rate(input({ certificate: { ...base, nameMatches: false } }));
    expect([mismatch.grade, mismatch.caps[0]!.grade]).toEqual(['M', 'M']);
  });

  it('orders grades for --fail-under, T and M below F', () => {
    expect(meets('A+', 'A')).toBe(true);
    expect(meets('A-', 'A')).toBe(false);
    expect(meets('B', 'B')).toBe(true);
    expect(meets('T', 'F')).toBe(false);
    expect(parseGrade('a-')).toBe('A-');
    expect(parseGrade('Z')).toBeUndefined();
  });
});
