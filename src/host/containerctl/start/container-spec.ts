import { ExitError } from '../../../lib/errors.js';
import type { ContainerSpec } from '../engine/engine.js';
import type { EngineKind } from '../engine/identify.js';
import { CONTAINER_STORAGE } from '../../../lib/storage-layout.js';
import { APPLIANCE_LABEL, APPLIANCE_TITLE, FIXED_IP_LABEL, STORAGE_LABEL, TITLE_LABEL } from '../labels.js';

/**
 * Every capability is dropped, then only these are added back — no `--privileged`:
 */
export const APPLIANCE_CAPABILITIES: readonly string[] = [
  // Daemons create and hand over files to their unprivileged users (nginx temp dirs, sshd ptys).
  'CHOWN',
  // The supervisor and cw-appliance (root) read and write storage files owned by other users.
  'DAC_OVERRIDE',
  // chmod/utime on files root does not own (log rotation, rendered configs, authorized_keys).
  'FOWNER',
  // nginx workers, tftpd (--secure → user tftp) and sshd's privilege separation drop to other users.
  'SETUID',
  'SETGID',
  // The supervisor signals its children, some of which run as other users.
  'KILL',
  // sshd's privsep child and tftpd --secure chroot themselves.
  'SYS_CHROOT',
  // sshd writes login records to the audit subsystem; without it logins fail on audit-enabled hosts.
  'AUDIT_WRITE',
  // dhcpd configures its listening sockets on the interfaces it serves.
  'NET_ADMIN',
  // dhcpd answers clients that have no address yet through raw (packet) sockets.
  'NET_RAW',
  // 67/udp, 69/udp, 80/tcp and 443/tcp are below 1024.
  'NET_BIND_SERVICE',
];

/** Seconds the engine waits after SIGTERM; the supervisor normally exits well before. */
export const STOP_TIMEOUT_SECONDS = 10;

export interface ApplianceContainerInput {
  name: string;
  image: string;
  /** Absolute host path. */
  storageDir: string;
  engineKind: EngineKind;
  /** `host` or a network name. */
  network: string;
  ip?: string | undefined;
  /** CW_HEAD_ADDRESS: the address nodes are told in its cluster network. */
  headAddress?: string | undefined;
  /** The service network (BMCs, switches) as a second interface; only beside a named `network`. */
  serviceNetwork?: string | undefined;
  serviceIp?: string | undefined;
  httpPort: number;
  httpsPort: number;
  sshPort: number;
  tftpPort: number;
  dnsPort: number;
  dhcpInterfaces: string[];
  /** Extra `KEY=VALUE` pairs (e.g. `CW_FAIL_SERVICE=dhcpd` in tests); they override the defaults. */
  extraEnv: string[];
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Splits and checks `KEY=VALUE` options. */
export function parseEnvPairs(pairs: string[]): [string, string][] {
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : pair;
    if (eq <= 0 || !ENV_KEY.test(key)) throw new ExitError(`invalid --env "${pair}" (expected KEY=VALUE)`);
    return [key, pair.slice(eq + 1)];
  });
}

/** The container as ARCHITECTURE.md describes it: labels, environment, storage bind, capabilities. */
export function buildContainerSpec(input: ApplianceContainerInput): ContainerSpec {
  const env = new Map<string, string>([
    ['CW_STORAGE', CONTAINER_STORAGE],
    ['CW_HTTP_PORT', String(input.httpPort)],
    ['CW_HTTPS_PORT', String(input.httpsPort)],
    ['CW_SSH_PORT', String(input.sshPort)],
    ['CW_TFTP_PORT', String(input.tftpPort)],
    ['CW_DNS_PORT', String(input.dnsPort)],
    ['CW_DHCP_INTERFACES', input.dhcpInterfaces.join(' ')],
    ...(input.headAddress ? ([['CW_HEAD_ADDRESS', input.headAddress]] as const) : []),
  ]);
  for (const [key, value] of parseEnvPairs(input.extraEnv)) env.set(key, value);
  // Podman on SELinux hosts must relabel the bind mount or the container cannot read it; Docker would
  // relabel too but is usually run without SELinux enforcement, so it is left alone.
  const bindOptions = input.engineKind === 'podman' ? ':z' : '';
  return {
    name: input.name,
    image: input.image,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    labels: {
      [TITLE_LABEL]: APPLIANCE_TITLE,
      [APPLIANCE_LABEL]: 'true',
      [STORAGE_LABEL]: input.storageDir,
      ...(input.network !== 'host' && input.ip ? { [FIXED_IP_LABEL]: input.ip } : {}),
    },
    binds: [`${input.storageDir}:${CONTAINER_STORAGE}${bindOptions}`],
    network: input.network,
    ip: input.network === 'host' ? undefined : input.ip,
    ...(input.network !== 'host' && input.serviceNetwork ? { serviceNetwork: { network: input.serviceNetwork, ip: input.serviceIp } } : {}),
    capAdd: [...APPLIANCE_CAPABILITIES],
    stopTimeout: STOP_TIMEOUT_SECONDS,
  };
}
