// A node's power_uri, parsed into the plugin that runs it, and shown with its password masked.
//
//   ipmi:///USER:PASS@BMC[:PORT]            an IPMI 2.0 (RMCP+) session from the appliance itself
//   ipmi://[RUSER@]RELAY/USER:PASS@BMC      ipmitool on RELAY, reached over ssh with the appliance's key
//   redfish://USER:PASS@BMC[:PORT][/redfish/v1/Systems/ID]   (redfish+http:// without TLS)
//   libvirt://[USER@]HOST/DOMAIN            virsh on HOST over ssh (libvirt:///DOMAIN: here)
//   vbox://[USER@]HOST/VM                   VBoxManage on HOST over ssh (vbox:///VM: here)
//
// Characters a URI cannot hold literally (`@`, `/`, `:` in a user name; anything outside the power_uri
// character set in a password) are written as %XX escapes: `ipmi:///admin:p%24ss@10.0.0.1` is the
// password `p$ss`. Error messages never contain the password, nor the text it was parsed from.

/** The password shown in listings in place of the real one. */
export const MASK = '********';

export interface IpmiTarget {
  scheme: 'ipmi';
  bmc: string;
  /** UDP port of the BMC (default 623). */
  port?: number;
  user: string;
  password: string;
  /** Run ipmitool on this host, over ssh. */
  relay?: SshHost;
}

export interface RedfishTarget {
  scheme: 'redfish' | 'redfish+http';
  host: string;
  port?: number;
  user: string;
  password: string;
  /** `/redfish/v1/Systems/ID`; when absent, the service's only system. */
  systemPath?: string;
}

export interface LibvirtTarget {
  scheme: 'libvirt';
  /** Where virsh runs; absent: on the appliance. */
  host?: SshHost;
  domain: string;
}

export interface VboxTarget {
  scheme: 'vbox';
  /** Where VBoxManage runs; absent: on the appliance. */
  host?: SshHost;
  vm: string;
}

export interface SshHost {
  host: string;
  user?: string;
}

export type PowerTarget = IpmiTarget | RedfishTarget | LibvirtTarget | VboxTarget;

export const POWER_SCHEMES = ['ipmi', 'redfish', 'redfish+http', 'libvirt', 'vbox'] as const;

/** A power_uri that cannot be used; the message names the part that is wrong, never the password. */
export class PowerUriError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PowerUriError';
  }
}

/** A parsed power_uri and where its password sits in the text (for masking). */
export interface ParsedPowerUri {
  target: PowerTarget;
  /** `[start, end)` of the password in the original text, when there is one. */
  secret?: readonly [number, number];
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?';
/** A host name (an ssh alias like `remote_server` too) or IPv4 address; never starts with `-`, so it cannot read as an option of ssh or ipmitool. */
const HOST_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const PORT_RE = /^[0-9]{1,5}$/;
/** Login names on a relay or hypervisor host. */
const LOGIN_RE = /^[A-Za-z_][A-Za-z0-9._-]{0,31}$/;
/** Libvirt domains and VirtualBox VMs. */
const VM_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/;
const SYSTEM_PATH_RE = /^\/redfish\/v1\/Systems\/[A-Za-z0-9._-]{1,128}$/;
const CONTROL_RE = /[\p{C}\p{Zl}\p{Zp}]/u;

const EXAMPLES: Record<string, string> = {
  ipmi: 'ipmi:///admin:password@10.0.0.1 or ipmi://relay/admin:password@10.0.0.1',
  redfish: 'redfish://admin:password@10.0.0.1/redfish/v1/Systems/1',
  'redfish+http': 'redfish+http://admin:password@10.0.0.1:8000',
  libvirt: 'libvirt://kvmhost/n0',
  vbox: 'vbox://192.168.56.1/CW_Compute0',
};

function fail(scheme: string, reason: string): never {
  const example = EXAMPLES[scheme];
  throw new PowerUriError(`${reason}${example ? ` (e.g. ${example})` : ''}`);
}

function host(scheme: string, text: string, what: string): string {
  if (text === '') fail(scheme, `${scheme}: the ${what} is missing`);
  if (text.length > 253 || !HOST_RE.test(text)) fail(scheme, `${scheme}: invalid ${what} ${JSON.stringify(clip(text))}: expected a host name or IPv4 address`);
  return text;
}

function port(scheme: string, text: string): number {
  const n = PORT_RE.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1 && n <= 65535)) fail(scheme, `${scheme}: invalid port ${JSON.stringify(clip(text))}: expected 1 to 65535`);
  return n;
}

