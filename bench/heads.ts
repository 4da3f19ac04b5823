// Several heads: a write on one head → visible through another head's API (p50/p99 of 200 writes), with
// three appliances on one bridge, each its own etcd member (A new, B and C joined through A), as
// test/integration/multi-head.test.ts starts them. The etcd-backed API latency and the 10,000-node load
// beside SQLite's are bench/cluster.ts's figures (bench/heads.sh runs both stores).
// Usage: npx tsx bench/heads.ts [IMAGE:TAG]   (root, Docker, a loaded cw-headnode image)
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiClient } from '../src/tools/common/client/api-client.js';
import type { SslVerify } from '../src/tools/common/client/settings.js';
import { AdminSession } from '../test/integration/helpers.js';

const repo = resolve(import.meta.dirname, '..');
const containerctl = join(repo, 'dist/host/containerctl/main.js');
const WRITES = Number(process.env.CW_BENCH_WRITES ?? 200);
const NET = 'cwbh0';
const HEADS = [
  { name: 'cw-bench-head-a', member: 'head-a', ip: '10.213.67.11' },
  { name: 'cw-bench-head-b', member: 'head-b', ip: '10.213.67.12' },
  { name: 'cw-bench-head-c', member: 'head-c', ip: '10.213.67.13' },
];
process.env.DOCKER_HOST ??= 'unix:///var/run/docker.sock';

const work = mkdtempSync(join(tmpdir(), 'cwbh-'));
const home = join(work, 'home');
const admin = new AdminSession(home, `https://${HEADS[0]!.ip}/api/v1`, {}, 'bench');
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const quantile = (xs: number[], q: number) => sorted(xs)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const step = (what: string) => process.stderr.write(`[bench] ${what}\n`);

async function ctl(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await execa('node', [containerctl, ...args], { reject: false, all: true, stdin: 'ignore', env });
  if (r.exitCode !== 0) throw new Error(`cw-containerctl ${args.join(' ')} failed:\n${r.all}`);
  return r.stdout;
}

async function cleanup(): Promise<void> {
  await execa('docker', ['rm', '-f', ...HEADS.map((h) => h.name)], { reject: false });
  await execa('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

async function apiOf(h: (typeof HEADS)[number]): Promise<ApiClient> {
  const pin = /^client\.sslverify = (sha256:\S+)$/m.exec(await ctl(['tool-config', '--name', h.name]))?.[1];
  return new ApiClient({ baseUrl: `https://${h.ip}/api/v1`, user: admin.user, sslVerify: pin as SslVerify, env: { SSH_AUTH_SOCK: admin.agentSock } });
}

async function main(): Promise<void> {
  const image = process.argv[2] ?? 'cw-headnode:0.1.0';
  const la = loadavg().map((x) => x.toFixed(2));
  await cleanup();
  try {
    mkdirSync(home, { recursive: true });
    await admin.open();
    await execa('docker', ['network', 'create', '--subnet', '10.213.67.0/24', '-o', `com.docker.network.bridge.name=${NET}`, NET]);
    const [a, b, c] = HEADS as [(typeof HEADS)[number], (typeof HEADS)[number], (typeof HEADS)[number]];
    step('starting head A (a new etcd cluster), then B and C joining it');
    const start = (h: typeof a, how: string[]) =>
      ctl(['start', join(work, h.name), image, '--name', h.name, '--network', NET, '--ip', h.ip, '--ssh-port', '22', '--etcd-name', h.member, ...how], {
        HOME: home,
        SSH_AUTH_SOCK: admin.agentSock,
      });
    await start(a, ['--etcd-member']);
    await ctl(['add-admin', admin.user, `@${admin.keyFile}.pub`, '--name', a.name]);
    await admin.adopt(a.name);
    await start(b, ['--join', a.ip]);
    await start(c, ['--join', a.ip]);
    const [onA, onB] = [await apiOf(a), await apiOf(b)];
    step(`${WRITES} writes on A, each awaited through B's API`);
    const visible: number[] = [];
    for (let i = 0; i < WRITES; i++) {
      const name = `bench${i}`;
      const t0 = performance.now();
      await onA.post('/attribs', { name });
      for (;;) {
        const found = await onB.get(`/attrib/${name}`).then(
          () => true,
          () => false,
        );
        if (found) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      visible.push(performance.now() - t0);
    }
    console.log(`cw-headnode heads benchmark: ${image}, 3 heads on etcd (load average before: ${la.join(' ')})`);
    console.log(`  write on A → visible through B's API (${WRITES})   p50 ${quantile(visible, 0.5).toFixed(1)} ms   p99 ${quantile(visible, 0.99).toFixed(1)} ms   max ${Math.max(...visible).toFixed(1)} ms   target p99 <= 1000 ms`);
    console.log(JSON.stringify({ writes: WRITES, p50: quantile(visible, 0.5), p99: quantile(visible, 0.99), max: Math.max(...visible) }));
  } finally {
    await cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
