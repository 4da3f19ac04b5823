import type { NetworkInterfaceInfo } from 'node:os';
import { comment, conf, ipv4, lines, type SafeText } from '../template.js';

/** `os.networkInterfaces()` shape. */
export type InterfaceTable = Readonly<Record<string, readonly NetworkInterfaceInfo[] | undefined>>;

export interface DhcpNetwork {
  iface: string;
  address: string;
  netmask: string;
  /** Network address (`address & netmask`). */
  network: string;
  prefix: number;
}

export interface NetworkSelection {
  networks: DhcpNetwork[];
  /** Why listed interfaces were skipped, for the log. */
  notes: string[];
}

const IFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$/;
/** Bridges and tunnels of container engines and VPNs: never a cluster network unless named explicitly. */
const VIRTUAL_IFACE = /^(lo|docker\d*|br-[0-9a-f]{6,}|veth|virbr|vnet|cni|podman|flannel|cali|kube|vxlan|tailscale|wg|zt|tun|tap)/;

/** Parses CW_DHCP_INTERFACES (space or comma separated); empty means automatic (null). Throws on a bad name. */
export function parseInterfaceList(value: string | undefined): string[] | null {
  const names = (value ?? '').split(/[\s,]+/).filter(Boolean);
  if (names.length === 0) return null;
  const bad = names.filter((n) => !IFACE_NAME.test(n));
  if (bad.length > 0) throw new Error(`CW_DHCP_INTERFACES: invalid interface name ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  return [...new Set(names)];
}

/** RFC 1918 private IPv4 (10/8, 172.16/12, 192.168/16). */
export function isPrivateIpv4(address: string): boolean {
  const o = address.split('.').map(Number);
  const [a = -1, b = -1] = o;
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

function toInt(address: string): number {
  return address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function fromInt(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function networkAddress(address: string, netmask: string): string {
  const a = toInt(address);
  const m = toInt(netmask);
  // Bitwise ops are signed 32-bit in JS; go through >>> 0 to stay unsigned.
  return fromInt((a & m) >>> 0);
}

function prefixLength(netmask: string): number {
  return toInt(netmask).toString(2).replace(/0+$/, '').length;
}

/**
 * Picks the networks dhcpd listens on: the named interfaces (their first IPv4 address), or — when none
 * are named — every non-virtual interface with a private IPv4 address. One entry per interface.
 */
export function selectDhcpNetworks(table: InterfaceTable, explicit: readonly string[] | null): NetworkSelection {
  const notes: string[] = [];
  const networks: DhcpNetwork[] = [];
  const candidates = explicit ?? Object.keys(table).filter((name) => !VIRTUAL_IFACE.test(name)).sort();
  for (const iface of candidates) {
    const addresses = table[iface];
    if (!addresses) {
      if (explicit) notes.push(`${iface}: no such interface`);
      continue;
    }
    const v4 = addresses.filter((a) => a.family === 'IPv4' && !a.internal);
    const pick = explicit ? v4[0] : v4.find((a) => isPrivateIpv4(a.address));
    if (!pick) {
      if (explicit) notes.push(`${iface}: no IPv4 address`);
      continue;
    }
    networks.push({
      iface,
      address: pick.address,
      netmask: pick.netmask,
      network: networkAddress(pick.address, pick.netmask),
      prefix: prefixLength(pick.netmask),
    });
  }
  return { networks, notes };
}

/**
 * The `{{subnets}}` block: one declaration without a pool per distinct network, so dhcpd listens on
 * it and logs requests but hands out nothing.
 */
export function renderSubnets(networks: readonly DhcpNetwork[]): SafeText {
  const seen = new Set<string>();
  const blocks: SafeText[] = [];
  for (const net of networks) {
    const key = `${net.network}/${net.netmask}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const ifaces = networks.filter((n) => `${n.network}/${n.netmask}` === key).map((n) => `${n.iface} ${n.address}/${n.prefix}`);
    blocks.push(conf`# ${comment(ifaces.join(', '))}: listen and log only (no pool yet)
subnet ${ipv4(net.network)} netmask ${ipv4(net.netmask)} {
}`);
  }
  return lines(blocks);
}
