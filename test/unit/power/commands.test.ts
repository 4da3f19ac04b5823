import test from 'ava';
import { ipmiFailure, ipmitoolCommand, parseIpmiStatus } from '../../../src/appliance/power/ipmi.js';
import { shellQuote } from '../../../src/lib/shell-quote.js';
import { sshArgv } from '../../../src/appliance/power/ssh.js';
import { parsePowerTarget, type IpmiTarget, type LibvirtTarget, type VboxTarget } from '../../../src/appliance/power/uri.js';
import { parseVboxState, parseVirshState, stepCommand, vboxSteps, virshSteps } from '../../../src/appliance/power/virt.js';
import { PLUGIN_ACTIONS } from '../../../src/appliance/power/types.js';

const identity = { keyFile: '/var/lib/cw/ssh/id_ed25519', knownHostsFile: '/var/lib/cw/ssh/known_hosts' };
const SECRET = 'pa$$ w0rd;rm';
const ipmi = (uri: string) => parsePowerTarget(uri).target as IpmiTarget;

test('local ipmitool: lanplus, -E, the password only in IPMI_PASSWORD', (t) => {
  const cmd = ipmitoolCommand(ipmi(`ipmi:///admin:${encodeURIComponent(SECRET)}@10.1.15.7:6230`), 'status', 10, identity);
  t.is(cmd.file, 'ipmitool');
  t.deepEqual(cmd.args, ['-I', 'lanplus', '-C', '3', '-N', '1', '-R', '11', '-H', '10.1.15.7', '-p', '6230', '-U', 'admin', '-E', 'chassis', 'power', 'status']);
  t.deepEqual(cmd.env, { IPMI_PASSWORD: SECRET });
  t.is(cmd.input, undefined);
  t.false(cmd.args.includes('-P'));
});

test('no ipmitool argv, local or relayed, for any action, contains the password', (t) => {
  for (const uri of [`ipmi:///admin:${encodeURIComponent(SECRET)}@10.1.15.7`, `ipmi://ops@relay/admin:${encodeURIComponent(SECRET)}@10.1.15.7`]) {
    for (const action of ['status', 'on', 'off', 'soft', 'cycle', 'reset'] as const) {
      const cmd = ipmitoolCommand(ipmi(uri), action, 10, identity);
      const argv = [cmd.file, ...cmd.args].join('\n');
      t.false(argv.includes(SECRET), `${uri} ${action}`);
      t.false(argv.includes('pa$$'), `${uri} ${action}`);
      t.false(cmd.args.includes('-P'));
      t.is(cmd.args.at(-1)?.split(' ').at(-1), action);
    }
  }
});

test('relayed ipmitool: ssh with the appliance key, password on stdin for -f /dev/stdin', (t) => {
  const cmd = ipmitoolCommand(ipmi(`ipmi://ops@relay1/admin:${encodeURIComponent(SECRET)}@10.1.15.7`), 'on', 10, identity);
  t.is(cmd.file, 'ssh');
  t.is(cmd.input, `${SECRET}\n`);
  t.is(cmd.env, undefined);
  t.deepEqual(cmd.args.slice(0, 2), ['-i', identity.keyFile]);
  t.true(cmd.args.includes('BatchMode=yes'));
  t.true(cmd.args.includes(`UserKnownHostsFile=${identity.knownHostsFile}`));
  const dashdash = cmd.args.indexOf('--');
  t.deepEqual(cmd.args.slice(dashdash - 2), [
    '-l',
    'ops',
    '--',
    'relay1',
    'ipmitool -I lanplus -C 3 -N 1 -R 11 -H 10.1.15.7 -U admin -f /dev/stdin chassis power on',
  ]);
});

test('remote words are quoted for the remote shell', (t) => {
  t.is(shellQuote('plain-word_1.2'), 'plain-word_1.2');
  t.is(shellQuote("it's"), `'it'\\''s'`);
  t.is(shellQuote('$(reboot)'), `'$(reboot)'`);
  t.is(shellQuote('a b'), `'a b'`);
  const args = sshArgv({ host: 'h' }, ['ipmitool', '-U', "we'ird user"], identity, 3.2);
  t.is(args.at(-1), `ipmitool -U 'we'\\''ird user'`);
  t.true(args.includes('ConnectTimeout=4'));
});

