// MLS groups through enseal's adapter (src/e2ee/mls.ts) against bare ts-mls, in the same run on the same key
// packages and states: a 1,000-member group created in one commit, one member's full-path commit and its
// processing by another member, adding one member to the 1,000-member group (against OpenMLS's published
// 734 ms), and application messages per second. Goal: adapter overhead below 1.5x.
// Run `npx tsc -p tsconfig.json` or `npm run build` first: benches import from dist/.
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  encodeMlsMessage,
  joinGroup,
  makePskIndex,
  processMessage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
} from 'ts-mls';
import { MlsClient } from '../dist/e2ee/index.js';

const MEMBERS = Number(process.env.ENSEAL_BENCH_MEMBERS ?? 1000);
const REPEATS = 3;
const OPENMLS_ADD_ONE_TO_1000_MS = 734;

const enc = new TextEncoder();
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function time(fn) {
  const t = performance.now();
  const result = await fn();
  return [performance.now() - t, result];
}

async function medianTime(fn) {
  const ms = [];
  for (let i = 0; i < REPEATS; i++) ms.push((await time(fn))[0]);
  return median(ms);
}

function line(label, adapterMs, bareMs) {
  const ratio = adapterMs / bareMs;
  console.log(
    `${label.padEnd(44)} adapter ${adapterMs.toFixed(0).padStart(7)} ms   ts-mls ${bareMs.toFixed(0).padStart(7)} ms   ${ratio.toFixed(2)}x`,
  );
  return ratio;
}

// The directory: identities and their vouched signature keys.
const vouched = new Set();
const authenticator = { authenticate: (m) => vouched.has(hex(m.identity) + '/' + hex(m.signaturePublicKey)) };
const client = await MlsClient.create({ authenticator });
// Bare ts-mls runs on its own default primitives (WebCrypto), as an application using it directly would; the
// adapter brings Node's faster ones (src/e2ee/mls.ts withPlatformPrimitives).
const cs = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));

const [kpMs, kps] = await time(async () => {
  const out = [];
  for (let i = 0; i < MEMBERS + 1; i++) {
    const identity = enc.encode(`user-${i}`);
    const kp = await client.generateKeyPackage({ identity });
    vouched.add(hex(identity) + '/' + hex(kp.signaturePublicKey));
    out.push(kp);
  }
  return out;
});
console.log(
  `MLS suite 1, ${MEMBERS}-member group (${MEMBERS + 1} key packages generated in ${kpMs.toFixed(0)} ms)`,
);
const founder = kps[0];
const joiners = kps.slice(1, MEMBERS);
const extra = kps[MEMBERS];
const groupId = enc.encode('bench-group');
const ratios = [];

// Warm-up (JIT), both ways, on a small group.
{
  const g = await client.createGroup(enc.encode('warm-up'), founder);
  (await g.addMembers(joiners.slice(0, 10).map((k) => k.message))).discard();
  const s = await createGroup(
    enc.encode('warm-up'),
    founder.secret.publicPackage,
    founder.secret.privatePackage,
    [],
    cs,
    client.config,
  );
  await createCommit(
    { state: s, cipherSuite: cs },
    {
      extraProposals: joiners
        .slice(0, 10)
        .map((k) => ({ proposalType: 'add', add: { keyPackage: k.secret.publicPackage } })),
    },
  );
}

// Bare ts-mls gets the same inputs and outputs as the adapter: key packages as bytes from the directory,
// commit and welcome encoded for the relay.
const decodeKp = (bytes) => decodeMlsMessage(bytes, 0)[0].keyPackage;
const wire = (r) => [
  encodeMlsMessage(r.commit),
  r.welcome && encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: r.welcome }),
];

// 1. Create the group and add everyone in one commit.
const [aCreateMs, aPending] = await time(async () => {
  const g = await client.createGroup(groupId, founder);
  return g.addMembers(joiners.map((k) => k.message));
});
const alice = aPending.confirm();
const [bCreateMs, bWire] = await time(async () => {
  const s = await createGroup(
    groupId,
    founder.secret.publicPackage,
    founder.secret.privatePackage,
    [],
    cs,
    client.config,
  );
  const r = await createCommit(
    { state: s, cipherSuite: cs },
    {
      extraProposals: joiners.map((k) => ({ proposalType: 'add', add: { keyPackage: decodeKp(k.message) } })),
      ratchetTreeExtension: true,
    },
  );
  return wire(r);
});
ratios.push(line(`create + add ${MEMBERS - 1} in one commit`, aCreateMs, bCreateMs));

