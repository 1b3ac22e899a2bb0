/**
 * The e2ee part of the store contract (log leaves, checkpoints, key packages, groups, queues, blobs, login
 * challenges), run against SQLite and a real PostgreSQL, plus the PostgreSQL races two nodes would run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore, SqliteStore, type E2eeLeafRow, type Store } from '../../src/store/index.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { asyncCodeOf } from '../helpers/errors.js';

const b = (...xs: number[]) => new Uint8Array(xs);
const leaf = (index: number, userId = 'alice'): E2eeLeafRow => ({
  index,
  userId,
  entry: b(index, 1, 2),
  leafHash: new Uint8Array(32).fill(index),
  createdAt: 1000 + index,
});
const alice = { user: 'alice', device: 'phone' };
const bob = { user: 'bob', device: 'laptop' };
const message = (groupId: string, frame: Uint8Array, expiresAt = 10_000) => ({
  groupId,
  epoch: 0,
  kind: 'application' as const,
  sender: alice,
  frame,
  receivedAt: 1,
  expiresAt,
});

function contract(kind: string, factory: () => Promise<Store | undefined>) {
  describe(`e2ee store contract: ${kind}`, () => {
    let store: Store;
    beforeAll(async () => {
      const s = await factory();
      if (s === undefined) return;
      store = s;
      await store.migrate();
    });
    afterAll(async () => store?.close());
    const t = (name: string, fn: () => Promise<void>) => it(name, async () => (store ? fn() : undefined));

    t('log leaves append without gaps, read back by range and by user', async () => {
      expect(await store.transaction((tx) => tx.lockE2eeLog())).toBe(0);
      await store.transaction(async (tx) => {
        const size = await tx.lockE2eeLog();
        await tx.appendE2eeLeaves([leaf(size), leaf(size + 1, 'bob'), leaf(size + 2)]);
      });
      expect(await store.transaction((tx) => tx.e2eeLogSize())).toBe(3);
      // A gap or an overlap is refused and writes nothing.
      expect(await asyncCodeOf(store.transaction((tx) => tx.appendE2eeLeaves([leaf(4)])))).toBe('ERR_STORE');
      expect(await asyncCodeOf(store.transaction((tx) => tx.appendE2eeLeaves([leaf(2)])))).toBe('ERR_STORE');
      expect(await store.transaction((tx) => tx.e2eeLogSize())).toBe(3);
      const all = await store.transaction((tx) => tx.readE2eeLeaves(0, 10));
      expect(all.map((r) => r.index)).toEqual([0, 1, 2]);
      expect([...all[1]!.entry]).toEqual([1, 1, 2]);
      expect(all[2]!.createdAt).toBe(1002);
      const hashes = await store.transaction((tx) => tx.readE2eeLeafHashes(1, 3));
      expect(hashes.map((h) => h[0])).toEqual([1, 2]);
      expect((await store.transaction((tx) => tx.listE2eeUserLeaves('alice'))).map((r) => r.index)).toEqual([
        0, 2,
      ]);
      expect(await store.transaction((tx) => tx.listE2eeUserLeaves('carol'))).toEqual([]);
    });

    t('checkpoints: one per size, the largest by default, cosignatures by witness', async () => {
      expect(await store.transaction((tx) => tx.getE2eeCheckpoint())).toBeUndefined();
      expect(await store.transaction((tx) => tx.insertE2eeCheckpoint(1, 'note 1\n', 5))).toBe(true);
      expect(await store.transaction((tx) => tx.insertE2eeCheckpoint(3, 'note 3\n', 6))).toBe(true);
      expect(await store.transaction((tx) => tx.insertE2eeCheckpoint(3, 'other\n', 7))).toBe(false);
      await store.transaction(async (tx) => {
        await tx.putE2eeCosignature(3, 'w2', '— w2 xx\n');
        await tx.putE2eeCosignature(3, 'w1', '— w1 old\n');
        await tx.putE2eeCosignature(3, 'w1', '— w1 yy\n');
      });
      const latest = await store.transaction((tx) => tx.getE2eeCheckpoint());
      expect(latest).toEqual({
        size: 3,
        note: 'note 3\n',
        cosignatures: { w1: '— w1 yy\n', w2: '— w2 xx\n' },
        createdAt: 6,
      });
      expect((await store.transaction((tx) => tx.getE2eeCheckpoint(1)))?.note).toBe('note 1\n');
      expect(await store.transaction((tx) => tx.getE2eeCheckpoint(2))).toBeUndefined();
    });

    t('key packages: one-time ones go once, then the last-resort one stays', async () => {
      await store.transaction(async (tx) => {
        await tx.insertE2eeKeyPackages('alice', 'phone', [b(1), b(2)], 1);
        await tx.insertE2eeKeyPackages('alice', 'tablet', [b(9)], 1);
      });
      expect(await store.transaction((tx) => tx.countE2eeKeyPackages('alice', 'phone'))).toBe(2);
      const first = await store.transaction((tx) => tx.claimE2eeKeyPackage('alice', 'phone'));
      const second = await store.transaction((tx) => tx.claimE2eeKeyPackage('alice', 'phone'));
      expect([first, second].map((c) => [c!.keyPackage[0], c!.lastResort])).toEqual([
        [1, false],
        [2, false],
      ]);
      expect(await store.transaction((tx) => tx.claimE2eeKeyPackage('alice', 'phone'))).toBeUndefined();
      await store.transaction((tx) => tx.putE2eeLastResortKeyPackage('alice', 'phone', b(7), 2));
      await store.transaction((tx) => tx.putE2eeLastResortKeyPackage('alice', 'phone', b(8), 3));
      for (let i = 0; i < 2; i++) {
        const c = await store.transaction((tx) => tx.claimE2eeKeyPackage('alice', 'phone'));
        expect([c!.keyPackage[0], c!.lastResort]).toEqual([8, true]);
      }
      expect(await store.transaction((tx) => tx.deleteE2eeKeyPackages('alice', 'phone'))).toBe(1);
      expect(await store.transaction((tx) => tx.claimE2eeKeyPackage('alice', 'phone'))).toBeUndefined();
      expect(await store.transaction((tx) => tx.countE2eeKeyPackages('alice', 'tablet'))).toBe(1);
    });

    t('groups and commits: insert once, update epoch and roster, list commits from an epoch', async () => {
      const row = { groupId: 'g1', epoch: 0, roster: [alice, bob], createdAt: 1, updatedAt: 1 };
      expect(await store.transaction((tx) => tx.insertE2eeGroup(row))).toBe(true);
      expect(await store.transaction((tx) => tx.insertE2eeGroup(row))).toBe(false);
      expect(await store.transaction((tx) => tx.getE2eeGroup('g1', { forUpdate: true }))).toEqual(row);
      expect(await store.transaction((tx) => tx.updateE2eeGroup('g1', 1, [alice], 2))).toBe(true);
      expect(await store.transaction((tx) => tx.updateE2eeGroup('nope', 1, [alice], 2))).toBe(false);
      expect((await store.transaction((tx) => tx.getE2eeGroup('g1')))?.roster).toEqual([alice]);
      const commit = (epoch: number) => ({
        groupId: 'g1',
        epoch,
        sender: alice,
        frame: b(epoch),
        createdAt: 3,
      });
      expect(await store.transaction((tx) => tx.insertE2eeCommit(commit(0)))).toBe(true);
      expect(await store.transaction((tx) => tx.insertE2eeCommit(commit(0)))).toBe(false);
      expect(await store.transaction((tx) => tx.insertE2eeCommit(commit(1)))).toBe(true);
      const listed = await store.transaction((tx) => tx.listE2eeCommits('g1', 1, 10));
      expect(listed.map((c) => [c.epoch, c.sender.device, c.frame[0]])).toEqual([[1, 'phone', 1]]);
      expect(await store.transaction((tx) => tx.getE2eeGroup('g2'))).toBeUndefined();
    });

    t('queues: one message for several devices, read in seq order, ack, expiry', async () => {
      const s1 = await store.transaction((tx) => tx.enqueueE2ee(message('g1', b(1)), [alice, bob]));
      const s2 = await store.transaction((tx) => tx.enqueueE2ee(message('g1', b(2), 50), [bob]));
      expect(s2).toBeGreaterThan(s1);
      const inbox = await store.transaction((tx) => tx.readE2eeInbox(bob, 0, 10, 100));
      expect(inbox.map((m) => [m.seq, m.frame[0], m.kind, m.sender.user])).toEqual([
        [s1, 1, 'application', 'alice'],
        [s2, 2, 'application', 'alice'],
      ]);
      expect((await store.transaction((tx) => tx.readE2eeInbox(bob, s1, 10, 100))).map((m) => m.seq)).toEqual(
        [s2],
      );
      expect(await store.transaction((tx) => tx.readE2eeInbox(bob, 0, 60, 100))).toHaveLength(1); // s2 expired
      expect(await store.transaction((tx) => tx.readE2eeInbox(bob, 0, 10, 1))).toHaveLength(1);
      expect(await store.transaction((tx) => tx.ackE2eeInbox(bob, s1))).toBe(1);
      // alice still has message s1.
      expect(
        (await store.transaction((tx) => tx.readE2eeInbox(alice, 0, 10, 100))).map((m) => m.seq),
      ).toEqual([s1]);
      expect(await store.transaction((tx) => tx.ackE2eeInbox(alice, s2))).toBe(1);
      expect(await store.transaction((tx) => tx.expireE2ee(60))).toBeGreaterThanOrEqual(1);
      expect(await store.transaction((tx) => tx.readE2eeInbox(bob, 0, 0, 100))).toEqual([]);
    });

    t(
      'queues: a message for 250 devices (more than one insert), a repeated recipient, acks of many seqs',
      async () => {
        const many = Array.from({ length: 250 }, (_, i) => ({ user: `u${i}`, device: 'd' }));
        const seqs: number[] = [];
        for (let k = 0; k < 3; k++)
          seqs.push(
            await store.transaction((tx) => tx.enqueueE2ee(message('g1', b(10 + k), 5), [...many, many[0]!])),
          );
        for (const d of [many[0]!, many[99]!, many[100]!, many[249]!]) {
          const got = await store.transaction((tx) => tx.readE2eeInbox(d, seqs[0]! - 1, 0, 100));
          expect(got.map((m) => [m.seq, m.frame[0]])).toEqual(seqs.map((s, k) => [s, 10 + k]));
        }
        // Every device but the last acks all three: the messages stay for the last one, then go with its ack.
        for (const d of many.slice(0, -1))
          expect(await store.transaction((tx) => tx.ackE2eeInbox(d, seqs[2]!))).toBe(3);
        const last = many[249]!;
        expect(
          (await store.transaction((tx) => tx.readE2eeInbox(last, seqs[0]! - 1, 0, 100))).map((m) => m.seq),
        ).toEqual(seqs);
        expect(await store.transaction((tx) => tx.ackE2eeInbox(last, seqs[1]!))).toBe(2);
        expect(await store.transaction((tx) => tx.ackE2eeInbox(last, seqs[2]!))).toBe(1);
        // Nothing refers to them now: the messages themselves are gone (expiry, which alone would delete rows
        // expiring at 5, finds none).
        expect(await store.transaction((tx) => tx.readE2eeInbox(last, seqs[0]! - 1, 0, 100))).toEqual([]);
        expect(await store.transaction((tx) => tx.expireE2ee(5))).toBe(0);
      },
    );

    t('blobs: chunks until complete, complete only with chunks 0..n-1, then read-only', async () => {
      const row = { blobId: 'b1', groupId: 'g1', owner: alice, createdAt: 1, expiresAt: 100 };
      expect(await store.transaction((tx) => tx.insertE2eeBlob(row))).toBe(true);
      expect(await store.transaction((tx) => tx.insertE2eeBlob(row))).toBe(false);
      expect(await store.transaction((tx) => tx.putE2eeBlobChunk('b1', 1, b(3, 4, 5)))).toBe(true);
      expect(await store.transaction((tx) => tx.completeE2eeBlob('b1', 2))).toBeUndefined();
      expect(await store.transaction((tx) => tx.putE2eeBlobChunk('b1', 0, b(1)))).toBe(true);
      expect(await store.transaction((tx) => tx.putE2eeBlobChunk('b1', 0, b(1, 2)))).toBe(true);
      expect(await store.transaction((tx) => tx.completeE2eeBlob('b1', 3))).toBeUndefined();
      expect(await store.transaction((tx) => tx.completeE2eeBlob('b1', 2))).toBe(5);
      expect(await store.transaction((tx) => tx.completeE2eeBlob('b1', 2))).toBeUndefined();
      expect(await store.transaction((tx) => tx.putE2eeBlobChunk('b1', 2, b(1)))).toBe(false);
      expect(await store.transaction((tx) => tx.putE2eeBlobChunk('nope', 0, b(1)))).toBe(false);
      expect(await store.transaction((tx) => tx.getE2eeBlob('b1'))).toEqual({ ...row, chunks: 2, size: 5 });
      expect([...(await store.transaction((tx) => tx.getE2eeBlobChunk('b1', 1)))!]).toEqual([3, 4, 5]);
      expect(await store.transaction((tx) => tx.getE2eeBlobChunk('b1', 2))).toBeUndefined();
      await store.transaction((tx) => tx.expireE2ee(100));
      expect(await store.transaction((tx) => tx.getE2eeBlob('b1'))).toBeUndefined();
      expect(await store.transaction((tx) => tx.getE2eeBlobChunk('b1', 1))).toBeUndefined();
    });

    t('challenges are taken once', async () => {
      await store.transaction((tx) => tx.insertE2eeChallenge({ challenge: 'aa', ...alice, expiresAt: 9 }));
      expect(await store.transaction((tx) => tx.takeE2eeChallenge('aa'))).toEqual({
        challenge: 'aa',
        user: 'alice',
        device: 'phone',
        expiresAt: 9,
      });
      expect(await store.transaction((tx) => tx.takeE2eeChallenge('aa'))).toBeUndefined();
    });

    t('a recovery blob is one per user, replaced by the next put', async () => {
      expect(await store.transaction((tx) => tx.getE2eeRecoveryBlob('alice'))).toBeUndefined();
      await store.transaction((tx) => tx.putE2eeRecoveryBlob('alice', b(1, 2, 3), 1));
      await store.transaction((tx) => tx.putE2eeRecoveryBlob('bob', b(9), 1));
      expect([...(await store.transaction((tx) => tx.getE2eeRecoveryBlob('alice')))!]).toEqual([1, 2, 3]);
      await store.transaction((tx) => tx.putE2eeRecoveryBlob('alice', b(4, 5), 2));
      expect([...(await store.transaction((tx) => tx.getE2eeRecoveryBlob('alice')))!]).toEqual([4, 5]);
      expect([...(await store.transaction((tx) => tx.getE2eeRecoveryBlob('bob')))!]).toEqual([9]);
      // A failed transaction leaves the previous backup in place.
      await expect(
        store.transaction(async (tx) => {
          await tx.putE2eeRecoveryBlob('alice', b(7), 3);
          throw new Error('abort');
        }),
      ).rejects.toThrow();
      expect([...(await store.transaction((tx) => tx.getE2eeRecoveryBlob('alice')))!]).toEqual([4, 5]);
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'enseal-e2ee-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
contract('sqlite', async () => SqliteStore.open({ path: join(dir, 'e2ee.db') }));

let pgServer: TestPostgres | undefined;
const pgReady = startPostgres().then((s) => (pgServer = s));
afterAll(async () => pgServer?.stop());
contract('postgres', async () => {
  await pgReady;
  return pgServer
    ? PostgresStore.connect({ connectionString: await pgServer.database('e2ee_contract') })
    : undefined;
});

describe('e2ee on postgres: two nodes', () => {
  let a: Store | undefined;
  let c: Store | undefined;
  beforeAll(async () => {
    await pgReady;
    if (!pgServer) return;
    const url = await pgServer.database('e2ee_nodes');
    a = await PostgresStore.connect({ connectionString: url });
    c = await PostgresStore.connect({ connectionString: url });
    await Promise.all([a.migrate(), c.migrate()]);
  });
  afterAll(async () => {
    await a?.close();
    await c?.close();
  });

  it('appenders on two pools extend the log one leaf at a time, without a fork', async () => {
    if (!a || !c) return;
    const append = (s: Store) =>
      s.transaction(async (tx) => {
        const size = await tx.lockE2eeLog();
        await new Promise((r) => setTimeout(r, 1));
        await tx.appendE2eeLeaves([leaf(size)]);
        return size;
      });
    const got = await Promise.all(Array.from({ length: 40 }, (_, i) => append(i % 2 ? a! : c!)));
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(await a.transaction((tx) => tx.e2eeLogSize())).toBe(40);
  });

  it('claimers on two pools never get the same key package', async () => {
    if (!a || !c) return;
    const packages = Array.from({ length: 30 }, (_, i) => b(i >> 8, i & 0xff));
    await a.transaction((tx) => tx.insertE2eeKeyPackages('carol', 'd1', packages, 1));
    const claims = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a! : c!).transaction((tx) => tx.claimE2eeKeyPackage('carol', 'd1')),
      ),
    );
    const got = claims.filter((x) => x !== undefined).map((x) => Buffer.from(x.keyPackage).toString('hex'));
    expect(got).toHaveLength(30);
    expect(new Set(got).size).toBe(30);
  });

  it('queue seqs from two pools are visible in increasing order to a reader', async () => {
    if (!a || !c) return;
    const stores = [a, c];
    const writes = Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        stores[i % 2]!.transaction((tx) => tx.enqueueE2ee(message('g', b(i)), [bob])),
      ),
    );
    // A reader polling while the writers run never sees a seq appear below one it already saw.
    let after = 0;
    const seen: number[] = [];
    let done = false;
    void writes.then(() => (done = true));
    for (;;) {
      // Whether every write had committed before this read began: only then does an empty read mean the end.
      const finished = done;
      const rows = await a.transaction((tx) => tx.readE2eeInbox(bob, after, 0, 100));
      for (const r of rows) seen.push(r.seq);
      if (rows.length > 0) after = rows[rows.length - 1]!.seq;
      if (finished && rows.length === 0) break;
    }
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(seen).toHaveLength(40);
  });
});
