// IPv4 addresses: parsing and validation, formatting, prefix <-> netmask, network and broadcast, membership.
// Hand-written rather than ipaddr.js: the cluster model works on unsigned 32-bit integers (ranges,
// allocation, overlap checks), and the strict dotted-quad rule here (no leading zeros, no short or hex
// forms) is what the config renderers rely on; ipaddr.js parses the legacy forms and works on byte arrays.
import type { Check } from './validate.js';

const IPV4_RE = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const DOTTED_QUAD_RE = /^\d+\.\d+\.\d+\.\d+$/;

/** Whether `s` has the shape of a dotted quad (four groups of digits), valid or not: `999.1.1.1` does. */
export function looksLikeIPv4(s: string): boolean {
  return DOTTED_QUAD_RE.test(s);
}

/** Dotted quad, each part 0-255 without leading zeros (`010` is octal to some parsers, so refused). */
export function isValidIPv4(s: string): Check {
  const m = IPV4_RE.exec(s);
  if (!m) return 'expected a dotted IPv4 address like 10.0.0.1';
  for (let i = 1; i <= 4; i++) if (Number(m[i]) > 255) return `part ${m[i]} is larger than 255`;
  return true;
}

/** `isValidIPv4` as a boolean: `isIPv4('10.0.0.1')` -> true, `isIPv4('10.0.0.01')` -> false. */
export function isIPv4(s: string): boolean {
  return typeof s === 'string' && isValidIPv4(s) === true;
}

/** `10.0.0.1` -> 167772161 (unsigned). Throws on anything `isValidIPv4` refuses. */
export function ipToInt(s: string): number {
  const m = IPV4_RE.exec(s);
  if (m) {
    const a = Number(m[1]), b = Number(m[2]), c = Number(m[3]), d = Number(m[4]);
    if (a <= 255 && b <= 255 && c <= 255 && d <= 255) return ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
  }
  throw new Error(`invalid IPv4 address "${s}"`);
}

/** 167772161 -> `10.0.0.1`. Throws for values outside 0..2^32-1. */
export function intToIp(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`not an IPv4 address value: ${n}`);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** The netmask of a prefix length as an unsigned integer (`24` -> 0xffffff00). */
export function prefixMask(prefix: number): number {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`invalid prefix length ${prefix}`);
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `24` -> `255.255.255.0`. */
export function prefixToNetmask(prefix: number): string {
  return intToIp(prefixMask(prefix));
}

/** `255.255.255.0` -> `24`. Throws for a mask whose one bits are not contiguous (`255.0.255.0`). */
export function netmaskToPrefix(netmask: string): number {
  const mask = ipToInt(netmask);
  const hostBits = (~mask >>> 0).toString(2).replace(/^0+/, '').length;
  const prefix = 32 - hostBits;
  if (prefixMask(prefix) !== mask) throw new Error(`invalid netmask "${netmask}"`);
  return prefix;
}

/** Network address (as integer) of `ip/prefix`. */
export function networkOf(ip: string | number, prefix: number): number {
  const n = typeof ip === 'number' ? ip : ipToInt(ip);
  return (n & prefixMask(prefix)) >>> 0;
}

/** Broadcast address (as integer) of `ip/prefix`. */
export function broadcastOf(ip: string | number, prefix: number): number {
  return (networkOf(ip, prefix) | (~prefixMask(prefix) >>> 0)) >>> 0;
}

/** Whether `ip` lies in `network/prefix` (`inSubnet('10.0.0.7', '10.0.0.0', 24)` -> true). */
export function inSubnet(ip: string | number, network: string | number, prefix: number): boolean {
  return networkOf(ip, prefix) === networkOf(network, prefix);
}

/** RFC 1918 private address: 10/8, 172.16/12, 192.168/16. */
export function isPrivateIPv4(ip: string): boolean {
  if (!isIPv4(ip)) return false;
  return inSubnet(ip, '10.0.0.0', 8) || inSubnet(ip, '172.16.0.0', 12) || inSubnet(ip, '192.168.0.0', 16);
}
