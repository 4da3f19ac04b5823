// cluster.conf, as read by `cw-cluster-conf load` and written by `cw-cluster-conf save`:
//
//   iprange 10.10.24.100/24 10.10.24.199   # first address / prefix, optional last address
//   nodes 10                               # nodes without a MAC yet
//   node 52:54:00:00:00:01                 # one node with that MAC
//
// Nodes get indexes in file order (from 0, or `startIndex`) and addresses from the iprange above them,
// continuing into the next iprange when one is full. Parsing collects every problem, with its line
// number, before refusing the file.
import { formatByteLimit } from './bytes.js';
import { isValidMac, looksLikeMac } from './validate.js';
import { broadcastOf, intToIp, ipToInt, isValidIPv4, networkOf, prefixToNetmask } from './ipv4.js';

export interface ClusterConfRange {
  first: string;
  prefix: number;
  last: string;
  network: string;
  netmask: string;
}

export interface ClusterConfNode {
  index: number;
  /** Lowercase colon form, or null for a placeholder from `nodes N`. */
  mac: string | null;
  ip: string;
}

export interface ClusterConf {
  ranges: ClusterConfRange[];
  nodes: ClusterConfNode[];
}

export interface ParseClusterConfOptions {
  /** Name used in messages (`cluster.conf:3: ...`); default `cluster.conf`. */
  fileName?: string;
  /** Index of the first node (default 0). */
  startIndex?: number;
}

export const MAX_CLUSTERCONF_BYTES = 4 * 1024 * 1024;
export const MAX_LINE_CHARS = 1000;
/** Most nodes one file may describe. */
export const MAX_CLUSTERCONF_NODES = 100_000;
/** Problems kept in `ClusterConfError.problems`; the rest are counted. */
const MAX_PROBLEMS = 1000;
/** Problems quoted in the one-line message. */
const MESSAGE_PROBLEMS = 5;

/** A refused file: `problems` holds every `file:line: message`, `message` is one line. */
export class ClusterConfError extends Error {
  readonly problems: string[];
  constructor(problems: string[], omitted = 0) {
    const shown = problems.slice(0, MESSAGE_PROBLEMS).join('; ');
    const more = problems.length - Math.min(problems.length, MESSAGE_PROBLEMS) + omitted;
    super(more > 0 ? `${shown} (and ${more} more problem${more === 1 ? '' : 's'})` : shown);
    this.name = 'ClusterConfError';
    this.problems = omitted > 0 ? [...problems, `... and ${omitted} more problems`] : problems;
  }
}

interface Problem {
  line: number;
  text: string;
}

interface RangeDecl {
  line: number;
  first: number;
  last: number;
  prefix: number;
}

/** Nodes declared under one iprange line, in file order. */
interface Segment {
  range: number;
  /** One entry per node: its MAC, or null for a placeholder. */
  macs: Array<string | null>;
}

/**
 * Parses, normalizes and validates a cluster.conf (text or raw bytes).
 * Throws ClusterConfError listing every problem; never returns a partial model.
 */
