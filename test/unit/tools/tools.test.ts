// The admin tools run in-process against a real CW API (SQLite store in a temporary storage directory,
// listening on 127.0.0.1) and authenticate through a real ssh-agent, as an admin would.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attribctl } from '../../../src/tools/attribctl/attribctl.js';
import { bootctl } from '../../../src/tools/bootctl/bootctl.js';
import { clusterConf } from '../../../src/tools/cluster-conf/cluster-conf.js';
import { clusterctl } from '../../../src/tools/clusterctl/clusterctl.js';
import { imgctl } from '../../../src/tools/imgctl/imgctl.js';
import { nodectl } from '../../../src/tools/nodectl/nodectl.js';
import { fakeBzImage, fakeCpio } from '../lib/boot-file-fixtures.js';
import { clusterFixture, SEED_CONF } from './harness.js';

const fixture = clusterFixture(test, 'c');
const { scratch, start: cluster, seeded } = fixture;

/** A minimal bzImage whose header names `release`. */
const fakeKernel = (release: string): Buffer => fakeBzImage(`${release} (builder@example) #1 SMP`);

// ---------------------------------------------------------------------------------------------------
// Seed 000: "With ssh-agent running ... scyld-nodectl ls -l"

test('seed 000: empty ls fails, cluster-conf load adds n0 and n1, ls -l shows their IPs and MACs', async (t) => {
  const c = await cluster();

  const empty = await c.run(nodectl, ['ls']);
  t.is(empty.error, 'ERROR: No nodes found, nothing was done');
  t.is(empty.exitCode, 1);
  t.is(empty.out, '');

  writeFileSync(join(c.cwd, 'cluster.conf'), SEED_CONF);
  const load = await c.run(clusterConf, ['load', 'cluster.conf']);
  t.is(load.error, undefined);
  t.is(
    load.out,
    'Network net0 192.168.122.0/24: 192.168.122.100 - 192.168.122.254\n' +
      'Created n0 52:54:00:00:00:01 192.168.122.100\n' +
      'Created n1 52:54:00:00:00:02 192.168.122.101\n',
  );

  t.is(await c.ok(nodectl, ['ls']), 'Nodes\n  n0\n  n1\n');
  const long = await c.ok(nodectl, ['ls', '-l']);
  t.is(
    long,
    [
      'Nodes',
      '  n0',
      '    attributes: {}',
      '    groups: []',
      '    index: 0',
      '    ip: 192.168.122.100',
      '    last_seen: never',
      '    mac: 52:54:00:00:00:01',
      '    name: n0',
      '    power_uri: none',
      '    state: new',
      '    type: compute',
      '  n1',
      '    attributes: {}',
      '    groups: []',
      '    index: 1',
      '    ip: 192.168.122.101',
      '    last_seen: never',
      '    mac: 52:54:00:00:00:02',
      '    name: n1',
      '    power_uri: none',
      '    state: new',
      '    type: compute',
      '',
    ].join('\n'),
  );
  // -L adds every field, uid included; --json gives the same document.
  t.regex(await c.ok(nodectl, ['-i', 'n0', 'ls', '-L']), /^ {4}uid: [0-9a-f]{32}$/m);
  const json = JSON.parse(await c.ok(nodectl, ['ls', '-l', '--json'])) as Record<string, { ip: string }>;
  t.deepEqual(Object.keys(json), ['n0', 'n1']);
  t.is(json.n1?.ip, '192.168.122.101');

  // save writes the same configuration back.
  t.is(await c.ok(clusterConf, ['save']), 'iprange 192.168.122.100/24 192.168.122.254\nnode 52:54:00:00:00:01\nnode 52:54:00:00:00:02\n');
  t.is(await c.ok(clusterConf, ['save', 'saved.conf']), 'Saved the cluster configuration to saved.conf (2 node lines)\n');
});

