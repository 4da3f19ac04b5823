// A small Redfish service for tests, shaped like DMTF's public mockups: /redfish, the ServiceRoot,
// the Systems collection and ComputerSystems with PowerState and #ComputerSystem.Reset. User `root`,
// password `calvin` (HTTP basic). Over HTTP, or HTTPS with a given certificate (BMCs are self-signed).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface Bmc {
  port: number;
  states: Map<string, string>;
  resets: Array<{ system: string; type: string }>;
  auths: string[];
  close(): Promise<void>;
}

const ALLOWED = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle'];

/** A Redfish service with `systems` (id -> PowerState); user root, password `calvin`. */
export async function redfishBmc(
  systems: Record<string, string>,
  opts: { allowed?: string[]; silent?: boolean; tls?: { cert: string; key: string } } = {},
): Promise<Bmc> {
  const states = new Map(Object.entries(systems));
  const resets: Bmc['resets'] = [];
  const auths: string[] = [];
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (opts.silent) return; // never answers
    auths.push(req.headers.authorization ?? '');
    const open = req.method === 'GET' && /^\/redfish(\/v1)?\/?$/.test(req.url ?? '');
    if (!open && req.headers.authorization !== `Basic ${Buffer.from('root:calvin').toString('base64')}`) {
      send(res, 401, { error: { code: 'Base.1.0.GeneralError', message: 'unauthorized' } });
      return;
    }
    const url = req.url ?? '';
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.method === 'GET' && (url === '/redfish' || url === '/redfish/')) {
        send(res, 200, { v1: '/redfish/v1/' });
        return;
      }
      if (req.method === 'GET' && (url === '/redfish/v1' || url === '/redfish/v1/')) {
        send(res, 200, {
          '@odata.id': '/redfish/v1/',
          '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot',
          Id: 'RootService',
          Name: 'Root Service',
          RedfishVersion: '1.6.0',
          Systems: { '@odata.id': '/redfish/v1/Systems' },
        });
        return;
      }
      if (req.method === 'GET' && url === '/redfish/v1/Systems') {
        send(res, 200, { Members: [...states.keys()].map((id) => ({ '@odata.id': `/redfish/v1/Systems/${id}` })), 'Members@odata.count': states.size });
        return;
      }
      const m = /^\/redfish\/v1\/Systems\/([^/]+)(\/Actions\/ComputerSystem\.Reset)?$/.exec(url);
      const id = m?.[1];
      if (!m || id === undefined || !states.has(id)) {
        send(res, 404, { error: { '@Message.ExtendedInfo': [{ Message: `no resource ${url}` }] } });
        return;
      }
      if (req.method === 'GET' && !m[2]) {
        send(res, 200, {
          '@odata.id': `/redfish/v1/Systems/${id}`,
          Id: id,
          PowerState: states.get(id),
          Actions: {
            '#ComputerSystem.Reset': {
              target: `/redfish/v1/Systems/${id}/Actions/ComputerSystem.Reset`,
              'ResetType@Redfish.AllowableValues': opts.allowed ?? ALLOWED,
            },
          },
        });
        return;
      }
      if (req.method === 'POST' && m[2]) {
        const type = (JSON.parse(body) as { ResetType: string }).ResetType;
        resets.push({ system: id, type });
        if (type === 'On' || type === 'ForceRestart' || type === 'PowerCycle' || type === 'GracefulRestart') states.set(id, 'On');
        if (type === 'ForceOff' || type === 'GracefulShutdown') states.set(id, 'Off');
        res.writeHead(204);
        res.end();
        return;
      }
      send(res, 405, { error: { message: 'method not allowed' } });
    });
  };
  const server: Server = opts.tls ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    states,
    resets,
    auths,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
