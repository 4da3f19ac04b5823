// What a tool knows about the collection it manages: a small table per tool instead of code per tool.
import { COLLECTION_FIELDS, type CollectionFields, type FieldKind } from '../../lib/collections.js';
import { ExitError } from '../../lib/errors.js';
import { compareNames } from '../../lib/noderange.js';
import { clip, type Assignment } from './args.js';
import type { Json, JsonObject } from './format.js';

/**
 * How a `key=value` argument becomes a JSON field (the kinds the API declares in lib/collections.ts):
 * `string` as given; `nullable` as given, empty means none (`power_uri=`); `int` a whole number; `bool`
 * true/false (yes/no, on/off, 1/0); `list` split at commas (`repos=a,b`); `map` a JSON object
 * (`attributes=@attrs.json`); `upload` a local file sent through the API's upload route
 * (`kernel=@/boot/vmlinuz-...`).
 */
export type FieldType = FieldKind | 'upload';

export interface CollectionSpec {
  /** API collection path, e.g. `bootconfigs` (`GET /bootconfigs`). */
  plural: string;
  /** API object path, e.g. `bootconfig` (`GET /bootconfig/:id`). */
  singular: string;
  /** Heading of plain listings, e.g. `Boot Configs`. */
  title: string;
  /** In messages: `boot config`, `boot configs`. */
  noun: string;
  nouns: string;
  /** Fields with a known type (from the API's table); other keys are sent as strings and the API judges them. */
  fields: Readonly<Record<string, FieldType>>;
  /** Fields shown by `ls -l` (`-L` shows all). */
  long: readonly string[];
  /** `-i` is a node range resolved by the API (`GET /nodes?ids=`). */
  nodeRange?: boolean;
  /** Listing order. */
  order: 'index' | 'name';
}

/** An object as the API returns it. */
export type ApiObject = JsonObject & { uid?: Json; name?: Json };

/** Name of an object for headings and messages (its uid when it has no name). */
export function labelOf(obj: ApiObject): string {
  if (typeof obj.name === 'string' && obj.name !== '') return obj.name;
  if (typeof obj.uid === 'string') return obj.uid;
  return '?';
}

/** The id to address an object by in `/singular/:id`: its uid when known, else its name. */
export function idOf(obj: ApiObject): string {
  if (typeof obj.uid === 'string' && obj.uid !== '') return obj.uid;
  return labelOf(obj);
}

/** Objects in listing order: nodes by index, the rest by name (n2 before n10). */
export function sortObjects(spec: CollectionSpec, objects: ApiObject[]): ApiObject[] {
  const copy = [...objects];
  if (spec.order === 'index') {
    copy.sort((a, b) => {
      const ia = typeof a.index === 'number' ? a.index : Number.MAX_SAFE_INTEGER;
      const ib = typeof b.index === 'number' ? b.index : Number.MAX_SAFE_INTEGER;
      return ia - ib || compareNames(labelOf(a), labelOf(b));
    });
  } else {
    copy.sort((a, b) => compareNames(labelOf(a), labelOf(b)));
  }
  return copy;
}

/** A list answer as an array, whether the API sends an array or an object keyed by uid. */
export function asObjectList(data: unknown): ApiObject[] {
  if (Array.isArray(data)) return data.filter(isObject) as ApiObject[];
  if (isObject(data)) {
    return Object.entries(data).map(([uid, v]) => (isObject(v) ? ({ uid, ...v } as ApiObject) : ({ uid } as ApiObject)));
  }
  return [];
}

export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const TRUE_WORDS = new Set(['true', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', '0']);

/** Converts one `key=value` (file values already read) to its JSON value by the field's type. */
export function coerceValue(spec: CollectionSpec, key: string, value: string): Json {
  const type = spec.fields[key] ?? 'string';
  switch (type) {
    case 'int': {
      if (!/^-?\d{1,15}$/.test(value.trim())) throw new ExitError(`${key} must be a whole number, not "${clip(value)}"`);
      return Number(value.trim());
    }
    case 'bool': {
      const v = value.trim().toLowerCase();
      if (TRUE_WORDS.has(v)) return true;
      if (FALSE_WORDS.has(v)) return false;
      throw new ExitError(`${key} must be true or false, not "${clip(value)}"`);
    }
    case 'list':
      return value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'map': {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        throw new ExitError(`${key} must be a JSON object such as {"a":"1"}, e.g. ${key}=@file.json`);
      }
      if (!isObject(parsed)) throw new ExitError(`${key} must be a JSON object such as {"a":"1"}`);
      return parsed;
    }
    case 'nullable':
      return value === '' ? null : value;
    default:
      return value;
  }
}

/** Builds a request body from assignments whose values are final text (no `@` left). */
export function bodyOf(spec: CollectionSpec, assignments: readonly Assignment[]): JsonObject {
  const body: JsonObject = {};
  for (const a of assignments) body[a.key] = coerceValue(spec, a.key, a.value);
  return body;
}

// ---------------------------------------------------------------------------------------------------
// The collections

/** Paths and field types of a collection from the API's table; uploads become `upload` fields. */
function fromApi(api: CollectionFields): Pick<CollectionSpec, 'plural' | 'singular' | 'fields'> {
  const fields: Record<string, FieldType> = { ...api.writable };
  for (const name of api.uploads) fields[name] = 'upload';
  return { plural: api.plural, singular: api.singular, fields };
}

export const NODES: CollectionSpec = {
  ...fromApi(COLLECTION_FIELDS.nodes),
  title: 'Nodes',
  noun: 'node',
  nouns: 'nodes',
  long: ['attributes', 'groups', 'index', 'ip', 'mac', 'name', 'power_uri', 'type'],
  nodeRange: true,
  order: 'index',
};

export const ATTRIBS: CollectionSpec = {
  ...fromApi(COLLECTION_FIELDS.attribs),
  title: 'Attribute Groups',
  noun: 'attribute group',
  nouns: 'attribute groups',
  long: ['attributes', 'description', 'name', 'priority'],
  order: 'name',
};

export const BOOTCONFIGS: CollectionSpec = {
  ...fromApi(COLLECTION_FIELDS.bootconfigs),
  title: 'Boot Configs',
  noun: 'boot config',
  nouns: 'boot configs',
  long: ['boot_style', 'cmdline', 'description', 'frozen', 'image', 'initramfs', 'kernel', 'name', 'release'],
  order: 'name',
};

export const IMAGES: CollectionSpec = {
  ...fromApi(COLLECTION_FIELDS.images),
  title: 'Images',
  noun: 'image',
  nouns: 'images',
  long: ['checksum', 'description', 'frozen', 'name', 'size'],
  order: 'name',
};

export const DISTROS: CollectionSpec = {
  ...fromApi(COLLECTION_FIELDS.distros),
  title: 'Distros',
  noun: 'distro',
  nouns: 'distros',
  long: ['name', 'package_manager', 'release', 'repos'],
  order: 'name',
};

export const REPOS: CollectionSpec = {
  ...fromApi(COLLECTION_FIELDS.repos),
  title: 'Repos',
  noun: 'repo',
  nouns: 'repos',
  long: ['description', 'iso', 'keys', 'name', 'urls'],
  order: 'name',
};

export const NETS: CollectionSpec = {
  ...fromApi(COLLECTION_FIELDS.nets),
  title: 'Networks',
  noun: 'network',
  nouns: 'networks',
  long: ['dynamic', 'first', 'gateway', 'last', 'name', 'netmask', 'network', 'prefix'],
  order: 'name',
};