test('cluster-conf: --dry-run changes nothing; bad lines are reported with their numbers before anything is sent', async (t) => {
  const c = await seeded();
  writeFileSync(join(c.cwd, 'more.conf'), `${SEED_CONF}node 52:54:00:00:00:03\n`);
  const dry = await c.ok(clusterConf, ['load', 'more.conf', '--dry-run']);
  t.true(dry.includes('Would create n2 52:54:00:00:00:03 192.168.122.102\n'));
  t.true(dry.endsWith('Dry run: nothing was changed\n'));
  t.is(await c.ok(nodectl, ['ls']), 'Nodes\n  n0\n  n1\n');

  writeFileSync(join(c.cwd, 'bad.conf'), 'iprange 192.168.122.100/24\nnode 52:54:00:00:00:01\nnode 52:54:00:zz:00:01\n');
  const one = await c.run(clusterConf, ['load', 'bad.conf']);
  t.is(one.error, 'ERROR: bad.conf:3: invalid MAC "52:54:00:zz:00:01": expected six hex pairs like 52:54:00:00:00:01');

  writeFileSync(join(c.cwd, 'worse.conf'), 'iprange 192.168.122.100/24\nnode nonsense\nbogus 1\n');
  const many = await c.run(clusterConf, ['load', 'worse.conf']);
  t.is(many.error, 'ERROR: worse.conf: 2 problems, nothing was done');
  t.is(
    many.err,
    'worse.conf:2: invalid MAC "nonsense": expected six hex pairs like 52:54:00:00:00:01\n' +
      'worse.conf:3: unknown keyword "bogus" (expected iprange, nodes or node)\n',
  );

  // What the head node refuses (here: n0 would take n1's MAC) is refused as a whole.
  const before = await c.ok(nodectl, ['ls', '-L']);
  writeFileSync(join(c.cwd, 'clash.conf'), 'iprange 192.168.122.100/24\nnode 52:54:00:00:00:02\nnode 52:54:00:00:00:01\nnode 52:54:00:00:00:03\n');
  const clash = await c.run(clusterConf, ['load', 'clash.conf']);
  t.regex(clash.error ?? '', /^ERROR: [^\n]*52:54:00:00:00:0[12]/);
  t.is(await c.ok(nodectl, ['ls', '-L']), before);

  t.is((await c.run(clusterConf, ['load', 'missing.conf'])).error, 'ERROR: missing.conf: no such file');
});

// ---------------------------------------------------------------------------------------------------
// Nodes

test('nodectl -i n[0-1] set _boot_config=X, then unset; resolved in ls -l', async (t) => {
  const c = await seeded();
  await c.ok(bootctl, ['create', 'name=X']);
  t.is(await c.ok(nodectl, ['-i', 'n[0-1]', 'set', '_boot_config=X']), 'Set _boot_config on 2 nodes: n[0-1]\n');
  for (const n of ['n0', 'n1']) {
    t.true((await c.ok(nodectl, ['-i', n, 'ls', '-l'])).includes('    attributes\n      _boot_config: X\n'), n);
  }
  t.is(await c.ok(nodectl, ['-i', 'n1', 'unset', '_boot_config']), 'Unset _boot_config on node n1\n');
  t.true((await c.ok(nodectl, ['-i', 'n1', 'ls', '-l'])).includes('    attributes: {}\n'));
  t.true((await c.ok(nodectl, ['-i', 'n0', 'ls', '-l'])).includes('_boot_config: X'));

  // Unknown ids change nothing.
  const missing = await c.run(nodectl, ['-i', 'n[0-5]', 'set', 'a=1']);
  t.is(missing.error, 'ERROR: no such nodes: n[2-5]');
  t.false((await c.ok(nodectl, ['-i', 'n0', 'ls', '-l'])).includes('a: 1'));
  // set needs a selection.
  t.is((await c.run(nodectl, ['set', 'a=1'])).error, 'ERROR: set needs the nodes to act on: -i IDS or -a/--all');
});

