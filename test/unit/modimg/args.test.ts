import test from 'ava';
import { parseModimgArgs } from '../../../src/tools/modimg/args.js';
import { imageUrl } from '../../../src/tools/modimg/download.js';
import { modimg } from '../../../src/tools/modimg/modimg.js';

test('the seed 003 command lines parse into steps', (t) => {
  const a = parseModimgArgs(['--create', '--set-name', 'mpiImage', '--install', 'openmpi3.1', 'hello', '--chroot', '--no-discard', '--overwrite', '--upload']);
  t.like(a, { create: {}, setName: 'mpiImage', install: ['openmpi3.1', 'hello'], chroot: true, noDiscard: true, overwrite: true, upload: true });
  t.deepEqual(parseModimgArgs(['--create', 'CentOS6', '--set-name', 'CentOS6_image']).create, { distro: 'CentOS6' });
  const b = parseModimgArgs(['-iProd202404'.slice(0, 2), 'Prod202404', '--copyin', 'prod-install.sh', '/root', '--chroot', '--upload', '--overwrite']);
  t.deepEqual(b.copyin, [{ src: 'prod-install.sh', dest: '/root' }]);
  t.deepEqual(parseModimgArgs(['-i', 'img', '--query']).query, []);
  t.deepEqual(parseModimgArgs(['-i', 'img', '--query', 'clusterware-node']).query, ['clusterware-node']);
  t.deepEqual(parseModimgArgs(['-i', 'img', '--exec', 'apt-get -y upgrade', '--exec', 'true']).exec, ['apt-get -y upgrade', 'true']);
  t.like(parseModimgArgs(['--import', 'docker-archive:/tmp/x.tar', '--set-name', 'x']), { importFrom: 'docker-archive:/tmp/x.tar' });
  t.like(parseModimgArgs(['--all', '--delete']), { all: true, delete: true });
  t.true(parseModimgArgs(['ls']).ls);
});

test('impossible combinations are refused with one line saying why', (t) => {
  const err = (argv: string[]) => t.throws(() => parseModimgArgs(argv))?.message;
  t.is(err(['--create']), '--create needs --set-name NAME');
  t.is(err(['--create', '-i', 'x', '--set-name', 'y']), '--create makes a new image: name it with --set-name, not -i');
  t.is(err(['--create', '--import', 'x', '--set-name', 'y']), '--create and --import cannot be combined');
  t.is(err(['--delete']), '--delete needs -i NAME or --all');
  t.is(err(['-i', 'x', '--delete', '--install', 'y']), '--delete cannot be combined with other steps');
  t.is(err(['-i', 'x']), 'nothing to do with image x: add a step such as --install, --query or --upload');
  t.is(err([]), 'nothing to do: give -i NAME, --create, --import or ls (see cw-modimg --help)');
  t.is(err(['-i', 'x', '--install']), '--install needs package names, e.g. --install hello');
  t.is(err(['-i', 'x', '--copyin', 'a']), '--copyin needs SRC and DEST, e.g. --copyin ./prod-install.sh /root');
  t.is(err(['-i', 'x', '--bogus']), 'unknown option --bogus (see cw-modimg --help)');
  t.is(err(['-i', 'x', '--upload', '--compression', 'gzip']), '--compression must be xz or zstd, not "gzip"');
});

test('cw-modimg refuses to run without root, before touching anything', async (t) => {
  await t.throwsAsync(modimg(['ls'], { uid: 1000, env: { HOME: '/nonexistent' } }), { message: /^cw-modimg must run as root/ });
  const out: string[] = [];
  await modimg(['--help'], { uid: 1000, out: (s) => out.push(s) });
  t.regex(out.join(''), /--create \[DISTRO\] --set-name NAME/);
});

test('images are fetched from nginx beside the API', (t) => {
  t.is(imageUrl('http://head/api/v1', 'abc'), 'http://head/images/abc.img');
  t.is(imageUrl('https://head:8443/cw/api/v1/', 'abc'), 'https://head:8443/cw/images/abc.img');
});

test('options in any order, attached -i values, repeated steps, and words that only look like values', (t) => {
  t.like(parseModimgArgs(['--upload', '-iimg', '--install', 'a', 'b', '--install', 'c', '--query']), { image: 'img', install: ['a', 'b', 'c'], query: [], upload: true });
  t.deepEqual(parseModimgArgs(['-i', 'x', '--copyin', 'a', '/a', '--copyin', 'b', '/b']).copyin, [{ src: 'a', dest: '/a' }, { src: 'b', dest: '/b' }]);
  t.deepEqual(parseModimgArgs(['-i', 'x', '--exec', '']).exec, ['']);
  t.like(parseModimgArgs(['--create=debian12', '--set-name', 'y', '--no-discard']), { create: { distro: 'debian12' }, noDiscard: true });
  t.like(parseModimgArgs(['--image', 'x', '--query', 'a', 'b', '--chroot']), { image: 'x', query: ['a', 'b'], chroot: true });
  const err = (argv: string[]) => t.throws(() => parseModimgArgs(argv))?.message;
  t.is(err(['-i', '--upload']), 'option -i needs a value');
  t.is(err(['-i', 'x', '--exec']), 'option --exec needs a value');
  t.is(err(['-i', 'x', '--install', '--upload']), '--install needs package names, e.g. --install hello');
  t.is(err(['-i', 'x', '--upload=yes']), 'option --upload takes no value');
  t.is(err(['-i', 'x', '--upload', 'extra']), 'unexpected argument "extra" (see cw-modimg --help)');
  t.is(err(['--create', 'ls']), 'ls takes no other steps');
});
