import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitError } from '../lib/errors.js';
import { isIPv4 } from '../lib/ipv4.js';
import { CONTAINER_STORAGE } from '../lib/storage-layout.js';
import { servicePaths, type ServiceContext } from './services/context.js';
import { parseInterfaceList } from './services/dhcpd/networks.js';
import { resolveClusterDb, type ClusterDb } from './cluster-db.js';
import type { EtcdMember } from './services/etcd/index.js';
import { runCommandLine } from './services/run.js';
import { supervisorSocketPath } from './supervisor/client.js';

/** Package root: `/opt/cw` in the image (this file is `dist/appliance/environment.js`). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface SupervisorConfig {
  storage: string;
  runDir: string;
  controlSocket: string;
  ports: { http: number; https: number; ssh: number; tftp: number; dns: number };
  dhcpInterfaces: string[] | null;
  /** Where the cluster database is (README, "Several head nodes"). */
  clusterDb: ClusterDb;
  /** CW_HEAD_ADDRESS, e.g. a Pacemaker floating IP: what nodes are told in its network. */
  headAddress: string | null;
  etcdMember: EtcdMember | null;
  failService: string | null;
  templatesDir: string;
  syslogSocket: string;
  /** Our client packages in the image (`rpm/`, `deb/`), copied into STORAGE/clientpkgs at start. */
  clientPkgsBundle: string;
  bins: ServiceContext['bins'];
}

/**
 * Reads the container environment (ARCHITECTURE.md), collecting every problem before refusing.
 * Paths to binaries and templates can be overridden for tests (CW_TEMPLATES_DIR, CW_NGINX_BIN, ...).
 */
export function loadSupervisorConfig(env: NodeJS.ProcessEnv = process.env): SupervisorConfig {
  const problems: string[] = [];
  const absolute = (name: string, fallback: string): string => {
    const value = env[name] || fallback;
    if (!path.isAbsolute(value)) problems.push(`${name} must be an absolute path (got "${value}")`);
    return path.resolve(value);
  };
  const portOf = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < 1 || value > 65535) {
      problems.push(`${name} must be a port number 1-65535 (got "${raw}")`);
      return fallback;
    }
    return value;
  };
  let dhcpInterfaces: string[] | null = null;
  try {
    dhcpInterfaces = parseInterfaceList(env.CW_DHCP_INTERFACES);
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  }
  const headAddress = env.CW_HEAD_ADDRESS?.trim() || null;
  if (headAddress !== null && !isIPv4(headAddress)) problems.push(`CW_HEAD_ADDRESS must be an IPv4 address (got "${headAddress}")`);
  const storage = absolute('CW_STORAGE', CONTAINER_STORAGE);
  let clusterDb: ClusterDb = { kind: 'sqlite' };
  try {
    clusterDb = resolveClusterDb(env, storage);
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  }
  const failService = env.CW_FAIL_SERVICE?.trim() || null;
  if (failService !== null && !/^[a-z][a-z0-9-]{0,31}$/.test(failService)) problems.push(`CW_FAIL_SERVICE: invalid service name "${failService}"`);
  const runDir = absolute('CW_RUN_DIR', '/run/cw');
  const config: SupervisorConfig = {
    storage,
    runDir,
    controlSocket: absolute('CW_SUPERVISOR_SOCKET', supervisorSocketPath({ CW_RUN_DIR: runDir })),
    ports: {
      http: portOf('CW_HTTP_PORT', 80),
      https: portOf('CW_HTTPS_PORT', 443),
      ssh: portOf('CW_SSH_PORT', 2200),
      tftp: portOf('CW_TFTP_PORT', 69),
      dns: portOf('CW_DNS_PORT', 53),
    },
    dhcpInterfaces,
    clusterDb,
    headAddress,
    etcdMember: clusterDb.kind === 'member' ? clusterDb.member : null,
    failService,
    templatesDir: absolute('CW_TEMPLATES_DIR', path.join(PACKAGE_ROOT, 'rootfs/etc/cw/templates')),
    syslogSocket: absolute('CW_SYSLOG_SOCKET', '/dev/log'),
    clientPkgsBundle: absolute('CW_CLIENTPKGS_BUNDLE', path.join(PACKAGE_ROOT, 'clientpkgs')),
    bins: {
      node: process.execPath,
      apiMain: absolute('CW_API_MAIN', path.join(PACKAGE_ROOT, 'dist/appliance/api/main.js')),
      nginx: absolute('CW_NGINX_BIN', '/usr/sbin/nginx'),
      sshd: absolute('CW_SSHD_BIN', '/usr/sbin/sshd'),
      sshKeygen: absolute('CW_SSH_KEYGEN_BIN', '/usr/bin/ssh-keygen'),
      openssl: absolute('CW_OPENSSL_BIN', '/usr/bin/openssl'),
      tftpd: absolute('CW_TFTPD_BIN', '/usr/sbin/in.tftpd'),
      dhcpd: absolute('CW_DHCPD_BIN', '/usr/sbin/dhcpd'),
      dnsmasq: absolute('CW_DNSMASQ_BIN', '/usr/sbin/dnsmasq'),
      ipxeDir: absolute('CW_IPXE_DIR', '/usr/lib/ipxe'),
      etcd: absolute('CW_ETCD_BIN', '/usr/bin/etcd'),
    },
  };
  // tftp is UDP and may share a number with any TCP port; DNS takes both.
  const tcp: [string, number][] = [
    ['CW_HTTP_PORT', config.ports.http],
    ['CW_HTTPS_PORT', config.ports.https],
    ['CW_SSH_PORT', config.ports.ssh],
    ['CW_DNS_PORT', config.ports.dns],
  ];
  for (const [i, [name, value]] of tcp.entries()) {
    for (const [other, otherValue] of tcp.slice(i + 1)) if (value === otherValue) problems.push(`${name} and ${other} are both ${value}`);
  }
  if (config.ports.dns === config.ports.tftp) problems.push(`CW_DNS_PORT and CW_TFTP_PORT are both ${config.ports.dns}`);
  if (config.ports.dns === 67) problems.push('CW_DNS_PORT cannot be 67 (DHCP)');
  if (problems.length > 0) throw new ExitError(problems.join('; '));
  return config;
}

/** The context the service definitions run in, derived from the configuration. */
export function serviceContext(config: SupervisorConfig, log: ServiceContext['log'], baseEnv: NodeJS.ProcessEnv = process.env): ServiceContext {
  return {
    paths: servicePaths({
      storage: config.storage,
      runDir: config.runDir,
      builtinTemplates: config.templatesDir,
      controlSocket: config.controlSocket,
      syslogSocket: config.syslogSocket,
    }),
    ports: config.ports,
    dhcpInterfaces: config.dhcpInterfaces,
    headAddress: config.headAddress,
    etcdMember: config.etcdMember,
    bins: config.bins,
    baseEnv: { ...baseEnv, CW_FAIL_SERVICE: undefined },
    log,
    run: runCommandLine,
  };
}
