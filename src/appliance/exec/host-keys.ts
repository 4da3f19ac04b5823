// The host keys of nodes, pinned. Node images carry no ssh host keys: every boot makes its own
// (cw-ssh-host-keys.service) and the node agent reports the public ed25519 key with the node secret of
// that boot. exec and soft reboot then accept exactly that key for that node — `HostKeyAlias=NAME`
// against `STORAGE/ssh/known_hosts.nodes` with `StrictHostKeyChecking=yes` — so a machine on the cluster
// network that takes over a node's address is refused. A node that reports no key (an image made before
// this, or one without openssh-server's ssh-keygen) is reached as before: the key first seen for its
// address is kept (accept-new, STORAGE/ssh/known_hosts).
//
// The file is rewritten from an in-memory copy, once for all the pins that arrive together (a fan-out to
// 5,000 freshly booted nodes writes it a handful of times, not 5,000).
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-write.js';
import type { SshIdentity } from '../power/ssh.js';

/** Where the pinned keys of `identity`'s nodes live: `known_hosts.nodes` beside its known_hosts. */
export function pinnedHostsFile(identity: SshIdentity): string {
  return join(dirname(identity.knownHostsFile), 'known_hosts.nodes');
}

/**
 * ssh options that make `name`'s pinned key the only one accepted. They go before any other `-o`: for
 * ssh the first value given for an option wins.
 * Example: `pinnedHostOptions('n3', id)` -> `['-o', 'HostKeyAlias=n3', '-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=…/known_hosts.nodes']`.
 */
export function pinnedHostOptions(name: string, identity: SshIdentity): string[] {
  return ['-o', `HostKeyAlias=${name}`, '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${pinnedHostsFile(identity)}`];
}

/** `known_hosts` text for `keys` (node name -> `ssh-ed25519 BASE64`), one line per node, sorted. */
export function renderPinnedHosts(keys: ReadonlyMap<string, string>): string {
  return [...keys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, key]) => `${name} ${key}\n`).join('');
}

/** The pinned keys in a file written by renderPinnedHosts; lines in any other form are dropped. */
export function parsePinnedHosts(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9._-]+) (ssh-ed25519 [A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (m) keys.set(m[1] as string, m[2] as string);
  }
  return keys;
}

/** One file of pinned keys, as one process keeps it. */
export class PinnedHosts {
  readonly file: string;
  #keys: Map<string, string> | undefined;
  #loading: Promise<Map<string, string>> | undefined;
  #pending: Promise<void> | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.file = file;
  }

  /** Makes `key` the one accepted for `name`; resolves once the file says so. */
  async pin(name: string, key: string): Promise<void> {
    const keys = await this.#load();
    if (keys.get(name) === key) return;
    keys.set(name, key);
    await this.#schedule();
  }

  #load(): Promise<Map<string, string>> {
    if (this.#keys) return Promise.resolve(this.#keys);
    this.#loading ??= readFile(this.file, 'utf8')
      .catch(() => '')
      .then((text) => {
        this.#keys ??= parsePinnedHosts(text);
        return this.#keys;
      });
    return this.#loading;
  }

  /** One write for every pin made until it starts; a pin made during a write gets the next one. */
  #schedule(): Promise<void> {
    if (!this.#pending) {
      const pending = this.#writing
        .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
        .then(async () => {
          this.#pending = undefined;
          await writeFileAtomic(this.file, renderPinnedHosts(this.#keys ?? new Map()), { mode: 0o600 });
        });
      this.#pending = pending;
      this.#writing = pending.catch(() => undefined);
    }
    return this.#pending;
  }
}

const files = new Map<string, PinnedHosts>();

/** The PinnedHosts of `identity` (one per file in this process). */
export function pinnedHosts(identity: SshIdentity): PinnedHosts {
  const file = pinnedHostsFile(identity);
  let pins = files.get(file);
  if (!pins) {
    pins = new PinnedHosts(file);
    files.set(file, pins);
  }
  return pins;
}
