// Application messages through enseal's relay for a 10-member MLS group, in the same run as the same messages
// through bare ts-mls (encrypt + decrypt in one process, no relay). A real `enseal serve --dev` runs as a child
// process on 127.0.0.1; ten users are enrolled, their devices log in, upload key packages, and one of them
// creates the group through the relay. Then:
//   1. a commit (full-path update) in the 10-member group: POST, until all 9 other members processed it;
//   2. bare ts-mls: 1 KiB messages, each encrypted by one member and decrypted by the 9 others;
//   3. the same through the adapter (MlsClient), still in one process;
//   4. the same through the relay, end to end: encrypt, frame, POST, 9 long-polling inboxes, decrypt, ack
//      (2 to 4 alternate in 3 rounds, ratios taken round by round);
//   5. the relay alone: pre-encrypted frames posted by 10 senders (4 at a time each) and fetched by 9 inboxes
//      (no client crypto in the timed window), against the goal of 2,000 messages/s for 10 members.
// All the clients share this one process, so (4) is bound by client crypto (9 decryptions per message); (5)
// is what the server sustains. Bounded in count and time; loopback only; stops the server itself.
// ENSEAL_BENCH_PROFILE=1 runs the server under `node --cpu-prof` and prints its top frames (whole run, of
// which step 5 is most).
// Run `npm run build` first: benches import from dist/.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  acceptAll,
  createApplicationMessage,
  decodeMlsMessage,
  encodeMlsMessage,
  makePskIndex,
  processMessage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
} from 'ts-mls';
import { base64Encode, base64UrlEncode, randomBytes, sign } from '../dist/crypto/index.js';
import {
  INBOX_MEDIA_TYPE,
  MlsClient,
  decodeInboxAnswer,
  deviceLoginMessage,
  encodeDeviceRecord,
  encodeDirectoryEntry,
  generateIdentityKey,
  mlsIdentityOf,
  signDeviceRecord,
  signMlsKeyBinding,
  signUserIdentity,
} from '../dist/e2ee/index.js';
import { checkFrame, encodeFrame } from '../dist/server/e2ee/index.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const MEMBERS = 10;
const PAYLOAD_BYTES = 1024;
const GOAL_PER_S = 2000;
const COMMITS = 5;
const MESSAGES = Number(process.env.ENSEAL_BENCH_MESSAGES ?? 300); // each of steps 2-4, over all rounds
const ROUNDS = 3;
const RELAY_MESSAGES = Number(process.env.ENSEAL_BENCH_RELAY_MESSAGES ?? 3000);
const WINDOW = 16; // messages in flight in step 4
const RELAY_IN_FLIGHT = 4; // POSTs in flight per sender in step 5
// Messages per POST in step 5 (and at most that many of a sender's queued messages per POST in step 4):
// 1 uses the single-message route, more the batch route.
const BATCH = Number(process.env.ENSEAL_BENCH_BATCH ?? 32);
const TIME_CAP_MS = 30_000; // per step: stop sending new messages after this
const PROFILE = process.env.ENSEAL_BENCH_PROFILE === '1';
// The inbox answer the devices ask for: `binary` (what E2eeApi asks for) or `json` (the default answer).
const INBOX_FORMAT = process.env.ENSEAL_BENCH_INBOX ?? 'binary';
if (INBOX_FORMAT !== 'binary' && INBOX_FORMAT !== 'json')
  throw new Error('ENSEAL_BENCH_INBOX: binary or json');

const dir = mkdtempSync(join(tmpdir(), 'enseal-bench-relay-'));
const hex = (b) => Buffer.from(b).toString('hex');
const b64 = (b) => base64Encode(b);
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
};
const ms = (x) => `${x.toFixed(1)} ms`;

async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// --- the server -------------------------------------------------------------------------------------------

