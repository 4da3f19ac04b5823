// The collections of the cluster model and the backend-independent rules for writing them: building a
// stored record from a create/replace body, merging a PATCH, freezing, and showing a record.
import { MAX_DYNAMIC_ADDRESSES, isSafeCmdline } from '../../lib/validate.js';
import { broadcastOf, intToIp, ipToInt, networkOf, prefixToNetmask } from '../../lib/ipv4.js';
import { COLLECTION_FIELDS } from '../../lib/collections.js';
import { ConflictError, ForbiddenError, ValidationError } from './errors.js';
import {
  BOOT_STYLES,
  attributesField,
  boolField,
  enumField,
  intField,
  invalid,
  nameField,
  nullableTextField,
  parseAttributes,
  parseIp,
  parseRelease,
  parseText,
  parseUrl,
  quote,
  readOnly,
  refField,
  refListField,
  stringListField,
  textField,
  uidSchema,
  type BootStyle,
  type Field,
  type FieldContext,
  type Fields,
  type JsonSchema,
} from './fields.js';

// -----------------------------------------------------------------------------------------------------
// Public object shapes (what the API returns).

export interface AttribGroup {
  uid: string;
  name: string;
  description: string;
  attributes: Record<string, string>;
  /** Listing order of the groups (lower first); a node's own `groups` order decides inheritance. */
  priority: number;
}

export interface Net {
  uid: string;
  name: string;
  /** Node addresses are handed out from `first` to `last`. */
  first: string;
  last: string;
  prefix: number;
  netmask: string;
  network: string;
  gateway: string | null;
  /** dhcpd hands the free addresses of first..last to MACs not in the database. */
  dynamic: boolean;
}

/** An uploaded boot file (kernel or initramfs). */
export interface BootFile {
  filename: string;
  size: number;
  /** `sha256:<hex>`. */
  checksum: string;
  uploaded_at: string;
}

export interface BootConfig {
  uid: string;
  name: string;
  description: string;
  kernel: BootFile | null;
  initramfs: BootFile | null;
  cmdline: string;
  release: string | null;
  boot_style: BootStyle;
  /** Image name, or null. */
  image: string | null;
  frozen: boolean;
}

export interface Image {
  uid: string;
  name: string;
  description: string;
  size: number;
  /** `sha256:<hex>` of the uploaded content, or null before an upload. */
  checksum: string | null;
  frozen: boolean;
}

export const PACKAGE_MANAGERS = ['apt', 'dnf', 'yum'] as const;
export type PackageManager = (typeof PACKAGE_MANAGERS)[number];

export interface Distro {
  uid: string;
  name: string;
  /** null: decided when an image is created. */
  package_manager: PackageManager | null;
  release: string | null;
  /** Repo names, in order. */
  repos: string[];
}

export interface Repo {
  uid: string;
  name: string;
  urls: string[];
  keys: string[];
  iso: string | null;
  description: string;
}

/** Writable fields of each collection as a client sends them (everything optional except `name` on create). */
export type Writable<T, ReadOnlyKeys extends keyof T = never> = Partial<Omit<T, 'uid' | ReadOnlyKeys>>;

export type AttribGroupInput = Omit<Writable<AttribGroup>, 'attributes'> & { attributes?: Record<string, string | null> };
export type NetInput = Omit<Writable<Net, 'network' | 'netmask'>, 'last'> & { last?: string | null };
export type BootConfigInput = Writable<BootConfig, 'kernel' | 'initramfs'>;
export type ImageInput = Writable<Image, 'size' | 'checksum'>;
export type DistroInput = Writable<Distro>;
export type RepoInput = Writable<Repo>;

export interface CollectionTypes {
  attribs: AttribGroup;
  nets: Net;
  bootconfigs: BootConfig;
  images: Image;
  distros: Distro;
  repos: Repo;
}

export interface CollectionInputs {
  attribs: AttribGroupInput;
  nets: NetInput;
  bootconfigs: BootConfigInput;
  images: ImageInput;
  distros: DistroInput;
  repos: RepoInput;
}

export type CollectionName = keyof CollectionTypes;

// -----------------------------------------------------------------------------------------------------
// Specs.