/** `HOST[:PORT]`. */
function hostPort(scheme: string, text: string, what: string): { host: string; port?: number } {
  const colon = text.lastIndexOf(':');
  if (colon === -1) return { host: host(scheme, text, what) };
  return { host: host(scheme, text.slice(0, colon), what), port: port(scheme, text.slice(colon + 1)) };
}

/** `[USER@]HOST` of an ssh login (no password: the appliance logs in with its key). */
function sshHost(scheme: string, text: string, what: string): SshHost {
  const at = text.lastIndexOf('@');
  if (at === -1) return { host: host(scheme, text, what) };
  const user = text.slice(0, at);
  if (user.includes(':')) fail(scheme, `${scheme}: a password for the ${what} is not supported: the appliance logs in with its ssh key`);
  if (!LOGIN_RE.test(user)) fail(scheme, `${scheme}: invalid user ${JSON.stringify(clip(user))} for the ${what}`);
  return { user, host: host(scheme, text.slice(at + 1), what) };
}

function decode(scheme: string, text: string, what: string): string {
  let value: string;
  try {
    value = decodeURIComponent(text);
  } catch {
    fail(scheme, `${scheme}: the ${what} has an invalid %-escape`);
  }
  if (CONTROL_RE.test(value)) fail(scheme, `${scheme}: the ${what} contains a control character`);
  return value;
}

/**
 * `USER:PASS@HOST...` starting at `offset` of the original text: the decoded user and password, the
 * password's span, and what follows the `@`.
 */
function credentials(scheme: string, text: string, offset: number): { user: string; password: string; secret: [number, number]; rest: string } {
  const at = text.lastIndexOf('@');
  const colon = text.indexOf(':');
  if (at === -1 || colon === -1 || colon > at) fail(scheme, `${scheme}: expected USER:PASSWORD@ before the BMC address`);
  const user = decode(scheme, text.slice(0, colon), 'user name');
  if (user === '' || user.length > 64) fail(scheme, `${scheme}: the user name must have 1 to 64 characters`);
  const password = decode(scheme, text.slice(colon + 1, at), 'password');
  if (password === '') fail(scheme, `${scheme}: the password is empty`);
  if (password.length > 128) fail(scheme, `${scheme}: the password is longer than 128 characters`);
  return { user, password, secret: [offset + colon + 1, offset + at], rest: text.slice(at + 1) };
}

/**
 * Parses a power_uri. Throws PowerUriError for anything that is not one of the forms above.
 * Example: `parsePowerTarget('ipmi:///admin:pw@10.1.15.1').target` is
 * `{ scheme: 'ipmi', bmc: '10.1.15.1', user: 'admin', password: 'pw' }`.
 */
