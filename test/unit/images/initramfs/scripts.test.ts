// The node's shell scripts: syntax under busybox sh, and the helpers /init relies on, run for real.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_SCRIPTS_DIR } from '../../../../src/images/initramfs/build.js';
import { requireTools, toolPath } from '../../../helpers/tools.js';

const BUSYBOX = toolPath('busybox');
const FUNCTIONS = join(NODE_SCRIPTS_DIR, 'init-functions.sh');
const bbTest = requireTools('busybox');

/** Runs a snippet in busybox sh with init-functions.sh sourced. */
async function run(snippet: string, args: string[] = []) {
  return execa(BUSYBOX, ['sh', '-c', `. "${FUNCTIONS}"; ${snippet}`, 'sh', ...args], { reject: false });
}

for (const name of ['init', 'init-functions.sh', 'udhcpc.script', 'cw-node-agent']) {
  bbTest(`${name} parses under busybox sh -n`, async (t) => {
    const r = await execa(BUSYBOX, ['sh', '-n', join(NODE_SCRIPTS_DIR, name)], { reject: false });
    t.is(r.exitCode, 0, r.stderr);
  });
}

test('/init: set -u, switch_root to /sbin/init, every failure through cw_fail with a reboot', (t) => {
  const init = readFileSync(join(NODE_SCRIPTS_DIR, 'init'), 'utf8');
  t.regex(init, /^set -u$/m);
  t.regex(init, /exec switch_root "\$NEWROOT" \/sbin\/init/);
  t.regex(init, /cw_say "ERROR: \$\*"/);
  t.regex(init, /reboot -f/);
  t.regex(init, /_boot_rw_layer=rwtab is not yet supported/);
  t.regex(init, /cw_report initramfs/);
  t.regex(init, /cw_report image/);
  // The NIC must keep its address across switch_root: nothing deconfigures it.
  t.notRegex(init, /ip (-4 )?addr flush|udhcpc[^\n]* -R/);
});

bbTest('cw_squash_offset reads partition 1 of the MBR', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-mbr-'));
  try {
    const img = join(dir, 'x.img');
    const mbr = Buffer.alloc(4096);
    mbr[450] = 0x83;
    mbr.writeUInt32LE(2048, 454);
    mbr.writeUInt32LE(1000, 458);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    writeFileSync(img, mbr);
    t.is((await run('cw_squash_offset "$1"', [img])).stdout, '1048576');
    mbr.writeUInt32LE(0x01020304, 454);
    writeFileSync(img, mbr);
    t.is((await run('cw_squash_offset "$1"', [img])).stdout, String(0x01020304 * 512));
    mbr[511] = 0;
    writeFileSync(img, mbr);
    const bad = await run('cw_squash_offset "$1"', [img]);
    t.not(bad.exitCode, 0);
    t.regex(bad.stderr, /no partition table/);
    mbr[511] = 0xaa;
    mbr[450] = 0;
    writeFileSync(img, mbr);
    t.regex((await run('cw_squash_offset "$1"', [img])).stderr, /partition 1 .* is empty/);
    writeFileSync(img, Buffer.alloc(100));
    t.not((await run('cw_squash_offset "$1"', [img])).exitCode, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

bbTest('cw_cmdline_value and cw_normalize_mac', async (t) => {
  const line = 'console=ttyS0 cw.node=n0 cw.head=http://10.1.0.1:8080 cw.image=/images/abc.img BOOTIF=01-52-54-00-AB-cd-01 cw.node=n7';
  t.is((await run('cw_cmdline_value cw.node "$1"', [line])).stdout, 'n7');
  t.is((await run('cw_cmdline_value cw.head "$1"', [line])).stdout, 'http://10.1.0.1:8080');
  t.is((await run('cw_cmdline_value cw.rw "$1"', [line])).stdout, '');
  t.is((await run('cw_normalize_mac "$(cw_cmdline_value BOOTIF "$1")"', [line])).stdout, '52:54:00:ab:cd:01');
  t.is((await run('cw_normalize_mac 52:54:00:AB:CD:02')).stdout, '52:54:00:ab:cd:02');
  t.is((await run('cw_normalize_mac "52:54:00:ab:cd"')).stdout, '');
  t.is((await run('cw_normalize_mac "x;reboot"')).stdout, '');
});

bbTest('cw_prefix_of and cw_json_escape', async (t) => {
  t.is((await run('cw_prefix_of 255.255.255.0')).stdout, '24');
  t.is((await run('cw_prefix_of 255.255.240.0')).stdout, '20');
  const esc = (await run('cw_json_escape "$1"', ['say "hi"\\ok\nline'])).stdout;
  t.is(JSON.parse(`"${esc}"`), 'say "hi"\\ok line');
});