test('nodectl create, update, status, rm; ids by name, MAC and IP', async (t) => {
  const c = await seeded();
  t.is(await c.ok(nodectl, ['create', 'mac=52:54:00:00:00:0a', 'index=10', 'ip=192.168.122.110']), 'Created node n10\n');
  t.regex(await c.ok(nodectl, ['-i', '52-54-00-00-00-0A', 'ls', '-l']), /^ {2}n10\n[\s\S]* {4}ip: 192\.168\.122\.110\n/m);
  t.is(await c.ok(nodectl, ['-i', '192.168.122.110', 'ls']), 'Nodes\n  n10\n');
  t.is(await c.ok(nodectl, ['-i', 'n10', 'update', 'power_uri=ipmi:///admin:pw@10.1.1.1']), 'Updated node n10\n');
  t.true((await c.ok(nodectl, ['-i', 'n10', 'ls', '-l'])).includes('    power_uri: ipmi:///admin:********@10.1.1.1\n'));
  t.is(
    await c.ok(nodectl, ['status']),
    'NAME  STATE  STAGE  IP               KERNEL  UPTIME  LAST SEEN\n' +
      'n0    new    -      192.168.122.100  -       -       never\n' +
      'n1    new    -      192.168.122.101  -       -       never\n' +
      'n10   new    -      192.168.122.110  -       -       never\n',
  );
  t.deepEqual(JSON.parse(await c.ok(nodectl, ['-i', 'n0', 'status', '--json'])), { n0: { state: 'new', last_seen: null } });
  t.is(await c.ok(nodectl, ['-i', 'n[1,10]', 'rm']), 'Deleted 2 nodes: n[1,10]\n');
  t.is(await c.ok(nodectl, ['ls']), 'Nodes\n  n0\n');
  t.is((await c.run(nodectl, ['rm'])).error, 'ERROR: rm needs the nodes to act on: -i IDS or -a/--all');
});

// ---------------------------------------------------------------------------------------------------
// Boot configs and images

test('bootctl: create with a kernel upload, clone, update, freeze blocks changes and rm, unfreeze', async (t) => {
  const c = await cluster();
  writeFileSync(join(c.cwd, 'vmlinuz-6.1.0-test'), fakeKernel('6.1.0-test'));
  writeFileSync(join(c.cwd, 'initrd.img'), fakeCpio());
  t.is(
    await c.ok(bootctl, ['create', 'name=DefaultBoot', 'kernel=@vmlinuz-6.1.0-test', 'initramfs=@initrd.img', 'cmdline=console=ttyS0 quiet']),
    'Created boot config DefaultBoot\n',
  );
  const shown = await c.ok(bootctl, ['-i', 'DefaultBoot', 'ls', '-l']);
  t.true(shown.includes('    release: 6.1.0-test\n'), shown);
  t.true(shown.includes('      filename: vmlinuz-6.1.0-test\n'), shown);
  t.true(shown.includes('    cmdline: console=ttyS0 quiet\n'));

  t.is(await c.ok(bootctl, ['-i', 'DefaultBoot', 'clone', 'name=mpiBoot']), 'Cloned boot config DefaultBoot as mpiBoot\n');
  const clone = await c.ok(bootctl, ['-i', 'mpiBoot', 'ls', '-l']);
  t.true(clone.includes('      filename: vmlinuz-6.1.0-test\n'), 'the kernel came along');
  t.is(await c.ok(bootctl, ['-i', 'mpiBoot', 'update', 'cmdline=enforcing=0 console=ttyS1,115200', 'description=MPI']), 'Updated boot config mpiBoot\n');
  t.true((await c.ok(bootctl, ['-i', 'mpiBoot', 'ls', '-l'])).includes('    cmdline: enforcing=0 console=ttyS1,115200\n'));

  t.is(await c.ok(bootctl, ['-i', 'mpiBoot', 'freeze']), 'Froze boot config mpiBoot\n');
  const refused = await c.run(bootctl, ['-i', 'mpiBoot', 'update', 'description=changed']);
  t.is(refused.error, 'ERROR: bootconfig mpiBoot is frozen; PATCH {"frozen": false} first');
  t.is((await c.run(bootctl, ['-i', 'mpiBoot', 'rm'])).error, 'ERROR: bootconfig mpiBoot is frozen; PATCH {"frozen": false} first');
  const upload = await c.run(bootctl, ['-i', 'mpiBoot', 'update', 'kernel=@vmlinuz-6.1.0-test']);
  t.is(upload.error, 'ERROR: bootconfig mpiBoot is frozen; PATCH {"frozen": false} first');
  t.true((await c.ok(bootctl, ['-i', 'mpiBoot', 'ls', '-l'])).includes('    description: MPI\n'));
  // update frozen=false is the seed's way to unfreeze; unfreeze the short one.
  t.is(await c.ok(bootctl, ['-i', 'mpiBoot', 'update', 'frozen=false']), 'Updated boot config mpiBoot\n');
  await c.ok(bootctl, ['-i', 'mpiBoot', 'update', 'frozen=true']);
  t.is(await c.ok(bootctl, ['-i', 'mpiBoot', 'unfreeze']), 'Unfroze boot config mpiBoot\n');
  t.is(await c.ok(bootctl, ['-i', 'mpiBoot', 'rm']), 'Deleted boot config mpiBoot\n');
  t.is(await c.ok(bootctl, ['ls']), 'Boot Configs\n  DefaultBoot\n');
  t.is((await c.run(bootctl, ['-i', 'nosuch', 'ls'])).error, 'ERROR: No boot config found for ID=nosuch, nothing was done');
});

