// The generated part of dhcpd.conf: subnet declarations and one host entry per node MAC.
// Values are checked by checkDhcpInput (shared edge validators) and then pass through the template
// module's validators, so the text is SafeText end to end: nothing reaches the file unchecked.
import { intToIp, ipToInt, isValidIPv4, networkOf, prefixToNetmask } from '../../lib/ipv4.js';
import { isValidDomain } from '../../lib/validate.js';
import { absPath, comment, conf, dnsName, ipv4, lines, port, word, type SafeText } from '../config/template.js';
import { checkDhcpInput, DhcpModelError, type CheckedHost, type CheckedNet, type DhcpHost, type DhcpNet } from './model.js';

/** A network dhcpd listens on that is not a cluster network: declared without a pool (nothing is handed out). */
export interface ListenOnlyNet {
  network: string;
  prefix: number;
  /** Shown in the comment above the declaration, e.g. `eth1 10.54.1.1/16`. */
  note?: string;
}

export interface DhcpRenderOptions {
  /** Interfaces' networks outside every cluster network (CW_DHCP_INTERFACES, or the fallback with no cluster network). */
  listenOnly?: readonly ListenOnlyNet[];
  /** Addresses never handed out from a dynamic range, e.g. the head node's own. */
  reserved?: readonly string[];
  /** Network boot: without it the subnets carry no next-server and no boot file. */
  boot?: DhcpBootOptions;
  /** Names: without it the subnets carry no domain and no name server. */
  dns?: DhcpDnsOptions;
}

/** What nodes are told about names: the cluster's domain and the head node's DNS server. */
export interface DhcpDnsOptions {
  /** `option domain-name` and `domain-search` (the cluster's domain), or null for none. */
  domain: string | null;
  /**
   * The head node's addresses where its DNS server answers on port 53; each cluster network gets the
   * one inside it as `option domain-name-servers`. Empty when the server is on another port, which
   * DHCP cannot express.
   */
  serverAddresses: readonly string[];
}

/** Where nodes find their boot files: the head node's addresses and its HTTP port (CW_HTTP_PORT). */
export interface DhcpBootOptions {
  /**
   * The head node's own addresses; each cluster network boots from the first of them inside it
   * (`next-server` for TFTP, and the host part of the iPXE URL).
   */
  headAddresses: readonly string[];
  /** Port of the appliance's httpd (80 is left out of URLs). */
  httpPort: number;
}

/** TFTP boot files (in STORAGE/boot) by client architecture, DHCP option 93. */
export const BIOS_BOOT_FILE = 'undionly.kpxe';
export const UEFI_BOOT_FILE = 'ipxe.efi';
/** Whether a dhcpd.conf template declares `option arch` itself. */
export function declaresArchOption(templateText: string): boolean {
  return /^\s*option\s+arch\s+code\s+93\s*=/m.test(templateText);
}

/** Path of the iPXE bootstrap script on the head node's httpd. */
export const IPXE_BOOTSTRAP_PATH = '/api/v1/boot/ipxe';

export interface DhcpRenderInput {
  nets: readonly DhcpNet[];
  hosts: readonly DhcpHost[];
  options?: DhcpRenderOptions;
}

/** The two blocks the template places: `{{subnets}}` and `{{hosts}}`. */
export interface DhcpSections {
  subnets: SafeText;
  hosts: SafeText;
  /** Hosts whose IP lies in no cluster network (rendered anyway; dhcpd answers them only through a relay on such a network). */
  outsideNets: number;
}

/**
 * Renders the generated part of dhcpd.conf: subnet declarations ordered by address, then host entries
 * ordered by IP and MAC. Throws DhcpModelError on any bad value.
 * Example: renderDhcpConfig({nets: [net], hosts: [{name: 'n0', mac: '52:54:00:00:00:01', ip: '10.0.0.100'}]}).
 */
export function renderDhcpConfig(input: DhcpRenderInput): string {
  const { subnets, hosts } = renderDhcpSections(input);
  return `${subnets.text}\n\n${hosts.text}\n`;
}