// 2. A member joins from the welcome.
const welcome = aPending.welcome;
const [aJoinMs, bob] = await time(() => client.joinFromWelcome(welcome, joiners[0]));
const [bJoinMs, bobBare] = await time(() =>
  joinGroup(
    decodeMlsMessage(bWire[1], 0)[0].welcome,
    joiners[0].secret.publicPackage,
    joiners[0].secret.privatePackage,
    makePskIndex(undefined, {}),
    cs,
    undefined,
    undefined,
    client.config,
  ),
);
ratios.push(line('join from the welcome', aJoinMs, bJoinMs));

// 3. Alice's full-path commit, and Bob processing it (median of 3; each from the same states).
const aUpdateMs = await medianTime(async () => (await alice.update()).discard());
const bUpdateMs = await medianTime(async () =>
  wire(await createCommit({ state: alice.state, cipherSuite: cs })),
);
ratios.push(line('full-path commit (update)', aUpdateMs, bUpdateMs));

const update = await alice.update();
const bobState = bob.state;
// Each run processes the same commit on a fresh copy of Bob's state (decoding it is not timed).
const processRuns = [];
for (let i = 0; i < REPEATS; i++) {
  const copy = await client.decodeGroup(bob.encode());
  processRuns.push((await time(() => copy.process(update.commit)))[0]);
}
const aProcessMs = median(processRuns);
const bProcessMs = await medianTime(() =>
  processMessage(decodeMlsMessage(update.commit, 0)[0], bobState, makePskIndex(bobState, {}), acceptAll, cs),
);
ratios.push(line('process that commit (another member)', aProcessMs, bProcessMs));
update.discard();
void bobBare;

// 4. Add one member to the 1,000-member group.
const aAddMs = await medianTime(async () => (await alice.addMembers([extra.message])).discard());
const bAddMs = await medianTime(async () =>
  wire(
    await createCommit(
      { state: alice.state, cipherSuite: cs },
      {
        extraProposals: [{ proposalType: 'add', add: { keyPackage: decodeKp(extra.message) } }],
        ratchetTreeExtension: true,
      },
    ),
  ),
);
ratios.push(line(`add one member to ${MEMBERS}`, aAddMs, bAddMs));
console.log(
  `${''.padEnd(44)} OpenMLS (published) ${OPENMLS_ADD_ONE_TO_1000_MS} ms: adapter is ${(aAddMs / OPENMLS_ADD_ONE_TO_1000_MS).toFixed(2)}x that`,
);

// 5. Application messages (1 KiB): encrypt by Alice, decrypt by Bob, per second.
const N = 200;
const payload = new Uint8Array(1024).fill(7);
let a = alice;
let b = bob;
const [aMsgMs] = await time(async () => {
  for (let i = 0; i < N; i++) {
    const sent = await a.encrypt(payload);
    a = sent.group;
    b = (await b.process(sent.message)).group;
  }
});
let sa = a.state;
let sb = b.state;
const [bMsgMs] = await time(async () => {
  for (let i = 0; i < N; i++) {
    const sent = await createApplicationMessage(sa, payload, cs);
    sa = sent.newState;
    const bytes = encodeMlsMessage({
      version: 'mls10',
      wireformat: 'mls_private_message',
      privateMessage: sent.privateMessage,
    });
    const r = await processMessage(decodeMlsMessage(bytes, 0)[0], sb, makePskIndex(sb, {}), acceptAll, cs);
    sb = r.newState;
  }
});
const aRate = (N * 1000) / aMsgMs;
const bRate = (N * 1000) / bMsgMs;
console.log(
  `${'1 KiB messages, encrypt + decrypt'.padEnd(44)} adapter ${aRate.toFixed(0).padStart(7)} /s   ts-mls ${bRate.toFixed(0).padStart(7)} /s   ${(bRate / aRate).toFixed(2)}x`,
);
ratios.push(bRate / aRate);
const worst = Math.max(...ratios);
console.log(`worst adapter overhead ${worst.toFixed(2)}x (goal < 1.5x): ${worst < 1.5 ? 'met' : 'NOT met'}`);
