import { hostname as osHostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { audienceOf } from '../../../lib/auth-challenge.js';

export interface OwnAudienceOptions {
  /** The ports nginx serves the API on (CW_HTTP_PORT, CW_HTTPS_PORT); default 80 and 443. */
  httpPort?: number;
  httpsPort?: number;
  /** Default: os.hostname(). */
  hostname?: string;
  /** Default: os.networkInterfaces (read on every call, so a network attached later counts). */
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Further origins or host names (CW_API_AUDIENCES). */
  extra?: readonly string[];
}

/**
 * The head node's own API origins, the only audiences a signed challenge may name: `https://ADDRESS[:PORT]`
 * and `http://ADDRESS[:PORT]` for every address of the machine (loopback included), `localhost` and its
 * host name, plus `extra` (a bare host name gets both schemes). Never taken from the request, so a
 * signature made for another server is useless here. (Over HTTP only local callers may log in; see
 * `refusePlainHttp`.)
 * Example: ports 8080/8443 on 10.0.0.1 → `https://10.0.0.1:8443`, `http://10.0.0.1:8080`, `https://localhost:8443`, ...
 */
export function ownAudiences(options: OwnAudienceOptions = {}): string[] {
  const port = options.httpPort ?? 80;
  const tlsPort = options.httpsPort ?? 443;
  const hosts = new Set<string>(['localhost', '127.0.0.1']);
  const name = options.hostname ?? osHostname();
  if (name) hosts.add(name);
  for (const infos of Object.values((options.interfaces ?? networkInterfaces)())) {
    for (const info of infos ?? []) {
      if (info.family === 'IPv4') hosts.add(info.address);
      // Link-local IPv6 needs a zone, which URLs cannot carry.
      else if (info.family === 'IPv6' && !info.address.toLowerCase().startsWith('fe80:')) hosts.add(`[${info.address}]`);
    }
  }
  const out = new Set<string>();
  const both = (host: string): void => {
    addOrigin(out, `https://${host}:${tlsPort}`);
    addOrigin(out, `http://${host}:${port}`);
  };
  for (const host of hosts) both(host);
  for (const entry of options.extra ?? []) {
    if (entry.includes('://')) addOrigin(out, entry);
    else both(entry);
  }
  return [...out];
}

function addOrigin(out: Set<string>, url: string): void {
  try {
    out.add(audienceOf(url));
  } catch {
    // a host name URLs cannot carry; tools could not sign for it either
  }
}

const BARE_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])$/;

/** `CW_API_AUDIENCES`: comma-separated origins (`https://head.example:8443`) or host names (`head.example`). */
export function audiencesFromEnv(value: string | undefined): string[] {
  const entries = (value ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  for (const entry of entries) {
    let valid = false;
    try {
      valid = entry.includes('://') ? audienceOf(entry) !== '' : BARE_HOST.test(entry);
    } catch {
      // reported below
    }
    if (!valid) throw new Error(`CW_API_AUDIENCES: invalid origin or host name ${JSON.stringify(entry)}`);
  }
  return entries;
}