export function parsePowerTarget(uri: string): ParsedPowerUri {
  const sep = uri.indexOf('://');
  const scheme = sep === -1 ? '' : uri.slice(0, sep).toLowerCase();
  if (!(POWER_SCHEMES as readonly string[]).includes(scheme)) {
    throw new PowerUriError(`unknown power URI scheme${sep === -1 ? '' : ` "${clip(uri.slice(0, sep))}"`}: expected ${POWER_SCHEMES.map((s) => `${s}://`).join(', ')}`);
  }
  const start = sep + 3;
  const body = uri.slice(start);
  const slash = body.indexOf('/');
  const authority = slash === -1 ? body : body.slice(0, slash);
  const path = slash === -1 ? '' : body.slice(slash);

  switch (scheme) {
    case 'ipmi': {
      if (slash === -1) fail(scheme, 'ipmi: expected ipmi:///USER:PASSWORD@BMC (three slashes) or ipmi://RELAY/USER:PASSWORD@BMC');
      const relay = authority === '' ? undefined : sshHost(scheme, authority, 'relay host');
      const rest = path.slice(1);
      if (rest.includes('/')) fail(scheme, 'ipmi: a / in the user name or password must be written as %2F');
      const cred = credentials(scheme, rest, start + slash + 1);
      // IPMI 2.0's limits (the RAKP user name field, the 20-byte key): a longer one could never log in.
      if (Buffer.byteLength(cred.user) > 16) fail(scheme, 'ipmi: the user name is longer than 16 bytes, the IPMI limit');
      if (Buffer.byteLength(cred.password) > 20) fail(scheme, 'ipmi: the password is longer than 20 bytes, the IPMI 2.0 limit');
      const bmc = hostPort(scheme, cred.rest, 'BMC address');
      if (relay && bmc.port !== undefined) fail(scheme, 'ipmi: a BMC port is only supported without a relay host');
      const target: IpmiTarget = { scheme, bmc: bmc.host, user: cred.user, password: cred.password };
      if (bmc.port !== undefined) target.port = bmc.port;
      if (relay) target.relay = relay;
      return { target, secret: cred.secret };
    }
    case 'redfish':
    case 'redfish+http': {
      const cred = credentials(scheme, authority, start);
      const where = hostPort(scheme, cred.rest, 'BMC address');
      const target: RedfishTarget = { scheme, host: where.host, user: cred.user, password: cred.password };
      if (where.port !== undefined) target.port = where.port;
      if (path !== '' && path !== '/') {
        if (!SYSTEM_PATH_RE.test(path)) fail(scheme, `${scheme}: the path must be /redfish/v1/Systems/ID, not ${JSON.stringify(clip(path))}`);
        target.systemPath = path;
      }
      return { target, secret: cred.secret };
    }
    case 'libvirt':
    case 'vbox': {
      const what = scheme === 'libvirt' ? 'domain' : 'VM name';
      if (slash === -1 || path.length < 2) fail(scheme, `${scheme}: the ${what} is missing`);
      const name = path.slice(1);
      if (!VM_NAME_RE.test(name)) fail(scheme, `${scheme}: invalid ${what} ${JSON.stringify(clip(name))}: use letters, digits and . _ + - (at most 128)`);
      const at = authority === '' ? undefined : sshHost(scheme, authority, 'host');
      if (scheme === 'libvirt') return { target: at ? { scheme, host: at, domain: name } : { scheme, domain: name } };
      return { target: at ? { scheme, host: at, vm: name } : { scheme, vm: name } };
    }
  }
  /* c8 ignore next */
  throw new PowerUriError('unreachable');
}

/**
 * The power_uri as listings show it: the password replaced by `********`. A value that does not parse
 * (stored by an older version) keeps only its scheme: `ipmi://********`.
 * Example: `redactPowerUri('ipmi:///admin:s3cret@10.1.15.1')` is `ipmi:///admin:********@10.1.15.1`.
 */
export function redactPowerUri(uri: string): string {
  let parsed: ParsedPowerUri;
  try {
    parsed = parsePowerTarget(uri);
  } catch {
    const sep = uri.indexOf('://');
    return /^[a-z][a-z0-9+.-]{0,15}$/i.test(uri.slice(0, Math.max(sep, 0))) ? `${uri.slice(0, sep)}://${MASK}` : MASK;
  }
  if (!parsed.secret) return uri;
  const [from, to] = parsed.secret;
  return `${uri.slice(0, from)}${MASK}${uri.slice(to)}`;
}

/** Where the plugin's commands go, for messages: `BMC 10.1.15.7`, `relay r1 (BMC 10.1.15.7)`, `host kvm1`. */
export function describeTarget(target: PowerTarget): string {
  switch (target.scheme) {
    case 'ipmi':
      return target.relay ? `BMC ${target.bmc} (through ${target.relay.host})` : `BMC ${target.bmc}`;
    case 'redfish':
    case 'redfish+http':
      return `BMC ${target.host}`;
    case 'libvirt':
      return target.host ? `libvirt host ${target.host.host}` : 'libvirt';
    case 'vbox':
      return target.host ? `VirtualBox host ${target.host.host}` : 'VirtualBox';
  }
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
