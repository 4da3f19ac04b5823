// A real CW API on 127.0.0.1 (SQLite store in a temporary storage directory) and a real OpenSSH
// ssh-agent holding a key registered for the admin, for running the tools' command functions in-process.
import { execFileSync, type ChildProcess } from 'node:child_process';
import type { TestFn } from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApi } from '../../../src/appliance/api/app.js';
import { openStore, type StoreHandle } from '../../../src/appliance/db/index.js';
import { prepareStorage, storagePaths } from '../../../src/lib/storage-layout.js';
import { ApiClient, type TokenCache } from '../../../src/tools/common/client/api-client.js';
import { ExitError } from '../../../src/lib/errors.js';
import { startSshAgent } from '../../helpers/ssh-agent.js';
import { parsePublicKey } from '../../../src/lib/sshkey.js';
import { clusterConf } from '../../../src/tools/cluster-conf/cluster-conf.js';
import type { ToolIo } from '../../../src/tools/common/context.js';

export const ADMIN = 'admin';

export interface Key {
  privatePath: string;
  publicLine: string;
}

/** Temporary files of one test file: keys, agent sockets, storage directories, home directories. */
export class Scratch {
  #dir: string | undefined;
  private readonly agents: ChildProcess[] = [];

  /** Made on first use: a file whose tests are all filtered out (`--match`) runs no hook to remove it. */
  get dir(): string {
    if (this.#dir === undefined) {
      const dir = mkdtempSync(join(tmpdir(), 'cw-tools-'));
      this.#dir = dir;
      // Also when the worker ends before the after hook is through (the hook's own removal comes first).
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    }
    return this.#dir;
  }

  keygen(name: string): Key {
    const privatePath = join(this.dir, `key-${name}`);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', privatePath, '-C', `${name}@test`], { stdio: 'pipe' });
    return { privatePath, publicLine: readFileSync(`${privatePath}.pub`, 'utf8').trim() };
  }

  /** Starts `ssh-agent -D -a SOCK` holding `keys`; returns the socket. */
  async agent(name: string, keys: readonly Key[]): Promise<string> {
    const sock = join(this.dir, `agent-${name}.sock`);
    this.agents.push(await startSshAgent(sock, keys.map((k) => k.privatePath)));
    return sock;
  }