/** A stored record: `uid` plus every field in stored form (uids for references, numbers for booleans are decoded). */
export type StoredRecord = Record<string, unknown> & { uid: string };

/** What cross-record rules may look at. */
export interface RecordContext extends FieldContext {
  /** Every stored record of the same collection except the one being written. */
  others(): StoredRecord[];
  /** Every node holding an address: its name and IP. */
  nodeAddresses(): Array<{ name: string; ip: string }>;
  /** The uid stored as the default distro, if any. */
  defaultDistro(): string | undefined;
}

export interface CollectionSpec {
  kind: CollectionName | 'nodes';
  /** Path segment of one object and the word in messages: `bootconfig NAME is frozen`. */
  singular: string;
  table: string;
  fields: Fields;
  /** Shown fields computed from the record. */
  derived?: Readonly<Record<string, { schema: JsonSchema; compute(record: StoredRecord): unknown }>>;
  /** Show derived fields before the stored ones (a node's name first). */
  derivedFirst?: boolean;
  /** Has a `frozen` field that blocks every other change and deletion. */
  freezable: boolean;
  /** Changes are relevant to dhcpd.conf. */
  affectsDhcp: boolean;
  /** Listing order: stored field names. */
  orderBy: readonly string[];
  /** Fills defaults and checks rules across fields and records; may modify `record`. */
  complete?(record: StoredRecord, previous: StoredRecord | undefined, ctx: RecordContext): void;
  /** Refuses a deletion (throws) when other data still needs the object. */
  beforeRemove?(record: StoredRecord, ctx: RecordContext): void;
}

const ipSchema: JsonSchema = { type: 'string', maxLength: 15, description: 'IPv4 address' };

const attribsSpec: CollectionSpec = {
  kind: 'attribs',
  singular: COLLECTION_FIELDS.attribs.singular,
  table: 'attribs',
  fields: {
    name: nameField('group name; DefaultAttribs is the global default'),
    description: textField(1024, 'free text'),
    attributes: attributesField(),
    priority: intField(-1_000_000, 1_000_000, 0, 'listing order (lower first)'),
  },
  freezable: false,
  affectsDhcp: false,
  orderBy: ['priority', 'name'],
};

const netsSpec: CollectionSpec = {
  kind: 'nets',
  singular: COLLECTION_FIELDS.nets.singular,
  table: 'nets',
  fields: {
    name: nameField(),
    first: { storage: 'text', writable: true, required: true, initial: () => '', schema: { ...ipSchema, description: 'first node address' }, parse: (v, _c, f) => parseIp(v, f) },
    last: {
      storage: 'text',
      writable: true,
      initial: () => null,
      schema: { ...ipSchema, description: 'last node address' },
      writeSchema: { type: ['string', 'null'], maxLength: 15, description: 'last node address (default: the last of the subnet)' },
      parse: (v, _c, f) => (v === null ? null : parseIp(v, f)),
    },
    prefix: { ...intField(8, 30, 24, 'prefix length'), required: true },
    gateway: nullableTextField(15, 'default gateway handed to nodes, or null', (v, f) => parseIp(v, f)),
    dynamic: boolField('hand the free addresses of first..last to MACs not in the database'),
  },
  derived: {
    network: { schema: ipSchema, compute: (r) => intToIp(networkOf(r.first as string, r.prefix as number)) },
    netmask: { schema: ipSchema, compute: (r) => prefixToNetmask(r.prefix as number) },
  },
  freezable: false,
  affectsDhcp: true,
  orderBy: ['name'],
  complete: completeNet,
  beforeRemove(record, ctx) {
    const held = nodesInRange(ctx, ipToInt(record.first as string), ipToInt(record.last as string));
    if (held.length > 0) {
      throw new ConflictError(`net ${record.name} still holds the addresses of ${listNames(held)}; move or delete those nodes first`);
    }
  },
};

const bootFileSchema: JsonSchema = {
  type: ['object', 'null'],
  properties: {
    filename: { type: 'string' },
    size: { type: 'integer' },
    checksum: { type: 'string' },
    uploaded_at: { type: 'string', format: 'date-time' },
  },
  description: 'uploaded file (PUT /bootconfig/{id}/kernel or /initramfs), or null',
};