/** `renderDhcpConfig` split into the template's blocks. */
export function renderDhcpSections({ nets, hosts, options = {} }: DhcpRenderInput, declareArch = false): DhcpSections {
  const checked = checkDhcpInput(nets, hosts);
  const listenOnly = checkListenOnly(options.listenOnly ?? [], checked.nets);
  const reserved = new Set(checkReserved(options.reserved ?? []));
  for (const host of checked.hosts) reserved.add(host.ipInt);
  const boot = options.boot === undefined ? null : checkBoot(options.boot);
  const dns = options.dns === undefined ? null : checkDns(options.dns);

  const subnetBlocks: Array<{ at: number; text: SafeText }> = [];
  for (const net of checked.nets) subnetBlocks.push({ at: net.networkInt, text: renderClusterNet(net, reserved, boot, dns) });
  for (const net of listenOnly) subnetBlocks.push({ at: net.networkInt, text: renderListenOnly(net) });
  subnetBlocks.sort((a, b) => a.at - b.at);

  const labels = hostLabels(checked.hosts);
  const hostLines: SafeText[] = [];
  let outsideNets = 0;
  for (let i = 0; i < checked.hosts.length; i++) {
    const host = checked.hosts[i] as CheckedHost;
    if (!inSomeNet(host.ipInt, checked.nets)) outsideNets += 1;
    hostLines.push(
      conf`host ${word(labels[i] as string)} { hardware ethernet ${word(host.mac)}; fixed-address ${ipv4(host.ip)}; option host-name "${word(host.name)}"; }`,
    );
  }
  const none = comment(checked.nets.length === 0 ? 'no cluster network defined' : 'no node has a MAC and an IP yet');
  // An admin's template copied before network boot lacks the declaration: carry it here then.
  if (declareArch && boot !== null && checked.nets.length > 0) {
    subnetBlocks.unshift({ at: -1, text: conf`# ${comment('DHCP option 93 (client architecture), missing from the template')}\n${archDeclaration()}` });
  }
  return {
    subnets: subnetBlocks.length > 0 ? lines(subnetBlocks.map((b) => b.text)) : conf`# ${none}`,
    hosts: hostLines.length > 0 ? lines(hostLines) : conf`# ${none}`,
    outsideNets,
  };
}

/** The declaration the boot file choice relies on; the built-in template carries it. */
function archDeclaration(): SafeText {
  return conf`option arch code 93 = unsigned integer 16;`;
}

function inSomeNet(ip: number, nets: readonly CheckedNet[]): boolean {
  for (const net of nets) if (ip >= net.networkInt && ip <= net.broadcastInt) return true;
  return false;
}

function renderClusterNet(net: CheckedNet, reserved: ReadonlySet<number>, boot: CheckedBoot | null, dns: CheckedDns | null): SafeText {
  const body: SafeText[] = [];
  if (net.gateway !== null) body.push(conf`  option routers ${ipv4(net.gateway)};`);
  if (dns !== null) body.push(...renderDns(net, dns));
  if (boot !== null) body.push(...renderBoot(net, boot));
  if (net.dynamic) {
    const ranges = freeRanges(net, reserved);
    for (const [from, to] of ranges) body.push(conf`  range ${ipv4(intToIp(from))} ${ipv4(intToIp(to))};`);
    if (ranges.length === 0) body.push(conf`  # dynamic, but every address of the node range is taken`);
  }
  const head = comment(`cluster network ${net.name}: ${net.network}/${net.prefix}, node range ${net.first} - ${net.last}${net.dynamic ? ', dynamic' : ''}`);
  return lines([conf`# ${head}`, conf`subnet ${ipv4(net.network)} netmask ${ipv4(net.netmask)} {`, ...body, conf`}`]);
}

function renderListenOnly(net: CheckedListenOnly): SafeText {
  const head = comment(`${net.note ? `${net.note}: ` : ''}listen only, not a cluster network (nothing is handed out)`);
  return lines([conf`# ${head}`, conf`subnet ${ipv4(net.network)} netmask ${ipv4(prefixToNetmask(net.prefix))} {`, conf`}`]);
}

