// RPM → TAR figures: the conversion the download endpoint runs (RpmTarCache, in this process), beside
// `rpm2cpio X.rpm | cpio -idm && tar czf` on the same file as the baseline, for
//   - a ~100 MB RPM with an xz payload (100 MB of random bytes: nothing to compress, all to copy),
//   - a ~1 MB RPM with an xz payload of a 110 MiB compressible file,
//   - 200 small RPMs one after another.
// Usage: npx tsx bench/rpm2tar.ts   (needs rpmbuild, rpm2cpio, cpio, tar; CW_BENCH_RUNS, default 3)
// Everything is made in a temporary directory, removed at the end (also on failure).
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpmTarCache } from '../src/appliance/clientpkgs/tar-cache.js';

const RUNS = Number(process.env.CW_BENCH_RUNS ?? 3);
const SMALL = 200;
const dir = await mkdtemp(join(tmpdir(), 'cw-bench-rpm2tar-'));

async function buildRpm(name: string, payload: string, fill: (root: string) => Promise<void>): Promise<string> {
  const top = join(dir, `top-${name}`);
  const src = join(dir, `src-${name}`);
  await mkdir(join(top, 'SPECS'), { recursive: true });
  await mkdir(src, { recursive: true });
  await fill(src);
  const spec = join(top, 'SPECS', `${name}.spec`);
  await writeFile(
    spec,
    [
      `Name: ${name}`,
      'Version: 1.0',
      'Release: 1',
      'Summary: rpm2tar benchmark',
      'License: MIT',
      'BuildArch: noarch',
      'AutoReqProv: no',
      '%description',
      'rpm2tar benchmark',
      '%install',
      `cp -a ${src}/. %{buildroot}/`,
      '%post',
      'true',
      '%files',
      `/opt/${name}`,
      '',
    ].join('\n'),
  );
  await execa('rpmbuild', ['-bb', '--define', `_topdir ${top}`, '--define', `_binary_payload ${payload}`, '--define', '__os_install_post %{nil}', spec]);
  return join(top, 'RPMS', 'noarch', `${name}-1.0-1.noarch.rpm`);
}

async function writeBig(file: string, size: number, compressible: boolean): Promise<void> {
  const fh = await open(file, 'w');
  const block = randomBytes(1024 * 1024);
  for (let written = 0, i = 0; written < size; i++) {
    const chunk = compressible ? Buffer.concat([Buffer.from(`chunk ${i}\n`), block]) : randomBytes(1024 * 1024);
    const part = chunk.subarray(0, size - written);
    await fh.write(part);
    written += part.length;
  }
  await fh.close();
}

/** The reference: rpm2cpio | cpio -idm into a fresh directory, then tar czf of it. */
async function reference(rpms: string[], out: string): Promise<void> {
  for (const [i, rpm] of rpms.entries()) {
    const tree = join(out, `tree-${i}`);
    await mkdir(tree, { recursive: true });
    await execa('rpm2cpio', [rpm], { buffer: false }).pipe('cpio', ['-idm', '--quiet'], { cwd: tree });
    await execa('tar', ['czf', join(out, `${i}.tar.gz`), '-C', tree, '.']);
  }
}

async function ours(rpms: string[], out: string): Promise<void> {
  await mkdir(out, { recursive: true });
  const cache = new RpmTarCache(out);
  for (const rpm of rpms) await cache.tarFor(rpm);
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  process.stdout.write('building the RPMs...\n');
  const random = await buildRpm('cwbench-random', 'w2.xzdio', async (root) => {
    await mkdir(join(root, 'opt/cwbench-random'), { recursive: true });
    await writeBig(join(root, 'opt/cwbench-random/data.bin'), 100_000_000, false);
  });
  const packed = await buildRpm('cwbench-packed', 'w6.xzdio', async (root) => {
    await mkdir(join(root, 'opt/cwbench-packed'), { recursive: true });
    await writeBig(join(root, 'opt/cwbench-packed/data.bin'), 110 * 1024 * 1024, true);
  });
  const small: string[] = [];
  for (let i = 0; i < SMALL; i++) {
    small.push(
      await buildRpm(`cwbench-small${i}`, 'w6.xzdio', async (root) => {
        const d = join(root, `opt/cwbench-small${i}/bin`);
        await mkdir(d, { recursive: true });
        await writeFile(join(d, 'tool'), `#!/bin/sh\necho ${i}\n${randomBytes(20_000).toString('base64')}\n`);
        await chmod(join(d, 'tool'), 0o755);
      }),
    );
  }
  const cases: [string, string[]][] = [
    ['~100 MB RPM, xz payload of 100 MB random bytes', [random]],
    ['~1 MB RPM, xz payload of a 110 MiB compressible file', [packed]],
    [`${SMALL} small RPMs one after another`, small],
  ];
  process.stdout.write(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${RUNS} runs each, median\n\n`);
  process.stdout.write('| RPMs | ours | rpm2cpio + cpio + tar czf | ratio |\n|---|---|---|---|\n');
  for (const [label, rpms] of cases) {
    const mine: number[] = [];
    const theirs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const out = join(dir, 'out');
      mine.push(await timed(() => ours(rpms, join(out, 'ours'))));
      theirs.push(await timed(() => reference(rpms, join(out, 'ref'))));
      await rm(out, { recursive: true, force: true });
    }
    const a = median(mine);
    const b = median(theirs);
    process.stdout.write(`| ${label} | ${a.toFixed(2)} s | ${b.toFixed(2)} s | ${(a / b).toFixed(2)}× |\n`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
