// iPXE scripts served to booting nodes (docs/BOOT.md, "The boot chain"). Pure text rendering: every value
// is checked again here, whatever checked it before, because iPXE expands `${...}` and runs `||`/`&&`
// on any line, so a stray character in a name or command line would change what the node does.
import { isSafeCmdline, isSafeName, isValidMac, normalizeMac } from '../../../lib/validate.js';
import type { BootConfig, Image } from '../../db/collections.js';
import type { Node, ResolvedAttributes } from '../../db/nodes.js';
import { isNodeSecret, SECRET_PARAM } from '../node-secret.js';
import { resolveBootStyle, type RwLayer } from './style.js';
import type { BootStyle } from '../../db/fields.js';

/** Where the API serves the scripts, below the head node's URL. */
export const IPXE_PATH = '/api/v1/boot/ipxe';
/** Seconds a node waits before asking again after a refusal. */
export const RETRY_SECONDS = 30;
/**
 * How long iPXE waits for a download to make progress. A head that dies mid-download sends nothing more
 * and iPXE, only receiving, would wait for ever: with this the download fails and the script fails over.
 */
export const DOWNLOAD_TIMEOUT_MS = 60_000;
/** Console parameters every node gets before the boot config's own command line. */
export const DEFAULT_CONSOLE = 'console=tty0 console=ttyS0,115200';
/** iPXE's MAC of the NIC it opened last: the one that booted. */
const NETX_MAC = '${netX/mac}';
/** The server address of the booting NIC's last DHCP answer (`next-server`): the head node that answered. */
const NEXT_SERVER = '${netX/next-server}';
/** Labels of the failover lines (failoverLines): the first is where a script goes when its head node does not answer. */
const FAILOVER_LABEL = 'failover';
const FAILOVER_DHCP_LABEL = 'failover_dhcp';
const FAILOVER_WAIT_LABEL = 'failover_wait';

/** A value that may not go into an iPXE script; the message says which and why. */
export class IpxeValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IpxeValueError';
  }
}

// ---------------------------------------------------------------------------------------------------
// Checks of the values a script is made of

const HOST_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOST_RE = new RegExp(`^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9A-Fa-f:.]{2,45}\\])(?::([0-9]{1,5}))?$`);

/**
 * The head node's URL as a booting node reaches it, from a `Host` header (`10.0.0.1:8080`), or null when
 * the header is not a plain host[:port]. Example: headUrlOf('10.0.0.1:8080') → 'http://10.0.0.1:8080'.
 */
export function headUrlOf(host: string | undefined): string | null {
  if (typeof host !== 'string' || host.length > 260) return null;
  const m = HOST_RE.exec(host);
  if (!m) return null;
  if (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65535)) return null;
  return `http://${host.toLowerCase()}`;
}

function checkHeadUrl(url: string): string {
  if (typeof url !== 'string' || !url.startsWith('http://') || headUrlOf(url.slice('http://'.length)) !== url) {
    throw new IpxeValueError(`head URL ${quote(url)} is not http://HOST[:PORT]`);
  }
  return url;
}

const UID_RE = /^[0-9a-f]{32}$/;
const CHECKSUM_RE = /^sha256:([0-9a-f]{64})$/;

/**
 * The hex digits of a `sha256:<hex>` checksum: the file's name on every head (`/blobs/<hex>`) and, for an
 * image, what the initramfs checks the download against.
 */
function checkChecksum(value: string | null | undefined, what: string): string {
  const m = typeof value === 'string' ? CHECKSUM_RE.exec(value) : null;
  if (!m) throw new IpxeValueError(`${what} has no sha256 checksum`);
  return m[1] as string;
}

function checkUid(value: string, what: string): string {
  if (typeof value !== 'string' || !UID_RE.test(value)) throw new IpxeValueError(`${what} uid ${quote(value)} is not 32 hex digits`);
  return value;
}

function checkName(value: string, what: string): string {
  const check = typeof value === 'string' ? isSafeName(value) : 'not a string';
  if (check !== true) throw new IpxeValueError(`${what} name ${quote(value)}: ${check}`);
  return value;
}

