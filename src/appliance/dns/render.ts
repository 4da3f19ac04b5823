// What the appliance's DNS server (dnsmasq) answers from: a hosts file with one line per node that has
// an address (`10.10.24.100 n0.cluster.internal n0`, the full name first so reverse lookups give it),
// and a servers file naming the zones it answers alone (the cluster domain and the reverse zones of the
// cluster networks), so a name it does not know is "no such name" at once instead of a question for the
// upstream resolvers. Every value passes the template validators: nothing reaches a file unchecked.
import { intToIp, ipToInt, isValidIPv4 } from '../../lib/ipv4.js';
import { isValidDomain } from '../../lib/validate.js';
import { comment, conf, dnsName, ipv4, lines, type SafeText } from '../config/template.js';

/** A node as DNS sees it: its name and its address. */
export interface DnsHost {
  name: string;
  ip: string;
}

/** A cluster network: its reverse zones are answered locally. */
export interface DnsNet {
  name: string;
  network: string;
  prefix: number;
}

export interface DnsModel {
  /** The cluster's domain: `n3` is also `n3.DOMAIN`. */
  domain: string;
  nets: readonly DnsNet[];
  hosts: readonly DnsHost[];
}

/** What rendering left out, one line each (a node whose name is no DNS label, a second node on one address). */
export interface DnsRendered {
  hosts: string;
  zones: string;
  skipped: string[];
}

/**
 * The `in-addr.arpa` zones covering a network: one zone when the prefix ends on an octet boundary,
 * else every zone one octet longer than the prefix (at most 128), except that a network smaller than a
 * /24 gets its /24 (not a zone per address).
 * Example: reverseZones('10.10.24.0', 24) → ['24.10.10.in-addr.arpa']; ('10.10.0.0', 23) → ['0.10.10...', '1.10.10...'].
 */
export function reverseZones(network: string, prefix: number): string[] {
  if (isValidIPv4(network) !== true) throw new Error(`not an IPv4 address: ${JSON.stringify(network)}`);
  if (!Number.isInteger(prefix) || prefix < 1 || prefix > 32) throw new Error(`not a prefix length (1-32): ${JSON.stringify(prefix)}`);
  const octets = prefix > 24 ? 3 : Math.ceil(prefix / 8);
  const span = 2 ** Math.max(0, octets * 8 - prefix);
  const base = ipToInt(network) >>> 0;
  const step = 2 ** (32 - octets * 8);
  const start = Math.floor(base / (step * span)) * step * span;
  const zones: string[] = [];
  for (let i = 0; i < span; i++) {
    const parts = intToIp(start + i * step).split('.').slice(0, octets);
    zones.push(`${parts.reverse().join('.')}.in-addr.arpa`);
  }
  return zones;
}

/** The PTR name of an address: `reverseName('10.10.24.100')` → `100.24.10.10.in-addr.arpa`. */
export function reverseName(ip: string): string {
  if (isValidIPv4(ip) !== true) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

/**
 * Renders the hosts file and the servers file of a model, hosts ordered by address. Throws for a bad
 * domain; a host that cannot be named in DNS is left out and reported in `skipped`.
 * Example: renderDns({domain: 'cluster.internal', nets: [], hosts: [{name: 'n0', ip: '10.0.0.5'}]}).hosts
 * holds the line `10.0.0.5 n0.cluster.internal n0`.
 */
export function renderDns(model: DnsModel): DnsRendered {
  const domainCheck = isValidDomain(model.domain);
  if (domainCheck !== true) throw new Error(`invalid domain ${JSON.stringify(model.domain)}: ${domainCheck}`);
  const domain = dnsName(model.domain);
  const skipped: string[] = [];
  const checked: Array<{ name: string; ip: string; at: number }> = [];
  for (const host of model.hosts) {
    const nameOk = typeof host.name === 'string' && !host.name.includes('.') && isValidDomain(host.name) === true;
    if (!nameOk) skipped.push(`node ${JSON.stringify(String(host.name)).slice(0, 70)}: not a DNS name`);
    else if (typeof host.ip !== 'string' || isValidIPv4(host.ip) !== true) skipped.push(`node ${host.name}: address ${JSON.stringify(String(host.ip)).slice(0, 40)} is not IPv4`);
    else if (`${host.name}.${model.domain}`.length > 253) skipped.push(`node ${host.name}: ${host.name}.${model.domain} is longer than 253 characters`);
    else checked.push({ name: host.name, ip: host.ip, at: ipToInt(host.ip) >>> 0 });
  }
  checked.sort((a, b) => a.at - b.at || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hostLines: SafeText[] = [conf`# ${comment(`${checked.length} node${checked.length === 1 ? '' : 's'} of ${model.domain}, written by the CW API; do not edit`)}`];
  const seen = new Map<number, string>();
  for (const host of checked) {
    // Two names on one address would give two PTR answers; the database refuses it, this keeps the file sane regardless.
    const owner = seen.get(host.at);
    if (owner !== undefined) {
      skipped.push(`node ${host.name}: address ${host.ip} is also ${owner}'s`);
      continue;
    }
    seen.set(host.at, host.name);
    hostLines.push(conf`${ipv4(host.ip)} ${dnsName(host.name)}.${domain} ${dnsName(host.name)}`);
  }

  const zoneLines: SafeText[] = [
    conf`# ${comment('Zones answered from the node names alone (never forwarded), written by the CW API; do not edit')}`,
    conf`server=/${domain}/`,
  ];
  const zones = new Set<string>();
  for (const net of model.nets) {
    for (const zone of reverseZones(net.network, net.prefix)) {
      if (zones.has(zone)) continue;
      zones.add(zone);
      zoneLines.push(conf`server=/${dnsName(zone)}/`);
    }
  }
  return { hosts: `${lines(hostLines).text}\n`, zones: `${lines(zoneLines).text}\n`, skipped };
}
