/**
 * `enseal doctor`'s checks on their own: the dm-crypt detection on fake procfs/sysfs trees laid out in a temp
 * directory, the permission checks on real files, and the server checks against a fake API.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnsealError, ErrorCode } from '../../src/crypto/index.js';
import {
  mountOf,
  parseMountinfo,
  placementOf,
  REQUIREMENTS,
  runDoctor,
  type CheckResult,
  type DoctorApi,
  type SystemRoots,
} from '../../src/server/index.js';

function tree(): string {
  return mkdtempSync(join(tmpdir(), 'enseal-doctor-'));
}

function put(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text + '\n');
}

/** A block device under sys/block: its number, and optionally a dm uuid/name, slaves, partitions, a model. */
function device(
  sys: string,
  name: string,
  dev: string,
  o: {
    uuid?: string;
    dmName?: string;
    slaves?: string[];
    model?: string;
    partitions?: Record<string, string>;
  } = {},
): void {
  put(sys, `block/${name}/dev`, dev);
  if (o.uuid) put(sys, `block/${name}/dm/uuid`, o.uuid);
  if (o.dmName) put(sys, `block/${name}/dm/name`, o.dmName);
  mkdirSync(join(sys, `block/${name}/slaves`), { recursive: true });
  for (const s of o.slaves ?? []) writeFileSync(join(sys, `block/${name}/slaves/${s}`), '');
  if (o.model) put(sys, `block/${name}/device/model`, o.model);
  for (const [part, number] of Object.entries(o.partitions ?? {})) {
    put(sys, `block/${name}/${part}/dev`, number);
    put(sys, `block/${name}/${part}/partition`, '1');
  }
}

/** A fake machine: procfs with a mountinfo of `/` plus `mounts`, and an empty sysfs; the store directory. */
function machine(mounts: { at: string; dev: string; fs: string; source: string }[]): {
  roots: SystemRoots;
  sys: string;
  base: string;
} {
  const root = tree();
  const base = join(root, 'data'); // real directories the fake mounts sit on
  mkdirSync(base);
  const lines = [
    '27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw',
    ...mounts.map(
      (m, i) =>
        `${100 + i} 27 ${m.dev} / ${join(base, m.at).replace(/ /g, '\\040')} rw,relatime shared:1 - ${m.fs} ${m.source} rw`,
    ),
  ];
  put(root, 'proc/self/mountinfo', lines.join('\n'));
  for (const m of mounts) mkdirSync(join(base, m.at), { recursive: true });
  const sys = join(root, 'sys');
  mkdirSync(join(sys, 'block'), { recursive: true });
  device(sys, 'sda', '8:0', { model: 'Samsung SSD 870', partitions: { sda1: '8:1', sda2: '8:2' } });
  return { roots: { proc: join(root, 'proc'), sys }, sys, base };
}

describe('mount table', () => {
  it('parses mountinfo, with optional fields and octal escapes', () => {
    const [e] = parseMountinfo(
      '36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue',
    );
    expect(e).toEqual({ device: '98:0', mountPoint: '/mnt/my disk', fsType: 'ext3', source: '/dev/root' });
  });

  it('picks the longest mount point holding the path, the later of two on one point', () => {
    const entries = parseMountinfo(
      [
        '1 0 8:1 / / rw - ext4 /dev/sda1 rw',
        '2 1 8:2 / /var rw - ext4 /dev/sda2 rw',
        '3 1 8:3 / /var rw - ext4 /dev/sda3 rw',
        '4 1 8:4 / /var/lib2 rw - ext4 /dev/sda4 rw',
      ].join('\n'),
    );
    expect(mountOf(entries, '/var/lib/enseal')?.device).toBe('8:3');
    expect(mountOf(entries, '/var/lib2/x')?.device).toBe('8:4');
    expect(mountOf(entries, '/variable')?.device).toBe('8:1');
  });
});