export function parseClusterConf(input: string | Uint8Array, opts: ParseClusterConfOptions = {}): ClusterConf {
  const file = opts.fileName ?? 'cluster.conf';
  const startIndex = opts.startIndex ?? 0;
  if (!Number.isSafeInteger(startIndex) || startIndex < 0) throw new Error(`invalid start index ${startIndex}`);

  const text = decodeText(input, file);
  const problems: Problem[] = [];
  const add = (line: number, msg: string) => {
    problems.push({ line, text: msg });
  };

  const ranges: RangeDecl[] = [];
  const segments: Segment[] = [];
  const macLines = new Map<string, number>();
  let nodeCount = 0;
  let reportedNoRange = false;
  let reportedTooMany = false;

  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i] as string;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length > MAX_LINE_CHARS) {
      add(lineNo, `line is ${line.length} characters long (limit ${MAX_LINE_CHARS})`);
      continue;
    }
    const words = splitWords(line);
    if (words.length === 0) continue;
    const keyword = (words[0] as string).toLowerCase();
    const args = words.slice(1);

    if (keyword === 'iprange') {
      const decl = parseIprange(args, (msg) => add(lineNo, msg));
      if (!decl) continue;
      for (const other of ranges) {
        if (decl.first <= other.last && other.first <= decl.last) {
          add(lineNo, `iprange ${intToIp(decl.first)}-${intToIp(decl.last)} overlaps the iprange on line ${other.line}`);
        }
      }
      ranges.push({ ...decl, line: lineNo });
      segments.push({ range: ranges.length - 1, macs: [] });
      continue;
    }

    if (keyword === 'node' || keyword === 'nodes') {
      let mac: string | null = null;
      let count = 1;
      if (keyword === 'node') {
        if (args.length === 0) {
          add(lineNo, 'node needs a MAC address (use "nodes N" for nodes without one)');
          continue;
        }
        if (args.length > 1) {
          add(lineNo, `node takes one MAC address, got extra "${clip(args.slice(1).join(' '))}"`);
          continue;
        }
        const raw = args[0] as string;
        const check = looksLikeMac(raw) ? isValidMac(raw) : 'expected six hex pairs like 52:54:00:00:00:01';
        if (check !== true) {
          add(lineNo, `invalid MAC "${clip(raw)}": ${check}`);
          continue;
        }
        mac = raw.toLowerCase().replaceAll('-', ':');
        const seen = macLines.get(mac);
        if (seen !== undefined) {
          add(lineNo, `duplicate MAC ${mac} (first on line ${seen})`);
          continue;
        }
        macLines.set(mac, lineNo);
      } else {
        if (args.length !== 1 || !/^\d{1,9}$/.test(args[0] as string)) {
          add(lineNo, `nodes needs one count, as in "nodes 10"${args.length ? `, not "${clip(args.join(' '))}"` : ''}`);
          continue;
        }
        const n = Number(args[0]);
        if (n === 0) {
          add(lineNo, 'nodes 0 describes no nodes');
          continue;
        }
        count = n;
      }
      const segment = segments[segments.length - 1];
      if (!segment) {
        // One message is enough: every later node line has the same cause.
        if (!reportedNoRange) add(lineNo, `${keyword} before any iprange (put an "iprange FIRST/PREFIX [LAST]" line above it)`);
        reportedNoRange = true;
        continue;
      }
      if (nodeCount + count > MAX_CLUSTERCONF_NODES) {
        if (!reportedTooMany) add(lineNo, `more than ${MAX_CLUSTERCONF_NODES} nodes in one file`);
        reportedTooMany = true;
        continue;
      }
      nodeCount += count;
      for (let k = 0; k < count; k++) segment.macs.push(mac);
      continue;
    }

    add(lineNo, `unknown keyword "${clip(words[0] as string)}" (expected iprange, nodes or node)`);
  }

  // Assign addresses: each segment starts at its own range's next free address and spills forward.
  const nodes: ClusterConfNode[] = [];
  const next = ranges.map((r) => r.first);
  let index = startIndex;
  for (let s = 0; s < segments.length; s++) {
    const seg = segments[s] as Segment;
    let free = 0;
    for (let t = seg.range; t < ranges.length; t++) free += (ranges[t] as RangeDecl).last - (next[t] as number) + 1;
    if (seg.macs.length > free) {
      let need = 0;
      for (let t = s; t < segments.length; t++) need += (segments[t] as Segment).macs.length;
      const decl = ranges[seg.range] as RangeDecl;
      const spec = `iprange ${intToIp(decl.first)}/${decl.prefix} ${intToIp(decl.last)}`;
      const have = `${free} address${free === 1 ? '' : 'es'}`;
      const want = need === 1 ? '1 node needs an address' : `${need} nodes need addresses`;
      add(
        decl.line,
        seg.range === ranges.length - 1
          ? `${spec} holds ${have}, ${want}`
          : `${spec} and the ipranges after it hold ${have}, ${want}`,
      );
      break;
    }
    let r = seg.range;
    for (const mac of seg.macs) {
      while ((next[r] as number) > (ranges[r] as RangeDecl).last) r++;
      nodes.push({ index: index++, mac, ip: intToIp(next[r] as number) });
      next[r] = (next[r] as number) + 1;
    }
  }

  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line);
    const kept = problems.slice(0, MAX_PROBLEMS).map((p) => `${file}:${p.line}: ${p.text}`);
    throw new ClusterConfError(kept, problems.length - kept.length);
  }

  return {
    ranges: ranges.map((r) => ({
      first: intToIp(r.first),
      prefix: r.prefix,
      last: intToIp(r.last),
      network: intToIp(networkOf(r.first, r.prefix)),
      netmask: prefixToNetmask(r.prefix),
    })),
    nodes,
  };
}

