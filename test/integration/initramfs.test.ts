// The node initramfs on a real kernel: Debian's cloud kernel (downloaded as a .deb and unpacked, as an
// image would carry it), our builder, and qemu (TCG) booting kernel + initramfs. The VM has a virtio NIC
// attached to nothing, so /init must load its modules, find the NIC, try DHCP and fail cleanly with a
// "cw-init: ERROR" line (and a reboot) — no traffic leaves the VM.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs, type InitramfsResult } from '../../src/images/initramfs/build.js';
import { requireTools } from '../helpers/tools.js';

const QEMU = 'qemu-system-x86_64';
const MAC = '52:54:00:c1:00:01';
const work = mkdtempSync(join(tmpdir(), 'cw-initramfs-it-'));
let built: InitramfsResult | undefined;
const vmTest = requireTools('qemu-system-x86_64', 'busybox', 'depmod', 'apt-cache', 'apt-get', 'dpkg-deb');

vmTest.before(async () => {
  // The kernel package linux-image-cloud-amd64 points at, e.g. linux-image-6.1.0-56-cloud-amd64.
  const debDir = join(work, 'deb');
  rmSync(debDir, { recursive: true, force: true });
  await execa('mkdir', ['-p', debDir]);
  const deps = await execa('apt-cache', ['depends', 'linux-image-cloud-amd64'], { reject: false });
  const pkg = /Depends: (linux-image-[0-9][^\s]*)/.exec(deps.stdout)?.[1];
  if (!pkg) throw new Error('apt-cache does not know linux-image-cloud-amd64 (run apt-get update)');
  const dl = await execa('apt-get', ['download', pkg], { cwd: debDir, reject: false });
  const deb = readdirSync(debDir).find((f) => f.endsWith('.deb'));
  if (dl.exitCode !== 0 || !deb) throw new Error(`apt-get download ${pkg} failed: ${dl.stderr.split('\n').slice(-1)[0]}`);
  const root = join(work, 'root');
  await execa('dpkg-deb', ['-x', join(debDir, deb), root]);
  built = await buildInitramfs({ rootDir: root, out: join(work, 'initramfs.img') });
});

test.after.always(() => {
  rmSync(work, { recursive: true, force: true });
});

interface Boot {
  lines: string[];
  /** ms from qemu's start to each marker seen. */
  at: Map<string, number>;
}

/** Boots kernel + initramfs until `until` appears on the serial console (or the time runs out). */
async function boot(cmdline: string, until: RegExp, markers: Record<string, RegExp>, timeoutMs = 180_000): Promise<Boot> {
  const b = built as InitramfsResult;
  const started = Date.now();
  const proc: ResultPromise = execa(
    QEMU,
    [
      '-accel', 'tcg', '-m', '1024', '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
      '-netdev', 'hubport,id=n0,hubid=0',
      '-device', `virtio-net-pci,netdev=n0,mac=${MAC},romfile=`,
      '-kernel', b.kernel, '-initrd', b.out,
      '-append', `console=ttyS0 ${cmdline}`,
    ],
    { reject: false, stdin: 'ignore', buffer: false },
  );
  const result: Boot = { lines: [], at: new Map() };
  let partial = '';
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    proc.stdout?.on('data', (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const parts = partial.split(/\r?\n/);
      partial = parts.pop() ?? '';
      for (const raw of parts) {
        const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
        result.lines.push(line);
        for (const [name, re] of Object.entries(markers)) if (!result.at.has(name) && re.test(line)) result.at.set(name, Date.now() - started);
        if (until.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    void proc.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  proc.kill('SIGKILL');
  await proc;
  return result;
}

vmTest('the initramfs holds /init, busybox and the boot modules with their dependencies', (t) => {
  const b = built as InitramfsResult;
  for (const m of ['loop', 'squashfs', 'overlay', 'virtio_net', 'virtio_pci', 'virtio', 'virtio_ring', 'failover', 'net_failover']) t.true(b.modules.includes(m), m);
  t.true(b.modules.indexOf('virtio_ring') < b.modules.indexOf('virtio_net'));
  t.true(b.size > 500_000 && b.size < 32 * 1024 * 1024, `size ${b.size}`);
  t.log(`initramfs ${b.size} bytes for ${b.kver}; modules: ${b.modules.join(' ')}`);
});

vmTest('qemu: /init loads the modules, finds the NIC, and fails the DHCP step cleanly', async (t) => {
  const cmdline = `cw.node=n0 cw.uid=0123abcd cw.head=http://192.0.2.1 cw.image=/images/0123abcd.img cw.style=rwram cw.rw=overlayfs cw.mac=${MAC}`;
  const r = await boot(cmdline, /cw-init: ERROR/, {
    init: /^cw-init: starting/,
    modules: /^cw-init: modules loaded:/,
    dhcp: /^cw-init: DHCP on /,
    error: /^cw-init: ERROR/,
  });
  const log = r.lines.join('\n');
  t.log(`ms from power-on: ${[...r.at].map(([k, v]) => `${k}=${v}`).join(' ')}`);
  t.regex(log, /cw-init: node n0 \(uid 0123abcd\), head http:\/\/192\.0\.2\.1, image \/images\/0123abcd\.img, style rwram/);
  const loaded = /cw-init: modules loaded: (.*)/.exec(log)?.[1]?.split(/\s+/) ?? [];
  for (const m of ['squashfs', 'overlay', 'loop', 'virtio_net']) t.true(loaded.includes(m), `${m} loaded: ${loaded.join(' ')}`);
  t.regex(log, /cw-init: DHCP on eth0/);
  t.regex(log, /cw-init: ERROR: no DHCP lease on any of: eth0/);
  t.notRegex(log, /Kernel panic/);
});

vmTest('qemu: _boot_rw_layer=rwtab is refused with a clear message', async (t) => {
  const r = await boot(`cw.node=n0 cw.head=http://192.0.2.1 cw.image=/images/x.img cw.style=roram cw.rw=rwtab cw.mac=${MAC}`, /cw-init: (ERROR|rebooting)/, {});
  t.regex(r.lines.join('\n'), /cw-init: ERROR: _boot_rw_layer=rwtab is not yet supported/);
});
