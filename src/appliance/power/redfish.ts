// Redfish (DMTF DSP0266) through undici: the ComputerSystem's PowerState, and its
// #ComputerSystem.Reset action. BMCs ship self-signed certificates, so redfish:// does not verify them
// (as ipmitool's lanplus has no certificates at all); redfish+http:// talks plain HTTP.
import { Agent, request, type Dispatcher } from 'undici';
import { describeTarget, type RedfishTarget } from './uri.js';
import type { PowerAction, PowerPlugin, PowerState } from './types.js';

/** Redfish ResetType of each action. */
export const RESET_TYPES: Partial<Record<PowerAction, string>> = {
  on: 'On',
  off: 'ForceOff',
  soft: 'GracefulShutdown',
  restart: 'GracefulRestart',
  reset: 'ForceRestart',
  cycle: 'PowerCycle',
};

/** Words for the network errors a BMC address gives most often. */
const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'name not found',
  ECONNRESET: 'connection reset',
  UND_ERR_SOCKET: 'connection closed',
};

let sharedAgent: Agent | undefined;

/** One connection pool for every BMC; certificates are not checked (see above). */
function agent(): Agent {
  sharedAgent ??= new Agent({ connect: { rejectUnauthorized: false }, keepAliveTimeout: 10_000 });
  return sharedAgent;
}

/** `https://10.1.15.1:8443`. */
export function redfishOrigin(target: RedfishTarget): string {
  const proto = target.scheme === 'redfish+http' ? 'http' : 'https';
  return `${proto}://${target.host}${target.port === undefined ? '' : `:${target.port}`}`;
}

/** `Basic base64(user:password)`. */
export function basicAuth(target: RedfishTarget): string {
  return `Basic ${Buffer.from(`${target.user}:${target.password}`, 'utf8').toString('base64')}`;
}

/** On/PoweringOn -> on, Off/PoweringOff -> off. */
export function parsePowerState(value: unknown): PowerState | undefined {
  if (value === 'On' || value === 'PoweringOn') return 'on';
  if (value === 'Off' || value === 'PoweringOff') return 'off';
  return undefined;
}

/** The message of a Redfish error body (`error.@Message.ExtendedInfo[0].Message` or `error.message`). */
function redfishMessage(body: unknown): string | undefined {
  const error = (body as { error?: Record<string, unknown> } | undefined)?.error;
  if (!error || typeof error !== 'object') return undefined;
  const info = error['@Message.ExtendedInfo'];
  const first = Array.isArray(info) ? (info[0] as { Message?: unknown } | undefined) : undefined;
  const text = typeof first?.Message === 'string' ? first.Message : typeof error.message === 'string' ? error.message : undefined;
  return text?.replace(/[\p{C}]/gu, '').slice(0, 200);
}

export interface RedfishOptions {
  dispatcher?: Dispatcher;
}

export function redfishPlugin(target: RedfishTarget, options: RedfishOptions = {}): PowerPlugin {
  const origin = redfishOrigin(target);
  const where = describeTarget(target);
  const headers = { authorization: basicAuth(target), accept: 'application/json' };

  async function call(method: 'GET' | 'POST', path: string, signal: AbortSignal, body?: unknown): Promise<unknown> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${origin}${path}`, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        dispatcher: options.dispatcher ?? agent(),
      });
    } catch (err) {
      if (signal.aborted) throw err;
      const code = (err as { code?: unknown }).code;
      const what = typeof code === 'string' ? (NETWORK_ERRORS[code] ? `${NETWORK_ERRORS[code]} (${code})` : code) : (err as Error).message;
      throw new Error(`${where}: ${what}`);
    }
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.statusCode === 401 || res.statusCode === 403) throw new Error(`${where} refused the credentials (HTTP ${res.statusCode})`);
    if (res.statusCode >= 400) {
      const msg = redfishMessage(parsed);
      throw new Error(`${where} answered HTTP ${res.statusCode} to ${method} ${path}${msg ? `: ${msg}` : ''}`);
    }
    return parsed;
  }

  let systemPath = target.systemPath;
  async function system(signal: AbortSignal): Promise<{ path: string; doc: Record<string, unknown> }> {
    if (systemPath === undefined) {
      const collection = (await call('GET', '/redfish/v1/Systems', signal)) as { Members?: Array<{ '@odata.id'?: unknown }> } | undefined;
      const members = (collection?.Members ?? []).map((m) => m['@odata.id']).filter((id): id is string => typeof id === 'string');
      if (members.length !== 1) {
        throw new Error(`${where} has ${members.length} systems; name one in the power_uri (.../redfish/v1/Systems/ID)`);
      }
      systemPath = members[0] as string;
    }
    const doc = await call('GET', systemPath, signal);
    if (!doc || typeof doc !== 'object') throw new Error(`${where} sent no ComputerSystem at ${systemPath}`);
    return { path: systemPath, doc: doc as Record<string, unknown> };
  }

  return {
    async status(signal) {
      const { doc } = await system(signal);
      const state = parsePowerState(doc.PowerState);
      if (!state) throw new Error(`${where} reports PowerState ${JSON.stringify(String(doc.PowerState)).slice(0, 40)}`);
      return state;
    },
    async act(action, signal) {
      const resetType = RESET_TYPES[action];
      if (resetType === undefined) throw new Error(`power ${action} is not supported through Redfish`);
      const { path, doc } = await system(signal);
      const actions = (doc.Actions ?? {}) as Record<string, { target?: unknown; 'ResetType@Redfish.AllowableValues'?: unknown }>;
      const reset = actions['#ComputerSystem.Reset'];
      const allowed = reset?.['ResetType@Redfish.AllowableValues'];
      if (Array.isArray(allowed) && !allowed.includes(resetType)) {
        throw new Error(`${where} does not offer ResetType ${resetType} (offers ${allowed.map(String).join(', ')})`);
      }
      const post = typeof reset?.target === 'string' && reset.target.startsWith('/') ? reset.target : `${path}/Actions/ComputerSystem.Reset`;
      await call('POST', post, signal, { ResetType: resetType });
    },
  };
}
