import type { NetworkInterfaceInfo } from 'node:os';
import test from 'ava';
import { toolConfig } from '../../../src/host/containerctl/tool-config/tool-config.js';
import {
  AUTHUSER_PLACEHOLDER,
  chooseAuthUser,
  invokingUser,
  networkAddress,
  rankHostAddresses,
  renderSettings,
  renderToolConfig,
} from '../../../src/host/containerctl/tool-config/settings.js';
import { MemoryEngine, testContext } from './memory-engine.js';

function v4(address: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask: '255.255.255.0', family: 'IPv4', mac: '52:54:00:00:00:01', internal, cidr: `${address}/24` };
}
function v6(address: string): NetworkInterfaceInfo {
  return { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '52:54:00:00:00:01', internal: false, cidr: `${address}/64`, scopeid: 0 };
}

const PIN = `sha256:${Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':')}` as const;

test('settings.ini: https, port only when not 443, the certificate pinned', (t) => {
  t.is(
    renderSettings({ address: '10.54.0.123', httpsPort: 443, user: 'root', pin: PIN }),
    `[ClusterWare]\nclient.base_url = https://10.54.0.123/api/v1\nclient.authuser = root\nclient.sslverify = ${PIN}\n`,
  );
  t.regex(renderSettings({ address: '10.54.0.123', httpsPort: 8443, user: 'admin1', pin: PIN }), /client\.base_url = https:\/\/10\.54\.0\.123:8443\/api\/v1\nclient\.authuser = admin1\n/);
  // Without a readable certificate the system's CAs decide; never "quiet".
  t.regex(renderSettings({ address: '10.54.0.123', httpsPort: 443, user: 'root' }), /client\.sslverify = true\n/);
});

test('the tool-config text carries the ssh-agent advice, the settings and where the certificate is', (t) => {
  const text = renderToolConfig({ address: '192.168.122.1', httpsPort: 443, user: 'root', pin: PIN }, [], undefined, { certFile: '/srv/cw/tls/server.crt' });
  t.true(text.includes('    eval `ssh-agent` ; ssh-add\n'));
  t.true(text.includes('A potential ~/.cw/settings.ini file is below:\n\n[ClusterWare]\n'));
  t.true(text.includes('/srv/cw/tls/server.crt'));
  t.notRegex(text, /quiet/);
  const unread = renderToolConfig({ address: '192.168.122.1', httpsPort: 443, user: 'root' }, [], undefined, { certFile: '/srv/cw/tls/server.crt', problem: 'exec failed' });
  t.regex(unread, /could not be read \(exec failed\)/);
  t.notRegex(unread, /DNS server/);
});

test('tool-config says where node names are answered, and that another port than 53 is not handed to nodes', (t) => {
  const on53 = renderToolConfig({ address: '10.54.0.2', httpsPort: 443, user: 'root', pin: PIN }, [], undefined, { certFile: '/x' }, 53);
  t.regex(on53, /answered by the head node's DNS server at 10\.54\.0\.2: dig @10\.54\.0\.2 n0\n/);
  t.notRegex(on53, /not told/);
  const other = renderToolConfig({ address: '10.54.0.2', httpsPort: 443, user: 'root', pin: PIN }, [], undefined, { certFile: '/x' }, 5353);
  t.regex(other, /at 10\.54\.0\.2 port 5353: dig -p 5353 @10\.54\.0\.2 n0\nNodes are not told of it over DHCP/);
});

test('host addresses: private on a real interface first; bridges, loopback and IPv6 skipped', (t) => {
  const ranked = rankHostAddresses({
    lo: [v4('127.0.0.1', true)],
    docker0: [v4('172.17.0.1')],
    podman0: [v4('10.88.0.1')],
    'br-1a2b3c': [v4('172.18.0.1')],
    virbr0: [v4('192.168.122.1')],
    veth12ab: [v4('169.254.3.3')],
    eth0: [v4('203.0.113.7'), v6('fe80::1')],
    eth1: [v4('10.54.0.123')],
  });
  t.deepEqual(ranked, [
    { address: '10.54.0.123', via: 'eth1' },
    { address: '203.0.113.7', via: 'eth0' },
  ]);
});

test('named network: the container\'s own address there', (t) => {
  t.deepEqual(networkAddress({ cwnet: '10.10.24.2', bridge: '172.17.0.3' }, 'cwnet'), { address: '10.10.24.2', via: 'cwnet' });
  t.is(networkAddress({}, 'cwnet'), undefined);
});

test('authuser: the sudo caller, else the user, else root', (t) => {
  t.is(invokingUser({ SUDO_USER: 'alice', USER: 'root' }), 'alice');
  t.is(invokingUser({ USER: 'bob' }), 'bob');
  t.is(invokingUser({}), 'root');
});

test('authuser proposal: an admin added with add-admin, never a guess like root', (t) => {
  t.deepEqual(chooseAuthUser(['admin1'], 'root'), { user: 'admin1' });
  t.deepEqual(chooseAuthUser(['admin1', 'alice'], 'alice'), { user: 'alice' });
  const none = chooseAuthUser([], 'root');
  t.is(none.user, AUTHUSER_PLACEHOLDER);
  t.regex(none.note ?? '', /^No admin has been added yet: run cw-containerctl add-admin/);
  t.like(chooseAuthUser(['a', 'b'], 'root'), { user: AUTHUSER_PLACEHOLDER, note: 'Admins: a, b. Put yours in client.authuser.' });
  t.deepEqual(chooseAuthUser(undefined, 'root'), { user: 'root' }, 'an image without admin-ls: the old proposal');
});

test('tool-config proposes the admin the appliance knows', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode', networkMode: 'cwnet', networks: { cwnet: '10.10.24.2' } });
  engine.onExec = (cmd) => ({ exitCode: 0, stdout: cmd[1] === 'admin-ls' ? '[{"name":"admin1"}]' : '{}', stderr: '' });
  const ctx = testContext(engine, { USER: 'root' });
  await toolConfig({}, ctx);
  t.true(ctx.out.text.includes('client.authuser = admin1\n'));
});
