import type { NetworkInterfaceInfo } from 'node:os';
import { inSubnet, intToIp, isPrivateIPv4, netmaskToPrefix, networkOf } from '../../../lib/ipv4.js';
import type { DhcpNet } from '../../dhcp/model.js';
import type { ListenOnlyNet } from '../../dhcp/render.js';

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

/** The network address of an interface address (`10.1.2.3` and `255.255.0.0` -> `10.1.0.0`). */
export function networkAddress(address: string, netmask: string): string {
  return intToIp(networkOf(address, netmaskToPrefix(netmask)));
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
    const pick = explicit ? v4[0] : v4.find((a) => isPrivateIPv4(a.address));
    if (!pick) {
      if (explicit) notes.push(`${iface}: no IPv4 address`);
      continue;
    }
    networks.push({
      iface,
      address: pick.address,
      netmask: pick.netmask,
      network: networkAddress(pick.address, pick.netmask),
      prefix: netmaskToPrefix(pick.netmask),
    });
  }
  return { networks, notes };
}

/** Where dhcpd listens, and what the config must declare for it. */
export interface ListenPlan {
  /** Interfaces dhcpd is started on, each with the address that put it on the list. */
  listen: DhcpNetwork[];
  /** Networks of listened interfaces outside every cluster network: declared without a pool. */
  listenOnly: ListenOnlyNet[];
  /** The head node's addresses inside cluster networks (never handed out from a dynamic range). */
  ownAddresses: string[];
  /** Why listed interfaces were skipped, for the log. */
  notes: string[];
  /** Set when dhcpd cannot listen anywhere: why, for the `waiting` state. */
  wait: string | null;
}

/**
 * Chooses the interfaces for dhcpd. With cluster networks: every interface with an address inside one
 * (the first such address), plus CW_DHCP_INTERFACES (e.g. the interface relayed requests arrive on).
 * Without: the pre-model behaviour of `selectDhcpNetworks` (listen and log only).
 */
export function planListening(table: InterfaceTable, nets: readonly DhcpNet[], explicit: readonly string[] | null): ListenPlan {
  if (nets.length === 0) {
    const { networks, notes } = selectDhcpNetworks(table, explicit);
    const wait = networks.length === 0 ? `no cluster network interface${notes.length > 0 ? ` (${notes.join('; ')})` : ''}` : null;
    return { listen: networks, listenOnly: listenOnlyOf(networks), ownAddresses: [], notes, wait };
  }
  const listen: DhcpNetwork[] = [];
  const ownAddresses: string[] = [];
  for (const iface of Object.keys(table).sort()) {
    let picked = false;
    for (const a of table[iface] ?? []) {
      if (a.family !== 'IPv4' || a.internal) continue;
      if (!nets.some((n) => inSubnet(a.address, n.network, n.prefix))) continue;
      ownAddresses.push(a.address);
      if (picked) continue;
      picked = true;
      listen.push({ iface, address: a.address, netmask: a.netmask, network: networkAddress(a.address, a.netmask), prefix: netmaskToPrefix(a.netmask) });
    }
  }
  const extra = (explicit ?? []).filter((name) => !listen.some((l) => l.iface === name));
  const { networks: named, notes } = selectDhcpNetworks(table, extra);
  listen.push(...named);
  if (listen.length === 0) {
    const list = nets.map((n) => `${n.name} ${n.network}/${n.prefix}`).join(', ');
    return { listen, listenOnly: [], ownAddresses, notes, wait: `no interface has an address in a cluster network (${list})` };
  }
  return { listen, listenOnly: listenOnlyOf(named), ownAddresses, notes, wait: null };
}

/** One listen-only declaration per distinct network, noting the interfaces on it. */
function listenOnlyOf(networks: readonly DhcpNetwork[]): ListenOnlyNet[] {
  const byNet = new Map<string, { network: string; prefix: number; ifaces: string[] }>();
  for (const n of networks) {
    const key = `${n.network}/${n.prefix}`;
    const entry = byNet.get(key) ?? { network: n.network, prefix: n.prefix, ifaces: [] };
    entry.ifaces.push(`${n.iface} ${n.address}/${n.prefix}`);
    byNet.set(key, entry);
  }
  return [...byNet.values()].map((e) => ({ network: e.network, prefix: e.prefix, note: e.ifaces.join(', ').slice(0, 120) }));
}

/** What nodes are told is their head node: the addresses, and why the head address is not among them. */
export interface Advertised {
  addresses: string[];
  /** Set when CW_HEAD_ADDRESS names an address no interface has in a cluster network (yet). */
  note: string | null;
}

/**
 * The head node's addresses nodes are told of (DHCP next-server, the iPXE URL, the DNS server): all of
 * `own`, except that in the cluster network of `head` (CW_HEAD_ADDRESS, a floating IP that moves with
 * the appliance between hosts) only `head` is, so a node never learns a host's own address, which goes
 * down with that host. A head address no interface has falls back to `own`, with a note.
 */
export function advertisedAddresses(own: readonly string[], nets: readonly DhcpNet[], head: string | null): Advertised {
  if (head === null) return { addresses: [...own], note: null };
  const net = nets.find((n) => inSubnet(head, n.network, n.prefix));
  if (!net || !own.includes(head)) {
    const where = net ? `no interface has it (yet) in cluster network ${net.name}` : 'it is in no cluster network';
    return { addresses: [...own], note: `head address ${head} is not advertised: ${where}` };
  }
  return { addresses: [head, ...own.filter((a) => !inSubnet(a, net.network, net.prefix))], note: null };
}