const bootconfigsSpec: CollectionSpec = {
  kind: 'bootconfigs',
  singular: COLLECTION_FIELDS.bootconfigs.singular,
  table: 'bootconfigs',
  fields: {
    name: nameField(),
    description: textField(1024, 'free text'),
    kernel: readOnly(bootFileSchema, 'json', () => null),
    initramfs: readOnly(bootFileSchema, 'json', () => null),
    cmdline: {
      ...textField(2048, 'kernel command line'),
      parse: (v, _c, f) => {
        if (typeof v !== 'string') throw invalid(f, 'must be a string');
        const check = isSafeCmdline(v);
        if (check !== true) throw invalid(f, `invalid command line: ${check}`);
        return v;
      },
    },
    release: nullableTextField(128, 'kernel release (set from the uploaded kernel)', (v, f) => parseRelease(v, f)),
    boot_style: enumField(BOOT_STYLES, 'rwram', 'how nodes boot with it'),
    image: refField('images', 'image', 'image name (or uid when writing), or null'),
    frozen: boolField('refuses every change and deletion until set to false'),
  },
  freezable: true,
  affectsDhcp: false,
  orderBy: ['name'],
};

const imagesSpec: CollectionSpec = {
  kind: 'images',
  singular: COLLECTION_FIELDS.images.singular,
  table: 'images',
  fields: {
    name: nameField(),
    description: textField(1024, 'free text'),
    size: readOnly({ type: 'integer', description: 'bytes of the uploaded content' }, 'int', () => 0),
    checksum: readOnly({ type: ['string', 'null'], description: 'sha256:<hex> of the uploaded content' }, 'text', () => null),
    frozen: boolField('refuses every change and deletion until set to false'),
  },
  freezable: true,
  affectsDhcp: false,
  orderBy: ['name'],
};

const distrosSpec: CollectionSpec = {
  kind: 'distros',
  singular: COLLECTION_FIELDS.distros.singular,
  table: 'distros',
  fields: {
    name: nameField(),
    package_manager: enumField(PACKAGE_MANAGERS, null, 'apt, dnf or yum; null: decided at image creation'),
    release: nullableTextField(128, 'release ($releasever), or null', (v, f) => parseRelease(v, f)),
    repos: refListField('repos', 'repo', 'repo names, in order'),
  },
  freezable: false,
  affectsDhcp: false,
  orderBy: ['name'],
  beforeRemove(record, ctx) {
    if (ctx.defaultDistro() === record.uid) {
      throw new ConflictError(`distro ${record.name} is the default distro; choose another default first`);
    }
  },
};