test('ipmitool answers and failures read as one line', (t) => {
  t.is(parseIpmiStatus('Chassis Power is on\n'), 'on');
  t.is(parseIpmiStatus('Chassis Power is off'), 'off');
  t.is(parseIpmiStatus('something else'), undefined);
  const target = ipmi('ipmi:///admin:pw@10.1.15.7');
  t.is(
    ipmiFailure(target, 1, 'Error: Unable to establish IPMI v2 / RMCP+ session\n'),
    'BMC 10.1.15.7 refused the session (wrong user or password?): Unable to establish IPMI v2 / RMCP+ session',
  );
  t.is(ipmiFailure(target, 1, 'Set Chassis Power Control to Reset failed: Invalid data field in request\n'), 'BMC 10.1.15.7: Set Chassis Power Control to Reset failed: Invalid data field in request');
  const relayed = ipmi('ipmi://relay1/admin:pw@10.1.15.7');
  t.is(ipmiFailure(relayed, 255, 'ssh: connect to host relay1 port 22: Connection refused\n'), 'cannot reach relay relay1 over ssh: ssh: connect to host relay1 port 22: Connection refused');
  t.is(ipmiFailure(relayed, 127, 'bash: ipmitool: command not found'), 'ipmitool is not installed on relay relay1');
});

test('libvirt: virsh steps for every action, locally or over ssh', (t) => {
  const target = parsePowerTarget('libvirt://root@kvm1/n0').target as LibvirtTarget;
  t.deepEqual(virshSteps('n0', 'status'), [['virsh', '--connect', 'qemu:///system', 'domstate', 'n0']]);
  t.deepEqual(virshSteps('n0', 'on'), [['virsh', '--connect', 'qemu:///system', 'start', 'n0']]);
  t.deepEqual(virshSteps('n0', 'off'), [['virsh', '--connect', 'qemu:///system', 'destroy', 'n0']]);
  t.deepEqual(virshSteps('n0', 'soft'), [['virsh', '--connect', 'qemu:///system', 'shutdown', 'n0']]);
  t.deepEqual(virshSteps('n0', 'restart'), [['virsh', '--connect', 'qemu:///system', 'reboot', 'n0']]);
  t.deepEqual(virshSteps('n0', 'reset'), [['virsh', '--connect', 'qemu:///system', 'reset', 'n0']]);
  t.deepEqual(
    virshSteps('n0', 'cycle')?.map((s) => s[3]),
    ['destroy', 'start'],
  );
  for (const a of PLUGIN_ACTIONS) t.truthy(virshSteps('n0', a), a);
  const step = (virshSteps(target.domain, 'on') as string[][])[0] as string[];
  const over = stepCommand(step, target.host, identity, 10);
  t.is(over.file, 'ssh');
  t.deepEqual(over.args.slice(-4), ['root', '--', 'kvm1', 'virsh --connect qemu:///system start n0']);
  t.deepEqual(stepCommand(step, undefined, identity, 10), { file: 'virsh', args: ['--connect', 'qemu:///system', 'start', 'n0'] });
  t.is(parseVirshState('running\n\n'), 'on');
  t.is(parseVirshState('shut off\n'), 'off');
  t.is(parseVirshState('nonsense'), undefined);
});

test('vbox: VBoxManage steps; restart is not offered', (t) => {
  const target = parsePowerTarget('vbox://192.168.56.1/CW_Compute0').target as VboxTarget;
  t.deepEqual(vboxSteps(target.vm, 'status'), [['VBoxManage', 'showvminfo', 'CW_Compute0', '--machinereadable']]);
  t.deepEqual(vboxSteps(target.vm, 'on'), [['VBoxManage', 'startvm', 'CW_Compute0', '--type', 'headless']]);
  t.deepEqual(vboxSteps(target.vm, 'off'), [['VBoxManage', 'controlvm', 'CW_Compute0', 'poweroff']]);
  t.deepEqual(vboxSteps(target.vm, 'soft'), [['VBoxManage', 'controlvm', 'CW_Compute0', 'acpipowerbutton']]);
  t.deepEqual(vboxSteps(target.vm, 'reset'), [['VBoxManage', 'controlvm', 'CW_Compute0', 'reset']]);
  t.is(vboxSteps(target.vm, 'cycle')?.length, 2);
  t.is(vboxSteps(target.vm, 'restart'), undefined);
  const cmd = stepCommand((vboxSteps(target.vm, 'status') as string[][])[0] as string[], target.host, identity, 10);
  t.is(cmd.args.at(-1), 'VBoxManage showvminfo CW_Compute0 --machinereadable');
  t.is(parseVboxState('name="x"\nVMState="running"\n'), 'on');
  t.is(parseVboxState('VMState="poweroff"\n'), 'off');
  t.is(parseVboxState('VMState="aborted"\n'), 'off');
  t.is(parseVboxState(''), undefined);
});