test('imgctl: freeze blocks rm (and one frozen image stops a multi-image rm); unfreeze allows it', async (t) => {
  const c = await cluster();
  writeFileSync(join(c.cwd, 'img.bin'), Buffer.alloc(3000, 7));
  t.is(await c.ok(imgctl, ['create', 'name=DefaultImage', 'content=@img.bin']), 'Created image DefaultImage\n');
  t.true((await c.ok(imgctl, ['-i', 'DefaultImage', 'ls', '-l'])).includes('    size: 3000\n'));
  t.true((await c.ok(imgctl, ['-i', 'DefaultImage', 'ls', '-l', '--human'])).includes('    size: 2.9 KiB\n'));
  t.is(await c.ok(imgctl, ['-i', 'DefaultImage', 'clone', 'name=mpiImage']), 'Cloned image DefaultImage as mpiImage\n');
  t.true((await c.ok(imgctl, ['-i', 'mpiImage', 'ls', '-l'])).includes('    size: 3000\n'));

  t.is(await c.ok(imgctl, ['-i', 'DefaultImage', 'update', 'frozen=true']), 'Updated image DefaultImage\n');
  t.is((await c.run(imgctl, ['-i', 'DefaultImage', 'rm'])).error, 'ERROR: image DefaultImage is frozen; PATCH {"frozen": false} first');
  t.is((await c.run(imgctl, ['-i', 'DefaultImage,mpiImage', 'delete'])).error, 'ERROR: image DefaultImage is frozen, nothing was done (unfreeze it first)');
  t.is(await c.ok(imgctl, ['ls']), 'Images\n  DefaultImage\n  mpiImage\n');
  t.is(await c.ok(imgctl, ['-i', 'DefaultImage', 'unfreeze']), 'Unfroze image DefaultImage\n');
  t.is(await c.ok(imgctl, ['-i', 'DefaultImage,mpiImage', 'rm']), 'Deleted 2 images: DefaultImage,mpiImage\n');
  t.is((await c.run(imgctl, ['ls'])).error, 'ERROR: No images found, nothing was done');
});

// ---------------------------------------------------------------------------------------------------
// Local files and hostile values

test('@file: directories, devices, missing files and oversized text are refused before anything changes', async (t) => {
  const c = await cluster();
  await c.ok(bootctl, ['create', 'name=B', 'description=orig']);
  mkdirSync(join(c.cwd, 'adir'));
  const before = await c.ok(bootctl, ['-i', 'B', 'ls', '-L']);
  const cases: Array<[string[], string]> = [
    [['kernel=@adir'], 'ERROR: kernel=@adir: is a directory, not a file'],
    [['kernel=@/dev/zero'], 'ERROR: kernel=@/dev/zero: is not a regular file (a character device)'],
    [['initramfs=@/nonexistent/initrd'], 'ERROR: initramfs=@/nonexistent/initrd: no such file'],
    [['description=@../../../../../../etc/nonexistent'], 'ERROR: description=@../../../../../../etc/nonexistent: no such file'],
    [['description=@/dev/zero'], 'ERROR: description=@/dev/zero: is not a regular file (a character device)'],
    [['description=new', 'kernel=@adir'], 'ERROR: kernel=@adir: is a directory, not a file'],
    [['kernel=/boot/vmlinuz'], 'ERROR: kernel takes a local file: kernel=@/path/to/file'],
  ];
  for (const [words, error] of cases) {
    t.is((await c.run(bootctl, ['-i', 'B', 'update', ...words])).error, error, words.join(' '));
  }
  t.is((await c.run(bootctl, ['create', 'name=C', 'kernel=@adir'])).error, 'ERROR: kernel=@adir: is a directory, not a file');
  t.is(await c.ok(bootctl, ['-i', 'B', 'ls', '-L']), before);
  t.is(await c.ok(bootctl, ['ls']), 'Boot Configs\n  B\n');

  // A kernel or initramfs that is not one is refused before anything is sent.
  writeFileSync(join(c.cwd, 'notes.txt'), 'just some text\n');
  t.is((await c.run(bootctl, ['-i', 'B', 'update', 'kernel=@notes.txt'])).error, 'ERROR: kernel=@notes.txt: not a Linux kernel (no bzImage header, not an ELF vmlinux)');
  t.is((await c.run(bootctl, ['create', 'name=C', 'initramfs=@notes.txt'])).error, 'ERROR: initramfs=@notes.txt: not a cpio archive ("070701" newc), nor gzip, xz, zstd or lz4 compressed');
  t.is(await c.ok(bootctl, ['-i', 'B', 'ls', '-L']), before);
  t.is(await c.ok(bootctl, ['ls']), 'Boot Configs\n  B\n');

  // A readable text file is inlined.
  writeFileSync(join(c.cwd, 'desc.txt'), 'from a file\n');
  await c.ok(bootctl, ['-i', 'B', 'update', 'description=@desc.txt']);
  t.true((await c.ok(bootctl, ['-i', 'B', 'ls', '-l'])).includes('    description: from a file\n'));
});