function checkMac(value: string): string {
  const mac = typeof value === 'string' && isValidMac(value) === true ? normalizeMac(value) : null;
  if (mac === null) throw new IpxeValueError(`${quote(value)} is not a MAC address`);
  return mac;
}

/**
 * Kernel arguments: a safe command line (isSafeCmdline, the same check the API applies when the value is
 * written: no iPXE special characters either), whitespace collapsed.
 * Example: cmdlineArgs('quiet  loglevel=3', 'cmdline') → 'quiet loglevel=3'.
 */
export function cmdlineArgs(value: string, what: string): string {
  if (typeof value !== 'string') throw new IpxeValueError(`${what} is not a string`);
  const check = isSafeCmdline(value);
  if (check !== true) throw new IpxeValueError(`${what}: ${check}`);
  return value.trim().split(/\s+/).filter(Boolean).join(' ');
}

/**
 * Text for `echo`: one line of inert characters, at most 300; quotes are dropped and anything else iPXE
 * could interpret (`$`, `|`, `&`, `#`, control characters) becomes `?`.
 */
export function echoText(text: string): string {
  return String(text)
    .replace(/["'`]/g, '')
    .replace(/[^A-Za-z0-9 .,:_/=()+@!?\[\]-]/g, '?')
    .slice(0, 300);
}

function quote(value: unknown): string {
  return JSON.stringify(typeof value === 'string' ? value.replace(/[^\x20-\x7e]/g, '?').slice(0, 64) : value) ?? String(value);
}

// ---------------------------------------------------------------------------------------------------
// Scripts

/** URL of a node's script, e.g. `http://10.0.0.1/api/v1/boot/ipxe/52:54:00:00:00:01`. */
export function nodeScriptUrl(headUrl: string, mac: string): string {
  return `${checkHeadUrl(headUrl)}${IPXE_PATH}/${checkMac(mac)}`;
}

/** URL of the bootstrap script, the one dhcpd hands to iPXE. */
export function bootstrapUrl(headUrl: string): string {
  return `${checkHeadUrl(headUrl)}${IPXE_PATH}`;
}

/**
 * The script dhcpd points iPXE at: it asks for the script of the NIC that booted (`netX` is the network
 * device iPXE opened last, the one that got the DHCP answer, also on nodes with several NICs).
 */
export function renderBootstrapScript(headUrl: string): string {
  return [
    '#!ipxe',
    `echo cw-headnode: asking for the boot script of ${NETX_MAC}`,
    `chain --replace --autofree ${bootstrapUrl(headUrl)}/${NETX_MAC} || goto ${FAILOVER_LABEL}`,
    ...failoverLines(headUrl, `/${NETX_MAC}`),
    '',
  ].join('\n');
}

/**
 * A script that tells the node why it cannot boot yet, waits and asks again at `url` (one of the two
 * script URLs above): never a hang, never an error page.
 */
export function renderRetryScript(reason: string, url: string): string {
  return ['#!ipxe', `echo cw-headnode: ${echoText(reason)}`, ...retryLines(`asking again in ${RETRY_SECONDS} s`, url), ''].join('\n');
}

/** A script URL split into the head node's URL and the part after IPXE_PATH (`''` or `/MAC`), both checked. */
interface RetryTarget {
  head: string;
  rest: string;
}

function checkRetryUrl(url: string): RetryTarget {
  const at = typeof url === 'string' ? url.indexOf(IPXE_PATH) : -1;
  if (at > 0) {
    const head = url.slice(0, at);
    const rest = url.slice(at + IPXE_PATH.length);
    if (rest === '') return { head: checkHeadUrl(head), rest };
    if (rest.startsWith('/')) return { head: checkHeadUrl(head), rest: `/${checkMac(rest.slice(1))}` };
  }
  throw new IpxeValueError(`retry URL ${quote(url)} is not a boot script URL of the head node`);
}

// ---------------------------------------------------------------------------------------------------
// Failover: several head nodes share one database, so any of them can serve any node. A node whose
// head node went away (killed, its host down) asks DHCP again and goes on with whichever head answers.

/**
 * `http://${netX/next-server}` with the port of `headUrl`, if it has one: the head node that answered the
 * booting NIC's last DHCP request (each head node's dhcpd names itself as next-server; the head nodes of
 * a cluster serve HTTP on the same port).
 * Example: nextServerUrl('http://10.0.0.1:8080') → 'http://${netX/next-server}:8080'.
 */
export function nextServerUrl(headUrl: string): string {
  const port = HOST_RE.exec(checkHeadUrl(headUrl).slice('http://'.length))?.[1];
  return `http://${NEXT_SERVER}${port === undefined ? '' : `:${port}`}`;
}

/**
 * Wait, ask again at `url` (a script URL of the head node) and, when that head node does not answer,
 * fail over (failoverLines). `what` tells the console what happens next.
 */
function retryLines(what: string, url: string): string[] {
  const target = checkRetryUrl(url);
  return [
    `echo cw-headnode: ${echoText(what)}`,
    `sleep ${RETRY_SECONDS}`,
    `chain --replace --autofree ${target.head}${IPXE_PATH}${target.rest} || goto ${FAILOVER_LABEL}`,
    ...failoverLines(target.head, target.rest),
  ];
}

/**
 * The end of every script: reached when `headUrl` does not answer. DHCP again on the NIC that booted and
 * chain the same script (IPXE_PATH + `rest`) from the head node that answered; when none does, wait and
 * start over. The script never ends, so the firmware never gives up while one head node is left.
 */
function failoverLines(headUrl: string, rest: string): string[] {
  const head = checkHeadUrl(headUrl);
  if (rest !== '' && rest !== `/${NETX_MAC}` && !/^\/[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/.test(rest)) {
    throw new IpxeValueError(`script path ${quote(rest)} is neither the bootstrap script's nor a node's`);
  }
  return [
    `:${FAILOVER_LABEL}`,
    `echo cw-headnode: no script from ${echoText(head)}, asking DHCP for a head node that answers`,
    `:${FAILOVER_DHCP_LABEL}`,
    `dhcp netX || goto ${FAILOVER_WAIT_LABEL}`,
    `echo cw-headnode: asking head node ${NEXT_SERVER}`,
    `chain --replace --autofree ${nextServerUrl(head)}${IPXE_PATH}${rest} || goto ${FAILOVER_WAIT_LABEL}`,
    `:${FAILOVER_WAIT_LABEL}`,
    `echo cw-headnode: no script from any head node, asking DHCP again in ${RETRY_SECONDS} s`,
    `sleep ${RETRY_SECONDS}`,
    `goto ${FAILOVER_DHCP_LABEL}`,
  ];
}

export interface NodeScriptInput {
  node: Pick<Node, 'uid' | 'name' | 'mac'>;
  /** The node's effective attributes (`store.resolveAttributes`). */
  resolvedAttributes: ResolvedAttributes;
  bootConfig: Pick<BootConfig, 'uid' | 'name' | 'cmdline' | 'boot_style' | 'kernel' | 'initramfs'>;
  image: Pick<Image, 'uid' | 'name' | 'checksum'>;
  /** `http://HEAD[:PORT]` as the node reaches the head node. */
  headUrl: string;
  /** The MAC the node asked with (default: its boot MAC): a retry asks for the same URL. */
  mac?: string;
  /**
   * This boot's node secret (`cw.secret=`), or null when the script goes to an address that is not the
   * node's own: the node then boots but its reports are refused (docs/BOOT.md, "Node secrets").
   */
  secret?: string | null;
  /** Why there is no secret, as the script tells the node (default `elsewhere`: asked for from another address). */
  noSecret?: NoSecret;
}

/** Why a script carries no node secret: asked for from another address, or the head could not store one. */
export type NoSecret = 'elsewhere' | 'unstored';

export interface NodeScript {
  text: string;
  /** Why the node is not booted (the script says so and retries), or null when it boots. */
  refused: string | null;
  style: BootStyle | null;
  rw: RwLayer | null;
}

/**
 * The per-node script: kernel and initramfs of the node's boot config with the `cw.*` parameters the
 * initramfs reads, or a retry script when the style is not supported or a value is not safe.
 * Example: renderNodeScript({node, resolvedAttributes, bootConfig, image, headUrl: 'http://10.0.0.1'}).text
 */
const NO_SECRET_REASONS: Record<NoSecret, (name: string) => string> = {
  elsewhere: (name) => `this script was not asked for from the address of ${name}`,
  unstored: () => 'the head node could not store one (its database takes no changes now)',
};

export function renderNodeScript(input: NodeScriptInput): NodeScript {
  const retryUrl = nodeScriptUrl(input.headUrl, input.mac ?? input.node.mac ?? '');
  const refuse = (reason: string): NodeScript => ({ text: renderRetryScript(reason, retryUrl), refused: reason, style: null, rw: null });
  const choice = resolveBootStyle(input.resolvedAttributes, input.bootConfig.boot_style);
  const who = typeof input.node.name === 'string' && isSafeName(input.node.name) === true ? input.node.name : 'this node';
  if (!choice.ok) return refuse(`${who}: ${choice.reason}`);
  try {
    const head = checkHeadUrl(input.headUrl);
    const name = checkName(input.node.name, 'node');
    const nodeUid = checkUid(input.node.uid, 'node');
    const bootName = checkName(input.bootConfig.name, 'boot config');
    checkUid(input.bootConfig.uid, 'boot config');
    checkUid(input.image.uid, 'image');
    const kernel = checkChecksum(input.bootConfig.kernel?.checksum, `the kernel of boot config ${quote(bootName)}`);
    const initramfs = checkChecksum(input.bootConfig.initramfs?.checksum, `the initramfs of boot config ${quote(bootName)}`);
    const sha256 = checkChecksum(input.image.checksum, `image ${quote(input.image.name)}`);
    const secret = input.secret ?? null;
    if (secret !== null && !isNodeSecret(secret)) throw new IpxeValueError('the node secret is not 43 base64url characters');
    const bootArgs = cmdlineArgs(input.bootConfig.cmdline ?? '', `boot config ${bootName} cmdline`);
    const own = input.resolvedAttributes._cmdline;
    const nodeArgs = own === undefined ? '' : cmdlineArgs(own.value, `_cmdline attribute of ${own.from === 'node' ? name : `group ${own.group}`}`);
    // Files by content: whichever head answers, these names can only be these bytes.
    const blobs = `${head}/blobs`;
    // The MAC that asked: the initramfs brings up that NIC, not whichever answers DHCP first.
    const bootMac = checkMac(input.mac ?? input.node.mac ?? '');
    const kernelArgs = [
      'initrd=initramfs',
      `cw.node=${name}`,
      `cw.uid=${nodeUid}`,
      `cw.mac=${bootMac}`,
      `cw.head=${head}`,
      `cw.image=/blobs/${sha256}`,
      `cw.sha256=${sha256}`,
      `cw.style=${choice.style}`,
      `cw.rw=${choice.rw}`,
      secret === null ? '' : `${SECRET_PARAM}=${secret}`,
      DEFAULT_CONSOLE,
      bootArgs,
      nodeArgs,
    ].filter((a) => a !== '');
    const text = [
      '#!ipxe',
      `echo cw-headnode: ${name} boots ${bootName} (${choice.style})`,
      ...(secret === null ? [`echo cw-headnode: no node secret: ${NO_SECRET_REASONS[input.noSecret ?? 'elsewhere'](name)}, so its reports will be refused`] : []),
      `kernel --timeout ${DOWNLOAD_TIMEOUT_MS} ${blobs}/${kernel} ${kernelArgs.join(' ')} || goto failed`,
      `initrd --name initramfs --timeout ${DOWNLOAD_TIMEOUT_MS} ${blobs}/${initramfs} || goto failed`,
      'boot || goto failed',
      ':failed',
      ...retryLines(`${name} could not load or start the kernel of ${bootName}, asking again in ${RETRY_SECONDS} s`, retryUrl),
      '',
    ].join('\n');
    return { text, refused: null, style: choice.style, rw: choice.rw };
  } catch (err) {
    if (err instanceof IpxeValueError) return refuse(`${who} cannot boot: ${err.message}`);
    throw err;
  }
}
