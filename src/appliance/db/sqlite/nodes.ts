// The nodes on SQLite: node rows with their MACs in their own table and a name derived from the index,
// addressing (free addresses from the nets, one owner per index, MAC and IP) and selection by ids specs.
// Everything here is synchronous; the store wraps it in its lock and transactions.
import { randomBytes } from 'node:crypto';
import { compressNames, classifyId, expandIds, needsNodeList } from '../../../lib/noderange.js';
import { isSafeAttrKey, normalizeMac } from '../../../lib/validate.js';
import { intToIp, ipToInt } from '../../../lib/ipv4.js';
import { buildRecord, listNames, mergeRecord, showRecord, type RecordContext, type StoredRecord } from '../collections.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { invalid, parseAttributes, quote } from '../fields.js';
import { NODE_SPEC, dhcpDiffers, inDhcp, indexOfName, macsOf, nodeName, type Node } from '../nodes.js';
import { columnsOf, decodeRow, encodeRecord, type Column, type Db, type Row } from './crud.js';
import type { ClusterModel } from './store.js';

interface MacRow {
  node_uid: string;
  mac: string;
}

/** Within one bulk create: which entry claimed an index, MAC or IP first. */
interface BatchClaims {
  index: Map<number, number>;
  mac: Map<string, number>;
  ip: Map<string, number>;
}

export interface NetRange {
  name: string;
  first: number;
  last: number;
  text: string;
}

/** The nodes table and its MACs. */
export class SqlNodes {
  readonly #model: ClusterModel;
  readonly #columns: Column[];
  readonly #all;
  readonly #allExtraMacs;
  readonly #extraMacsOf;
  readonly #byUid;
  readonly #byIndex;
  readonly #byIp;
  readonly #byMac;
  readonly #macOwner;
  readonly #ipOwner;
  readonly #indexOwner;
  readonly #indexOfUid;
  readonly #maxIndex;
  readonly #insert;
  readonly #insertMac;
  readonly #deleteMacs;
  readonly #update;
  readonly #setAttributes;
  readonly #setStatus;
  readonly #delete;
  readonly #addresses;
  readonly #indexes;
  readonly #groupMembers;

  constructor(db: Db, model: ClusterModel) {
    this.#model = model;
    this.#columns = columnsOf(NODE_SPEC, ['macs']);
    const cols = this.#columns.map((c) => c.column);
    this.#all = db.prepare<[], Row>('SELECT * FROM nodes ORDER BY idx');
    this.#allExtraMacs = db.prepare<[], MacRow>('SELECT node_uid, mac FROM node_macs WHERE position > 0 ORDER BY node_uid, position');
    this.#extraMacsOf = db.prepare<[string], string>('SELECT mac FROM node_macs WHERE node_uid = ? AND position > 0 ORDER BY position').pluck();
    this.#byUid = db.prepare<[string], Row>('SELECT * FROM nodes WHERE uid = ?');
    this.#byIndex = db.prepare<[number], Row>('SELECT * FROM nodes WHERE idx = ?');
    this.#byIp = db.prepare<[string], Row>('SELECT * FROM nodes WHERE ip = ?');
    this.#byMac = db.prepare<[string], Row>('SELECT n.* FROM node_macs m JOIN nodes n ON n.uid = m.node_uid WHERE m.mac = ?');
    this.#macOwner = db.prepare<[string], string>('SELECT node_uid FROM node_macs WHERE mac = ?').pluck();
    this.#ipOwner = db.prepare<[string], string>('SELECT uid FROM nodes WHERE ip = ?').pluck();
    this.#indexOwner = db.prepare<[number], string>('SELECT uid FROM nodes WHERE idx = ?').pluck();
    this.#indexOfUid = db.prepare<[string], number>('SELECT idx FROM nodes WHERE uid = ?').pluck();
    this.#maxIndex = db.prepare<[], number | null>('SELECT max(idx) FROM nodes').pluck();
    this.#insert = db.prepare<[Row]>(`INSERT INTO nodes (uid, ${cols.join(', ')}) VALUES (@uid, ${cols.map((c) => `@${c}`).join(', ')})`);
    this.#insertMac = db.prepare<[string, string, number]>('INSERT INTO node_macs (mac, node_uid, position) VALUES (?, ?, ?)');
    this.#deleteMacs = db.prepare<[string]>('DELETE FROM node_macs WHERE node_uid = ?');
    this.#update = db.prepare<[Row]>(`UPDATE nodes SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE uid = @uid`);
    this.#setAttributes = db.prepare<[string, string]>('UPDATE nodes SET attributes = ? WHERE uid = ?');
    this.#setStatus = db.prepare<[string, string, string]>('UPDATE nodes SET status = ?, last_seen = ? WHERE uid = ?');
    this.#delete = db.prepare<[string]>('DELETE FROM nodes WHERE uid = ?');
    this.#addresses = db.prepare<[], { idx: number; ip: string }>('SELECT idx, ip FROM nodes WHERE ip IS NOT NULL ORDER BY idx');
    this.#indexes = db.prepare<[], number>('SELECT idx FROM nodes ORDER BY idx').pluck();
    this.#groupMembers = db
      .prepare<[string], number>('SELECT idx FROM nodes WHERE EXISTS (SELECT 1 FROM json_each(nodes.groups) WHERE value = ?) ORDER BY idx')
      .pluck();
  }