test('hostile values are refused with the head node\'s one-line error and nothing is written', async (t) => {
  const c = await seeded();
  await c.ok(bootctl, ['create', 'name=B', 'cmdline=quiet']);
  const nodesBefore = await c.ok(nodectl, ['ls', '-L']);
  const bootBefore = await c.ok(bootctl, ['ls', '-L']);
  const attempts: Array<[typeof nodectl, string[]]> = [
    [nodectl, ['-i', 'n0', 'set', 'x=a;b']],
    [nodectl, ['-i', 'n[0-1]', 'set', 'ok=fine', 'x=}']],
    [nodectl, ['-i', 'n0', 'set', 'bad key=1']],
    [nodectl, ['-i', 'n0', 'set', 'x=line1\nline2']],
    [nodectl, ['-i', 'n0', 'update', 'ip=192.168.123.5']],
    [nodectl, ['-i', 'n0', 'update', 'mac=52:54:00:zz:00:01']],
    [nodectl, ['create', 'mac=01:00:5e:00:00:01']],
    [nodectl, ['create', 'mac=52:54:00:00:00:0b', 'colour=red']],
    [bootctl, ['create', 'name=bad;name']],
    [bootctl, ['create', 'name=bad"name']],
    [bootctl, ['-i', 'B', 'update', 'cmdline=quiet"; reboot']],
    [bootctl, ['-i', 'B', 'update', 'cmdline=a\nb']],
    [bootctl, ['-i', 'B', 'update', 'boot_style=evil']],
  ];
  for (const [tool, argv] of attempts) {
    const r = await c.run(tool, argv);
    t.is(r.exitCode, 1, argv.join(' '));
    t.regex(r.error ?? '', /^ERROR: [^\n]+$/, argv.join(' '));
  }
  t.is(await c.ok(nodectl, ['ls', '-L']), nodesBefore);
  t.is(await c.ok(bootctl, ['ls', '-L']), bootBefore);
  // The text is the head node's own.
  t.regex((await c.run(nodectl, ['create', 'mac=52:54:00:00:00:0b', 'colour=red'])).error ?? '', /colour/);
  t.regex((await c.run(nodectl, ['-i', 'n0', 'set', 'x=a;b'])).error ?? '', /;/);
});

// ---------------------------------------------------------------------------------------------------
// Authentication and reachability

test('no ssh-agent: a clear error and nothing else', async (t) => {
  const c = await cluster();
  const { SSH_AUTH_SOCK: _ignored, ...env } = c.env;
  const r = await c.run(nodectl, ['ls'], env, new Map());
  t.is(r.error, 'ERROR: no ssh-agent: SSH_AUTH_SOCK is not set; run eval `ssh-agent` ; ssh-add');
  const stale = await c.run(nodectl, ['ls'], { ...env, SSH_AUTH_SOCK: join(scratch.dir, 'gone.sock') }, new Map());
  t.regex(stale.error ?? '', /^ERROR: cannot talk to ssh-agent at .*gone\.sock: no agent is listening there/);
});

