import test from 'ava';
import { MASK, parsePowerTarget, PowerUriError, redactPowerUri } from '../../../src/appliance/power/uri.js';

test('ipmi:///USER:PASS@BMC[:PORT] talks to the BMC from the appliance', (t) => {
  t.deepEqual(parsePowerTarget('ipmi:///admin:s3cret@10.1.15.1').target, { scheme: 'ipmi', bmc: '10.1.15.1', user: 'admin', password: 's3cret' });
  t.deepEqual(parsePowerTarget('ipmi:///admin:s3cret@bmc-n7.cluster:6230').target, {
    scheme: 'ipmi',
    bmc: 'bmc-n7.cluster',
    port: 6230,
    user: 'admin',
    password: 's3cret',
  });
});

test('ipmi://[RUSER@]RELAY/USER:PASS@BMC runs ipmitool on the relay', (t) => {
  t.deepEqual(parsePowerTarget('ipmi://remote_server/admin:password@172.45.88.1').target, {
    scheme: 'ipmi',
    bmc: '172.45.88.1',
    user: 'admin',
    password: 'password',
    relay: { host: 'remote_server' },
  });
  t.deepEqual(parsePowerTarget('ipmi://ops@relay1/admin:password@172.45.88.1').target.scheme, 'ipmi');
  t.like(parsePowerTarget('ipmi://ops@relay1/admin:password@172.45.88.1').target, { relay: { user: 'ops', host: 'relay1' } });
});

test('%-escapes give passwords any character; a password may hold : and @', (t) => {
  t.like(parsePowerTarget('ipmi:///admin:p%24ss%20w%2Frd@10.0.0.1').target, { password: 'p$ss w/rd' });
  t.like(parsePowerTarget('ipmi:///admin:a:b@c@10.0.0.1').target, { user: 'admin', password: 'a:b@c', bmc: '10.0.0.1' });
  t.like(parsePowerTarget('ipmi:///ad%40min:pw@10.0.0.1').target, { user: 'ad@min' });
});

test('redfish and redfish+http, with or without a system path', (t) => {
  t.deepEqual(parsePowerTarget('redfish://root:calvin@10.0.0.9').target, { scheme: 'redfish', host: '10.0.0.9', user: 'root', password: 'calvin' });
  t.deepEqual(parsePowerTarget('redfish+http://root:calvin@127.0.0.1:8000/redfish/v1/Systems/1').target, {
    scheme: 'redfish+http',
    host: '127.0.0.1',
    port: 8000,
    user: 'root',
    password: 'calvin',
    systemPath: '/redfish/v1/Systems/1',
  });
});

test('libvirt and vbox: a host (or none) and a VM name', (t) => {
  t.deepEqual(parsePowerTarget('libvirt://kvm1/n0').target, { scheme: 'libvirt', host: { host: 'kvm1' }, domain: 'n0' });
  t.deepEqual(parsePowerTarget('libvirt:///n0').target, { scheme: 'libvirt', domain: 'n0' });
  t.deepEqual(parsePowerTarget('vbox://192.168.56.1/CW_Compute0').target, { scheme: 'vbox', host: { host: '192.168.56.1' }, vm: 'CW_Compute0' });
  t.deepEqual(parsePowerTarget('vbox://me@192.168.56.1/CW_Compute0').target, { scheme: 'vbox', host: { host: '192.168.56.1', user: 'me' }, vm: 'CW_Compute0' });
});

const refused: Array<[string, RegExp]> = [
  ['ftp://x/y', /unknown power URI scheme "ftp"/],
  ['ipmi', /unknown power URI scheme/],
  ['ipmi://10.0.0.1', /three slashes/],
  ['ipmi:///admin@10.0.0.1', /USER:PASSWORD@/],
  ['ipmi:///admin:@10.0.0.1', /password is empty/],
  ['ipmi:///:pw@10.0.0.1', /user name must have/],
  ['ipmi:///admin:pw@', /BMC address is missing/],
  ['ipmi:///admin:pw@-oProxyCommand=x', /invalid BMC address/],
  ['ipmi:///admin:pw@10.0.0.1:0', /invalid port "0"/],
  ['ipmi:///admin:pw@10.0.0.1:99999', /invalid port/],
  ['ipmi://-oProxyCommand=x/admin:pw@10.0.0.1', /invalid relay host/],
  ['ipmi://ops:pw@relay/admin:pw@10.0.0.1', /password for the relay host is not supported/],
  ['ipmi://relay/admin:pw@10.0.0.1:623', /only supported without a relay/],
  ['ipmi:///admin:p%ZZ@10.0.0.1', /invalid %-escape/],
  ['ipmi:///admin:p%0Aw@10.0.0.1', /control character/],
  ['redfish://root:calvin@10.0.0.9/etc/passwd', /must be \/redfish\/v1\/Systems\/ID/],
  ['libvirt://kvm1/', /domain is missing/],
  ['vbox://host/-x', /invalid VM name/],
];

