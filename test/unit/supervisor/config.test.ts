import test from 'ava';
import { loadSupervisorConfig } from '../../../src/appliance/environment.js';

test('defaults follow ARCHITECTURE.md', (t) => {
  const config = loadSupervisorConfig({});
  t.is(config.storage, '/var/lib/cw');
  t.deepEqual(config.ports, { http: 80, https: 443, ssh: 2200, tftp: 69, dns: 53 });
  t.is(config.controlSocket, '/run/cw/supervisor.sock');
  t.is(config.syslogSocket, '/dev/log');
  t.is(config.dhcpInterfaces, null);
  t.is(config.failService, null);
  t.is(config.headAddress, null);
  t.true(config.templatesDir.endsWith('/rootfs/etc/cw/templates'));
  t.true(config.bins.apiMain.endsWith('/dist/appliance/api/main.js'));
});

test('environment overrides are validated, every problem reported at once', (t) => {
  const config = loadSupervisorConfig({ CW_STORAGE: '/srv/cw', CW_HTTP_PORT: '18080', CW_SSH_PORT: '12200', CW_TFTP_PORT: '16969', CW_DHCP_INTERFACES: 'eth1 eth2', CW_FAIL_SERVICE: 'tftpd' });
  t.like(config, { storage: '/srv/cw', ports: { http: 18080, ssh: 12200, tftp: 16969 }, dhcpInterfaces: ['eth1', 'eth2'], failService: 'tftpd' });
  const error = t.throws(() => loadSupervisorConfig({ CW_STORAGE: 'relative', CW_HTTP_PORT: '80x', CW_SSH_PORT: '99999', CW_DHCP_INTERFACES: 'eth0;x' }));
  t.is(
    error?.message,
    'CW_DHCP_INTERFACES: invalid interface name "eth0;x"; CW_STORAGE must be an absolute path (got "relative"); CW_HTTP_PORT must be a port number 1-65535 (got "80x"); CW_SSH_PORT must be a port number 1-65535 (got "99999")',
  );
  t.throws(() => loadSupervisorConfig({ CW_HTTP_PORT: '2200' }), { message: 'CW_HTTP_PORT and CW_SSH_PORT are both 2200' });
  t.throws(() => loadSupervisorConfig({ CW_HTTPS_PORT: '80' }), { message: 'CW_HTTP_PORT and CW_HTTPS_PORT are both 80' });
  t.like(loadSupervisorConfig({ CW_HTTPS_PORT: '8443' }), { ports: { https: 8443 } });
  t.like(loadSupervisorConfig({ CW_DNS_PORT: '5353' }), { ports: { dns: 5353 } });
  // DNS serves UDP and TCP: it may share a number with neither.
  t.throws(() => loadSupervisorConfig({ CW_DNS_PORT: '2200' }), { message: 'CW_SSH_PORT and CW_DNS_PORT are both 2200' });
  t.throws(() => loadSupervisorConfig({ CW_DNS_PORT: '69' }), { message: 'CW_DNS_PORT and CW_TFTP_PORT are both 69' });
  t.throws(() => loadSupervisorConfig({ CW_DNS_PORT: '67' }), { message: 'CW_DNS_PORT cannot be 67 (DHCP)' });
  t.is(loadSupervisorConfig({ CW_HEAD_ADDRESS: '10.54.0.2' }).headAddress, '10.54.0.2');
  t.throws(() => loadSupervisorConfig({ CW_HEAD_ADDRESS: 'head1' }), { message: 'CW_HEAD_ADDRESS must be an IPv4 address (got "head1")' });
});