test('a key not registered for the admin: the 401 is one line naming user, server and the fix', async (t) => {
  const c = await cluster();
  const stranger = scratch.keygen('stranger');
  const sock = await scratch.agent('stranger', [stranger]);
  const r = await c.run(nodectl, ['ls'], { ...c.env, SSH_AUTH_SOCK: sock }, new Map());
  t.is(
    r.error,
    `ERROR: authentication as "admin" failed: the head node at ${c.baseUrl} did not accept the ssh-agent key ` +
      '(authentication failed: user, key or signature not accepted); add your key with cw-containerctl add-admin, ' +
      'or set CW_AUTHUSER to the admin name your key was added under',
  );
  // With the registered key added as well, the tool gets in (the agent's keys are tried in turn).
  const both = await scratch.agent('both', [stranger, fixture.adminKey]);
  t.is((await c.run(nodectl, ['ls'], { ...c.env, SSH_AUTH_SOCK: both }, new Map())).error, 'ERROR: No nodes found, nothing was done');
  // An empty agent says so.
  const empty = await scratch.agent('empty', []);
  t.regex((await c.run(nodectl, ['ls'], { ...c.env, SSH_AUTH_SOCK: empty }, new Map())).error ?? '', /^ERROR: ssh-agent at .* has no keys; run ssh-add$/);
});

test('--base-url overrides the settings; an unreachable head node is one line', async (t) => {
  const c = await cluster();
  const r = await c.run(nodectl, ['--base-url', 'http://127.0.0.1:1/api/v1', 'ls'], c.env, new Map());
  t.regex(r.error ?? '', /^ERROR: cannot reach the head node at http:\/\/127\.0\.0\.1:1\/api\/v1: .*ECONNREFUSED/);
  t.is((await c.run(nodectl, ['--base-url', 'ftp://x', 'ls'])).error, 'ERROR: --base-url "ftp://x" must use http or https, not ftp');
  // Settings from ~/.cw/settings.ini when the environment does not override them.
  const { CW_BASE_URL: _u, CW_AUTHUSER: _a, ...env } = c.env;
  mkdirSync(join(c.home, '.cw'), { recursive: true });
  writeFileSync(join(c.home, '.cw', 'settings.ini'), `[ClusterWare]\nclient.base_url = ${c.baseUrl}\nclient.authuser = admin\nclient.sslverify = quiet\n`);
  t.is((await c.run(nodectl, ['ls'], env, new Map())).error, 'ERROR: No nodes found, nothing was done');
});

// ---------------------------------------------------------------------------------------------------
// Attribute groups, repos, distros

test('attribctl: create, set/unset, clone, ls -l', async (t) => {
  const c = await seeded();
  await c.ok(bootctl, ['create', 'name=DefaultBoot']);
  // DefaultAttribs, the global default group, always exists.
  t.is((await c.run(attribctl, ['create', 'name=DefaultAttribs'])).error, 'ERROR: attrib DefaultAttribs already exists');
  t.is(await c.ok(attribctl, ['-i', 'DefaultAttribs', 'update', 'description=global']), 'Updated attribute group DefaultAttribs\n');
  t.is(await c.ok(attribctl, ['-i', 'DefaultAttribs', 'set', '_boot_config=DefaultBoot', 'color=blue']), 'Set _boot_config, color on attribute group DefaultAttribs\n');
  t.is(await c.ok(attribctl, ['-i', 'DefaultAttribs', 'unset', 'color']), 'Unset color on attribute group DefaultAttribs\n');
  t.is(await c.ok(attribctl, ['-i', 'DefaultAttribs', 'clone', 'name=rack1']), 'Cloned attribute group DefaultAttribs as rack1\n');
  t.is(
    await c.ok(attribctl, ['-i', 'rack1', 'ls', '-l']),
    'Attribute Groups\n  rack1\n    attributes\n      _boot_config: DefaultBoot\n    description: global\n    name: rack1\n    priority: 0\n',
  );
  await c.ok(nodectl, ['-i', 'n0', 'update', 'groups=rack1']);
  t.true((await c.ok(nodectl, ['-i', 'n0', 'ls', '-l'])).includes('    groups\n      rack1\n'));
});