interface CheckedDns {
  domain: string | null;
  servers: Array<{ ip: string; ipInt: number }>;
}

function checkDns(dns: DhcpDnsOptions): CheckedDns {
  const problems: string[] = [];
  if (dns.domain !== null && (typeof dns.domain !== 'string' || isValidDomain(dns.domain) !== true)) {
    problems.push(`options.dns.domain: ${JSON.stringify(dns.domain)} is not a DNS domain`);
  }
  const servers: CheckedDns['servers'] = [];
  for (const a of dns.serverAddresses) {
    if (typeof a !== 'string' || isValidIPv4(a) !== true) problems.push(`options.dns.serverAddresses: ${JSON.stringify(a)} is not an IPv4 address`);
    else servers.push({ ip: a, ipInt: ipToInt(a) });
  }
  if (problems.length > 0) throw new DhcpModelError(problems, 'DHCP render options');
  return { domain: dns.domain, servers };
}

/** The cluster's domain, and the head node's address on this network as the name server. */
function renderDns(net: CheckedNet, dns: CheckedDns): SafeText[] {
  const out: SafeText[] = [];
  if (dns.domain !== null) out.push(conf`  option domain-name "${dnsName(dns.domain)}";`, conf`  option domain-search "${dnsName(dns.domain)}";`);
  const server = dns.servers.find((h) => h.ipInt >= net.networkInt && h.ipInt <= net.broadcastInt);
  if (server) out.push(conf`  option domain-name-servers ${ipv4(server.ip)};`);
  return out;
}

interface CheckedBoot {
  heads: Array<{ ip: string; ipInt: number }>;
  port: number;
}

function checkBoot(boot: DhcpBootOptions): CheckedBoot {
  const problems: string[] = [];
  const heads: CheckedBoot['heads'] = [];
  for (const a of boot.headAddresses) {
    if (typeof a !== 'string' || isValidIPv4(a) !== true) problems.push(`options.boot.headAddresses: ${JSON.stringify(a)} is not an IPv4 address`);
    else heads.push({ ip: a, ipInt: ipToInt(a) });
  }
  if (!Number.isInteger(boot.httpPort) || boot.httpPort < 1 || boot.httpPort > 65535) {
    problems.push(`options.boot.httpPort: ${JSON.stringify(boot.httpPort)} is not a port (1-65535)`);
  }
  if (problems.length > 0) throw new DhcpModelError(problems, 'DHCP render options');
  return { heads, port: boot.httpPort };
}

/**
 * next-server and the boot file of a cluster network (docs/BOOT.md, "The boot chain"): iPXE itself
 * (user-class "iPXE") gets the HTTP bootstrap URL, UEFI firmware (option 93 = 7 or 9) ipxe.efi, and
 * BIOS and everything else undionly.kpxe, both over TFTP from the head node's address on this network.
 */
function renderBoot(net: CheckedNet, boot: CheckedBoot): SafeText[] {
  const head = boot.heads.find((h) => h.ipInt >= net.networkInt && h.ipInt <= net.broadcastInt);
  if (!head) return [conf`  # no network boot: the head node has no address on this network`];
  const url = conf`http://${ipv4(head.ip)}${boot.port === 80 ? conf`` : conf`:${port(boot.port)}`}${absPath(IPXE_BOOTSTRAP_PATH)}`;
  return [
    conf`  next-server ${ipv4(head.ip)};`,
    conf`  if exists user-class and option user-class = "iPXE" {`,
    conf`    filename "${url}";`,
    conf`  } elsif option arch = 00:07 or option arch = 00:09 {`,
    conf`    filename "${word(UEFI_BOOT_FILE)}";`,
    conf`  } else {`,
    conf`    filename "${word(BIOS_BOOT_FILE)}";`,
    conf`  }`,
  ];
}

