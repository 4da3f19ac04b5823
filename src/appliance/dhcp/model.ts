// What dhcpd needs to know about the cluster: its networks and, per node MAC, the node's name and IP.
// Everything here may end up verbatim in dhcpd.conf, so every value is re-checked with the shared edge
// validators even though the API checked it already; a bad value throws and never reaches a file.
import { MAX_DYNAMIC_ADDRESSES, isSafeName, isValidDomain, isValidMac, type Check } from '../../lib/validate.js';
import { broadcastOf, intToIp, ipToInt, isValidIPv4, networkOf, prefixToNetmask } from '../../lib/ipv4.js';

/** A cluster network (an iprange of cluster.conf). */
export interface DhcpNet {
  /** Name of the network in the cluster model; appears in a comment only. */
  name: string;
  /** Network address, e.g. `10.10.24.0`. */
  network: string;
  /** Prefix length, e.g. `24`. */
  prefix: number;
  /** `prefix` as a dotted mask, e.g. `255.255.255.0`; must agree with `prefix`. */
  netmask: string;
  /** First and last address of the node range. */
  first: string;
  last: string;
  /** Default route handed to the nodes (`option routers`). */
  gateway?: string | null;
  /** Hand the free addresses of first..last to MACs the cluster does not know. */
  dynamic?: boolean;
}

/** The DhcpNet fields of a network (a stored net or a checked one), without a null gateway. */
export function dhcpNetOf(n: DhcpNet): DhcpNet {
  return {
    name: n.name,
    network: n.network,
    prefix: n.prefix,
    netmask: n.netmask,
    first: n.first,
    last: n.last,
    ...(n.gateway != null ? { gateway: n.gateway } : {}),
    ...(n.dynamic !== undefined ? { dynamic: n.dynamic } : {}),
  };
}

/** One node NIC: a node with several MACs appears once per MAC, with the same name and IP. */
export interface DhcpHost {
  name: string;
  mac: string;
  ip: string;
}

/** The content of `STORAGE/etc/generated/dhcp-model.json`. */
export interface DhcpModel {
  /** Increases with every change of the cluster model (logged, so a reload can be matched to a change). */
  version: number;
  nets: DhcpNet[];
  hosts: DhcpHost[];
  /** The cluster's DNS domain, handed to the nodes (`option domain-name`); absent in models of older releases. */
  domain?: string;
}

/** A model that cannot be rendered; `problems` lists every bad value, one line each. */
export class DhcpModelError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], what = 'DHCP model') {
    const shown = problems.slice(0, MAX_PROBLEMS_SHOWN);
    const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
    super(`invalid ${what}: ${shown.join('; ')}${more}`);
    this.name = 'DhcpModelError';
    this.problems = problems;
  }
}

const MAX_PROBLEMS_SHOWN = 10;

/** A network after checking (every field present), with its addresses as unsigned integers. */
export interface CheckedNet extends Required<DhcpNet> {
  networkInt: number;
  broadcastInt: number;
  firstInt: number;
  lastInt: number;
  gatewayInt: number | null;
}

/** A host after checking: MAC in lowercase colon form, IP as an unsigned integer. */
export interface CheckedHost {
  name: string;
  mac: string;
  ip: string;
  ipInt: number;
}

type Fields = Record<string, unknown>;

const isRecord = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const quote = (v: unknown): string => JSON.stringify(typeof v === 'string' ? v.slice(0, 64) : v) ?? String(v);

/**
 * Checks networks and hosts and returns them normalized, nets ordered by address and hosts by IP then
 * MAC. Throws DhcpModelError listing every problem, e.g. `hosts[2] "n2": mac "52:54:00:zz:00:01": ...`.
 */
export function checkDhcpInput(nets: unknown, hosts: unknown): { nets: CheckedNet[]; hosts: CheckedHost[] } {
  const problems: string[] = [];
  const checkedNets = checkNets(nets, problems);
  const checkedHosts = checkHosts(hosts, checkedNets, problems);
  if (problems.length > 0) throw new DhcpModelError(problems);
  return { nets: checkedNets, hosts: checkedHosts };
}

