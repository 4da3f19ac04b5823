import * as path from 'node:path';
import { storagePaths, type StoragePaths } from '../../lib/storage-layout.js';
import type { RestartPolicy } from '../supervisor/types.js';
import type { TemplateDirs } from '../config/template.js';
import type { EtcdMember } from './etcd/index.js';

/** Where things live; all absolute (the storage ones from `storagePaths`). */
export interface ServicePaths
  extends Pick<StoragePaths, 'generatedDir' | 'bootDir' | 'imagesDir' | 'blobsDir' | 'dhcpDir' | 'dhcpLeasesFile' | 'sshDir' | 'adminsDir' | 'authorizedKeysFile' | 'secretsDir' | 'tlsCertFile' | 'tlsKeyFile'> {
  storage: string;
  /** Runtime sockets and pid files (`/run/cw`). */
  runDir: string;
  templates: TemplateDirs;
  /** The CW API's unix socket, proxied by nginx at `/api/`. */
  apiSocket: string;
  /** The supervisor's control socket (the API asks it for health and reloads). */
  controlSocket: string;
  /** Where the syslog sink listens (`/dev/log`). */
  syslogSocket: string;
  /** The FIFO nginx writes its access log to and the supervisor reads (`RUN/nginx-access.fifo`, mode 0600). */
  accessLogFifo: string;
}

/** The service paths of a storage directory and a runtime directory (the API's socket is `RUN/api.sock`). */
export function servicePaths(where: {
  storage: string;
  runDir: string;
  builtinTemplates: string;
  controlSocket: string;
  syslogSocket: string;
}): ServicePaths {
  const layout = storagePaths(where.storage);
  return {
    storage: where.storage,
    runDir: where.runDir,
    templates: { overrideDir: layout.templatesDir, builtinDir: where.builtinTemplates },
    generatedDir: layout.generatedDir,
    bootDir: layout.bootDir,
    imagesDir: layout.imagesDir,
    blobsDir: layout.blobsDir,
    dhcpDir: layout.dhcpDir,
    dhcpLeasesFile: layout.dhcpLeasesFile,
    sshDir: layout.sshDir,
    adminsDir: layout.adminsDir,
    authorizedKeysFile: layout.authorizedKeysFile,
    secretsDir: layout.secretsDir,
    tlsCertFile: layout.tlsCertFile,
    tlsKeyFile: layout.tlsKeyFile,
    apiSocket: path.join(where.runDir, 'api.sock'),
    controlSocket: where.controlSocket,
    syslogSocket: where.syslogSocket,
    accessLogFifo: path.join(where.runDir, 'nginx-access.fifo'),
  };
}

/** Daemon binaries and shipped files, overridable for tests. */
export interface ServiceBinaries {
  node: string;
  apiMain: string;
  nginx: string;
  sshd: string;
  sshKeygen: string;
  /** Makes the self-signed TLS certificate on first start. */
  openssl: string;
  tftpd: string;
  dhcpd: string;
  /** The DNS server (dnsmasq, DNS only). */
  dnsmasq: string;
  /** Directory holding the iPXE binaries copied into the boot directory. */
  ipxeDir: string;
  /** This head's etcd member, when it runs one (Debian's etcd-server). */
  etcd: string;
}

export interface RunResult {
  exitCode: number;
  /** stdout and stderr interleaved. */
  output: string;
}

/** Runs a short helper command (a config check, ssh-keygen) to completion. */
export type CommandRunner = (command: string, args: readonly string[]) => Promise<RunResult>;

/** Everything a service definition needs from its surroundings. */
export interface ServiceContext {
  paths: ServicePaths;
  /** `https` serves the same locations as `http`, with the certificate of `tls/server.crt`. */
  ports: { http: number; https: number; ssh: number; tftp: number; dns: number };
  /** Interfaces named by CW_DHCP_INTERFACES, or null to pick private-network interfaces automatically. */
  dhcpInterfaces: readonly string[] | null;
  /** CW_HEAD_ADDRESS: the address nodes are told in its cluster network (a floating IP), or null. */
  headAddress: string | null;
  /** This head's etcd member (CW_ETCD_MEMBER, CW_ETCD_ADDRESS), or null: the database is SQLite or an outside etcd. */
  etcdMember: EtcdMember | null;
  bins: ServiceBinaries;
  /** Environment every child starts from. */
  baseEnv: Readonly<Record<string, string | undefined>>;
  /** Writes a line attributed to a service: `[dhcpd] ...`. */
  log(source: string, line: string): void;
  run: CommandRunner;
}

/** Restart policy shared by the daemons: quick first restart (kill -9 → back well within 2 s), FATAL after 5 failures in a minute. */
export const DAEMON_RESTART: RestartPolicy = {
  initialDelayMs: 200,
  maxDelayMs: 10_000,
  factor: 2,
  jitter: 0.2,
  resetAfterMs: 10_000,
  maxFailures: 5,
  windowMs: 60_000,
};
