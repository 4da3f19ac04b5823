// A throwaway single-member etcd for tests and benchmarks: 127.0.0.1 only, free ports, a private data
// directory, etcd's default limits (--max-txn-ops 128, --max-request-bytes 1.5 MiB) unless `extraArgs`
// says otherwise; or a cluster of such members, whose quorum a test can take away by stopping some. Register tests that use it through requireTools('etcd'). (It does not import
// tools.ts, which loads ava, so that bench/ can use it too; etcd is in /usr/bin, on every PATH.)
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';

export interface TestEtcd {
  /** The client URL, e.g. `http://127.0.0.1:40123`. */
  endpoint: string;
  dataDir: string;
  /** Stops etcd (it can be started again on the same data with `restart`). */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  restart(): Promise<void>;
  /** Stops it and deletes its data. */
  destroy(): Promise<void>;
}

/** A TCP port nothing listens on right now (the kernel's pick). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** PEM files for an etcd that speaks HTTPS to its clients and asks them for a certificate. */
export interface TestEtcdTls {
  certFile: string;
  keyFile: string;
  /** The CAs (here: the self-signed certificates) whose client certificates etcd accepts. */
  trustedCaFile: string;
  /** What the health check presents and trusts. */
  client: { ca: string; cert: string; key: string };
}

async function healthy(endpoint: string, dispatcher?: Agent): Promise<boolean> {
  try {
    const res = await request(`${endpoint}/health`, { headersTimeout: 1000, bodyTimeout: 1000, dispatcher });
    return ((await res.body.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

/**
 * Starts etcd and waits until it reports healthy (at most `timeoutMs`); the caller destroys it.
 * Example: `const etcd = await startTestEtcd(); t.teardown(() => etcd.destroy());`
 */
export async function startTestEtcd(options: { extraArgs?: readonly string[]; timeoutMs?: number; tls?: TestEtcdTls } = {}): Promise<TestEtcd> {
  const member = { name: 'test', clientPort: await freePort(), peerPort: await freePort() };
  return startMember(member, [member], options);
}

/**
 * Starts a cluster of `size` members and waits until each reports healthy (a leader elected); the caller
 * destroys them. Stopping a majority leaves the others without a quorum: running, answering, and unable
 * to agree on anything — what a head cut off from the others sees of its own member.
 * Example: `const [a, b, c] = await startTestEtcdCluster(3); await b.stop(); await c.stop();`
 */
export async function startTestEtcdCluster(size: number, options: { timeoutMs?: number } = {}): Promise<TestEtcd[]> {
  const members: MemberPlan[] = [];
  for (let i = 0; i < size; i++) members.push({ name: `test${i}`, clientPort: await freePort(), peerPort: await freePort() });
  const started = await Promise.allSettled(members.map((m) => startMember(m, members, options)));
  const running = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(running.map((m) => m.destroy()));
    throw failed.reason;
  }
  return running;
}

interface MemberPlan {
  name: string;
  clientPort: number;
  peerPort: number;
}

/** Starts one member of the cluster of `members` and waits until it reports healthy. */
async function startMember(member: MemberPlan, members: readonly MemberPlan[], options: { extraArgs?: readonly string[]; timeoutMs?: number; tls?: TestEtcdTls }): Promise<TestEtcd> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cw-etcd-'));
  const endpoint = `${options.tls ? 'https' : 'http'}://127.0.0.1:${member.clientPort}`;
  const tls = options.tls;
  const tlsArgs = tls ? ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.trustedCaFile, '--client-cert-auth'] : [];
  const agent = tls ? new Agent({ connect: tls.client }) : undefined;
  const peerOf = (m: MemberPlan) => `http://127.0.0.1:${m.peerPort}`;
  const peer = peerOf(member);
  const args = [
    '--name', member.name,
    '--data-dir', join(dataDir, 'data'),
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', members.map((m) => `${m.name}=${peerOf(m)}`).join(','),
    '--log-level', 'error',
    ...tlsArgs,
    ...(options.extraArgs ?? []),
  ];
  let proc: ResultPromise | undefined;
  let output = '';
  const start = async () => {
    output = '';
    const started = execa('etcd', args, { reject: false, stdin: 'ignore', all: true, cleanup: true });
    started.all?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    proc = started;
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    while (!(await healthy(endpoint, agent))) {
      if (started.exitCode !== null || Date.now() > deadline) {
        started.kill('SIGKILL');
        await started;
        throw new Error(`etcd did not become healthy at ${endpoint}: ${output.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const running = proc;
    proc = undefined;
    if (!running || running.exitCode !== null) return;
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5000);
    await running;
    clearTimeout(timer);
  };
  try {
    await start();
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    await agent?.close();
    throw err;
  }
  return {
    endpoint,
    dataDir,
    stop,
    restart: start,
    destroy: async () => {
      await stop();
      await agent?.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