describe('store directory on dm-crypt', () => {
  it('finds LUKS directly under the filesystem', () => {
    const m = machine([{ at: 'secure', dev: '253:0', fs: 'ext4', source: '/dev/mapper/luks-abc' }]);
    device(m.sys, 'dm-0', '253:0', {
      uuid: 'CRYPT-LUKS2-0123abcd-luks-abc',
      dmName: 'luks-abc',
      slaves: ['sda2'],
    });
    const p = placementOf(join(m.base, 'secure', 'enseal'), m.roots)!;
    expect(p.verdict.kind).toBe('encrypted');
    expect(p.verdict.detail).toContain('dm-crypt LUKS2');
    expect(p.mount.mountPoint).toBe(join(m.base, 'secure'));
  });

  it('follows LVM down to LUKS, and fails an LV that also spans an unencrypted disk', () => {
    const m = machine([
      { at: 'lv', dev: '253:1', fs: 'xfs', source: '/dev/mapper/vg-data' },
      { at: 'mixed', dev: '253:2', fs: 'xfs', source: '/dev/mapper/vg-mixed' },
    ]);
    device(m.sys, 'dm-0', '253:0', { uuid: 'CRYPT-LUKS1-ffff-pv', slaves: ['sda2'] });
    device(m.sys, 'dm-1', '253:1', { uuid: 'LVM-abcdef', dmName: 'vg-data', slaves: ['dm-0'] });
    device(m.sys, 'dm-2', '253:2', { uuid: 'LVM-fedcba', dmName: 'vg-mixed', slaves: ['dm-0', 'sda2'] });
    expect(placementOf(join(m.base, 'lv'), m.roots)!.verdict).toMatchObject({ kind: 'encrypted' });
    const mixed = placementOf(join(m.base, 'mixed'), m.roots)!.verdict;
    expect(mixed.kind).toBe('plain');
    expect(mixed.detail).toContain('sda2');
  });

  it('does not take dm-verity or dm-integrity for encryption', () => {
    const m = machine([{ at: 'verity', dev: '253:3', fs: 'ext4', source: '/dev/mapper/v' }]);
    device(m.sys, 'dm-3', '253:3', { uuid: 'CRYPT-VERITY-1234-v', slaves: ['sda2'] });
    expect(placementOf(join(m.base, 'verity'), m.roots)!.verdict.kind).toBe('plain');
  });

  it('an unencrypted local disk is plain; a virtual or cloud disk cannot be judged', () => {
    const m = machine([
      { at: 'vd', dev: '254:0', fs: 'ext4', source: '/dev/vda' },
      { at: 'ebs', dev: '259:0', fs: 'ext4', source: '/dev/nvme0n1' },
    ]);
    device(m.sys, 'vda', '254:0');
    device(m.sys, 'nvme0n1', '259:0', { model: 'Amazon Elastic Block Store' });
    expect(placementOf(join(m.base), m.roots)!.verdict).toMatchObject({ kind: 'plain' }); // `/` on sda1
    expect(placementOf(join(m.base, 'vd'), m.roots)!.verdict.kind).toBe('virtual');
    expect(placementOf(join(m.base, 'ebs'), m.roots)!.verdict.detail).toContain('Amazon Elastic Block Store');
  });

  it('a local disk in a virtual machine (DMI names the hypervisor) cannot be judged either', () => {
    const m = machine([]);
    put(m.sys, 'class/dmi/id/sys_vendor', 'QEMU');
    expect(placementOf(m.base, m.roots)!.verdict).toMatchObject({ kind: 'virtual' });
  });

  it('btrfs (an anonymous device number) is resolved through its source device', () => {
    const m = machine([{ at: 'btr', dev: '0:45', fs: 'btrfs', source: '/dev/mapper/luks-home' }]);
    device(m.sys, 'dm-0', '253:0', {
      uuid: 'CRYPT-LUKS2-9999-luks-home',
      dmName: 'luks-home',
      slaves: ['sda2'],
    });
    expect(placementOf(join(m.base, 'btr'), m.roots)!.verdict.kind).toBe('encrypted');
  });

  it('tmpfs is memory, overlay and NFS cannot be judged, a missing device is undetermined', () => {
    const m = machine([
      { at: 'tmp', dev: '0:30', fs: 'tmpfs', source: 'tmpfs' },
      { at: 'ovl', dev: '0:31', fs: 'overlay', source: 'overlay' },
      { at: 'nfs', dev: '0:32', fs: 'nfs4', source: 'files:/export' },
      { at: 'gone', dev: '252:7', fs: 'ext4', source: 'UUID=x' },
    ]);
    expect(placementOf(join(m.base, 'tmp'), m.roots)!.verdict.kind).toBe('memory');
    expect(placementOf(join(m.base, 'ovl'), m.roots)!.verdict.kind).toBe('undetermined');
    expect(placementOf(join(m.base, 'nfs'), m.roots)!.verdict.kind).toBe('undetermined');
    expect(placementOf(join(m.base, 'gone'), m.roots)!.verdict.detail).toContain('252:7');
  });

  it('a directory not created yet is judged by its nearest existing parent, through symbolic links', () => {
    const m = machine([{ at: 'secure', dev: '253:0', fs: 'ext4', source: '/dev/dm-0' }]);
    device(m.sys, 'dm-0', '253:0', { uuid: 'CRYPT-PLAIN-x' });
    symlinkSync(join(m.base, 'secure'), join(m.base, 'link'));
    const p = placementOf(join(m.base, 'link', 'not', 'yet'), m.roots)!;
    expect(p.directory).toBe(join(m.base, 'secure'));
    expect(p.verdict.kind).toBe('encrypted');
  });

  it('maps each verdict to the check status: pass, fail, unknown with "check your provider"', async () => {
    const m = machine([
      { at: 'secure', dev: '253:0', fs: 'ext4', source: '/dev/dm-0' },
      { at: 'vd', dev: '254:0', fs: 'ext4', source: '/dev/vda' },
    ]);
    device(m.sys, 'dm-0', '253:0', { uuid: 'CRYPT-LUKS2-x', slaves: ['sda2'] });
    device(m.sys, 'vda', '254:0');
    const status = async (dir: string) => {
      const report = await runDoctor({ config: { dataDir: join(m.base, dir) }, roots: m.roots });
      return report.checks.find((c) => c.id === 'store-encrypted')!;
    };
    expect((await status('secure')).status).toBe('pass');
    const plain = await status('.');
    expect(plain.status).toBe('fail');
    expect(plain.fix).toContain('cryptsetup luksFormat');
    const virtual = await status('vd');
    expect(virtual.status).toBe('unknown');
    expect(virtual.fix).toContain('check your provider');
    const noProc = await runDoctor({
      config: { dataDir: m.base },
      roots: { proc: join(m.base, 'none'), sys: m.sys },
    });
    expect(noProc.checks.find((c) => c.id === 'store-encrypted')!.status).toBe('unknown');
  });

  it('a PostgreSQL store is on the database host: unknown', async () => {
    const report = await runDoctor({ config: { storage: 'postgres://enseal:secret@db.internal/enseal' } });
    const c = report.checks.find((x) => x.id === 'store-encrypted')!;
    expect(c.status).toBe('unknown');
    expect(c.message).toContain('db.internal');
    expect(JSON.stringify(report)).not.toContain('secret');
  });
});

