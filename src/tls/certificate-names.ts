/**
 * Names in certificates: subject alternative names (DNS names with an optional leftmost wildcard, IP
 * literals), the permitted names of a constrained CA, and the Name Constraints extension built from them and
 * read back. Validation is strict because these strings also end up in configs and file names.
 *
 * A constraint on one name type says nothing about another (RFC 5280 §4.2.1.10), so a CA that lists only
 * DNS names gets every IP address excluded, and one that lists only address blocks gets every DNS name
 * excluded.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  GeneralName as AsnGeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  NameConstraints,
  id_ce_nameConstraints,
} from '@peculiar/asn1-x509';
import { invalidArgument } from '../crypto/index.js';
// @peculiar/x509 uses decorators through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
/** A subject alternative name: a DNS name (possibly a leftmost wildcard) or an IP address. */
export interface SanName {
  readonly type: 'dns' | 'ip';
  readonly value: string;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  // An all-numeric last label is no top-level domain; such strings are malformed IPv4 addresses.
  return labels.every((label) => LABEL.test(label)) && !/^\d+$/.test(labels[labels.length - 1]!);
}

/** A strict IPv4 or IPv6 literal (no zone, no embedded dotted quad), or undefined. */
function ipLiteral(text: string): string | undefined {
  if (isIPv4(text)) return text;
  if (isIPv6(text) && !text.includes('.') && !text.includes('%')) return text.toLowerCase();
  return undefined;
}

/**
 * Classifies and validates one certificate name: an IP literal, or a DNS name (lower-cased; letters,
 * digits and hyphens; a `*.` wildcard only as the whole leftmost label above at least one more label).
 */
export function parseSanName(input: string): SanName {
  const ip = ipLiteral(input);
  if (ip !== undefined) return { type: 'ip', value: ip };
  const name = input.toLowerCase();
  const base = name.startsWith('*.') ? name.slice(2) : name;
  if (!isHostname(base)) {
    throw invalidArgument('certificate name', `"${input.slice(0, 80)}" is not a DNS name or IP address`);
  }
  return { type: 'dns', value: name };
}

/** One permitted subtree: a DNS suffix (matching the name and its subdomains) or an address block. */
export interface PermittedName {
  readonly type: 'dns' | 'ip';
  /** For DNS, the domain without a leading dot; for IP, `address/prefix` with host bits cleared. */
  readonly value: string;
}

function maskedAddress(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

function ipBytes(ip: string): number[] {
  if (isIPv4(ip)) return ip.split('.').map(Number);
  const halves = ip.split('::');
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

function formatIp(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
}

/**
 * Parses a permitted-name entry: `localhost`, `test` or `.test` (the domain and everything below it),
 * `127.0.0.1` or `127.0.0.0/8`, `::1` or `fd00::/8`. Host bits of an address block are cleared.
 */
export function parsePermittedName(input: string): PermittedName {
  const slash = input.indexOf('/');
  const addr = ipLiteral(slash === -1 ? input : input.slice(0, slash));
  if (addr !== undefined) {
    const bits = isIPv4(addr) ? 32 : 128;
    const prefixText = slash === -1 ? String(bits) : input.slice(slash + 1);
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix >= 0 && prefix <= bits)) {
      throw invalidArgument('permitted name', `"${input.slice(0, 80)}" has an invalid prefix length`);
    }
    return { type: 'ip', value: `${formatIp(maskedAddress(ipBytes(addr), prefix))}/${prefix}` };
  }
  const name = (input.startsWith('.') ? input.slice(1) : input).toLowerCase();
  if (slash !== -1 || !isHostname(name)) {
    throw invalidArgument('permitted name', `"${input.slice(0, 80)}" is not a domain or an address block`);
  }
  return { type: 'dns', value: name };
}

function subtree(name: PermittedName): GeneralSubtree {
  return new GeneralSubtree({
    base: new AsnGeneralName(name.type === 'dns' ? { dNSName: name.value } : { iPAddress: name.value }),
  });
}

/** The critical Name Constraints extension permitting `permitted` and excluding any name type not listed. */
export function nameConstraintsExtension(permitted: readonly PermittedName[]): x509.Extension {
  const excluded: PermittedName[] = [];
  if (!permitted.some((p) => p.type === 'ip')) {
    excluded.push({ type: 'ip', value: '0.0.0.0/0' }, { type: 'ip', value: '::/0' });
  }
  const nc = new NameConstraints({ permittedSubtrees: new GeneralSubtrees(permitted.map(subtree)) });
  if (!permitted.some((p) => p.type === 'dns')) {
    // An empty dNSName constraint matches every DNS name.
    excluded.push({ type: 'dns', value: '' });
  }
  if (excluded.length > 0) nc.excludedSubtrees = new GeneralSubtrees(excluded.map(subtree));
  return new x509.Extension(id_ce_nameConstraints, true, AsnConvert.serialize(nc));
}

export interface ParsedConstraints {
  readonly permitted: PermittedName[];
  readonly excluded: PermittedName[];
}

export function readConstraints(cert: x509.X509Certificate): ParsedConstraints | undefined {
  const ext = cert.getExtension(id_ce_nameConstraints);
  if (ext === null) return undefined;
  const nc = AsnConvert.parse(ext.value, NameConstraints);
  const names = (trees: GeneralSubtrees | undefined): PermittedName[] =>
    (trees ?? []).flatMap((t): PermittedName[] => {
      if (t.base.dNSName !== undefined) return [{ type: 'dns', value: t.base.dNSName.toLowerCase() }];
      if (t.base.iPAddress !== undefined) return [{ type: 'ip', value: t.base.iPAddress }];
      return [];
    });
  return { permitted: names(nc.permittedSubtrees), excluded: names(nc.excludedSubtrees) };
}

function matches(name: SanName, tree: PermittedName): boolean {
  if (name.type !== tree.type) return false;
  if (name.type === 'dns') {
    const host = name.value.startsWith('*.') ? name.value.slice(2) : name.value;
    return tree.value === '' || host === tree.value || host.endsWith(`.${tree.value}`);
  }
  const [base, prefixText] = tree.value.split('/');
  const addr = ipBytes(name.value);
  const net = ipBytes(base!);
  if (addr.length !== net.length) return false;
  const prefix = Number(prefixText);
  return maskedAddress(addr, prefix).every((b, i) => b === net[i]);
}

/** True when `name` satisfies the CA's constraints (so a verifier will accept a leaf carrying it). */
export function permittedBy(constraints: ParsedConstraints | undefined, name: SanName): boolean {
  if (constraints === undefined) return true;
  if (constraints.excluded.some((t) => matches(name, t))) return false;
  const sameType = constraints.permitted.filter((t) => t.type === name.type);
  return sameType.length === 0 || sameType.some((t) => matches(name, t));
}
