/**
 * The auditor's protocol and cipher-suite findings equal testssl.sh's (`-p -E`: every protocol, every cipher
 * per protocol) on strong nginx, weak nginx (TLS 1.0/1.1 + CBC) and `enseal serve` (modern), in the same
 * run. testssl.sh takes about half a minute per target, so the three scans run side by side, once each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nginxPeer } from '../helpers/nginx.js';
import { tool } from '../helpers/peers.js';
import {
  auditFindings,
  startTargets,
  testsslFindings,
  type Findings,
  type Targets,
} from './audit-targets.js';

const nginx = nginxPeer();
const testssl = tool('testssl', ['--version'], 'apt-get install testssl.sh');
const compared = ['strong', 'weak', 'serve'] as const;

let t: Targets;
let theirs: Findings[] = [];

beforeAll(async () => {
  if (!nginx.available || !testssl.available) return;
  t = await startTargets(compared);
  theirs = await Promise.all(compared.map((n) => testsslFindings(t.hostPort(n), t.caFile(n))));
}, 240_000);
afterAll(async () => {
  await t?.stop();
});

describe.skipIf(!nginx.available || !testssl.available)(
  'protocol and cipher findings agree with testssl.sh',
  () => {
    it.each(compared.map((n, i) => [n, i] as const))('%s', (name, i) => {
      const mine = auditFindings(t.reports[name]!);
      expect(theirs[i]!.protocols.length).toBeGreaterThan(0); // testssl really scanned
      expect(mine.protocols).toEqual(theirs[i]!.protocols);
      expect(mine.suites).toEqual(theirs[i]!.suites);
    });
  },
);