// An ISO is named by a path on the head node (or a URL): one printable token without shell syntax.
const ISO_RE = /^[\x21-\x7e]{1,4096}$/;
const ISO_FORBIDDEN = /["'`;{}\\<>|$]/;

const reposSpec: CollectionSpec = {
  kind: 'repos',
  singular: COLLECTION_FIELDS.repos.singular,
  table: 'repos',
  fields: {
    name: nameField(),
    urls: stringListField(64, { type: 'string', maxLength: 2048 }, parseUrl, 'package repository URLs ($releasever, $basearch allowed)'),
    keys: stringListField(64, { type: 'string', maxLength: 2048 }, parseUrl, 'signing key URLs'),
    iso: nullableTextField(4096, 'ISO image path or URL, or null', (v, f) => {
      const text = parseText(v, f, 4096);
      if (!ISO_RE.test(text) || ISO_FORBIDDEN.test(text)) throw invalid(f, `invalid ISO location ${quote(text)}: one path or URL without spaces or quotes`);
      return text;
    }),
    description: textField(1024, 'free text'),
  },
  freezable: false,
  affectsDhcp: false,
  orderBy: ['name'],
};

export const COLLECTIONS: Readonly<Record<CollectionName, CollectionSpec>> = {
  attribs: attribsSpec,
  nets: netsSpec,
  bootconfigs: bootconfigsSpec,
  images: imagesSpec,
  distros: distrosSpec,
  repos: reposSpec,
};

export const COLLECTION_NAMES = Object.keys(COLLECTIONS) as CollectionName[];

// The global default attribute group's name is shared with the admin tools.
export { DEFAULT_ATTRIBS } from '../../lib/attribs.js';

// -----------------------------------------------------------------------------------------------------
// Nets.

function completeNet(record: StoredRecord, previous: StoredRecord | undefined, ctx: RecordContext): void {
  const prefix = record.prefix as number;
  const first = ipToInt(record.first as string);
  const network = networkOf(first, prefix);
  const broadcast = broadcastOf(first, prefix);
  const subnet = `${intToIp(network)}/${prefix}`;
  const inSubnet = (n: number) => networkOf(n, prefix) === network;
  if (first === network || first === broadcast) {
    throw invalid('first', `${record.first} is the ${first === network ? 'network' : 'broadcast'} address of ${subnet}`);
  }
  if (record.last === null || record.last === undefined) record.last = intToIp(broadcast - 1);
  const last = ipToInt(record.last as string);
  if (!inSubnet(last)) throw invalid('last', `${record.last} is outside ${subnet}`);
  if (last === broadcast) throw invalid('last', `${record.last} is the broadcast address of ${subnet}`);
  if (last < first) throw invalid('last', `${record.last} comes before first ${record.first}`);
  if (record.dynamic === true && last - first + 1 > MAX_DYNAMIC_ADDRESSES) {
    throw invalid('last', `the dynamic node range ${record.first}-${record.last} holds ${last - first + 1} addresses; dhcpd loads at most ${MAX_DYNAMIC_ADDRESSES} quickly`);
  }

  if (record.gateway !== null) {
    const gw = ipToInt(record.gateway as string);
    if (!inSubnet(gw) || gw === network || gw === broadcast) throw invalid('gateway', `${record.gateway} is not a host address of ${subnet}`);
    if (gw >= first && gw <= last) throw invalid('gateway', `${record.gateway} lies in the node range ${record.first}-${record.last}`);
  }
  for (const other of ctx.others()) {
    const oPrefix = other.prefix as number;
    const oNetwork = networkOf(other.first as string, oPrefix);
    const oBroadcast = broadcastOf(other.first as string, oPrefix);
    // One net per subnet: dhcpd.conf gets one subnet declaration for each.
    if (network <= oBroadcast && oNetwork <= broadcast) {
      const how = oNetwork === network && oPrefix === prefix ? 'is the subnet' : 'overlaps the subnet';
      throw new ConflictError(`net ${record.name as string}: ${subnet} ${how} ${intToIp(oNetwork)}/${oPrefix} of net ${other.name as string}; one net per subnet`);
    }
  }

  // Nodes addressed from the old range must still be inside a net.
  if (previous) {
    const ranges = [{ first, last }, ...ctx.others().map((o) => ({ first: ipToInt(o.first as string), last: ipToInt(o.last as string) }))];
    const oldFirst = ipToInt(previous.first as string);
    const oldLast = ipToInt(previous.last as string);
    const stranded = ctx
      .nodeAddresses()
      .filter((n) => {
        const ip = ipToInt(n.ip);
        return ip >= oldFirst && ip <= oldLast && !ranges.some((r) => ip >= r.first && ip <= r.last);
      })
      .map((n) => n.name);
    if (stranded.length > 0) {
      throw new ConflictError(`net ${record.name}: the new range would leave ${listNames(stranded)} outside every net`);
    }
  }
}

function nodesInRange(ctx: RecordContext, first: number, last: number): string[] {
  return ctx
    .nodeAddresses()
    .filter((n) => {
      const ip = ipToInt(n.ip);
      return ip >= first && ip <= last;
    })
    .map((n) => n.name);
}

/** `n0, n1, n2 and 7 more`. */
export function listNames(names: readonly string[], max = 5): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

// -----------------------------------------------------------------------------------------------------
// Building, merging and showing records.

function rejectUnknown(spec: CollectionSpec, input: Record<string, unknown>): void {
  for (const key of Object.keys(input)) {
    const field = spec.fields[key];
    if (!field) throw new ValidationError(`unknown field ${quote(key)} for ${spec.singular}`);
    if (!field.writable) throw new ValidationError(`${key}: read-only field of ${spec.singular}`);
  }
}

function asObject(input: unknown): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ValidationError('body must be a JSON object');
  return input as Record<string, unknown>;
}