function check(checks: readonly CheckResult[], id: string): CheckResult {
  const c = checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id}`);
  return c;
}

describe('permission checks', () => {
  it('fails group- or world-readable secrets with the chmod that fixes them, passes private ones', async () => {
    const dir = tree();
    for (const f of ['enseal.db', 'dev-unseal.key', 'dev-root-token'])
      writeFileSync(join(dir, f), 'x', { mode: 0o600 });
    mkdirSync(join(dir, 'tls'), { mode: 0o700 });
    writeFileSync(join(dir, 'tls', 'server-key.pem'), 'k', { mode: 0o600 });
    writeFileSync(join(dir, 'tls', 'server.pem'), 'c', { mode: 0o644 });
    const config = {
      dataDir: dir,
      tlsCert: join(dir, 'tls', 'server.pem'),
      tlsKey: join(dir, 'tls', 'server-key.pem'),
    };
    let r = (await runDoctor({ config })).checks;
    for (const id of ['store-permissions', 'key-permissions', 'tls-permissions'])
      expect(check(r, id).status).toBe('pass');

    chmodSync(join(dir, 'enseal.db'), 0o640);
    chmodSync(join(dir, 'dev-unseal.key'), 0o644);
    chmodSync(join(dir, 'tls', 'server-key.pem'), 0o604);
    chmodSync(join(dir, 'tls', 'server.pem'), 0o666);
    r = (await runDoctor({ config })).checks;
    expect(check(r, 'store-permissions')).toMatchObject({
      status: 'fail',
      fix: `chmod 600 ${join(dir, 'enseal.db')}`,
    });
    expect(check(r, 'key-permissions')).toMatchObject({
      status: 'fail',
      fix: `chmod 600 ${join(dir, 'dev-unseal.key')}`,
    });
    expect(check(r, 'key-permissions').message).toContain('0644');
    const tls = check(r, 'tls-permissions');
    expect(tls.status).toBe('fail');
    expect(tls.fix).toContain(`chmod 600 ${join(dir, 'tls', 'server-key.pem')}`);
    expect(tls.fix).toContain(`chmod go-w ${join(dir, 'tls', 'server.pem')}`);

    chmodSync(dir, 0o755);
    expect(check((await runDoctor({ config })).checks, 'store-permissions').fix).toContain(
      `chmod 700 ${dir}`,
    );
  });

  it('without key or seal files (the Shamir seal keeps none) key-permissions passes', async () => {
    const r = (await runDoctor({ config: { dataDir: tree() } })).checks;
    expect(check(r, 'key-permissions').status).toBe('pass');
  });
});

/** A fake server API: an unsealed Shamir server whose answers the test shapes. */
function fakeApi(over: Partial<DoctorApi> = {}): DoctorApi {
  return {
    sealStatus: async () => ({ initialized: true, sealed: false, type: 'shamir', t: 3, n: 5, progress: 0 }),
    lookupSelf: async () => ({ accessor: 'aaaa', policies: ['admin'], ttl: 3600 }),
    auditVerify: async () => ({ ok: true, entries: 10, problems: [] }),
    auditQuery: async ({ op }) =>
      op === 'init'
        ? [
            {
              seq: 1,
              time: '2026-01-01T00:00:00Z',
              prev: '',
              op: 'init',
              caller: 'local',
              outcome: 'ok',
              detail: { root_token_accessor: 'root0' },
            },
          ]
        : [],
    listKeys: async () => [],
    readKey: async () => ({}),
    ...over,
  };
}

const now = new Date('2026-06-01T00:00:00Z');
const server = (api: DoctorApi, hasToken = true) => ({ address: 'http://127.0.0.1:1', api, hasToken });

describe('server checks', () => {
  it('without an address or a token they are unknown and say how to supply them', async () => {
    const none = (await runDoctor({ config: { dataDir: tree() } })).checks;
    for (const id of ['server', 'seal-type', 'audit-chain', 'key-rotation', 'root-token']) {
      expect(check(none, id).status).toBe('unknown');
      expect(check(none, id).fix).toContain('ENSEAL_ADDR');
    }
    const noToken = (await runDoctor({ config: { dataDir: tree() }, server: server(fakeApi(), false) }))
      .checks;
    expect(check(noToken, 'seal-type').status).toBe('pass');
    for (const id of ['audit-chain', 'key-rotation', 'root-token'])
      expect(check(noToken, id).fix).toContain('ENSEAL_TOKEN');
  });

  it('seal: Shamir 3 of 5 passes, threshold 1 and passphrase warn, dev fails', async () => {
    const seal = async (s: Partial<Awaited<ReturnType<DoctorApi['sealStatus']>>>) =>
      check(
        (
          await runDoctor({
            config: { dataDir: tree() },
            server: server(
              fakeApi({
                sealStatus: async () => ({
                  initialized: true,
                  sealed: false,
                  type: 'shamir',
                  t: 3,
                  n: 5,
                  progress: 0,
                  ...s,
                }),
              }),
            ),
          })
        ).checks,
        'seal-type',
      ).status;
    expect(await seal({})).toBe('pass');
    expect(await seal({ t: 1, n: 1 })).toBe('warn');
    expect(await seal({ type: 'passphrase' })).toBe('warn');
    expect(await seal({ type: 'dev' })).toBe('fail');
  });

  it('a sealed server: the server check warns, the checks needing keys are unknown', async () => {
    const api = fakeApi({
      sealStatus: async () => ({ initialized: true, sealed: true, type: 'shamir', t: 3, n: 5, progress: 1 }),
    });
    const r = (await runDoctor({ config: { dataDir: tree() }, server: server(api) })).checks;
    expect(check(r, 'server').status).toBe('warn');
    expect(check(r, 'audit-chain')).toMatchObject({ status: 'unknown', message: 'the server is sealed' });
  });

  it('an unreachable server fails the server check only', async () => {
    const api = fakeApi({
      sealStatus: async () => Promise.reject(new EnsealError(ErrorCode.IO, 'cannot reach')),
    });
    const r = (await runDoctor({ config: { dataDir: tree() }, server: server(api) })).checks;
    expect(check(r, 'server').status).toBe('fail');
    expect(check(r, 'root-token').status).toBe('unknown');
  });

  it('a broken audit chain fails; a token without sudo leaves it unknown', async () => {
    const broken = fakeApi({
      auditVerify: async () => ({
        ok: false,
        entries: 9,
        problems: [{ kind: 'modified', seq: 4, message: 'x' }],
      }),
    });
    expect(
      check((await runDoctor({ config: {}, server: server(broken) })).checks, 'audit-chain'),
    ).toMatchObject({ status: 'fail' });
    const denied = fakeApi({
      auditVerify: async () => Promise.reject(new EnsealError(ErrorCode.PERMISSION_DENIED, 'no')),
    });
    const c = check((await runDoctor({ config: {}, server: server(denied) })).checks, 'audit-chain');
    expect(c.status).toBe('unknown');
    expect(c.fix).toContain('sudo');
  });

  it('rotation: past next_rotation or older than a year with rotation off fails; rotation off warns', async () => {
    const keys: Record<string, Record<string, unknown>> = {
      fresh: {
        latest_version: 1,
        keys: { 1: Date.parse('2026-05-01T00:00:00Z') / 1000 },
        next_rotation: '2027-05-01T00:00:00Z',
      },
      late: { latest_version: 2, keys: { 2: 1 }, next_rotation: '2026-05-20T00:00:00Z' },
      manual: {
        latest_version: 1,
        keys: { 1: Date.parse('2026-03-01T00:00:00Z') / 1000 },
        next_rotation: null,
      },
      ancient: {
        latest_version: 1,
        keys: { 1: { creation_time: '2024-01-01T00:00:00Z' } },
        next_rotation: null,
      },
      going: {
        latest_version: 1,
        keys: { 1: 1 },
        next_rotation: '2020-01-01T00:00:00Z',
        deletion_scheduled_at: '2026-06-02T00:00:00Z',
      },
    };
    const rotation = async (names: string[]) =>
      check(
        (
          await runDoctor({
            config: {},
            now,
            server: server(fakeApi({ listKeys: async () => names, readKey: async (n) => keys[n]! })),
          })
        ).checks,
        'key-rotation',
      );
    expect((await rotation(['fresh', 'going'])).status).toBe('pass');
    expect((await rotation(['fresh', 'manual'])).status).toBe('warn');
    const overdue = await rotation(['fresh', 'late', 'ancient', 'manual']);
    expect(overdue.status).toBe('fail');
    expect(overdue.message).toContain('late (due 2026-05-20)');
    expect(overdue.message).toContain('ancient (rotation off');
    expect(overdue.fix).toContain('enseal keys rotate');
  });

  it('root token: alive fails, revoked (per the audit log) passes, the caller being it says so', async () => {
    const revoked = fakeApi({
      auditQuery: async ({ op }) =>
        op === 'init'
          ? [
              {
                seq: 1,
                time: 't0',
                prev: '',
                op: 'init',
                caller: 'local',
                outcome: 'ok',
                detail: { root_token_accessor: 'root0' },
              },
            ]
          : [
              {
                seq: 9,
                time: 't9',
                prev: '',
                op: 'token.revoke',
                caller: 'token:root0',
                outcome: 'ok',
                detail: { accessor: 'root0', revoked: 3 },
              },
            ],
    });
    const rootCheck = async (api: DoctorApi) =>
      check((await runDoctor({ config: {}, server: server(api) })).checks, 'root-token');
    expect(await rootCheck(revoked)).toMatchObject({ status: 'pass' });
    const alive = await rootCheck(fakeApi());
    expect(alive.status).toBe('fail');
    expect(alive.fix).toContain('revoke-self');
    const self = await rootCheck(
      fakeApi({ lookupSelf: async () => ({ accessor: 'root0', policies: ['root'], ttl: 0 }) }),
    );
    expect(self.message).toContain('the token enseal doctor was given is the root token');
  });

  it('a check that throws is reported as unknown, never a crash', async () => {
    const api = fakeApi({
      listKeys: () => {
        throw new Error('boom');
      },
    });
    const c = check((await runDoctor({ config: {}, server: server(api) })).checks, 'key-rotation');
    expect(c.status).toBe('unknown');
  });
});

describe('docs/operations.md', () => {
  it('maps every check to the requirement the code names', () => {
    const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    for (const [id, requirement] of Object.entries(REQUIREMENTS)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${id}\``));
      expect(row, `a table row for ${id}`).toBeDefined();
      expect(row).toContain(requirement);
    }
  });
});