  sub(name: string): string {
    const d = join(this.dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  cleanup(): void {
    for (const a of this.agents) if (a.exitCode === null && a.signalCode === null) a.kill('SIGTERM');
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}

export interface RunResult {
  out: string;
  err: string;
  /** The one-line `ERROR: ...` the process boundary would print, or undefined on success. */
  error?: string;
  exitCode: number;
  /** Each write to stdout with the ms since the tool started: what a user saw when. */
  outWrites: Array<{ at: number; text: string }>;
}

/** A tool's command function, e.g. `nodectl`. */
export type ToolFn = (argv: readonly string[], io?: ToolIo) => Promise<void>;

export class Cluster {
  private constructor(
    readonly baseUrl: string,
    readonly store: StoreHandle,
    readonly storage: string,
    readonly home: string,
    readonly cwd: string,
    private readonly close_: () => Promise<void>,
    /** Environment the tools see. */
    public env: NodeJS.ProcessEnv,
    readonly tokens: TokenCache = new Map(),
  ) {}

  /** A fresh API with an empty store, `admin` registered with `key`, tools pointed at it through `agentSock`. */
  static async start(scratch: Scratch, name: string, key: Key, agentSock: string): Promise<Cluster> {
    const storage = scratch.sub(`storage-${name}`);
    const home = scratch.sub(`home-${name}`);
    const paths = storagePaths(storage);
    await prepareStorage(paths.root);
    const store = await openStore({ paths });
    const info = parsePublicKey(key.publicLine);
    await store.addAdmin({ name: ADMIN, keyType: info.type, keyLine: info.line, fingerprint: info.fingerprint, comment: info.comment });
    // The exec tests' stand-in ssh runs one command per call and knows nothing of kept-open connections.
    const app = buildApi({ store, supervisorHealth: async () => ({ status: 'healthy', services: {} }), paths, exec: { keepConnections: false } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const baseUrl = `http://127.0.0.1:${port}/api/v1`;
    const env: NodeJS.ProcessEnv = { HOME: home, USER: ADMIN, CW_BASE_URL: baseUrl, CW_AUTHUSER: ADMIN, SSH_AUTH_SOCK: agentSock, PATH: process.env.PATH };
    return new Cluster(baseUrl, store, storage, home, home, async () => {
      await app.close();
      await store.close();
    }, env);
  }

  /** Runs a tool in-process and captures what the process would print. */
  async run(tool: ToolFn, argv: readonly string[], env: NodeJS.ProcessEnv = this.env, tokens: TokenCache = this.tokens): Promise<RunResult> {
    let out = '';
    let err = '';
    const outWrites: RunResult['outWrites'] = [];
    const started = Date.now();
    const write = (s: string) => {
      out += s;
      outWrites.push({ at: Date.now() - started, text: s });
    };
    try {
      await tool(argv, { env, cwd: this.cwd, out: write, err: (s) => (err += s), tokens });
      return { out, err, exitCode: 0, outWrites };
    } catch (e) {
      if (!(e instanceof ExitError)) throw e;
      return { out, err, error: `ERROR: ${e.message}`, exitCode: e.exitCode, outWrites };
    }
  }

  /** Like run, but fails the test with the error line when the tool fails. */
  async ok(tool: ToolFn, argv: readonly string[]): Promise<string> {
    const r = await this.run(tool, argv);
    if (r.error) throw new Error(`${argv.join(' ')}: ${r.error}`);
    return r.out;
  }

  /** A client of the same API for checking state directly. */
  client(): ApiClient {
    return new ApiClient({ baseUrl: this.baseUrl, user: ADMIN, env: this.env, tokens: this.tokens });
  }

  async close(): Promise<void> {
    await this.close_();
  }
}

/** The cluster.conf of seed 000: two nodes in 192.168.122.0/24. */
export const SEED_CONF = 'iprange 192.168.122.100/24\nnode 52:54:00:00:00:01\nnode 52:54:00:00:00:02\n';

/** One test file's clusters: its scratch, the admin key in an agent, and a fresh Cluster per `start()`. */
export interface ClusterFixture {
  readonly scratch: Scratch;
  readonly adminKey: Key;
  readonly agentSock: string;
  /** A new empty cluster, closed after the file's last test. */
  start(): Promise<Cluster>;
  /** A new cluster after the seed's `cw-cluster-conf load cluster.conf`. */
  seeded(): Promise<Cluster>;
}

/**
 * Registers the hooks of a test file that runs tools against clusters: the admin key and its agent are
 * made before the first test; every cluster started is closed, and the scratch removed, after the last.
 * `prefix` keeps the clusters' directory names apart within the file.
 */
export function clusterFixture(test: TestFn, prefix: string): ClusterFixture {
  const scratch = new Scratch();
  const clusters: Cluster[] = [];
  let key: Key | undefined;
  let sock = '';
  let counter = 0;
  test.before(async () => {
    key = scratch.keygen('admin');
    sock = await scratch.agent('admin', [key]);
  });
  test.after.always(async () => {
    await Promise.allSettled(clusters.map((c) => c.close()));
    scratch.cleanup();
  });
  const fixture: ClusterFixture = {
    scratch,
    get adminKey(): Key {
      if (!key) throw new Error('the admin key is made in test.before; use it inside a test');
      return key;
    },
    get agentSock(): string {
      return sock;
    },
    async start() {
      const c = await Cluster.start(scratch, `${prefix}${++counter}`, fixture.adminKey, sock);
      clusters.push(c);
      return c;
    },
    async seeded() {
      const c = await fixture.start();
      writeFileSync(join(c.cwd, 'cluster.conf'), SEED_CONF);
      await c.ok(clusterConf, ['load', 'cluster.conf']);
      return c;
    },
  };
  return fixture;
}