  #decode(row: Row, extraMacs: string[]): StoredRecord {
    const record = decodeRow(this.#columns, row);
    record.macs = extraMacs;
    return record;
  }

  #load(row: Row | undefined): StoredRecord | undefined {
    return row && this.#decode(row, this.#extraMacsOf.all(row.uid as string));
  }

  all(): StoredRecord[] {
    const extras = new Map<string, string[]>();
    for (const { node_uid, mac } of this.#allExtraMacs.all()) {
      const list = extras.get(node_uid);
      if (list) list.push(mac);
      else extras.set(node_uid, [mac]);
    }
    return this.#all.all().map((row) => this.#decode(row, extras.get(row.uid as string) ?? []));
  }

  /** A node by uid, name, MAC or IP. */
  find(id: string): StoredRecord | undefined {
    switch (classifyId(id)) {
      case 'uid':
        return this.#load(this.#byUid.get(id.toLowerCase()));
      case 'mac':
        return this.#load(this.#byMac.get(normalizeMac(id) as string));
      case 'ip':
        return this.#load(this.#byIp.get(id));
      case 'name': {
        const index = indexOfName(id);
        return index === undefined ? undefined : this.#load(this.#byIndex.get(index));
      }
      default:
        return undefined;
    }
  }

  require(id: string): StoredRecord {
    const record = this.find(id);
    if (!record) throw new NotFoundError(`no such node: ${id}`);
    return record;
  }

  show(record: StoredRecord, ctx: RecordContext = this.#model.context(NODE_SPEC)): Node {
    return showRecord(NODE_SPEC, record, ctx) as unknown as Node;
  }

  list(): Node[] {
    const ctx = this.#model.context(NODE_SPEC);
    return this.all().map((r) => this.show(r, ctx));
  }

  addresses(): Array<{ name: string; ip: string }> {
    return this.#addresses.all().map((r) => ({ name: nodeName(r.idx), ip: r.ip }));
  }

  /** The nodes an ids spec (or id list) names, in order; NotFoundError for ids matching nothing. */
  select(ids: string | readonly string[]): StoredRecord[] {
    let list: string[];
    if (typeof ids === 'string') {
      if (ids.trim() === 'all') return this.all();
      try {
        list = expandIds(ids, {
          all: needsNodeList(ids) ? this.#indexes.all().map(nodeName) : undefined,
          groups: (name) => {
            const uid = this.#model.context(NODE_SPEC).resolve('attribs', name);
            return uid === undefined ? undefined : this.#groupMembers.all(uid).map(nodeName);
          },
        });
      } catch (err) {
        throw new ValidationError(`ids: ${(err as Error).message}`);
      }
    } else {
      list = [...ids];
    }
    const found: StoredRecord[] = [];
    const seen = new Set<string>();
    const missing: string[] = [];
    for (const id of list) {
      const record = this.find(id);
      if (!record) missing.push(id);
      else if (!seen.has(record.uid)) {
        seen.add(record.uid);
        found.push(record);
      }
    }
    if (missing.length > 0) {
      throw new NotFoundError(`no such node${missing.length === 1 ? '' : 's'}: ${clip(compressNames(missing))}`);
    }
    return found;
  }

  /** Creates every node or none; errors of a bulk create name the entry (`[3] mac: ...`). */
  create(inputs: readonly unknown[]): StoredRecord[] {
    const ctx = this.#model.context(NODE_SPEC);
    const nets = this.#model.netRanges();
    const claims: BatchClaims = { index: new Map(), mac: new Map(), ip: new Map() };
    const bulk = inputs.length > 1;
    const records: StoredRecord[] = [];
    const uids = randomBytes(16 * inputs.length).toString('hex');
    for (let i = 0; i < inputs.length; i++) {
      try {
        records.push(buildRecord(NODE_SPEC, uids.slice(32 * i, 32 * i + 32), inputs[i], undefined, ctx));
      } catch (err) {
        throw bulk ? prefixed(err, i) : err;
      }
    }
    // Indexes not given follow the highest one in use or asked for.
    let next = (this.#maxIndex.get() ?? -1) + 1;
    for (const record of records) if (record.index !== null && (record.index as number) >= next) next = (record.index as number) + 1;
    for (const record of records) if (record.index === null) record.index = next++;
    this.#assignAddresses(records, nets);
    records.forEach((record, i) => {
      try {
        this.#checkFree(record, claims, i, bulk);
        checkInNets(record.ip as string | null, nets);
      } catch (err) {
        throw bulk ? prefixed(err, i) : err;
      }
    });
    for (const record of records) {
      this.#insert.run(encodeRecord(this.#columns, record));
      macsOf(record).forEach((mac, position) => this.#insertMac.run(mac, record.uid, position));
      if (inDhcp(record)) this.#model.dhcpTouched = true;
    }
    return records;
  }

  /** Nodes created without an address take the lowest free one of the nets' ranges, in net order. */
  #assignAddresses(records: readonly StoredRecord[], nets: readonly NetRange[]): void {
    const needing = records.filter((r) => r.ip === null);
    if (needing.length === 0 || nets.length === 0) return;
    const used = new Set(this.#addresses.all().map((r) => ipToInt(r.ip)));
    for (const r of records) if (r.ip !== null) used.add(ipToInt(r.ip as string));
    let pending = 0;
    for (const net of nets) {
      for (let n = net.first; n <= net.last && pending < needing.length; n++) {
        if (!used.has(n)) needing[pending++]!.ip = intToIp(n);
      }
    }
    if (pending < needing.length) {
      throw invalid('ip', `no free address left in ${listNames(nets.map((r) => `${r.name} ${r.text}`), 3)} for ${needing.length - pending} more node(s)`);
    }
  }

  replace(id: string, input: unknown): StoredRecord {
    const previous = this.require(id);
    const record = buildRecord(NODE_SPEC, previous.uid, input, previous, this.#model.context(NODE_SPEC, previous.uid));
    return this.#write(previous, record);
  }

  update(id: string, patch: unknown): StoredRecord {
    const previous = this.require(id);
    const record = mergeRecord(NODE_SPEC, previous, patch, this.#model.context(NODE_SPEC, previous.uid));
    return this.#write(previous, record);
  }

  #write(previous: StoredRecord, record: StoredRecord): StoredRecord {
    const dhcp = dhcpDiffers(previous, record);
    if (dhcp) {
      this.#checkFree(record);
      if (record.ip !== previous.ip) checkInNets(record.ip as string | null, this.#model.netRanges());
    }
    this.#update.run(encodeRecord(this.#columns, record));
    if (macsOf(previous).join(',') !== macsOf(record).join(',')) {
      this.#deleteMacs.run(record.uid);
      macsOf(record).forEach((mac, position) => this.#insertMac.run(mac, record.uid, position));
    }
    if (dhcp && (inDhcp(previous) || inDhcp(record))) this.#model.dhcpTouched = true;
    return record;
  }

  updateAttributes(ids: string | readonly string[], change: { set?: unknown; unset?: unknown }): StoredRecord[] {
    const set = change.set === undefined ? {} : (parseAttributes(change.set, 'set') as Record<string, string>);
    const unset = change.unset ?? [];
    if (!Array.isArray(unset)) throw invalid('unset', 'must be a list of attribute names');
    unset.forEach((key, i) => {
      if (typeof key !== 'string' || isSafeAttrKey(key) !== true) throw invalid(`unset[${i}]`, `invalid attribute name ${quote(key)}`);
      if (key in set) throw invalid('unset', `${quote(key)} is also in set`);
    });
    const records = this.select(ids);
    for (const record of records) {
      const attributes: Record<string, string> = { ...(record.attributes as Record<string, string>), ...set };
      for (const key of unset as string[]) delete attributes[key];
      record.attributes = attributes;
      this.#setAttributes.run(JSON.stringify(attributes), record.uid);
    }
    return records;
  }

  remove(id: string): StoredRecord {
    const record = this.require(id);
    this.#delete.run(record.uid);
    if (inDhcp(record)) this.#model.dhcpTouched = true;
    return record;
  }

  setStatus(id: string, status: Record<string, unknown>, seenAt: Date): StoredRecord {
    const record = this.require(id);
    if (typeof status !== 'object' || status === null || Array.isArray(status)) throw invalid('status', 'must be an object');
    const text = JSON.stringify(status);
    if (text.length > 64 * 1024) throw invalid('status', `is ${text.length} bytes of JSON (limit 65536)`);
    record.status = JSON.parse(text);
    record.last_seen = seenAt.toISOString();
    this.#setStatus.run(text, record.last_seen as string, record.uid);
    return record;
  }

  /** The uid of the node holding `mac`, `ip` or `index`, if any (for cluster.conf planning). */
  ownerOfMac(mac: string): string | undefined {
    return this.#macOwner.get(mac);
  }
  ownerOfIp(ip: string): string | undefined {
    return this.#ipOwner.get(ip);
  }
  byIndex(index: number): StoredRecord | undefined {
    return this.#load(this.#byIndex.get(index));
  }
  nameOfUid(uid: string): string {
    const index = this.#indexOfUid.get(uid);
    return index === undefined ? uid : nodeName(index);
  }

  /** Refuses an index, MAC or IP that another node (or an earlier entry of the batch) holds. */
  #checkFree(record: StoredRecord, claims?: BatchClaims, entry = 0, bulk = false): void {
    const self = record.uid;
    const index = record.index as number;
    const indexOwner = this.#indexOwner.get(index);
    if (indexOwner !== undefined && indexOwner !== self) throw new ConflictError(`index: node ${nodeName(index)} already exists`);
    const where = (other: number) => (bulk ? ` (also in entry [${other}])` : '');
    if (claims) {
      const other = claims.index.get(index);
      if (other !== undefined) throw new ValidationError(`index: ${index} is given twice${where(other)}`);
      claims.index.set(index, entry);
    }
    macsOf(record).forEach((mac, position) => {
      const field = position === 0 && record.mac !== null ? 'mac' : 'macs';
      const owner = this.#macOwner.get(mac);
      if (owner !== undefined && owner !== self) throw new ConflictError(`${field}: ${mac} already belongs to node ${this.nameOfUid(owner)}`);
      if (claims) {
        const other = claims.mac.get(mac);
        if (other !== undefined) throw new ValidationError(`${field}: ${mac} is given twice${where(other)}`);
        claims.mac.set(mac, entry);
      }
    });
    const ip = record.ip as string | null;
    if (ip !== null) {
      const owner = this.#ipOwner.get(ip);
      if (owner !== undefined && owner !== self) throw new ConflictError(`ip: ${ip} already belongs to node ${this.nameOfUid(owner)}`);
      if (claims) {
        const other = claims.ip.get(ip);
        if (other !== undefined) throw new ValidationError(`ip: ${ip} is given twice${where(other)}`);
        claims.ip.set(ip, entry);
      }
    }
  }

}

function checkInNets(ip: string | null, nets: readonly NetRange[]): void {
  if (ip === null || nets.length === 0) return;
  const n = ipToInt(ip);
  if (nets.some((r) => n >= r.first && n <= r.last)) return;
  throw invalid('ip', `${ip} is outside every net's range (${listNames(nets.map((r) => `${r.name} ${r.text}`), 3)})`);
}

function prefixed(err: unknown, entry: number): unknown {
  if (err instanceof ConflictError) return new ConflictError(`[${entry}] ${err.message}`);
  if (err instanceof ValidationError) return new ValidationError(`[${entry}] ${err.message}`);
  return err;
}

export function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}