const port = await freePort();
const profileDir = join(dir, 'profile');
const child = spawn(
  process.execPath,
  [
    ...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    CLI,
    'serve',
    '--dev',
    '--data-dir',
    join(dir, 'enseal'),
    '--listen',
    `127.0.0.1:${port}`,
    '--log-level',
    'error',
  ],
  { stdio: ['ignore', 'pipe', 'pipe'] },
);
let serverOut = '';
const ready = new Promise((resolve, reject) => {
  const on = (d) => {
    serverOut += String(d);
    if (/API docs:/.test(serverOut)) resolve(serverOut);
  };
  child.stdout.on('data', on);
  child.stderr.on('data', on);
  child.once('exit', (code) => reject(new Error(`server exited ${code}: ${serverOut}`)));
});

/** CPU seconds the server process used so far (Linux; undefined elsewhere). */
function serverCpu() {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return undefined;
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
let ca;
let stopping = false;

/** One JSON request; rejects unless the answer is 200. */
function call(method, path, { token, body } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      `https://127.0.0.1:${port}${path}`,
      {
        method,
        agent,
        ca,
        headers: {
          ...(token ? { 'x-vault-token': token } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const bytes = Buffer.concat(parts);
          if (res.statusCode === 200 && res.headers['content-type'] === INBOX_MEDIA_TYPE)
            return resolve({ messages: decodeInboxAnswer(bytes) });
          const text = bytes.toString();
          if (res.statusCode === 200) resolve(text ? JSON.parse(text) : undefined);
          else reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

// --- members ----------------------------------------------------------------------------------------------

/** The directory's view, as a client would build it from the log: (identity, MLS key) pairs it vouches for. */
const vouched = new Set();
const client = await MlsClient.create({
  authenticator: { authenticate: (m) => vouched.has(hex(m.identity) + '/' + hex(m.signaturePublicKey)) },
});
// Bare ts-mls runs on its own default primitives (WebCrypto), as an application using it directly would; the
// adapter brings Node's faster ones (src/e2ee/mls.ts withPlatformPrimitives).
const cs = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));

const entryBody = (name, entry) =>
  b64(encodeDirectoryEntry(entry).subarray(2 + 1 + Buffer.byteLength(name) + 8));

function newMember(i) {
  const m = {
    user: `member${i}`,
    device: 'd',
    identity: generateIdentityKey(),
    deviceKey: generateIdentityKey(),
    mlsKey: generateIdentityKey(),
    token: undefined,
    group: undefined,
    keyPackage: undefined,
    after: 0,
    outbox: [], // messages waiting for (or in) this device's current POST
    chain: Promise.resolve(), // this device's group state changes, one at a time
    posts: Promise.resolve(), // this device's sends, in order
    onApplication: undefined,
  };
  m.serial = (fn) => (m.chain = m.chain.then(fn));
  m.post = (fn) => (m.posts = m.posts.then(fn));
  return m;
}

async function enrol(m, appToken) {
  await call('POST', `/v1/e2ee/users/${m.user}`, {
    token: appToken,
    body: {
      identity: entryBody(m.user, {
        kind: 'user-identity',
        userId: m.user,
        time: 0,
        identity: signUserIdentity(m.user, m.identity.privateKey),
      }),
      device_record: b64(
        encodeDeviceRecord(
          signDeviceRecord(
            { userId: m.user, deviceId: m.device, deviceKey: m.deviceKey.publicKey, createdAt: 1 },
            { kind: 'identity', privateKey: m.identity.privateKey },
          ),
        ),
      ),
      mls_binding: entryBody(m.user, {
        kind: 'mls-signature-key',
        userId: m.user,
        time: 0,
        binding: signMlsKeyBinding(m.user, m.device, m.mlsKey.publicKey, m.deviceKey.privateKey),
      }),
    },
  });
  vouched.add(hex(mlsIdentityOf(m.user, m.device)) + '/' + hex(m.mlsKey.publicKey));
}

async function login(m, origin) {
  const c = await call('POST', '/v1/e2ee/auth/challenge', { body: { user: m.user, device: m.device } });
  const message = deviceLoginMessage(origin, m.user, m.device, unb64(c.challenge));
  const r = await call('POST', '/v1/e2ee/auth/login', {
    body: {
      user: m.user,
      device: m.device,
      challenge: c.challenge,
      signature: b64(sign('ed25519', m.deviceKey.privateKey, message)),
    },
  });
  m.token = r.token;
}

const unframe = (frame) => frame.subarray(4, 4 + checkFrame(frame));

// Every device long-polls its inbox for the whole run and hands what arrives to its handlers, in seq order.
let relayOnly = undefined; // step 5: count frames instead of decrypting them
const waiters = new Set();
const polls = { requests: 0, messages: 0 }; // inbox answers, and the messages they carried
function settle() {
  for (const w of waiters) {
    if (!w.done()) continue;
    waiters.delete(w);
    w.resolve();
  }
}
/** Resolves once `done()` holds (checked whenever a device took something in); fails after `limitMs`. */
const until = (done, what, limitMs = 60_000) =>
  new Promise((resolve, reject) => {
    if (done()) return resolve();
    const timer = setTimeout(() => {
      waiters.delete(w);
      reject(new Error(`timed out waiting for ${what}`));
    }, limitMs);
    const w = {
      done,
      resolve: () => (clearTimeout(timer), resolve()),
      reject: (err) => (clearTimeout(timer), reject(err)),
    };
    waiters.add(w);
  });

async function inboxLoop(m) {
  while (!stopping) {
    let got;
    try {
      got = await call('GET', `/v1/e2ee/inbox?after=${m.after}&wait=30&format=${INBOX_FORMAT}`, {
        token: m.token,
      });
    } catch (err) {
      if (stopping) return;
      throw err;
    }
    polls.requests++;
    polls.messages += got.messages.length;
    if (got.messages.length === 0) continue;
    const received = performance.now();
    for (const msg of got.messages) {
      m.after = msg.seq;
      if (relayOnly !== undefined && msg.kind === 'application') {
        relayOnly(
          m,
          typeof msg.frame === 'string' ? msg.frame : Buffer.from(msg.frame).toString('base64'),
          received,
        );
        continue;
      }
      const bytes = unframe(typeof msg.frame === 'string' ? unb64(msg.frame) : msg.frame);
      void m
        .serial(async () => {
          if (msg.kind === 'welcome') {
            m.group = await client.joinFromWelcome(bytes, m.keyPackage);
          } else if (msg.kind === 'commit') {
            // A device added by a commit is queued that commit too; it joined from the welcome instead.
            if (m.group === undefined || msg.epoch < Number(m.group.epoch)) return;
            m.group = (await m.group.process(bytes)).group;
            m.commits = (m.commits ?? 0) + 1;
          } else {
            const r = await m.group.process(bytes);
            m.group = r.group;
            m.onApplication?.(m, r.plaintext);
          }
          settle();
        })
        .catch((err) => {
          for (const w of waiters) w.reject(new Error(`${m.user}: ${err.message}`, { cause: err }));
          waiters.clear();
        });
    }
    settle();
    // Acknowledge what this device has taken in (processing is queued on its own chain).
    void call('POST', '/v1/e2ee/inbox/ack', { token: m.token, body: { up_to: m.after } }).catch(
      () => undefined,
    );
  }
}

// --- the profile ------------------------------------------------------------------------------------------

/** Top frames of a .cpuprofile: self time by package and by function, and inclusive time of enseal's own. */
function summariseProfile(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = ({ functionName, url, lineNumber }) =>
    `${functionName || '(anonymous)'} ${url ? basename(url) : ''}:${lineNumber + 1}`;
  const placeOf = ({ functionName, url }) =>
    /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
    (/\/dist\/([^/]+)\//.test(url) ? `enseal ${/\/dist\/([^/]+)\//.exec(url)[1]}` : undefined) ??
    (url.startsWith('node:') ? 'node internals (TLS, HTTP, streams, crypto)' : undefined) ??
    (functionName.startsWith('(') ? functionName : 'native (no script)');
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  const self = new Map();
  const places = new Map();
  const inclusive = new Map();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = byId.get(id).callFrame;
    if (frame.functionName === '(idle)') return;
    busy += dt;
    add(self, label(frame), dt);
    add(places, placeOf(frame), dt);
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n).callFrame;
      if (!/\/dist\//.test(f.url)) continue;
      const name = label(f);
      if (seen.has(name)) continue;
      seen.add(name);
      add(inclusive, name, dt);
    }
  });
  const top = (m, n) => [...m].sort((x, y) => y[1] - x[1]).slice(0, n);
  const show = (m, n) => {
    for (const [k, v] of top(m, n)) console.log(`  ${((v / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
  };
  console.log(`\nserver CPU profile, whole run: ${ms(busy)} busy (shares below are of that)`);
  console.log('self time by package');
  show(places, 8);
  console.log('self time by function');
  show(self, 15);
  console.log("inclusive time of enseal's own functions");
  show(inclusive, 15);
}

// --- the run ----------------------------------------------------------------------------------------------

// However the run goes, it ends: the whole of it is bounded.
const watchdog = setTimeout(() => {
  console.error('benchmark took over 5 minutes: stopping');
  child.kill('SIGKILL');
  process.exit(1);
}, 300_000);
watchdog.unref();

try {
  console.log(`load average at start ${loadavg()[0].toFixed(1)}`);
  const out = await ready;
  const appToken = /Root token: (\S+)/.exec(out)[1];
  ca = readFileSync(/Development CA \(trust it to connect\): (\S+)/.exec(out)[1]);
  const { origin } = await call('GET', '/v1/e2ee/log/key');

  const members = Array.from({ length: MEMBERS }, (_, i) => newMember(i));
  for (const m of members) await enrol(m, appToken);
  for (const m of members) await login(m, origin);
  for (const m of members) {
    m.keyPackage = await client.generateKeyPackage({
      identity: mlsIdentityOf(m.user, m.device),
      signaturePrivateKey: m.mlsKey.privateKey,
    });
  }
  const [founder, ...others] = members;
  for (const m of others) {
    await call('POST', `/v1/e2ee/users/${m.user}/devices/${m.device}/key-packages`, {
      token: m.token,
      body: { key_packages: [b64(m.keyPackage.message)] },
    });
  }
  for (const m of others) void inboxLoop(m);

  // The group: created on the relay, then one commit adds the other nine (with a welcome for them).
  const gidBytes = randomBytes(16);
  const gid = base64UrlEncode(gidBytes);
  const roster = members.map((m) => ({ user: m.user, device: m.device }));
  let t = performance.now();
  const claimed = [];
  for (const m of others) {
    const c = await call('POST', `/v1/e2ee/users/${m.user}/key-packages/claim`, { token: founder.token });
    claimed.push(unb64(c.key_packages[0].key_package));
  }
  await call('POST', '/v1/e2ee/groups', { token: founder.token, body: { group_id: gid, roster } });
  const pending = await (await client.createGroup(gidBytes, founder.keyPackage)).addMembers(claimed);
  await call('POST', `/v1/e2ee/groups/${gid}/commits`, {
    token: founder.token,
    body: {
      epoch: 0,
      commit: b64(encodeFrame(pending.commit)),
      roster,
      welcome: { frame: b64(encodeFrame(pending.welcome)), recipients: roster.slice(1) },
    },
  });
  founder.group = pending.confirm();
  void inboxLoop(founder);
  await until(() => others.every((m) => m.group !== undefined), 'the welcome');
  await Promise.all(members.map((m) => m.chain));
  const formedMs = performance.now() - t;
  console.log(
    `${MEMBERS}-member group, MLS suite 1, relay on SQLite (dev), HTTPS keep-alive on loopback, one client process`,
  );
  console.log(
    `${'group formed: claim 9 key packages, create, add 9 + welcome, all joined'.padEnd(74)} ${ms(formedMs).padStart(10)}`,
  );

  // 1. Commits: a full-path update by one member, until the 9 others processed it.
  const commitMs = [];
  for (let k = 0; k < COMMITS; k++) {
    const committer = members[(k + 1) % MEMBERS];
    const receivers = members.filter((m) => m !== committer);
    const before = receivers.map((m) => m.commits ?? 0);
    t = performance.now();
    await committer.serial(async () => {
      const p = await committer.group.update();
      await call('POST', `/v1/e2ee/groups/${gid}/commits`, {
        token: committer.token,
        body: { epoch: Number(committer.group.epoch), commit: b64(encodeFrame(p.commit)), roster },
      });
      committer.group = p.confirm();
    });
    await until(() => receivers.every((m, i) => (m.commits ?? 0) > before[i]), 'a commit');
    commitMs.push(performance.now() - t);
  }
  console.log(
    `${'commit (full-path update), POST → all 9 others processed'.padEnd(74)} ${ms(median(commitMs)).padStart(10)}  (median of ${COMMITS}; max ${ms(Math.max(...commitMs))})`,
  );
  await Promise.all(members.map((m) => m.chain));

  const payload = (i) => {
    const p = new Uint8Array(PAYLOAD_BYTES).fill(0x61);
    new DataView(p.buffer).setUint32(0, i);
    return p;
  };

  // 2-4 run in alternating rounds (bare, adapter, relay; ROUNDS times) and each ratio is taken round by round,
  // so that drift in the machine's speed (a shared host) cancels out of the ratios.
  let next = 0; // message index, unique across rounds

  // 2. Bare ts-mls: the same group states, one encrypt and nine decryptions per message (a branch of the
  // states: the adapter's groups are left as they were).
  async function bareRound(n) {
    const states = members.map((m) => m.group.state);
    const t0 = performance.now();
    let done = 0;
    for (; done < n && performance.now() - t0 < TIME_CAP_MS; done++) {
      const i = next++;
      const s = i % MEMBERS;
      const sent = await createApplicationMessage(states[s], payload(i), cs);
      states[s] = sent.newState;
      const bytes = encodeMlsMessage({
        version: 'mls10',
        wireformat: 'mls_private_message',
        privateMessage: sent.privateMessage,
      });
      for (let r = 0; r < MEMBERS; r++) {
        if (r === s) continue;
        const got = await processMessage(
          decodeMlsMessage(bytes, 0)[0],
          states[r],
          makePskIndex(states[r], {}),
          acceptAll,
          cs,
        );
        states[r] = got.newState;
      }
    }
    return (done * 1000) / (performance.now() - t0);
  }

  // 3. The adapter, in one process: encrypt, then each of the nine others processes it.
  async function adapterRound(n) {
    const t0 = performance.now();
    let done = 0;
    for (; done < n && performance.now() - t0 < TIME_CAP_MS; done++) {
      const i = next++;
      const sender = members[i % MEMBERS];
      const sent = await sender.group.encrypt(payload(i));
      sender.group = sent.group;
      for (const m of members) if (m !== sender) m.group = (await m.group.process(sent.message)).group;
    }
    return (done * 1000) / (performance.now() - t0);
  }

  // A sender's messages go out in order; those queued while its POST is in flight go together in the next one
  // (up to BATCH), as a client with several messages waiting would send them.
  function send(sender, epoch, frame) {
    sender.outbox.push({ group_id: gid, epoch, frame });
    if (sender.outbox.length > 1) return; // a flush is under way and will take it
    void sender.post(async () => {
      while (sender.outbox.length > 0) {
        const batch = sender.outbox.slice(0, BATCH);
        if (BATCH === 1) {
          const { epoch: e, frame: f } = batch[0];
          await call('POST', `/v1/e2ee/groups/${gid}/messages`, {
            token: sender.token,
            body: { epoch: e, frame: f },
          });
        } else {
          await call('POST', '/v1/e2ee/messages', { token: sender.token, body: { messages: batch } });
        }
        sender.outbox.splice(0, batch.length);
      }
    });
  }

  // 4. Through the relay, end to end, with at most WINDOW messages in flight.
  const e2eLatency = [];
  async function relayRound(n) {
    const pendingBy = new Map(); // message index → { start, left }
    let completed = 0;
    const onApplication = (_m, plaintext) => {
      const i = new DataView(plaintext.buffer, plaintext.byteOffset).getUint32(0);
      const p = pendingBy.get(i);
      if (p === undefined) return;
      if (--p.left === 0) {
        e2eLatency.push(performance.now() - p.start);
        pendingBy.delete(i);
        completed++;
      }
    };
    for (const m of members) m.onApplication = onApplication;
    const t0 = performance.now();
    let sent = 0;
    for (; sent < n && performance.now() - t0 < TIME_CAP_MS; sent++) {
      await until(() => pendingBy.size < WINDOW, 'a message');
      const i = next++;
      const sender = members[i % MEMBERS];
      pendingBy.set(i, { start: performance.now(), left: MEMBERS - 1 });
      void sender.serial(async () => {
        const out = await sender.group.encrypt(payload(i));
        const epoch = Number(sender.group.epoch);
        sender.group = out.group;
        const frame = b64(encodeFrame(out.message));
        send(sender, epoch, frame);
      });
    }
    await until(() => completed === sent, 'the last messages');
    await Promise.all(members.map((m) => m.chain));
    for (const m of members) m.onApplication = undefined;
    return (completed * 1000) / (performance.now() - t0);
  }

  await bareRound(20); // warm-up, all three ways
  await adapterRound(20);
  await relayRound(20);
  e2eLatency.length = 0;
  const rates = { bare: [], adapter: [], relay: [], adapterRatio: [], relayRatio: [] };
  const perRound = Math.ceil(MESSAGES / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const bare = await bareRound(perRound);
    const adapter = await adapterRound(perRound);
    const relay = await relayRound(perRound);
    rates.bare.push(bare);
    rates.adapter.push(adapter);
    rates.relay.push(relay);
    rates.adapterRatio.push(bare / adapter);
    rates.relayRatio.push(bare / relay);
  }

  console.log(
    `\n${PAYLOAD_BYTES} B application messages, each decrypted by the 9 other members (medians of ${ROUNDS} alternating rounds of ${perRound})`,
  );
  const rateLine = (label, r, extra = '') =>
    console.log(`${label.padEnd(74)} ${r.toFixed(0).padStart(6)} msg/s${extra}`);
  rateLine('bare ts-mls, one process (reference)', median(rates.bare));
  rateLine(
    'MlsClient adapter, one process',
    median(rates.adapter),
    `   ${median(rates.adapterRatio).toFixed(2)}x the reference's time`,
  );
  rateLine(
    `through the relay, end to end (encrypt → POST → 9 inboxes → decrypt)`,
    median(rates.relay),
    `   ${median(rates.relayRatio).toFixed(2)}x; latency p50 ${ms(pct(e2eLatency, 0.5))}, p99 ${ms(pct(e2eLatency, 0.99))}`,
  );

  // 5. The relay alone: frames encrypted beforehand (not timed), 10 senders posting at once, 9 inboxes each.
  const frames = [];
  const frameIndex = new Map();
  for (let i = 0; i < RELAY_MESSAGES; i++) {
    const sender = members[i % MEMBERS];
    const sent = await sender.group.encrypt(payload(i));
    const epoch = Number(sender.group.epoch);
    sender.group = sent.group;
    const frame = b64(encodeFrame(sent.message));
    frames.push({ sender, epoch, frame });
    frameIndex.set(frame, i);
  }
  const bucket = unb64(frames[0].frame).length;
  const relayLatency = [];
  const relayState = frames.map(() => ({ start: 0, left: MEMBERS - 1 }));
  let relayDone = 0;
  let wrong = 0;
  relayOnly = (_m, frame, received) => {
    const i = frameIndex.get(frame);
    if (i === undefined) return void wrong++;
    const s = relayState[i];
    if (--s.left === 0) {
      relayLatency.push(received - s.start);
      relayDone++;
    }
  };
  polls.requests = polls.messages = 0;
  const cpu0 = serverCpu();
  const own0 = process.cpuUsage();
  const relayStart = performance.now();
  let relaySent = 0;
  // Each sender's frames are its queue; each of its lanes takes the next BATCH of them per POST (one frame per
  // POST on the single-message route when BATCH is 1).
  let relayPosts = 0;
  const queues = members.map((_, k) => frames.map((_, i) => i).filter((i) => i % MEMBERS === k));
  const lanes = members.flatMap((sender, k) =>
    Array.from({ length: RELAY_IN_FLIGHT }, () => ({ sender, queue: queues[k] })),
  );
  await Promise.all(
    lanes.map(async ({ sender, queue }) => {
      while (queue.length > 0) {
        if (performance.now() - relayStart > TIME_CAP_MS) return;
        const batch = queue.splice(0, BATCH);
        const start = performance.now();
        for (const i of batch) relayState[i].start = start;
        relaySent += batch.length;
        relayPosts++;
        if (BATCH === 1) {
          const { epoch, frame } = frames[batch[0]];
          await call('POST', `/v1/e2ee/groups/${gid}/messages`, {
            token: sender.token,
            body: { epoch, frame },
          });
        } else {
          const r = await call('POST', '/v1/e2ee/messages', {
            token: sender.token,
            body: {
              messages: batch.map((i) => ({ group_id: gid, epoch: frames[i].epoch, frame: frames[i].frame })),
            },
          });
          const failed = r.results.filter((x) => x.seq === undefined);
          if (failed.length > 0) throw new Error(`batch POST refused ${failed.length}: ${failed[0].error}`);
        }
      }
    }),
  );
  const postedMs = performance.now() - relayStart;
  await until(() => relayDone === relaySent, 'the last frames');
  settle();
  const relayMs = performance.now() - relayStart;
  const cpu1 = serverCpu();
  const own = process.cpuUsage(own0);
  const relayRate = (relaySent * 1000) / relayMs;
  console.log(
    `\nthe relay alone: ${relaySent} pre-encrypted frames of ${bucket} B, 10 senders with ${RELAY_IN_FLIGHT} POSTs in flight each, 9 inboxes (long-poll, ${INBOX_FORMAT} answers, ack)`,
  );
  rateLine(
    'messages/s delivered to all 9 inboxes',
    relayRate,
    `   goal ${GOAL_PER_S}: ${relayRate >= GOAL_PER_S ? 'met' : 'NOT met'}; latency p50 ${ms(pct(relayLatency, 0.5))}, p99 ${ms(pct(relayLatency, 0.99))}`,
  );
  rateLine(
    `messages accepted (queued for 9 devices each), ${BATCH === 1 ? 'one per POST' : `up to ${BATCH} per POST`}`,
    (relaySent * 1000) / postedMs,
    `   ${relayPosts} POSTs, ${(relaySent / relayPosts).toFixed(1)} messages each`,
  );
  if (cpu0 !== undefined && cpu1 !== undefined) {
    const serverMs = ((cpu1 - cpu0) * 1000) / relaySent;
    console.log(
      `${'server CPU per message (POST + 9 deliveries + acks)'.padEnd(74)} ${`${serverMs.toFixed(2)} ms`.padStart(10)}  (${((((cpu1 - cpu0) * 1000) / relayMs) * 100).toFixed(0)}% of a core; the client process used ${(((own.user + own.system) / 1000 / relayMs) * 100).toFixed(0)}%)`,
    );
    console.log(`${''.padEnd(74)} → at most ${(1000 / serverMs).toFixed(0)} msg/s per server core`);
  }
  console.log(
    `${'inbox answers (each followed by an ack)'.padEnd(74)} ${String(polls.requests).padStart(6)}      ${(polls.messages / polls.requests).toFixed(1)} messages each on average`,
  );
  if (wrong > 0) throw new Error(`${wrong} frames came back different from those sent`);
  console.log(`load average at the end ${loadavg()[0].toFixed(1)}`);
} catch (err) {
  console.error(`benchmark failed: ${err.stack}\n--- server output ---\n${serverOut.slice(-3000)}`);
  process.exitCode = 1;
} finally {
  stopping = true;
  // The client's sockets go first: the server's drain would otherwise wait for its idle keep-alive ones.
  agent.destroy();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    console.error('the server did not stop within 30 s: killed');
    child.kill('SIGKILL');
  }, 30_000);
  await exited;
  clearTimeout(timer);
  if (PROFILE) {
    const files = (existsSync(profileDir) ? readdirSync(profileDir) : []).filter((f) =>
      f.endsWith('.cpuprofile'),
    );
    if (files.length > 0) {
      summariseProfile(join(profileDir, files[0]));
      // ENSEAL_BENCH_PROFILE_OUT=file keeps the profile (for a closer look in a profiler's viewer).
      if (process.env.ENSEAL_BENCH_PROFILE_OUT)
        copyFileSync(join(profileDir, files[0]), process.env.ENSEAL_BENCH_PROFILE_OUT);
    } else console.log('no server profile was written');
  }
  rmSync(dir, { recursive: true, force: true });
}