/**
 * The stored record for a create (`previous` undefined) or a replace (PUT): every writable field from
 * `input` or its initial value; read-only fields keep their stored values.
 */
export function buildRecord(spec: CollectionSpec, uid: string, rawInput: unknown, previous: StoredRecord | undefined, ctx: RecordContext): StoredRecord {
  const input = asObject(rawInput);
  rejectUnknown(spec, input);
  const record: StoredRecord = { uid };
  for (const [name, field] of Object.entries(spec.fields)) {
    if (!field.writable) {
      record[name] = previous ? previous[name] : field.initial();
      continue;
    }
    const value = input[name];
    if (value === undefined) {
      if (field.required) throw invalid(name, 'required');
      record[name] = previous && field.keepOnReplace ? previous[name] : field.initial();
    } else {
      record[name] = field.parse ? field.parse(value, ctx, name) : value;
    }
  }
  spec.complete?.(record, previous, ctx);
  return record;
}

/** The stored record after a PATCH: given fields replace, attribute maps merge (null deletes a key). */
export function mergeRecord(spec: CollectionSpec, previous: StoredRecord, rawPatch: unknown, ctx: RecordContext): StoredRecord {
  const patch = asObject(rawPatch);
  rejectUnknown(spec, patch);
  const record: StoredRecord = { ...previous };
  for (const [name, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const field = spec.fields[name] as Field;
    if (field.mergeMap) {
      const changes = parseAttributes(value, name, true);
      const merged: Record<string, string> = { ...(previous[name] as Record<string, string>) };
      for (const [k, v] of Object.entries(changes)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      record[name] = merged;
    } else {
      record[name] = field.parse ? field.parse(value, ctx, name) : value;
    }
  }
  spec.complete?.(record, previous, ctx);
  return record;
}

/** Throws ForbiddenError when a frozen object would change; `patch` null means a replace or deletion. */
export function checkFrozen(spec: CollectionSpec, previous: StoredRecord, patch: Record<string, unknown> | null): void {
  if (!spec.freezable || previous.frozen !== true) return;
  if (patch !== null) {
    const keys = Object.keys(patch).filter((k) => patch[k] !== undefined);
    if (keys.length === 1 && keys[0] === 'frozen') return;
  }
  throw new ForbiddenError(`${spec.singular} ${previous.name} is frozen; PATCH {"frozen": false} first`);
}

/** The shown object: uid, fields (references by name), derived fields. */
export function showRecord(spec: CollectionSpec, record: StoredRecord, ctx: FieldContext): Record<string, unknown> {
  const out: Record<string, unknown> = { uid: record.uid };
  const derived = Object.entries(spec.derived ?? {});
  if (spec.derivedFirst) for (const [name, d] of derived) out[name] = d.compute(record);
  for (const [name, field] of Object.entries(spec.fields)) {
    const stored = record[name];
    out[name] = field.show ? field.show(stored, ctx) : stored;
  }
  if (!spec.derivedFirst) for (const [name, d] of derived) out[name] = d.compute(record);
  return out;
}

// -----------------------------------------------------------------------------------------------------
// JSON schemas (for the API and its OpenAPI document).

/** The schema of an object as shown. */
export function objectSchema(spec: CollectionSpec): JsonSchema {
  const properties: Record<string, JsonSchema> = { uid: uidSchema };
  for (const [name, field] of Object.entries(spec.fields)) properties[name] = field.schema;
  for (const [name, d] of Object.entries(spec.derived ?? {})) properties[name] = d.schema;
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
}

/** The schema of a POST/PUT (`create`) or PATCH (`patch`) body: writable fields only, nothing else. */
export function writeSchema(spec: CollectionSpec, mode: 'create' | 'patch'): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [name, field] of Object.entries(spec.fields)) {
    if (!field.writable) continue;
    properties[name] = field.writeSchema ?? field.schema;
    if (mode === 'create' && field.required) required.push(name);
  }
  const schema: JsonSchema = { type: 'object', properties, additionalProperties: false };
  if (required.length > 0) schema.required = required;
  return schema;
}
