/**
 * Is a directory on an encrypted block device? Linux only, read from two places, both injectable so a test can
 * lay out a fake tree: the mount table (`/proc/self/mountinfo`) gives the filesystem holding the directory and
 * its device number, and sysfs (`/sys/block/*`) maps that number to a device, whose device-mapper UUID starts
 * with `CRYPT-` when dm-crypt (LUKS, plain, BitLocker, TrueCrypt) sits under it. LVM on LUKS is followed
 * through `slaves/`. A virtual or cloud disk cannot be judged from inside the guest (the provider may encrypt
 * it), so it is reported as undetermined, never as a pass or a failure.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';

export interface SystemRoots {
  /** Where procfs is mounted (default `/proc`). */
  readonly proc?: string;
  /** Where sysfs is mounted (default `/sys`). */
  readonly sys?: string;
}

export interface MountEntry {
  readonly mountPoint: string;
  /** `major:minor` of the filesystem's device (`0:N` for filesystems without one). */
  readonly device: string;
  readonly fsType: string;
  readonly source: string;
}

export type DeviceVerdict =
  | { readonly kind: 'encrypted'; readonly detail: string }
  | { readonly kind: 'plain'; readonly detail: string }
  | { readonly kind: 'virtual'; readonly detail: string }
  | { readonly kind: 'memory'; readonly detail: string }
  | { readonly kind: 'undetermined'; readonly detail: string };

export interface Placement {
  /** The directory looked at (the nearest existing one when the asked one does not exist yet). */
  readonly directory: string;
  readonly mount: MountEntry;
  readonly verdict: DeviceVerdict;
}

/** Decodes the octal escapes (`\040` for a space) the kernel writes in mount paths. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The entries of a mountinfo file (proc(5)); malformed lines are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields.length < dash + 3) continue;
    out.push({
      device: fields[2]!,
      mountPoint: unescape(fields[4]!),
      fsType: fields[dash + 1]!,
      source: unescape(fields[dash + 2]!),
    });
  }
  return out;
}

/** The mount holding `path` (an absolute, resolved path): the longest mount point above it, the last one mounted. */
export function mountOf(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const e of entries) {
    const mp = e.mountPoint;
    const holds = mp === '/' || path === mp || path.startsWith(mp.endsWith('/') ? mp : mp + '/');
    if (holds && (best === undefined || mp.length >= best.mountPoint.length)) best = e;
  }
  return best;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

interface BlockDevice {
  readonly name: string;
  /** Its sysfs directory. */
  readonly dir: string;
  /** The whole disk's sysfs directory (itself, unless it is a partition). */
  readonly diskDir: string;
  readonly diskName: string;
}

/** Every block device and partition under `<sys>/block`, by `major:minor` and by name. */
function scanBlockDevices(sys: string): {
  byNumber: Map<string, BlockDevice>;
  byName: Map<string, BlockDevice>;
} {
  const byNumber = new Map<string, BlockDevice>();
  const byName = new Map<string, BlockDevice>();
  const add = (d: BlockDevice) => {
    const number = readText(`${d.dir}/dev`);
    if (number !== undefined) byNumber.set(number, d);
    byName.set(d.name, d);
  };
  for (const name of list(`${sys}/block`)) {
    const dir = `${sys}/block/${name}`;
    add({ name, dir, diskDir: dir, diskName: name });
    for (const sub of list(dir)) {
      if (existsSync(`${dir}/${sub}/partition`))
        add({ name: sub, dir: `${dir}/${sub}`, diskDir: dir, diskName: name });
    }
  }
  return { byNumber, byName };
}

/** Models and vendors of virtual and cloud disks, and hypervisors named in DMI. */
const VIRTUAL =
  /QEMU|VBOX|VirtualBox|VMware|Virtual|Amazon|Elastic Block|EBS|Google|PersistentDisk|Msft|Microsoft|Hyper-V|Xen|KVM|virtio|OpenStack|DigitalOcean|Droplet|Hetzner|Linode|Oracle|Alibaba|BHYVE|Parallels|Scaleway|OVH/i;

/** dm-crypt types that encrypt; VERITY and INTEGRITY only authenticate, SUBDEV is LUKS2's integrity layer. */
function cryptType(uuid: string | undefined): string | undefined {
  const m = /^CRYPT-([A-Z0-9]+)/.exec(uuid ?? '');
  if (m === null || ['VERITY', 'INTEGRITY', 'SUBDEV'].includes(m[1]!)) return undefined;
  return m[1];
}

/** Where a hypervisor shows itself to the guest, when it does. */
function hypervisor(sys: string): string | undefined {
  const type = readText(`${sys}/hypervisor/type`);
  if (type) return type;
  for (const f of ['sys_vendor', 'product_name', 'board_vendor']) {
    const v = readText(`${sys}/class/dmi/id/${f}`);
    if (v && VIRTUAL.test(v)) return v;
  }
  return undefined;
}

