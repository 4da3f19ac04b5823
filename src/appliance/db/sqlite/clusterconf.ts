import type { ClusterConf } from '../../../lib/clusterconf.js';
import { intToIp, ipToInt, networkOf } from '../../../lib/ipv4.js';
import type { Net } from '../collections.js';
import { ConflictError } from '../errors.js';
import { nodeName, type NodeInput } from '../nodes.js';
import type { ClusterConfNodeChange, ClusterConfResult } from '../store.js';
import type { ClusterModel } from './store.js';

const MAX_REPORTED = 5;

/**
 * Applies a parsed cluster.conf: each iprange becomes a net (an existing net of the same subnet whose
 * range overlaps is adjusted to it), each node line the node of that index (created, or given the
 * file's MAC and IP). MACs and IPs held by other nodes are refused up front, all of them in one message.
 * Runs atomically; a dry run does the same work and rolls it back.
 */
export function applyClusterConf(model: ClusterModel, conf: ClusterConf, dryRun: boolean): ClusterConfResult {
  const run = (): ClusterConfResult => {
    const nets = applyRanges(model, conf);
    checkOwners(model, conf);
    const creates: NodeInput[] = [];
    const created: ClusterConfNodeChange[] = [];
    const updated: ClusterConfNodeChange[] = [];
    let unchanged = 0;
    for (const node of conf.nodes) {
      const name = nodeName(node.index);
      const existing = model.nodes.byIndex(node.index);
      if (!existing) {
        creates.push({ index: node.index, mac: node.mac, ip: node.ip });
        created.push({ name, mac: node.mac, ip: node.ip });
        continue;
      }
      // A placeholder line (`nodes N`) leaves a known MAC alone.
      const mac = node.mac ?? (existing.mac as string | null);
      if (existing.mac === mac && existing.ip === node.ip) {
        unchanged++;
        continue;
      }
      model.nodes.update(existing.uid, { mac, ip: node.ip });
      updated.push({ name, mac, ip: node.ip });
    }
    if (creates.length > 0) model.nodes.create(creates);
    return { nets, created, updated, unchanged, dryRun };
  };
  return dryRun ? model.rehearse(run) : model.atomic(run);
}

/**
 * One net per subnet: the file's ipranges of one subnet make one net spanning them all; an existing net
 * of that subnet is given that range, otherwise a net is created.
 */
function applyRanges(model: ClusterModel, conf: ClusterConf): Net[] {
  const nets = model.collection('nets');
  const subnets = new Map<string, { network: number; prefix: number; first: number; last: number }>();
  for (const range of conf.ranges) {
    const network = networkOf(range.first, range.prefix);
    const key = `${network}/${range.prefix}`;
    const first = ipToInt(range.first);
    const last = ipToInt(range.last);
    const seen = subnets.get(key);
    if (seen) {
      seen.first = Math.min(seen.first, first);
      seen.last = Math.max(seen.last, last);
    } else subnets.set(key, { network, prefix: range.prefix, first, last });
  }
  const out: Net[] = [];
  for (const want of subnets.values()) {
    const first = intToIp(want.first);
    const last = intToIp(want.last);
    const match = nets.all().find((r) => r.prefix === want.prefix && networkOf(r.first as string, r.prefix as number) === want.network);
    if (!match) {
      out.push(nets.create({ name: freeNetName(model), first, prefix: want.prefix, last }) as unknown as Net);
    } else if (match.first !== first || match.last !== last) {
      out.push(nets.update(match.uid, { first, last }) as unknown as Net);
    } else {
      out.push(nets.show(match) as unknown as Net);
    }
  }
  return out;
}

function freeNetName(model: ClusterModel): string {
  const taken = new Set(model.collection('nets').all().map((r) => r.name as string));
  let i = 0;
  while (taken.has(`net${i}`)) i++;
  return `net${i}`;
}

function checkOwners(model: ClusterModel, conf: ClusterConf): void {
  const problems: string[] = [];
  for (const node of conf.nodes) {
    const name = nodeName(node.index);
    if (node.mac !== null) {
      const owner = model.nodes.ownerOfMac(node.mac);
      const holder = owner === undefined ? undefined : model.nodes.nameOfUid(owner);
      if (holder !== undefined && holder !== name) problems.push(`MAC ${node.mac} belongs to ${holder}, the file gives it to ${name}`);
    }
    const owner = model.nodes.ownerOfIp(node.ip);
    const holder = owner === undefined ? undefined : model.nodes.nameOfUid(owner);
    if (holder !== undefined && holder !== name) problems.push(`IP ${node.ip} belongs to ${holder}, the file gives it to ${name}`);
  }
  if (problems.length > 0) {
    const more = problems.length > MAX_REPORTED ? ` (and ${problems.length - MAX_REPORTED} more)` : '';
    throw new ConflictError(`cluster.conf conflicts with existing nodes: ${problems.slice(0, MAX_REPORTED).join('; ')}${more}`);
  }
}

/** The nets and the addressed nodes as a cluster.conf model. */
export function currentClusterConf(model: ClusterModel): ClusterConf {
  const ranges = model
    .collection('nets')
    .all()
    .sort((a, b) => ipToInt(a.first as string) - ipToInt(b.first as string))
    .map((r) => {
      const shown = model.collection('nets').show(r) as unknown as Net;
      return { first: shown.first, prefix: shown.prefix, last: shown.last, network: shown.network, netmask: shown.netmask };
    });
  const nodes = model.nodes
    .all()
    .filter((r) => r.ip !== null)
    .map((r) => ({ index: r.index as number, mac: r.mac as string | null, ip: r.ip as string }));
  return { ranges, nodes };
}