/** Parses a model read from JSON (or built in memory) and returns its normalized form; throws DhcpModelError. */
export function validateDhcpModel(value: unknown): DhcpModel {
  if (!isRecord(value)) throw new DhcpModelError(['expected an object {version, nets, hosts}']);
  const problems: string[] = [];
  const version = value.version;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    problems.push(`version ${quote(version)}: expected a non-negative integer`);
  }
  const domain = value.domain;
  if (domain !== undefined && (typeof domain !== 'string' || isValidDomain(domain) !== true)) {
    problems.push(`domain ${quote(domain)}: ${reasonOf(domain, isValidDomain)}`);
  }
  let checked: { nets: CheckedNet[]; hosts: CheckedHost[] } | null = null;
  try {
    checked = checkDhcpInput(value.nets, value.hosts);
  } catch (err) {
    if (!(err instanceof DhcpModelError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length > 0 || !checked) throw new DhcpModelError(problems);
  return {
    version: version as number,
    nets: checked.nets.map(dhcpNetOf),
    hosts: checked.hosts.map((h) => ({ name: h.name, mac: h.mac, ip: h.ip })),
    ...(typeof domain === 'string' ? { domain } : {}),
  };
}

function checkNets(value: unknown, problems: string[]): CheckedNet[] {
  if (!Array.isArray(value)) {
    problems.push('nets: expected an array');
    return [];
  }
  const nets: CheckedNet[] = [];
  value.forEach((raw: unknown, index) => {
    const at = `nets[${index}]`;
    if (!isRecord(raw)) {
      problems.push(`${at}: expected an object`);
      return;
    }
    const where = typeof raw.name === 'string' ? `${at} ${quote(raw.name)}` : at;
    const bad = (field: string, reason: string): void => void problems.push(`${where}: ${field} ${quote(raw[field])}: ${reason}`);
    const before = problems.length;
    const name = text(raw.name, isSafeName, () => bad('name', reasonOf(raw.name, isSafeName)));
    const network = address(raw.network, () => bad('network', reasonOf(raw.network, isValidIPv4)));
    const prefix = raw.prefix;
    if (typeof prefix !== 'number' || !Number.isInteger(prefix) || prefix < 1 || prefix > 32) {
      bad('prefix', 'expected an integer from 1 to 32');
      return;
    }
    const netmask = address(raw.netmask, () => bad('netmask', reasonOf(raw.netmask, isValidIPv4)));
    if (netmask !== null && netmask !== prefixToNetmask(prefix)) bad('netmask', `does not match prefix /${prefix} (${prefixToNetmask(prefix)})`);
    if (network === null) return;
    const networkInt = ipToInt(network);
    if (networkOf(networkInt, prefix) !== networkInt) {
      bad('network', `has host bits set for /${prefix} (the network is ${intToIp(networkOf(networkInt, prefix))})`);
      return;
    }
    const broadcastInt = broadcastOf(networkInt, prefix);
    // In a /31 or /32 every address is usable; elsewhere the network and broadcast addresses are not.
    const usable = (n: number): boolean => n >= networkInt && n <= broadcastInt && (prefix >= 31 || (n !== networkInt && n !== broadcastInt));
    const inNet = (field: string): string | null => {
      const ip = address(raw[field], () => bad(field, reasonOf(raw[field], isValidIPv4)));
      if (ip !== null && !usable(ipToInt(ip))) {
        bad(field, `is not a usable address of ${network}/${prefix}`);
        return null;
      }
      return ip;
    };
    const first = inNet('first');
    const last = inNet('last');
    if (first !== null && last !== null && ipToInt(first) > ipToInt(last)) bad('last', `comes before first ${first}`);
    let gateway: string | null = null;
    if (raw.gateway !== undefined && raw.gateway !== null) gateway = inNet('gateway');
    const dynamic = raw.dynamic ?? false;
    if (typeof dynamic !== 'boolean') bad('dynamic', 'expected true or false');
    else if (dynamic && first !== null && last !== null && ipToInt(last) - ipToInt(first) + 1 > MAX_DYNAMIC_ADDRESSES) {
      bad('last', `the dynamic node range holds ${ipToInt(last) - ipToInt(first) + 1} addresses (limit ${MAX_DYNAMIC_ADDRESSES})`);
    }
    if (problems.length > before || name === null || netmask === null || first === null || last === null) return;
    nets.push({
      name,
      network,
      prefix,
      netmask,
      first,
      last,
      gateway,
      dynamic: dynamic === true,
      networkInt,
      broadcastInt,
      firstInt: ipToInt(first),
      lastInt: ipToInt(last),
      gatewayInt: gateway === null ? null : ipToInt(gateway),
    });
  });
  nets.sort((a, b) => a.networkInt - b.networkInt || a.prefix - b.prefix);
  const names = new Set<string>();
  for (let i = 0; i < nets.length; i++) {
    const net = nets[i] as CheckedNet;
    if (names.has(net.name)) problems.push(`nets: name ${quote(net.name)} is used twice`);
    names.add(net.name);
    const next = nets[i + 1];
    // dhcpd would accept nested subnets but pick one of them per request: refuse the ambiguity.
    if (next && next.networkInt <= net.broadcastInt) {
      problems.push(`nets: ${next.name} ${next.network}/${next.prefix} overlaps ${net.name} ${net.network}/${net.prefix}`);
    }
  }
  return nets;
}

function checkHosts(value: unknown, nets: readonly CheckedNet[], problems: string[]): CheckedHost[] {
  if (!Array.isArray(value)) {
    problems.push('hosts: expected an array');
    return [];
  }
  const hosts: CheckedHost[] = [];
  const byMac = new Map<string, string>();
  const ipOwner = new Map<number, string>();
  const ipOfName = new Map<string, number>();
  const reserved = new Map<number, string>();
  for (const net of nets) {
    if (net.prefix < 31) {
      reserved.set(net.networkInt, `the network address of ${net.name}`);
      reserved.set(net.broadcastInt, `the broadcast address of ${net.name}`);
    }
    if (net.gatewayInt !== null) reserved.set(net.gatewayInt, `the gateway of ${net.name}`);
  }
  // A plain loop without per-host closures: this runs for every node on every reload.
  for (let index = 0; index < value.length; index++) {
    const raw: unknown = value[index];
    if (!isRecord(raw)) {
      problems.push(`hosts[${index}]: expected an object`);
      continue;
    }
    const { name, mac, ip } = raw;
    const nameOk = typeof name === 'string' && isSafeName(name) === true;
    const macOk = typeof mac === 'string' && isValidMac(mac) === true;
    const ipOk = typeof ip === 'string' && isValidIPv4(ip) === true;
    if (!nameOk || !macOk || !ipOk) {
      if (!nameOk) problems.push(hostProblem(index, raw, 'name', reasonOf(name, isSafeName)));
      if (!macOk) problems.push(hostProblem(index, raw, 'mac', reasonOf(mac, isValidMac)));
      if (!ipOk) problems.push(hostProblem(index, raw, 'ip', reasonOf(ip, isValidIPv4)));
      continue;
    }
    const node = name as string;
    const ipInt = ipToInt(ip as string);
    const normalMac = (mac as string).toLowerCase().replaceAll('-', ':');
    const why = reserved.get(ipInt);
    const macOwner = byMac.get(normalMac);
    const owner = ipOwner.get(ipInt);
    const earlierIp = ipOfName.get(node);
    let problem: string | null = null;
    if (why !== undefined) problem = hostProblem(index, raw, 'ip', `is ${why}`);
    else if (macOwner !== undefined) problem = hostProblem(index, raw, 'mac', `is also the MAC of ${macOwner}`);
    else if (owner !== undefined && owner !== node) problem = hostProblem(index, raw, 'ip', `is also the IP of ${owner}`);
    else if (earlierIp !== undefined && earlierIp !== ipInt) {
      problem = hostProblem(index, raw, 'ip', `differs from ${intToIp(earlierIp)} given for another MAC of ${node}`);
    }
    if (problem !== null) {
      problems.push(problem);
      continue;
    }
    byMac.set(normalMac, node);
    ipOwner.set(ipInt, node);
    ipOfName.set(node, ipInt);
    hosts.push({ name: node, mac: normalMac, ip: ip as string, ipInt });
  }
  hosts.sort((a, b) => a.ipInt - b.ipInt || (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  return hosts;
}

function hostProblem(index: number, raw: Fields, field: string, reason: string): string {
  const where = typeof raw.name === 'string' ? `hosts[${index}] ${quote(raw.name)}` : `hosts[${index}]`;
  return `${where}: ${field} ${quote(raw[field])}: ${reason}`;
}

function text(value: unknown, check: (s: string) => Check, onBad: () => void): string | null {
  if (typeof value === 'string' && check(value) === true) return value;
  onBad();
  return null;
}

function address(value: unknown, onBad: () => void): string | null {
  return text(value, isValidIPv4, onBad);
}

function reasonOf(value: unknown, check: (s: string) => Check): string {
  if (typeof value !== 'string') return 'expected a string';
  const result = check(value);
  return result === true ? 'invalid' : result;
}