/** The addresses of first..last not taken by a node, the gateway or `reserved`, as [from, to] runs. */
export function freeRanges(net: Pick<CheckedNet, 'firstInt' | 'lastInt' | 'gatewayInt'>, reserved: ReadonlySet<number>): Array<[number, number]> {
  const taken: number[] = [];
  for (const ip of reserved) if (ip >= net.firstInt && ip <= net.lastInt) taken.push(ip);
  if (net.gatewayInt !== null && net.gatewayInt >= net.firstInt && net.gatewayInt <= net.lastInt) taken.push(net.gatewayInt);
  taken.sort((a, b) => a - b);
  const ranges: Array<[number, number]> = [];
  let next = net.firstInt;
  for (const ip of taken) {
    if (ip > next) ranges.push([next, ip - 1]);
    if (ip >= next) next = ip + 1;
  }
  if (next <= net.lastInt) ranges.push([next, net.lastInt]);
  return ranges;
}

/**
 * dhcpd host declaration names: unique (dhcpd refuses a name declared twice) and unquoted, so made of
 * dot-separated words starting with a letter or digit. A node with several MACs gets its name on the
 * first entry and `NAME-MAC` on the others; names dhcpd would misread have other characters replaced.
 */
export function hostLabels(hosts: readonly Pick<CheckedHost, 'name' | 'mac'>[]): string[] {
  const used = new Set<string>();
  return hosts.map((host) => {
    let label = LABEL_RE.test(host.name) ? host.name : host.name.replace(/[^A-Za-z0-9_-]/g, '-');
    // Rare (a second MAC of a node, or two names that read the same): add the MAC, staying within 64 characters.
    for (let n = 1; used.has(label); n++) {
      const suffix = `-${host.mac.replaceAll(':', '')}${n > 1 ? `-${n}` : ''}`;
      label = host.name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, MAX_LABEL - suffix.length) + suffix;
    }
    used.add(label);
    return label;
  });
}

const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9][A-Za-z0-9_-]*)*$/;
const MAX_LABEL = 64;

interface CheckedListenOnly {
  network: string;
  prefix: number;
  note: string | undefined;
  networkInt: number;
}

function checkListenOnly(nets: readonly ListenOnlyNet[], cluster: readonly CheckedNet[]): CheckedListenOnly[] {
  const problems: string[] = [];
  const out: CheckedListenOnly[] = [];
  const seen = new Set<string>();
  for (const [i, net] of nets.entries()) {
    const at = `options.listenOnly[${i}]`;
    if (typeof net.network !== 'string' || isValidIPv4(net.network) !== true) {
      problems.push(`${at}: network ${JSON.stringify(net.network)} is not an IPv4 address`);
      continue;
    }
    if (!Number.isInteger(net.prefix) || net.prefix < 1 || net.prefix > 32) {
      problems.push(`${at}: prefix ${JSON.stringify(net.prefix)} is not an integer from 1 to 32`);
      continue;
    }
    if (net.note !== undefined) comment(net.note);
    const networkInt = networkOf(net.network, net.prefix);
    const key = `${networkInt}/${net.prefix}`;
    const lastInt = networkInt + 2 ** (32 - net.prefix) - 1;
    // A cluster network already covers it, or would be shadowed by it: leave it out.
    if (seen.has(key) || cluster.some((c) => c.networkInt <= lastInt && networkInt <= c.broadcastInt)) continue;
    seen.add(key);
    out.push({ network: intToIp(networkInt), prefix: net.prefix, note: net.note, networkInt });
  }
  if (problems.length > 0) throw new DhcpModelError(problems, 'DHCP render options');
  return out;
}

function checkReserved(addresses: readonly string[]): number[] {
  const bad = addresses.filter((a) => typeof a !== 'string' || isValidIPv4(a) !== true);
  if (bad.length > 0) throw new DhcpModelError(bad.map((a) => `options.reserved: ${JSON.stringify(a)} is not an IPv4 address`), 'DHCP render options');
  return addresses.map(ipToInt);
}
