import type { NetworkInterfaceInfo } from 'node:os';
import { inSubnet, isPrivateIPv4 } from '../../../lib/ipv4.js';
import type { CertificatePin } from '../../../lib/tls.js';

export interface AddressChoice {
  address: string;
  /** Interface (host networking) or network (named network) it belongs to. */
  via: string;
}

/** Interfaces that never face the cluster: loopback and the engines' and hypervisors' own bridges. */
const VIRTUAL_INTERFACE = /^(lo|docker\d*|podman\d*|cni-?\w*|veth\w*|virbr\w*|br-\w+|vnet\w*|flannel\S*|cali\w*|vxlan\S*|tun\d*|tap\d*|lxcbr\d*|lxdbr\d*|zt\w*|tailscale\d*|wg\d*)$/;


function rank(ip: string): number {
  if (isPrivateIPv4(ip)) return 0;
  if (inSubnet(ip, '100.64.0.0', 10)) return 1; // carrier-grade NAT space
  if (inSubnet(ip, '169.254.0.0', 16)) return 3; // link-local: only if nothing else
  return 2;
}

/**
 * The host address the cluster's nodes most likely reach the appliance at (host networking): IPv4 on a
 * physical-looking interface, private (RFC 1918) before others, in interface order. All candidates are
 * returned best first, so callers can mention the alternatives.
 */
export function rankHostAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): AddressChoice[] {
  const found: (AddressChoice & { rank: number; order: number })[] = [];
  let order = 0;
  for (const [name, addresses] of Object.entries(interfaces)) {
    if (VIRTUAL_INTERFACE.test(name)) continue;
    for (const info of addresses ?? []) {
      if (info.internal || info.family !== 'IPv4') continue;
      found.push({ address: info.address, via: name, rank: rank(info.address), order: order++ });
    }
  }
  return found.sort((x, y) => x.rank - y.rank || x.order - y.order).map(({ address, via }) => ({ address, via }));
}

/** The appliance's address on a named network (its own, not the host's). */
export function networkAddress(networks: Record<string, string>, network: string): AddressChoice | undefined {
  const address = networks[network];
  return address ? { address, via: network } : undefined;
}

export interface ToolSettings {
  address: string;
  httpsPort: number;
  user: string;
  /** The head node's certificate pin; undefined when it could not be read (then the system's CAs decide). */
  pin?: CertificatePin | undefined;
}

/** The proposed `~/.cw/settings.ini` for the cw-* tools: HTTPS, the certificate pinned by its fingerprint. */
export function renderSettings({ address, httpsPort, user, pin }: ToolSettings): string {
  const host = httpsPort === 443 ? address : `${address}:${httpsPort}`;
  return ['[ClusterWare]', `client.base_url = https://${host}/api/v1`, `client.authuser = ${user}`, `client.sslverify = ${pin ?? 'true'}`, ''].join('\n');
}

/** The user the tools will authenticate as: whoever ran sudo, else the current user, else root. */
export function invokingUser(env: NodeJS.ProcessEnv): string {
  return env.SUDO_USER || env.USER || env.LOGNAME || 'root';
}

/** What `client.authuser` cannot be guessed as: the user must put their admin name there. */
export const AUTHUSER_PLACEHOLDER = '<admin name given to add-admin>';

/** The proposed admin name, and a line explaining it when it is not certain. */
export interface AuthUserChoice {
  user: string;
  note?: string;
}

/**
 * The name the tools should authenticate as: the invoking user if they are an admin, else the only admin;
 * with no admin yet, or several others, a placeholder the user must fill. `admins` undefined means the
 * list could not be read (an older image): then the invoking user, as before.
 * Example: `chooseAuthUser(['admin1'], 'root')` → `{ user: 'admin1' }`.
 */
export function chooseAuthUser(admins: string[] | undefined, invoking: string): AuthUserChoice {
  if (admins === undefined || admins.includes(invoking)) return { user: invoking };
  if (admins.length === 1) return { user: admins[0]! };
  if (admins.length === 0) {
    return {
      user: AUTHUSER_PLACEHOLDER,
      note: 'No admin has been added yet: run cw-containerctl add-admin NAME @~/.ssh/id_ed25519.pub, then put NAME in client.authuser.',
    };
  }
  return { user: AUTHUSER_PLACEHOLDER, note: `Admins: ${admins.join(', ')}. Put yours in client.authuser.` };
}

/** Where the certificate is, for the advice under the settings block. */
export interface CertificateAdvice {
  /** Host path of `tls/server.crt` in the storage directory. */
  certFile: string;
  /** Why the pin is missing, when it is. */
  problem?: string;
}

/** Where node names are answered: the head node's DNS server (containers of older releases have none). */
function dnsAdvice(address: string, port: number): string[] {
  const at = port === 53 ? `${address}` : `${address} port ${port}`;
  const dig = port === 53 ? `dig @${address} n0` : `dig -p ${port} @${address} n0`;
  const lines = [`Node names (n0, n0.DOMAIN; cw-clusterctl --get-domain) are answered by the head node's DNS server at ${at}: ${dig}`];
  if (port !== 53) lines.push('Nodes are not told of it over DHCP: DHCP can name a DNS server on port 53 only.');
  return lines;
}

/** The advice and settings block `tool-config` prints (after seed 000's walk-through). */
export function renderToolConfig(settings: ToolSettings, alternatives: AddressChoice[] = [], note?: string, cert?: CertificateAdvice, dnsPort?: number): string {
  const lines = [
    'ClusterWare tools will attempt to contact ssh-agent to get the',
    "user's authentication key. It may be worthwhile for users to run:",
    '    eval `ssh-agent` ; ssh-add',
    '',
    'A potential ~/.cw/settings.ini file is below:',
    '',
    renderSettings(settings),
  ];
  if (note) lines.push(note, '');
  if (cert?.problem) lines.push(`The head node's certificate could not be read (${cert.problem}); put its fingerprint in client.sslverify.`, '');
  if (cert) {
    lines.push(
      `client.sslverify pins the head node's certificate (${cert.certFile}): the tools refuse any other.`,
      'Instead of the fingerprint it may name a copy of that file (client.sslverify = /path/to/server.crt),',
      'which also checks the host name. Admin credentials are refused over plain http:// from other machines.',
      '',
    );
  }
  if (dnsPort !== undefined) lines.push(...dnsAdvice(settings.address, dnsPort), '');
  if (alternatives.length > 0) {
    lines.push(`Other addresses of this host: ${alternatives.map((a) => `${a.address} (${a.via})`).join(', ')}`);
    lines.push('If the nodes reach the head node on one of those, change client.base_url accordingly.');
    lines.push('');
  }
  return lines.join('\n');
}
