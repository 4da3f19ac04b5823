// Kernel modules for the initramfs: which ones the boot needs and what they pull in, from modules.dep.

/** Needed to mount the image: refused when neither a module nor built into the kernel. */
export const REQUIRED_MODULES: readonly string[] = ['loop', 'squashfs', 'overlay'];

/** Network drivers (and AF_PACKET for udhcpc): whichever the kernel has are taken, the rest skipped. */
export const NETWORK_MODULES: readonly string[] = [
  'af_packet',
  'virtio_pci',
  'virtio_net',
  'e1000',
  'e1000e',
  'igb',
  'igc',
  'ixgbe',
  'i40e',
  'ice',
  'tg3',
  'bnx2',
  'bnx2x',
  'bnxt_en',
  'r8169',
  'vmxnet3',
  'ena',
  'gve',
  'hv_netvsc',
  'mlx4_en',
  'mlx5_core',
];

/** A module as modules.dep names it: `kernel/fs/squashfs/squashfs.ko` -> `squashfs`. */
export interface ModuleInfo {
  name: string;
  /** Path relative to `/lib/modules/KVER`. */
  path: string;
  /** Names of the modules it depends on directly. */
  deps: string[];
}

/** The module name of a file: basename without `.ko[.xz|.zst|.gz]`, dashes as underscores. */
export function moduleNameOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.[a-z0-9]+)?$/, '').replace(/-/g, '_');
}

/** Parses modules.dep text (`path: dep dep ...` per line) into modules by name; other lines are ignored. */
export function parseModulesDep(text: string): Map<string, ModuleInfo> {
  const modules = new Map<string, ModuleInfo>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^(\S+\.ko(?:\.[a-z0-9]+)?):(.*)$/.exec(line);
    if (!m) continue;
    const path = m[1] as string;
    const deps = (m[2] as string).split(/\s+/).filter((d) => d !== '').map(moduleNameOf);
    const name = moduleNameOf(path);
    if (!modules.has(name)) modules.set(name, { name, path, deps });
  }
  return modules;
}

export interface ModuleClosure {
  /** Every module to ship, each after the modules it depends on. */
  order: ModuleInfo[];
  /** Wanted names (normalized) that modules.dep does not know. */
  missing: string[];
  /** Dependencies named in modules.dep without a line of their own, as `module -> dependency`. */
  dangling: string[];
  /** Dependency cycles met, as `a -> b -> a` (each module is still listed once). */
  cycles: string[];
}

/**
 * The wanted modules and everything they depend on, dependencies first.
 * `moduleClosure('a.ko: b.ko\nb.ko:\n', ['a'])` -> order [b, a].
 */
export function moduleClosure(depText: string | Map<string, ModuleInfo>, wanted: readonly string[]): ModuleClosure {
  const modules = typeof depText === 'string' ? parseModulesDep(depText) : depText;
  const order: ModuleInfo[] = [];
  const missing: string[] = [];
  const dangling: string[] = [];
  const cycles: string[] = [];
  const done = new Set<string>();
  const onPath: string[] = [];

  const visit = (name: string, from: string | undefined): void => {
    if (done.has(name)) return;
    const at = onPath.indexOf(name);
    if (at !== -1) {
      cycles.push([...onPath.slice(at), name].join(' -> '));
      return;
    }
    const info = modules.get(name);
    if (!info) {
      if (from === undefined) {
        if (!missing.includes(name)) missing.push(name);
      } else if (!dangling.includes(`${from} -> ${name}`)) {
        dangling.push(`${from} -> ${name}`);
      }
      return;
    }
    onPath.push(name);
    for (const dep of info.deps) visit(dep, name);
    onPath.pop();
    done.add(name);
    order.push(info);
  };

  for (const w of wanted) visit(w.replace(/-/g, '_'), undefined);
  return { order, missing, dangling, cycles };
}

/** Names of modules built into the kernel, from modules.builtin (`kernel/net/packet/af_packet.ko` lines). */
export function parseModulesBuiltin(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t.endsWith('.ko') || /\.ko\.[a-z0-9]+$/.test(t)) names.add(moduleNameOf(t));
  }
  return names;
}
