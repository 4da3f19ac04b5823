// Appliance figures: start -> healthy and stop times (median of 5), image size, idle memory.
// Usage: npx tsx bench/appliance.ts [IMAGE:TAG]   (needs Docker and a loaded cw-headnode image)
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const cli = resolve(import.meta.dirname, '../dist/host/containerctl/main.js');
const NET = 'cwbench0';
const NAME = 'cw-bench';
const RUNS = Number(process.env.CW_BENCH_RUNS ?? 5);

// The figures are Docker's; the CLI would otherwise prefer a running Podman socket.
process.env.DOCKER_HOST ??= 'unix:///var/run/docker.sock';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const docker = (args: string[]) => execa('docker', args, { reject: false });

async function newestImage(): Promise<string> {
  const r = await docker(['images', '--filter', 'label=io.cw-headnode.appliance=true', '--format', '{{.Repository}}:{{.Tag}}']);
  const ref = r.stdout.split('\n').filter(Boolean)[0];
  if (!ref) throw new Error('no cw-headnode image loaded: run cw-containerctl img-load first');
  return ref;
}

async function timed(args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await execa('node', [cli, ...args], { reject: false, all: true, stdin: 'ignore' });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`cw-containerctl ${args.join(' ')} failed:\n${r.all}`);
  return ms;
}

/** Memory charged to the container's cgroup (all its processes), in MiB. */
async function containerMemoryMiB(): Promise<number> {
  const r = await docker(['stats', '--no-stream', '--format', '{{.MemUsage}}', NAME]);
  const m = /([\d.]+)\s*([KMG]i?B)/.exec(r.stdout);
  if (!m) throw new Error(`cannot read memory: ${r.stdout}${r.stderr}`);
  const factor = { KiB: 1 / 1024, KB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 }[m[2]!] ?? 1;
  return Number(m[1]) * factor;
}

async function main(): Promise<void> {
  const image = process.argv[2] ?? (await newestImage());
  const storage = join(mkdtempSync(join(tmpdir(), 'cwbench-')), 'storage');
  await docker(['rm', '-f', NAME]);
  await docker(['network', 'rm', NET]);
  await execa('docker', ['network', 'create', '--subnet', '10.213.9.0/24', '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  const starts: number[] = [];
  const stops: number[] = [];
  let memory = 0;
  try {
    const args = ['start', storage, image, '--name', NAME, '--network', NET, '--ip', '10.213.9.10', '--ssh-port', '22'];
    for (let i = 0; i < RUNS; i++) {
      starts.push(await timed(args));
      if (i === 0) {
        await new Promise((r) => setTimeout(r, 15_000)); // let it settle before reading idle memory
        memory = await containerMemoryMiB();
      }
      stops.push(await timed(['stop', '--name', NAME]));
    }
  } finally {
    await docker(['rm', '-f', NAME]);
    await docker(['network', 'rm', NET]);
  }
  const size = Number((await execa('docker', ['image', 'inspect', '-f', '{{.Size}}', image])).stdout) / 1e6;
  const rows: Array<[string, string, string]> = [
    [`start -> healthy (median of ${RUNS})`, `${(median(starts) / 1000).toFixed(2)} s`, '<= 5 s'],
    [`stop (median of ${RUNS})`, `${(median(stops) / 1000).toFixed(2)} s`, '<= 3 s'],
    ['image size', `${size.toFixed(0)} MB`, '<= 350 MB'],
    ['idle memory, whole container', `${memory.toFixed(0)} MiB`, '<= 150 MB'],
  ];
  console.log(`cw-headnode appliance benchmark: ${image}`);
  for (const [what, value, target] of rows) console.log(`  ${what.padEnd(36)} ${value.padStart(10)}   target ${target}`);
  console.log(JSON.stringify({ image, startMs: starts.map(Math.round), stopMs: stops.map(Math.round), imageMB: Math.round(size), idleMemoryMiB: Math.round(memory) }));
}

await main();