for (const [uri, message] of refused) {
  test(`refused: ${uri}`, (t) => {
    const err = t.throws(() => parsePowerTarget(uri), { instanceOf: PowerUriError });
    t.regex(err?.message ?? '', message);
  });
}

test('no error message contains the password', (t) => {
  const secret = 'Hunter2Secret';
  for (const uri of [
    `ipmi:///admin:${secret}@`,
    `ipmi:///admin:${secret}@bad_host!`,
    `ipmi:///admin:${secret}@10.0.0.1:0`,
    `ipmi:///admin:${secret}%ZZ@10.0.0.1`,
    `ipmi://r/admin:${secret}@10.0.0.1:5`,
    `redfish://root:${secret}@10.0.0.9/nope`,
    `redfish://root:${secret}`,
  ]) {
    const err = t.throws(() => parsePowerTarget(uri));
    t.false(err?.message.includes(secret), err?.message);
  }
});

test('redaction masks the password and keeps the rest of the text', (t) => {
  t.is(redactPowerUri('ipmi:///admin:s3cret@10.1.15.1'), `ipmi:///admin:${MASK}@10.1.15.1`);
  t.is(redactPowerUri('ipmi://ops@relay/admin:a:b@c@10.1.15.1'), `ipmi://ops@relay/admin:${MASK}@10.1.15.1`);
  t.is(redactPowerUri('redfish://root:calvin@10.0.0.9:8443/redfish/v1/Systems/1'), `redfish://root:${MASK}@10.0.0.9:8443/redfish/v1/Systems/1`);
  t.is(redactPowerUri('vbox://192.168.56.1/CW_Compute0'), 'vbox://192.168.56.1/CW_Compute0');
  // Unparseable values (stored by older versions) keep only their scheme.
  t.is(redactPowerUri('ipmi://admin:pw@10.0.0.1'), `ipmi://${MASK}`);
  t.is(redactPowerUri('weird stuff'), MASK);
});

test('IPMI 2.0 limits: a password of at most 20 bytes, a user name of at most 16, refused at the edge', (t) => {
  t.like(parsePowerTarget(`ipmi:///admin:${'p'.repeat(20)}@10.0.0.1`).target, { password: 'p'.repeat(20) });
  t.like(parsePowerTarget(`ipmi:///${'u'.repeat(16)}:pw@10.0.0.1`).target, { user: 'u'.repeat(16) });
  const tooLong = t.throws(() => parsePowerTarget(`ipmi:///admin:${'p'.repeat(21)}@10.0.0.1`), { instanceOf: PowerUriError });
  t.regex(tooLong.message, /^ipmi: the password is longer than 20 bytes, the IPMI 2\.0 limit \(e\.g\. /);
  t.false(tooLong.message.includes('ppp'));
  // Bytes, not characters: ten two-byte characters fit, eleven do not.
  t.notThrows(() => parsePowerTarget(`ipmi:///admin:${encodeURIComponent('é'.repeat(10))}@10.0.0.1`));
  t.throws(() => parsePowerTarget(`ipmi://relay/admin:${encodeURIComponent('é'.repeat(11))}@10.0.0.1`), { message: /longer than 20 bytes/ });
  t.throws(() => parsePowerTarget(`ipmi:///${'u'.repeat(17)}:pw@10.0.0.1`), { message: /^ipmi: the user name is longer than 16 bytes, the IPMI limit/ });
  // Redfish has no such limit.
  t.like(parsePowerTarget(`redfish://root:${'p'.repeat(64)}@10.0.0.9`).target, { password: 'p'.repeat(64) });
});