/** Parses `FIRST/PREFIX [LAST]`; reports and returns null when anything is wrong. */
function parseIprange(args: string[], report: (msg: string) => void): Omit<RangeDecl, 'line'> | null {
  if (args.length < 1 || args.length > 2) {
    report('iprange needs FIRST/PREFIX and an optional LAST address, as in "iprange 10.0.0.100/24 10.0.0.199"');
    return null;
  }
  const [cidr = '', lastText] = args;
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) {
    report(`iprange "${clip(cidr)}" needs a prefix length, as in 10.0.0.100/24`);
    return null;
  }
  const firstText = m[1] as string;
  const prefix = Number(m[2]);
  const firstCheck = isValidIPv4(firstText);
  if (firstCheck !== true) {
    report(`invalid IP address "${clip(firstText)}": ${firstCheck}`);
    return null;
  }
  if (prefix < 8 || prefix > 30) {
    report(`prefix /${prefix} is out of range (8 to 30)`);
    return null;
  }
  const first = ipToInt(firstText);
  const reserved = reservedReason(first);
  if (reserved) {
    report(`iprange ${firstText} is ${reserved}`);
    return null;
  }
  const network = networkOf(first, prefix);
  const broadcast = broadcastOf(first, prefix);
  const subnet = `${intToIp(network)}/${prefix}`;
  if (first === network) {
    report(`iprange starts at ${firstText}, the network address of ${subnet}`);
    return null;
  }
  if (first === broadcast) {
    report(`iprange starts at ${firstText}, the broadcast address of ${subnet}`);
    return null;
  }
  let last = broadcast - 1;
  if (lastText !== undefined) {
    const lastCheck = isValidIPv4(lastText);
    if (lastCheck !== true) {
      report(`invalid IP address "${clip(lastText)}": ${lastCheck}`);
      return null;
    }
    last = ipToInt(lastText);
    if (networkOf(last, prefix) !== network) {
      report(`last address ${lastText} is outside ${subnet}`);
      return null;
    }
    if (last === broadcast) {
      report(`last address ${lastText} is the broadcast address of ${subnet}`);
      return null;
    }
    if (last < first) {
      report(`last address ${lastText} comes before the first address ${firstText}`);
      return null;
    }
  }
  return { first, last, prefix };
}

function reservedReason(ip: number): string | null {
  const a = ip >>> 24;
  if (a === 0) return 'in 0.0.0.0/8, which is not usable';
  if (a === 127) return 'a loopback address';
  if (a >= 224 && a <= 239) return 'a multicast address';
  if (a >= 240) return 'in the reserved 240.0.0.0/4 block';
  if (a === 169 && ((ip >>> 16) & 255) === 254) return 'a link-local address';
  return null;
}

