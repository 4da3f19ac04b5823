import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  absPath,
  comment,
  conf,
  integer,
  ipv4,
  lines,
  oneOf,
  port,
  renderTemplate,
  renderTemplateFile,
  word,
  type SafeText,
} from '../../../src/appliance/config/template.js';
import { testContext } from '../services/context.js';

test('placeholders are replaced by validated values', (t) => {
  const out = renderTemplate('listen {{port}};\nroot {{ dir }};\n', { port: port(8080), dir: absPath('/var/lib/cw/boot') });
  t.is(out, 'listen 8080;\nroot /var/lib/cw/boot;\n');
});

test('unsafe values are refused before they reach a config file', (t) => {
  for (const bad of ['/var/lib/cw boot', '/x;y', '/a/../etc', 'relative/path', '/a{b}', '/a\nb', "/a'b", '/a"b', '/a//b', '/a/./b']) {
    t.throws(() => absPath(bad), { message: /unsafe path/ }, bad);
  }
  for (const bad of [0, 65536, 80.5, Number.NaN]) t.throws(() => port(bad), { message: /unsafe port/ });
  for (const bad of ['eth0\n', 'eth0;', '', 'a b', '-rf']) t.throws(() => word(bad), { message: /unsafe word/ }, bad);
  for (const bad of ['256.1.1.1', '10.0.0', '10.0.0.01', '1.2.3.4 ']) t.throws(() => ipv4(bad), { message: /unsafe IPv4/ }, bad);
  t.throws(() => oneOf('maybe' as 'yes', ['yes', 'no']), { message: /unsafe value/ });
  t.throws(() => integer(100, 1, 64));
  t.throws(() => comment('line\nbreak'));
  t.is(absPath('/').text, '/');
  t.is(word('enp0s31f6').text, 'enp0s31f6');
});

test('raw strings are refused even when the type system is bypassed', (t) => {
  const raw = 'evil; include /etc/shadow' as unknown as SafeText;
  t.throws(() => renderTemplate('x {{v}}', { v: raw }), { message: /value for \{\{v\}\} was not validated/ });
  t.throws(() => conf`subnet ${raw} {}`, { message: /unsafe fragment value/ });
  t.throws(() => lines([raw]), { message: /unsafe block line/ });
});

test('fragments built with conf join only safe parts', (t) => {
  const block = lines([conf`HostKey ${absPath('/k/ed25519')}`, conf`HostKey ${absPath('/k/rsa')}`]);
  t.is(renderTemplate('{{keys}}', { keys: block }), 'HostKey /k/ed25519\nHostKey /k/rsa');
});

test('every template problem is reported with its line', (t) => {
  const error = t.throws(() => renderTemplate('a {{port}}\nb {{prot}}\nc {{Bad Name}}', { port: port(80) }, 'nginx.conf.template'));
  t.is(error?.message, 'nginx.conf.template:2: unknown placeholder {{prot}}; nginx.conf.template:3: malformed placeholder {{Bad Name}}');
});

test('an admin override in STORAGE/etc/templates wins over the built-in template', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  const builtin = await renderTemplateFile('dhcpd.conf.template', ctx.paths.templates, { subnets: lines([]), hosts: lines([]) });
  t.regex(builtin.text, /not authoritative;/);
  await mkdir(ctx.paths.templates.overrideDir, { recursive: true });
  await writeFile(path.join(ctx.paths.templates.overrideDir, 'dhcpd.conf.template'), 'authoritative;\n{{subnets}}\n');
  const override = await renderTemplateFile('dhcpd.conf.template', ctx.paths.templates, { subnets: lines([]), hosts: lines([]) });
  t.is(override.text, 'authoritative;\n\n');
  t.is(override.file, path.join(ctx.paths.templates.overrideDir, 'dhcpd.conf.template'));
});
