// Compute nodes: fields, input checks and attribute inheritance, independent of the backend.
import { COLLECTION_FIELDS } from '../../lib/collections.js';
import type { CollectionSpec, StoredRecord } from './collections.js';
import { DEFAULT_ATTRIBS } from './collections.js';
import {
  attributesField,
  enumField,
  invalid,
  nullableTextField,
  parseIp,
  parseMac,
  parsePowerUri,
  readOnly,
  refListField,
  stringListField,
  type JsonSchema,
} from './fields.js';

export const NODE_TYPES = ['compute'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

/** Highest node index (names up to `n9999999`). */
export const MAX_NODE_INDEX = 9_999_999;
/** Most extra MACs of one node. */
export const MAX_EXTRA_MACS = 16;

export interface Node {
  uid: string;
  /** `n<index>`, derived from the index. */
  name: string;
  index: number;
  /** The MAC the node boots from (lowercase colon form), or null. */
  mac: string | null;
  /** Further MACs of the node (other NICs); each is unique across the cluster too. */
  macs: string[];
  ip: string | null;
  type: NodeType;
  /** Attribute group names, in lookup order. */
  groups: string[];
  attributes: Record<string, string>;
  power_uri: string | null;
  /** Fields reported by the node's status agent. */
  status: Record<string, unknown>;
  last_seen: string | null;
}

/** What a client may write; `index` defaults to the next free one on create. */
export interface NodeInput {
  index?: number;
  mac?: string | null;
  macs?: string[];
  ip?: string | null;
  type?: NodeType;
  groups?: string[];
  attributes?: Record<string, string | null>;
  power_uri?: string | null;
}

const macSchema: JsonSchema = { type: 'string', maxLength: 17, description: 'MAC address (aa:bb:cc:dd:ee:ff or with -)' };

export const NODE_SPEC: CollectionSpec = {
  kind: 'nodes',
  singular: COLLECTION_FIELDS.nodes.singular,
  table: 'nodes',
  fields: {
    index: {
      storage: 'int',
      column: 'idx',
      writable: true,
      keepOnReplace: true,
      initial: () => null,
      schema: { type: 'integer', minimum: 0, maximum: MAX_NODE_INDEX, description: 'node number; the name is n<index> (default: the next free one)' },
      parse: (v, _c, f) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_NODE_INDEX) throw invalid(f, `must be an integer from 0 to ${MAX_NODE_INDEX}`);
        return v;
      },
    },
    mac: nullableTextField(17, 'MAC the node boots from, or null', (v, f) => parseMac(v, f)),
    macs: stringListField(MAX_EXTRA_MACS, macSchema, (v, f) => parseMac(v, f), 'further MACs of the node'),
    ip: nullableTextField(15, 'IPv4 address (inside a net\'s range when nets exist), or null', (v, f) => parseIp(v, f)),
    type: enumField(NODE_TYPES, 'compute', 'node type'),
    groups: refListField('attribs', 'attribute group', 'attribute group names, in lookup order'),
    attributes: attributesField('the node\'s own attributes {name: value}'),
    power_uri: nullableTextField(1024, 'power control, e.g. ipmi:///admin:password@10.0.0.1, or null', (v, f) => parsePowerUri(v, f)),
    status: readOnly({ type: 'object', description: 'fields reported by the node' }, 'json', () => ({})),
    last_seen: readOnly({ type: ['string', 'null'], format: 'date-time', description: 'last report from the node' }, 'text', () => null),
  },
  derived: {
    name: { schema: { type: 'string', description: 'n<index>' }, compute: (r) => nodeName(r.index as number) },
  },
  derivedFirst: true,
  freezable: false,
  affectsDhcp: true,
  orderBy: ['index'],
  complete(record) {
    const extra = record.macs as string[];
    if (record.mac !== null && extra.includes(record.mac as string)) throw invalid('macs', `lists the primary mac ${record.mac as string} again`);
  },
};

export function nodeName(index: number): string {
  return `n${index}`;
}

const NODE_NAME_RE = /^n(0|[1-9][0-9]{0,8})$/;

/** The index a node name stands for (`n12` -> 12), or undefined for anything else. */
export function indexOfName(name: string): number | undefined {
  const m = NODE_NAME_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Every MAC of a stored node record, primary first. */
export function macsOf(record: StoredRecord): string[] {
  const extra = record.macs as string[];
  return record.mac === null ? [...extra] : [record.mac as string, ...extra];
}

/** Whether two stored node records differ in what dhcpd.conf is rendered from. */
export function dhcpDiffers(a: StoredRecord, b: StoredRecord): boolean {
  return a.index !== b.index || a.ip !== b.ip || macsOf(a).join(',') !== macsOf(b).join(',');
}

/** Whether a stored node record appears in dhcpd.conf at all. */
export function inDhcp(record: StoredRecord): boolean {
  return record.mac !== null || (record.macs as string[]).length > 0 || record.ip !== null;
}

/** Where an effective attribute value comes from. */
export type AttributeOrigin = { value: string; from: 'node' } | { value: string; from: 'group'; group: string };

export type ResolvedAttributes = Record<string, AttributeOrigin>;

/** An attribute group as inheritance needs it. */
export interface GroupAttributes {
  name: string;
  attributes: Record<string, string>;
}

/**
 * Effective attributes: the node's own values win, then its groups in their order, then DefaultAttribs
 * (unless the node already lists it). `groups` are the node's groups, in order, already looked up.
 */
export function resolveAttributes(own: Record<string, string>, groups: readonly GroupAttributes[], defaults: GroupAttributes | undefined): ResolvedAttributes {
  const out: ResolvedAttributes = {};
  for (const [key, value] of Object.entries(own)) out[key] = { value, from: 'node' };
  const chain = defaults && !groups.some((g) => g.name === DEFAULT_ATTRIBS) ? [...groups, defaults] : groups;
  for (const group of chain) {
    for (const [key, value] of Object.entries(group.attributes)) {
      if (!(key in out)) out[key] = { value, from: 'group', group: group.name };
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