test('clusterctl: repos and distros as in seed 003, default distro, import of a yum .repo file', async (t) => {
  const c = await cluster();
  t.is(
    await c.ok(clusterctl, ['repos', 'create', 'name=CentOS_base', 'urls=http://mirror.centos.org/centos/$releasever/os/$basearch/']),
    'Created repo CentOS_base\n',
  );
  t.is(await c.ok(clusterctl, ['distros', 'create', 'name=CentOS', 'repos=CentOS_base', 'release=7', 'package_manager=yum']), 'Created distro CentOS\n');
  t.is(
    await c.ok(clusterctl, ['distros', 'ls', '-l']),
    'Distros\n  CentOS\n    name: CentOS\n    package_manager: yum\n    release: 7\n    repos\n      CentOS_base\n',
  );
  t.is(
    await c.ok(clusterctl, ['repos', 'ls', '-l']),
    'Repos\n  CentOS_base\n    description: \n    iso: none\n    keys: []\n    name: CentOS_base\n    urls\n      http://mirror.centos.org/centos/$releasever/os/$basearch/\n',
  );
  t.is(await c.ok(clusterctl, ['--get-distro']), 'Default distro: none\n');
  t.is(await c.ok(clusterctl, ['--set-distro', 'CentOS']), 'Default distro: CentOS\n');
  t.is(await c.ok(clusterctl, ['--get-distro']), 'Default distro: CentOS\n');
  t.regex((await c.run(clusterctl, ['--set-distro', 'Nope'])).error ?? '', /^ERROR: default_distro: no distro "Nope"$/);
  t.is(await c.ok(clusterctl, ['--get-domain']), 'Domain: cluster.internal\n');
  t.is(await c.ok(clusterctl, ['--set-domain', 'hpc.example.org']), 'Domain: hpc.example.org\n');
  t.is(await c.ok(clusterctl, ['--get-domain']), 'Domain: hpc.example.org\n');
  t.regex((await c.run(clusterctl, ['--set-domain', 'Bad_Domain'])).error ?? '', /^ERROR: invalid domain "Bad_Domain": domain must be lowercase$/);
  t.is(await c.ok(clusterctl, ['--set-domain', '']), 'Domain: cluster.internal\n');
  t.is(await c.ok(clusterctl, ['--get-diskful-register']), 'Diskful registration: off (only nodes already known by MAC)\n');
  t.regex((await c.run(clusterctl, ['--set-diskful-register', 'diskful'])).error ?? '', /^ERROR: diskful_register: no attribute group "diskful" \(create it first\)$/);
  t.is(await c.ok(clusterctl, ['--set-diskful-register', 'DefaultAttribs']), 'Diskful registration: new nodes go to group DefaultAttribs\n');
  t.is(await c.ok(clusterctl, ['--set-diskful-register', '']), 'Diskful registration: off (only nodes already known by MAC)\n');

  writeFileSync(
    join(c.cwd, 'Rocky.repo'),
    [
      '[baseos]',
      'name=Rocky Linux $releasever - BaseOS',
      'baseurl=http://dl.rockylinux.org/$contentdir/$releasever/BaseOS/$basearch/os/',
      'gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9',
      '[appstream]',
      'baseurl=http://dl.rockylinux.org/$contentdir/$releasever/AppStream/$basearch/os/',
      '[devel]',
      'baseurl=http://dl.rockylinux.org/devel/',
      'enabled=0',
    ].join('\n'),
  );
  const imported = await c.run(clusterctl, ['distros', 'import', '--name', 'Rocky9', '--release', '9', 'Rocky.repo']);
  t.is(imported.out, 'Imported 2 repos (baseos, appstream) as distro Rocky9\n');
  t.is(imported.err, 'WARNING: Rocky.repo:7: skipping [devel]: it is disabled (enabled=0)\n');
  t.true((await c.ok(clusterctl, ['distros', '-i', 'Rocky9', 'ls', '-l'])).includes('    repos\n      baseos\n      appstream\n'));

  // A second import of the same repos fails and leaves nothing new behind.
  const again = await c.run(clusterctl, ['distros', 'import', '--name', 'Rocky9b', 'Rocky.repo']);
  t.regex(again.error ?? '', /^ERROR: .*baseos.*, nothing was done$/);
  t.is(await c.ok(clusterctl, ['repos', 'ls']), 'Repos\n  CentOS_base\n  appstream\n  baseos\n');
  t.is(await c.ok(clusterctl, ['distros', 'ls']), 'Distros\n  CentOS\n  Rocky9\n');

  t.is(await c.ok(clusterctl, ['distros', '-i', 'Rocky9', 'rm']), 'Deleted distro Rocky9\n');
  t.is((await c.run(clusterctl, ['nets', 'ls'])).error, 'ERROR: No networks found, nothing was done');
});
