// What booting and running nodes report (docs/BOOT.md, steps 3-7), and the state shown for a node.
// The store keeps the last report (`status`) and its time (`last_seen`); the state is derived from both
// whenever a node is read, so it is never stale in the database.
import { isValidIPv4 } from '../../lib/ipv4.js';
import { parsePublicKey } from '../../lib/sshkey.js';
import { ValidationError } from './errors.js';
import type { Node } from './nodes.js';

/** Boot stages, in boot order: iPXE script fetched, initramfs running, image downloaded, system up; or error. */
export const BOOT_STAGES = ['ipxe', 'initramfs', 'image', 'up', 'error'] as const;
export type BootStage = (typeof BOOT_STAGES)[number];

/** The node agent reports this often. */
export const REPORT_INTERVAL_MS = 10_000;
/** A node silent for three intervals is down. */
export const DOWN_AFTER_MS = 3 * REPORT_INTERVAL_MS;

/** `new` (never heard from), `up`, `down`, `error`, or `booting:<stage>`. */
export type NodeState = 'new' | 'up' | 'down' | 'error' | `booting:${Exclude<BootStage, 'up' | 'error'>}`;

/** One report, as validated (unknown fields dropped). */
export interface NodeStatusReport {
  stage: BootStage;
  /** The node's address as it sees it. */
  ip?: string;
  /** Running kernel release (`uname -r`). */
  kernel?: string;
  /** Seconds since the node's kernel started. */
  uptime?: number;
  /** Load averages (1, 5, 15 minutes), or just the 1-minute one. */
  load?: number | number[];
  /** Bytes. */
  ram_free?: number;
  ram_total?: number;
  /** Why a stage failed, or any short note. */
  message?: string;
  /**
   * The public half of the ed25519 host key the node's sshd made at this boot (`ssh-ed25519 BASE64`, no
   * comment). Sent with the node secret, so the head node can pin it for exec and soft reboot.
   */
  ssh_host_key?: string;
}

const RELEASE_RE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/;
const MESSAGE_MAX = 300;
const REPORT_FIELDS = ['stage', 'ip', 'kernel', 'uptime', 'load', 'ram_free', 'ram_total', 'message', 'ssh_host_key'] as const;

const bad = (field: string, reason: string, value: unknown): ValidationError =>
  new ValidationError(`${field}: ${reason}, not ${(JSON.stringify(value) ?? String(value)).slice(0, 60)}`);

/**
 * Checks a status report: `stage` is required, the rest optional; unknown fields are ignored (newer
 * agents may send more). Throws ValidationError naming the first bad field.
 * Example: parseStatusReport({stage: 'up', ip: '10.0.0.5', uptime: 42.5}) → the same, typed.
 */
export function parseStatusReport(body: unknown): NodeStatusReport {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ValidationError('body must be a JSON object like {"stage": "up"}');
  const raw = body as Record<string, unknown>;
  if (!(BOOT_STAGES as readonly unknown[]).includes(raw.stage)) {
    if (raw.stage === undefined) throw new ValidationError(`stage is required: one of ${BOOT_STAGES.join(', ')}`);
    throw bad('stage', `must be one of ${BOOT_STAGES.join(', ')}`, raw.stage);
  }
  const report: NodeStatusReport = { stage: raw.stage as BootStage };
  for (const field of REPORT_FIELDS) {
    const value = raw[field];
    if (field === 'stage' || value === undefined || value === null) continue;
    switch (field) {
      case 'ip':
        if (typeof value !== 'string' || isValidIPv4(value) !== true) throw bad(field, 'must be a dotted IPv4 address', value);
        report.ip = value;
        break;
      case 'kernel':
        if (typeof value !== 'string' || !RELEASE_RE.test(value)) throw bad(field, 'must be a kernel release like 6.1.0-18-amd64', value);
        report.kernel = value;
        break;
      case 'uptime':
        report.uptime = nonNegative(field, value, false);
        break;
      case 'ram_free':
      case 'ram_total':
        report[field] = nonNegative(field, value, true);
        break;
      case 'load':
        if (Array.isArray(value)) {
          if (value.length < 1 || value.length > 3) throw bad(field, 'must be one to three load averages', value);
          report.load = value.map((v) => nonNegative(field, v, false));
        } else {
          report.load = nonNegative(field, value, false);
        }
        break;
      case 'message':
        if (typeof value !== 'string' || value.length > MESSAGE_MAX || /[^\x20-\x7e]/.test(value)) {
          throw bad(field, `must be printable ASCII text of at most ${MESSAGE_MAX} characters`, value);
        }
        report.message = value;
        break;
      case 'ssh_host_key':
        report.ssh_host_key = hostKey(value);
        break;
    }
  }
  return report;
}

/** An ed25519 public key line, normalized to `ssh-ed25519 BASE64` (a comment is dropped). */
function hostKey(value: unknown): string {
  if (typeof value !== 'string' || value.length > 200) throw bad('ssh_host_key', 'must be an ssh-ed25519 public key line', value);
  let key;
  try {
    key = parsePublicKey(value);
  } catch (err) {
    throw bad('ssh_host_key', `must be an ssh-ed25519 public key line (${(err as Error).message})`, value);
  }
  if (key.type !== 'ssh-ed25519') throw bad('ssh_host_key', 'must be an ssh-ed25519 public key line', value);
  return key.line.split(' ').slice(0, 2).join(' ');
}

function nonNegative(field: string, value: unknown, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (integer && !Number.isSafeInteger(value))) {
    throw bad(field, integer ? 'must be a whole number of bytes (0 or more)' : 'must be a number (0 or more)', value);
  }
  return value;
}

/**
 * The state of a node from its last report and when it came (`now` in ms since the epoch):
 * `new` when never heard from, `down` when silent for DOWN_AFTER_MS, else `up`, `error` or
 * `booting:<stage>` by the reported stage.
 */
export function nodeState(status: Readonly<Record<string, unknown>>, lastSeen: string | null, now: number): NodeState {
  const seen = lastSeen === null ? Number.NaN : Date.parse(lastSeen);
  if (!Number.isFinite(seen)) return 'new';
  if (now - seen > DOWN_AFTER_MS) return 'down';
  const stage = status.stage;
  if (stage === 'up') return 'up';
  if (stage === 'error') return 'error';
  if (stage === 'ipxe' || stage === 'initramfs' || stage === 'image') return `booting:${stage}`;
  return 'down';
}

/** The node as shown to clients: `status.state` derived at `now` (never stored). */
export function withNodeState(node: Node, now: number): Node {
  const { state: _stored, ...status } = node.status;
  return { ...node, status: { ...status, state: nodeState(status, node.last_seen, now) } };
}

/** The stored form of a report. */
export function statusOfReport(report: NodeStatusReport): Record<string, unknown> {
  return { ...report };
}
