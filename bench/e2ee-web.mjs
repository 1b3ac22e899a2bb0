// The e2ee library in Chromium against the same in Node, in one run: application messages per second (one
// message = encrypt by one member + decrypt by the other, 2-member MLS group, local, no relay) and a 100 MiB
// file encrypted and decrypted as streams (encryptFileStream / decryptFileStream over ReadableStream sources)
// in MiB/s. Node runs dist/e2ee/index.js; Chromium runs the browser bundle dist/web/enseal-e2ee.js in a page
// served from 127.0.0.1 (a secure context). The same measuring function runs in both.
// Run `npm run build` first: benches import from dist/. Needs Debian's chromium; skips with a line without it.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as nodeLib from '../dist/e2ee/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MESSAGES = Number(process.env.ENSEAL_BENCH_MESSAGES ?? 2000);
const FILE_MIB = Number(process.env.ENSEAL_BENCH_FILE_MIB ?? 100);

/** Runs in Node and, as source text, in the page: `E` is the library. No closure over this module. */
async function measure(E, messages, fileMiB) {
  const enc = new TextEncoder();
  const client = await E.MlsClient.create({ authenticator: { authenticate: () => true } });
  const a = await client.generateKeyPackage({ identity: enc.encode('alice') });
  const b = await client.generateKeyPackage({ identity: enc.encode('bob') });
  let alice = await client.createGroup(enc.encode('bench'), a);
  const pending = await alice.addMembers([b.message]);
  alice = pending.confirm();
  let bob = await client.joinFromWelcome(pending.welcome, b);
  const text = enc.encode('a short chat message of about sixty bytes, as most messages are');
  const round = async () => {
    const sent = await alice.encrypt(text);
    alice = sent.group;
    const got = await bob.process(sent.message);
    bob = got.group;
    if (got.kind !== 'application' || got.plaintext.length !== text.length)
      throw new Error('wrong plaintext');
  };
  for (let i = 0; i < 100; i++) await round(); // warm-up
  let t = performance.now();
  for (let i = 0; i < messages; i++) await round();
  const messagesPerSecond = messages / ((performance.now() - t) / 1000);

  const MiB = 1024 * 1024;
  const chunk = new Uint8Array(MiB);
  for (let i = 0; i < MiB; i += 65536) crypto.getRandomValues(chunk.subarray(i, i + 65536));
  const source = (chunks) => {
    let i = 0;
    return new ReadableStream({
      pull(c) {
        if (i < chunks.length) c.enqueue(chunks[i++]);
        else c.close();
      },
    });
  };
  const key = E.generateFileKey();
  const plain = Array.from({ length: fileMiB }, () => chunk);
  const parts = [];
  t = performance.now();
  for await (const part of E.encryptFileStream(key, source(plain))) parts.push(part);
  const encryptMiBs = fileMiB / ((performance.now() - t) / 1000);
  let total = 0;
  t = performance.now();
  for await (const out of E.decryptFileStream(key, source(parts))) total += out.length;
  const decryptMiBs = fileMiB / ((performance.now() - t) / 1000);
  if (total !== fileMiB * MiB) throw new Error('wrong file length');
  return { messagesPerSecond, encryptMiBs, decryptMiBs };
}

function findChromium() {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(p)) return p;
  return undefined;
}

async function inChromium(executablePath) {
  const { chromium } = await import('playwright-core');
  const bundle = readFileSync(join(root, 'dist', 'web', 'enseal-e2ee.js'));
  const server = createServer((req, res) => {
    if (req.url === '/enseal-e2ee.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    } else {
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(
          '<!doctype html><script type="module">import * as E from "/enseal-e2ee.js"; window.E = E;</script>',
        );
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({ executablePath });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => 'E' in globalThis);
    return await page.evaluate(`(${measure.toString()})(window.E, ${MESSAGES}, ${FILE_MIB})`);
  } finally {
    await browser.close();
    server.close();
  }
}

const fmt = (x) => x.toFixed(0).padStart(8);
const node = await measure(nodeLib, MESSAGES, FILE_MIB);
const chromiumPath = findChromium();
console.log(
  `e2ee library, Chromium (browser bundle) against Node, ${MESSAGES} messages, ${FILE_MIB} MiB file`,
);
if (chromiumPath === undefined) {
  console.log('chromium not found (apt-get install chromium): Node figures only');
}
const web = chromiumPath === undefined ? undefined : await inChromium(chromiumPath);
for (const [label, k, unit] of [
  ['application messages (encrypt + decrypt)', 'messagesPerSecond', 'msg/s'],
  [`${FILE_MIB} MiB file, encrypt (stream)`, 'encryptMiBs', 'MiB/s'],
  [`${FILE_MIB} MiB file, decrypt (stream)`, 'decryptMiBs', 'MiB/s'],
]) {
  const line = `${label.padEnd(44)} node ${fmt(node[k])} ${unit}`;
  console.log(
    web === undefined
      ? line
      : `${line}   chromium ${fmt(web[k])} ${unit}   chromium/node ${(web[k] / node[k]).toFixed(2)}x`,
  );
}
