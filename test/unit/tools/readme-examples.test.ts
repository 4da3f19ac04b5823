// Every cw-* command line the README shows goes through the parser of its tool: a README example that
// stops parsing (an option renamed, an action dropped) fails here instead of in a user's terminal.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseArgs, protectCommand } from '../../../src/tools/common/args.js';
import type { ToolSpec } from '../../../src/tools/common/run.js';
import { ADD_BOOT_CONFIG } from '../../../src/tools/add-boot-config/add-boot-config.js';
import { ATTRIBCTL } from '../../../src/tools/attribctl/attribctl.js';
import { BOOTCTL } from '../../../src/tools/bootctl/bootctl.js';
import { CLUSTER_CONF } from '../../../src/tools/cluster-conf/cluster-conf.js';
import { CLUSTERCTL } from '../../../src/tools/clusterctl/clusterctl.js';
import { IMGCTL } from '../../../src/tools/imgctl/imgctl.js';
import { MKRAMFS } from '../../../src/tools/mkramfs/mkramfs.js';
import { parseModimgArgs } from '../../../src/tools/modimg/args.js';
import { NODECTL } from '../../../src/tools/nodectl/nodectl.js';

const TOOLS: Record<string, ToolSpec> = Object.fromEntries(
  [ADD_BOOT_CONFIG, ATTRIBCTL, BOOTCTL, CLUSTER_CONF, CLUSTERCTL, IMGCTL, MKRAMFS, NODECTL].map((t) => [t.name, t]),
);

/** The words of one shell command as the shell passes them (quotes removed; no expansions needed here). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g)) words.push(m[0].replace(/'([^']*)'|"([^"]*)"/g, '$1$2'));
  return words;
}

/** `cw-*` command lines of the README's console blocks: `$ a && b  # comment` gives a and b, redirections dropped. */
function readmeCommands(): string[][] {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const commands: string[][] = [];
  for (const line of readme.split('\n')) {
    if (!line.startsWith('$ ')) continue;
    for (const part of line.slice(2).replace(/\s+#.*$/, '').split('&&')) {
      const words = shellWords(part.replace(/\s>\s*\S+\s*$/, ''));
      if (words[0]?.startsWith('cw-') && words[0] !== 'cw-containerctl') commands.push(words);
    }
  }
  return commands;
}

test('every README example of the cw-* tools parses, with an action its tool knows', (t) => {
  const commands = readmeCommands();
  t.true(commands.length >= 30, `found ${commands.length} examples`);
  const seen = new Set<string>();
  for (const [tool = '', ...argv] of commands) {
    seen.add(tool);
    const shown = [tool, ...argv].join(' ');
    if (tool === 'cw-modimg') {
      t.notThrows(() => parseModimgArgs(argv), shown);
      continue;
    }
    const spec = TOOLS[tool];
    if (!spec) {
      t.fail(`${shown}: no such tool`);
      continue;
    }
    const given = spec.commandActions ? protectCommand(argv, spec.options ?? [], spec.commandActions) : argv;
    const args = parseArgs(given, spec.options ?? []);
    const [action = spec.defaultAction] = args.words;
    if (action === undefined) t.truthy(spec.before, `${shown}: no action`);
    else t.true(Object.hasOwn(spec.actions, action), `${shown}: unknown action ${action}`);
  }
  t.deepEqual([...seen].sort(), ['cw-add-boot-config', 'cw-attribctl', 'cw-bootctl', 'cw-cluster-conf', 'cw-clusterctl', 'cw-imgctl', 'cw-mkramfs', 'cw-modimg', 'cw-nodectl']);
});

test('README examples: node ranges, key=value words, quoted values and tool options', (t) => {
  const nodes = (line: string) => parseArgs(shellWords(line), NODECTL.options);
  t.like(nodes('-i n[0-15] set _boot_config=mpiBoot'), { common: { ids: 'n[0-15]' }, words: ['set', '_boot_config=mpiBoot'] });
  t.like(nodes('ls -l'), { common: { detail: 1 }, words: ['ls'] });
  t.deepEqual(nodes('create mac=52:54:00:00:00:0a index=10').words, ['create', 'mac=52:54:00:00:00:0a', 'index=10']);
  t.is(nodes('-i n0 waitfor up --timeout 300').options.get('timeout'), '300');
  t.deepEqual(parseArgs(shellWords('create name=gpu description="GPU nodes"')).words, ['create', 'name=gpu', 'description=GPU nodes']);
  const conf = parseArgs(shellWords('load cluster.conf --dry-run'), CLUSTER_CONF.options);
  t.true(conf.options.get('dry-run'));
  t.deepEqual(conf.words, ['load', 'cluster.conf']);
  const imp = parseArgs(shellWords('distros import --name rocky9 /etc/yum.repos.d/rocky.repo'), CLUSTERCTL.options);
  t.is(imp.options.get('name'), 'rocky9');
  t.deepEqual(imp.words, ['distros', 'import', '/etc/yum.repos.d/rocky.repo']);
  t.is(parseArgs(['--set-distro', 'debian12'], CLUSTERCTL.options).options.get('set-distro'), 'debian12');
  const boot = parseArgs(shellWords('--image mpiImage --boot-config mpiBoot'), ADD_BOOT_CONFIG.options);
  t.deepEqual([boot.options.get('image'), boot.options.get('boot-config'), boot.words], ['mpiImage', 'mpiBoot', []]);
  t.like(parseModimgArgs(shellWords("-i mpiImage --copyin site.conf /etc/site.conf --exec 'systemctl enable foo' --upload --overwrite")), {
    image: 'mpiImage',
    copyin: [{ src: 'site.conf', dest: '/etc/site.conf' }],
    exec: ['systemctl enable foo'],
    upload: true,
    overwrite: true,
  });
});

test('ClusterWare spellings: attached -i values, options after the action, the same result either way', (t) => {
  const forms = [['-in0', 'ls', '-l'], ['ls', '-l', '-i', 'n0'], ['-i', 'n0', 'ls', '--long'], ['--ids=n0', '-l', 'ls'], ['ls', '-li', 'n0'], ['ls', '-lin0']];
  for (const argv of forms) t.like(parseArgs(argv), { common: { ids: 'n0', detail: 1 }, words: ['ls'] }, argv.join(' '));
  t.like(parseArgs(['-i', 'n[0-15]', 'status', '-L', '--json']), { common: { ids: 'n[0-15]', detail: 2, format: 'json' }, words: ['status'] });
  // A flag bundled before a value option still needs the value.
  t.throws(() => parseArgs(['ls', '-li']), { message: 'option -i needs a value' });
  t.throws(() => parseArgs(['ls', '--ids']), { message: 'option --ids needs a value' });
  t.throws(() => parseArgs(['ls', '-lx']), { message: 'unknown option -x (see --help)' });
  t.throws(() => parseArgs(['ls', '--frob=1']), { message: 'unknown option --frob (see --help)' });
});
