// Tests that need a real program (dhcpd, mksquashfs, qemu, ...) say so through requireTools. The decision
// is taken when the test is registered, because ava cannot skip a test once it runs: on a developer's
// machine a missing tool turns the test into a skipped one (ava counts and lists it); under CI=true it
// turns it into a failing one that names the tool and its Debian package, since CI must run everything.
import test, { type ImplementationFn } from 'ava';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Programs the tests run, with the Debian package that ships each (scripts/ci-setup.sh installs them). */
export const TOOL_PACKAGES = {
  'apt-cache': 'apt',
  'apt-get': 'apt',
  busybox: 'busybox-static',
  cibadmin: 'pacemaker-cli-utils',
  cpio: 'cpio',
  curl: 'curl',
  createrepo_c: 'createrepo-c',
  crm_verify: 'pacemaker-cli-utils',
  debootstrap: 'debootstrap',
  depmod: 'kmod',
  dhcpd: 'isc-dhcp-server',
  dig: 'bind9-dnsutils',
  dnsmasq: 'dnsmasq-base',
  dnf: 'dnf',
  'docker-compose': 'docker-compose',
  dpkg: 'dpkg',
  etcd: 'etcd-server',
  etcdctl: 'etcd-client',
  'dpkg-deb': 'dpkg',
  fence_ipmilan: 'fence-agents',
  gpg: 'gnupg',
  ip: 'iproute2',
  iptables: 'iptables',
  ipmi_sim: 'openipmi',
  ipmitool: 'ipmitool',
  mksquashfs: 'squashfs-tools',
  mount: 'mount',
  nginx: 'nginx',
  nsenter: 'util-linux',
  'ocf-tester': 'resource-agents',
  openssl: 'openssl',
  pcs: 'pcs',
  'qemu-system-x86_64': 'qemu-system-x86',
  redfishtool: 'redfishtool',
  rpm: 'rpm',
  rpmbuild: 'rpm',
  rpm2cpio: 'rpm2cpio',
  rpmsign: 'rpm',
  setpriv: 'util-linux',
  shellcheck: 'shellcheck',
  unshare: 'util-linux',
  sfdisk: 'fdisk',
  sshd: 'openssh-server',
  'ssh-keygen': 'openssh-client',
  unsquashfs: 'squashfs-tools',
  xmllint: 'libxml2-utils',
} as const;

export type Tool = keyof typeof TOOL_PACKAGES;
/** A program from TOOL_PACKAGES, or `root` for tests that must run as uid 0. */
export type Requirement = Tool | 'root';

/** Where the tools are looked for besides PATH: the sbin directories a non-root PATH often lacks. */
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export interface ToolEnv {
  env?: NodeJS.ProcessEnv;
  uid?: number | undefined;
}

/** The absolute path of `tool` (PATH first, then the sbin directories), or undefined when it is not installed. */
export function findTool(tool: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...SBIN_DIRS];
  for (const dir of dirs) {
    const file = join(dir, tool);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/**
 * The path to run `tool` by, e.g. `toolPath('dhcpd')` is `/usr/sbin/dhcpd`. When the tool is missing the
 * bare name comes back: only tests registered through requireTools run it, and those do not run then.
 */
export function toolPath(tool: Tool): string {
  return findTool(tool) ?? tool;
}

/** What is missing from `needs`, each with how to get it, e.g. `mksquashfs (Debian package squashfs-tools)`. */
export function missingRequirements(needs: readonly Requirement[], { env = process.env, uid = process.getuid?.() }: ToolEnv = {}): string[] {
  const missing: string[] = [];
  for (const need of needs) {
    if (need === 'root') {
      if (uid !== 0) missing.push('root (run the tests as uid 0)');
    } else if (findTool(need, env) === undefined) {
      missing.push(`${need} (Debian package ${TOOL_PACKAGES[need]})`);
    }
  }
  return missing;
}

/** True when the run must not skip anything: CI=true (or any CI value other than false/0). */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI ?? '';
  return ci !== '' && ci !== 'false' && ci !== '0';
}

type Impl = ImplementationFn<[]>;

/** Registers tests and hooks that need some tools; see requireTools. */
export interface ToolTest {
  (title: string, implementation: Impl): void;
  serial(title: string, implementation: Impl): void;
  /** A `test.before` hook that only runs when the tools are there (otherwise no test of the file runs). */
  before(implementation: Impl): void;
  /** The missing requirements, empty when every one is there. */
  readonly missing: readonly string[];
}

/**
 * The test function for tests that need `needs`. Every requirement present: plain ava `test`. Something
 * missing: under CI the test fails with `missing mksquashfs (Debian package squashfs-tools)`, elsewhere
 * it is registered as skipped with the same words in its title.
 *
 * Example:
 *   const squashTest = requireTools('mksquashfs', 'unsquashfs');
 *   squashTest('createCwsquash round-trips', async (t) => { ... });
 */
export function requireTools(...needs: Requirement[]): ToolTest {
  return toolTest(needs, {});
}

/** requireTools with the environment and uid given (for the helper's own tests). */
export function toolTest(needs: readonly Requirement[], where: ToolEnv): ToolTest {
  const missing = missingRequirements(needs, where);
  const reason = `missing ${missing.join(', ')}`;
  const ci = isCi(where.env);
  const register = (serial: boolean) => (title: string, implementation: Impl): void => {
    const run = serial ? test.serial : test;
    if (missing.length === 0) run(title, implementation);
    else if (ci) run(title, (t) => t.fail(`${reason}: under CI every test must run; install it (scripts/ci-setup.sh)`));
    else (serial ? test.serial.skip : test.skip)(`${title} [${reason}]`, implementation);
  };
  const fn = Object.assign(register(false), {
    serial: register(true),
    before: (implementation: Impl): void => {
      if (missing.length === 0) test.before(implementation);
    },
    missing,
  });
  return fn;
}
