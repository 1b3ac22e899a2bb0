/**
 * Proves the runtime seam: the envelope and keyset code, bundled for browsers with the `browser` export
 * condition, contains no Node module and runs in a context that offers only what a browser does (WebCrypto's
 * getRandomValues, TextEncoder/TextDecoder, WebAssembly) — no process, no Buffer, no require.
 */
import { webcrypto } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { Keyset } from '../../src/keys/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const ENTRY = `
  import { Keyset, runtimeName, sealEnvelope, openEnvelope, utf8Encode, utf8Decode, randomBytes } from './src/index.ts';
  export { Keyset, runtimeName, sealEnvelope, openEnvelope, utf8Encode, utf8Decode, randomBytes };
`;

interface BrowserApi {
  Keyset: typeof Keyset;
  runtimeName(): string;
  utf8Encode(s: string): Uint8Array;
  utf8Decode(b: Uint8Array): string;
}

let bundle = '';
let api: BrowserApi;

beforeAll(async () => {
  const result = await build({
    stdin: { contents: ENTRY, resolveDir: root, loader: 'ts', sourcefile: 'browser-entry.ts' },
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    globalName: 'enseal',
    conditions: ['enseal-source', 'browser'],
    target: 'es2022',
    logLevel: 'silent',
  });
  bundle = result.outputFiles[0]!.text;
  const hostEncoder = new TextEncoder();
  const sandbox: Record<string, unknown> = {
    crypto: { getRandomValues: (a: Uint8Array) => webcrypto.getRandomValues(a) },
    hostEncode: (s: string) => Array.from(hostEncoder.encode(s)),
    TextDecoder,
    WebAssembly,
    console,
  };
  // A browser's TextEncoder returns that realm's Uint8Array; build one inside the sandbox's realm.
  const prelude = `class TextEncoder { encode(s = '') { return new Uint8Array(hostEncode(String(s))); } }`;
  runInNewContext(`${prelude}\n${bundle}\nglobalThis.enseal = enseal;`, sandbox);
  api = sandbox.enseal as BrowserApi;
});

describe('browser build', () => {
  it('bundles without any Node module', () => {
    expect(bundle.length).toBeGreaterThan(10_000);
    expect(bundle).not.toMatch(/from\s*["']node:/);
    expect(bundle).not.toMatch(/require\(["']node:/);
    expect(bundle).not.toContain('runtime/node.ts');
  });

  it('selects the browser runtime', () => {
    expect(api.runtimeName()).toBe('browser');
  });

  it('encrypts in the browser and decrypts in Node, and the reverse', () => {
    const nodeKeyset = Keyset.generate({ purpose: 'encrypt' });
    const json = nodeKeyset.exportPlaintext({ allowPlaintextKeyMaterial: true });
    const browserKeyset = api.Keyset.fromPlaintext(JSON.parse(JSON.stringify(json)), {
      allowPlaintextKeyMaterial: true,
    });

    const fromBrowser = browserKeyset.encrypt('made in the browser', { aad: 'ctx' });
    expect(nodeKeyset.decryptString(fromBrowser, { aad: 'ctx' })).toBe('made in the browser');

    const fromNode = nodeKeyset.encrypt('made in node', { aad: 'ctx' });
    expect(browserKeyset.decryptString(fromNode, { aad: 'ctx' })).toBe('made in node');
  });

  it('runs every suite, rotation, signing and MAC in the browser', () => {
    const ks = api.Keyset.generate({ purpose: 'encrypt', algorithm: 'xchacha20-poly1305' });
    const a = ks.encrypt('a');
    ks.rotate('aes-256-gcm-hkdf-commit');
    const b = ks.encrypt('b');
    ks.rotate('chacha20-poly1305');
    expect([ks.decryptString(a), ks.decryptString(b), ks.decryptString(ks.encrypt('c'))]).toEqual([
      'a',
      'b',
      'c',
    ]);

    for (const algorithm of ['ed25519', 'ecdsa-p256'] as const) {
      const signer = api.Keyset.generate({ purpose: 'sign', algorithm });
      const sig = signer.sign('m');
      expect(signer.verify('m', sig)).toBe(true);
      // The same keyset in Node verifies the browser's signature.
      const inNode = Keyset.fromPlaintext(
        JSON.parse(JSON.stringify(signer.exportPlaintext({ allowPlaintextKeyMaterial: true }))),
        {
          allowPlaintextKeyMaterial: true,
        },
      );
      expect(inNode.verify('m', new Uint8Array(sig))).toBe(true);
    }
    const mac = api.Keyset.generate({ purpose: 'mac' });
    expect(mac.verifyMac('d', mac.mac('d'))).toBe(true);
  });
});

describe('e2ee browser build (dist/web/enseal-e2ee.js)', () => {
  it('builds with the project script, imports no Node built-in and reports its size', () => {
    const run = spawnSync(process.execPath, ['scripts/bundle-web.mjs'], { cwd: root, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/dist\/web\/enseal-e2ee\.js \d+ bytes \(\d+ gzip\)/);
    const code = readFileSync(`${root}/dist/web/enseal-e2ee.js`, 'utf8');
    expect(code).not.toMatch(/from\s*["']node:|import\(["'](node:)?(crypto|fs|path|os|module)["']\)/);
    expect(code).not.toMatch(/require\(["']node:/);
    expect(code).not.toContain('runtime/node.ts');
    // The library's own names are exported (the module is an ES module).
    for (const name of [
      'E2eeClient',
      'IndexedDbStateBackend',
      'WebCryptoDeviceSigner',
      'openBrowserClientState',
    ])
      expect(code).toMatch(new RegExp(`\\b${name}\\b`));
    console.log(`e2ee browser build: ${code.length} bytes, ${gzipSync(code, { level: 9 }).length} gzip`);
  });
});
