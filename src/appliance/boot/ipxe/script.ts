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
/** Console parameters every node gets before the boot config's own command line. */
export const DEFAULT_CONSOLE = 'console=tty0 console=ttyS0,115200';

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

/** The hex digits of an image's `sha256:<hex>` checksum, which the initramfs checks the download against. */
function checkChecksum(value: string | null, image: string): string {
  const m = typeof value === 'string' ? CHECKSUM_RE.exec(value) : null;
  if (!m) throw new IpxeValueError(`image ${quote(image)} has no sha256 checksum`);
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
  return ['#!ipxe', 'echo cw-headnode: asking for the boot script of ${netX/mac}', `chain --replace --autofree ${bootstrapUrl(headUrl)}/\${netX/mac}`, ''].join('\n');
}

/**
 * A script that tells the node why it cannot boot yet, waits and asks again at `url` (one of the two
 * script URLs above): never a hang, never an error page.
 */
export function renderRetryScript(reason: string, url: string): string {
  const target = checkRetryUrl(url);
  return [
    '#!ipxe',
    `echo cw-headnode: ${echoText(reason)}`,
    `echo cw-headnode: asking again in ${RETRY_SECONDS} s`,
    `sleep ${RETRY_SECONDS}`,
    `chain --replace --autofree ${target}`,
    '',
  ].join('\n');
}

function checkRetryUrl(url: string): string {
  const at = typeof url === 'string' ? url.indexOf(IPXE_PATH) : -1;
  if (at > 0) {
    const head = url.slice(0, at);
    const rest = url.slice(at + IPXE_PATH.length);
    if (rest === '') return bootstrapUrl(head);
    if (rest.startsWith('/')) return nodeScriptUrl(head, rest.slice(1));
  }
  throw new IpxeValueError(`retry URL ${quote(url)} is not a boot script URL of the head node`);
}

export interface NodeScriptInput {
  node: Pick<Node, 'uid' | 'name' | 'mac'>;
  /** The node's effective attributes (`store.resolveAttributes`). */
  resolvedAttributes: ResolvedAttributes;
  bootConfig: Pick<BootConfig, 'uid' | 'name' | 'cmdline' | 'boot_style'>;
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
    const bootUid = checkUid(input.bootConfig.uid, 'boot config');
    const imageUid = checkUid(input.image.uid, 'image');
    const sha256 = checkChecksum(input.image.checksum, input.image.name);
    const secret = input.secret ?? null;
    if (secret !== null && !isNodeSecret(secret)) throw new IpxeValueError('the node secret is not 43 base64url characters');
    const bootArgs = cmdlineArgs(input.bootConfig.cmdline ?? '', `boot config ${bootName} cmdline`);
    const own = input.resolvedAttributes._cmdline;
    const nodeArgs = own === undefined ? '' : cmdlineArgs(own.value, `_cmdline attribute of ${own.from === 'node' ? name : `group ${own.group}`}`);
    const files = `${head}/boot/${bootUid}`;
    // The MAC that asked: the initramfs brings up that NIC, not whichever answers DHCP first.
    const bootMac = checkMac(input.mac ?? input.node.mac ?? '');
    const kernelArgs = [
      'initrd=initramfs',
      `cw.node=${name}`,
      `cw.uid=${nodeUid}`,
      `cw.mac=${bootMac}`,
      `cw.head=${head}`,
      `cw.image=/images/${imageUid}.img`,
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
      `kernel ${files}/kernel ${kernelArgs.join(' ')} || goto failed`,
      `initrd --name initramfs ${files}/initramfs || goto failed`,
      'boot || goto failed',
      ':failed',
      `echo cw-headnode: ${name} could not load or start the kernel of ${bootName}, asking again in ${RETRY_SECONDS} s`,
      `sleep ${RETRY_SECONDS}`,
      `chain --replace --autofree ${retryUrl}`,
      '',
    ].join('\n');
    return { text, refused: null, style: choice.style, rw: choice.rw };
  } catch (err) {
    if (err instanceof IpxeValueError) return refuse(`${who} cannot boot: ${err.message}`);
    throw err;
  }
}