/** UTF-8 text of the file, or a ClusterConfError for oversized or binary content. */
function decodeText(input: string | Uint8Array, file: string): string {
  if (typeof input === 'string') {
    const bytes = Buffer.byteLength(input, 'utf8');
    if (bytes > MAX_CLUSTERCONF_BYTES) throw new ClusterConfError([`${file}: file is ${bytes} bytes, larger than the ${formatByteLimit(MAX_CLUSTERCONF_BYTES)} limit`]);
    const nul = input.indexOf('\0');
    if (nul !== -1) throw new ClusterConfError([`${file}: binary content (NUL at character ${nul}), not a text file`]);
    return input.startsWith('\uFEFF') ? input.slice(1) : input;
  }
  if (input.length > MAX_CLUSTERCONF_BYTES) {
    throw new ClusterConfError([`${file}: file is ${input.length} bytes, larger than the ${formatByteLimit(MAX_CLUSTERCONF_BYTES)} limit`]);
  }
  const nul = input.indexOf(0);
  if (nul !== -1) throw new ClusterConfError([`${file}: binary content (NUL at byte ${nul}), not a text file`]);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(input);
  } catch {
    throw new ClusterConfError([`${file}: binary content (not UTF-8 text)`]);
  }
}

/** Words separated by spaces or tabs, up to a `#` comment. */
function splitWords(line: string): string[] {
  const words: string[] = [];
  let start = -1;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 35 /* # */) break;
    if (c === 32 || c === 9) {
      if (start !== -1) words.push(line.slice(start, i));
      start = -1;
    } else if (start === -1) {
      start = i;
    }
  }
  if (start !== -1) {
    const hash = line.indexOf('#', start);
    words.push(line.slice(start, hash === -1 ? line.length : hash));
  }
  return words;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/**
 * Writes a model back in cluster.conf form: each iprange, then the nodes whose addresses lie in it, in
 * index order (`nodes N` for runs without MACs). `parseClusterConf(renderClusterConf(m), {startIndex})`
 * gives `m` back. Throws when the model cannot be said in this format: indexes with gaps, or addresses
 * that are not handed out in order from each range's first address.
 */
export function renderClusterConf(model: ClusterConf, opts: { header?: string } = {}): string {
  const ranges = model.ranges.map((r) => ({ r, first: ipToInt(r.first), last: ipToInt(r.last) }));
  const nodes = [...model.nodes].sort((a, b) => a.index - b.index);
  const out: string[] = [];
  if (opts.header) for (const h of opts.header.split('\n')) out.push(`# ${h}`.trimEnd());

  const byRange: ClusterConfNode[][] = ranges.map(() => []);
  for (const node of nodes) {
    const ip = ipToInt(node.ip);
    const at = ranges.findIndex((x) => ip >= x.first && ip <= x.last);
    if (at === -1) throw new Error(`cannot write n${node.index}: its address ${node.ip} is in no iprange`);
    (byRange[at] as ClusterConfNode[]).push(node);
  }

  // Each range's nodes must sit at its first addresses, in index order, with indexes running on from
  // one range to the next: exactly what parsing the rendered text assigns.
  let expectIndex = nodes[0]?.index ?? 0;
  ranges.forEach((x, i) => {
    (byRange[i] as ClusterConfNode[]).forEach((node, j) => {
      const want = intToIp(x.first + j);
      if (node.index !== expectIndex || node.ip !== want) {
        throw new Error(
          `cannot write n${node.index} (${node.ip}) as cluster.conf: it needs consecutive indexes and addresses ` +
            `handed out in order (expected n${expectIndex} at ${want})`,
        );
      }
      if (node.mac !== null && isValidMac(node.mac) !== true) throw new Error(`cannot write n${node.index}: invalid MAC "${node.mac}"`);
      expectIndex++;
    });
  });

  ranges.forEach((x, i) => {
    out.push(`iprange ${x.r.first}/${x.r.prefix} ${x.r.last}`);
    const list = byRange[i] as ClusterConfNode[];
    let placeholders = 0;
    for (const node of list) {
      if (node.mac === null) {
        placeholders++;
        continue;
      }
      if (placeholders) out.push(`nodes ${placeholders}`);
      placeholders = 0;
      out.push(`node ${node.mac.toLowerCase().replaceAll('-', ':')}`);
    }
    if (placeholders) out.push(`nodes ${placeholders}`);
  });
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
