// The hand-over between the API (which owns the cluster model) and the supervisor's dns service: the API
// writes the hosts file into a directory dnsmasq watches (inotify: a change is served at once, no
// reload) and the servers file, after whose change it asks for `POST /reload/dns` (SIGHUP).
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-write.js';

export interface DnsFiles {
  /** `STORAGE/etc/generated/dns`. */
  dir: string;
  /** dnsmasq's `hostsdir`: it reads every file here, except dotfiles (so the atomic writer's temporary files are ignored). */
  hostsDir: string;
  /** The node names: `hostsDir/nodes`. */
  hostsFile: string;
  /** dnsmasq's `servers-file`: the zones answered locally. */
  zonesFile: string;
  /** The rendered dnsmasq configuration. */
  config: string;
}

/** Where the DNS files live below the generated-config directory (StoragePaths and ServicePaths both fit). */
export function dnsFiles(paths: { generatedDir: string }): DnsFiles {
  const dir = path.join(paths.generatedDir, 'dns');
  const hostsDir = path.join(dir, 'hosts');
  return { dir, hostsDir, hostsFile: path.join(hostsDir, 'nodes'), zonesFile: path.join(dir, 'zones'), config: path.join(paths.generatedDir, 'dnsmasq.conf') };
}

/** Replaces `file` (mode 0644, readable by dnsmasq's unprivileged user) unless it already holds `text`; true when written. */
export async function writeIfChanged(file: string, text: string): Promise<boolean> {
  const current = await readFile(file, 'utf8').catch(() => null);
  if (current === text) return false;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  await writeFileAtomic(file, text, { mode: 0o644 });
  return true;
}