/** The verdict for a device with no encrypting layer of its own and nothing under it. */
function leafVerdict(sys: string, d: BlockDevice): DeviceVerdict {
  const name = d.diskName;
  if (/^(vd|xvd)/.test(name)) return { kind: 'virtual', detail: `${d.name} is a virtual (virtio/Xen) disk` };
  if (/^loop/.test(name)) {
    const backing = readText(`${d.diskDir}/loop/backing_file`);
    return {
      kind: 'undetermined',
      detail: `${d.name} is a loop device${backing ? ` backed by ${backing}` : ''}`,
    };
  }
  if (/^(zram|ram|pmem)/.test(name)) return { kind: 'memory', detail: `${d.name} is a memory device` };
  if (/^(nbd|rbd|drbd)/.test(name))
    return { kind: 'undetermined', detail: `${d.name} is a network block device` };
  if (/^dm-/.test(name)) return { kind: 'undetermined', detail: `${d.name} is a device-mapper device` };
  const model = [readText(`${d.diskDir}/device/vendor`), readText(`${d.diskDir}/device/model`)]
    .filter(Boolean)
    .join(' ');
  if (model && VIRTUAL.test(model))
    return { kind: 'virtual', detail: `${d.name} is a virtual disk (${model})` };
  const hv = hypervisor(sys);
  if (hv) return { kind: 'virtual', detail: `${d.name} is a disk of a virtual machine (${hv})` };
  return {
    kind: 'plain',
    detail: `${d.name} is a local disk${model ? ` (${model})` : ''} with no dm-crypt layer`,
  };
}

const RANK: Record<DeviceVerdict['kind'], number> = {
  encrypted: 0,
  virtual: 1,
  undetermined: 2,
  memory: 3,
  plain: 4,
};

/** Follows a device down through its `slaves/` (LVM, RAID) until dm-crypt or the disks. */
function deviceVerdict(
  sys: string,
  d: BlockDevice,
  byName: Map<string, BlockDevice>,
  depth = 0,
): DeviceVerdict {
  const type = cryptType(readText(`${d.dir}/dm/uuid`));
  if (type !== undefined) {
    const dmName = readText(`${d.dir}/dm/name`);
    return { kind: 'encrypted', detail: `${d.name}${dmName ? ` (${dmName})` : ''} is dm-crypt ${type}` };
  }
  const slaves = list(`${d.dir}/slaves`);
  if (slaves.length === 0 || depth > 8) return leafVerdict(sys, d);
  // Every device under it must be encrypted; the worst one decides.
  let worst: DeviceVerdict | undefined;
  for (const s of slaves) {
    const slave = byName.get(s);
    const v: DeviceVerdict = slave
      ? deviceVerdict(sys, slave, byName, depth + 1)
      : { kind: 'undetermined', detail: `${s} (under ${d.name}) is not in ${sys}/block` };
    if (worst === undefined || RANK[v.kind] > RANK[worst.kind]) worst = v;
  }
  return worst!.kind === 'encrypted'
    ? { kind: 'encrypted', detail: `${d.name} sits on ${worst!.detail}` }
    : { kind: worst!.kind, detail: `${d.name} sits on ${worst!.detail}` };
}

const NETWORK_FS = /^(nfs4?|cifs|smb3|9p|virtiofs|ceph|glusterfs|lustre|afs|fuse(\..*)?|sshfs)$/;

/** The verdict for a mounted filesystem. */
export function mountVerdict(mount: MountEntry, roots: SystemRoots = {}): DeviceVerdict {
  const sys = roots.sys ?? '/sys';
  const what = `${mount.mountPoint} (${mount.fsType} on ${mount.source})`;
  if (mount.fsType === 'tmpfs' || mount.fsType === 'ramfs')
    return { kind: 'memory', detail: `${what} is in memory` };
  if (mount.fsType === 'overlay' || mount.fsType === 'aufs')
    return { kind: 'undetermined', detail: `${what} is a container's overlay filesystem` };
  if (NETWORK_FS.test(mount.fsType))
    return { kind: 'undetermined', detail: `${what} is a network or shared filesystem` };
  if (mount.fsType === 'zfs')
    return {
      kind: 'undetermined',
      detail: `${what} is a ZFS dataset (check: zfs get encryption ${mount.source})`,
    };
  const { byNumber, byName } = scanBlockDevices(sys);
  let device = byNumber.get(mount.device);
  // Filesystems such as btrfs report an anonymous device number; their source names the real device.
  if (device === undefined && mount.source.startsWith('/dev/')) {
    const base = mount.source.slice('/dev/'.length);
    if (base.startsWith('mapper/')) {
      const dmName = base.slice('mapper/'.length);
      device = [...byName.values()].find((d) => readText(`${d.dir}/dm/name`) === dmName);
    } else {
      device = byName.get(base);
    }
  }
  if (device === undefined)
    return {
      kind: 'undetermined',
      detail: `${what}: device ${mount.device} is not in ${sys}/block (a container without the host's sysfs?)`,
    };
  const v = deviceVerdict(sys, device, byName);
  return { kind: v.kind, detail: `${what}: ${v.detail}` } as DeviceVerdict;
}

/** The nearest existing directory at or above `path`, resolved through symbolic links. */
function existingDirectory(path: string): string {
  let p = path;
  for (;;) {
    try {
      return realpathSync(p);
    } catch {
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}

/** Where `directory` lives and what holds that filesystem; undefined when the mount table cannot be read. */
export function placementOf(directory: string, roots: SystemRoots = {}): Placement | undefined {
  const text = readText(`${roots.proc ?? '/proc'}/self/mountinfo`);
  if (text === undefined) return undefined;
  const real = existingDirectory(directory);
  const mount = mountOf(parseMountinfo(text), real);
  if (mount === undefined) return undefined;
  return { directory: real, mount, verdict: mountVerdict(mount, roots) };
}
