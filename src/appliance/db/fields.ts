// Field descriptors of the cluster model. One descriptor says, for one field of one collection: how it
// is stored, whether clients may write it, how a written value is checked and normalized, how the stored
// value is shown, and its JSON schema. The store (validation), every backend (encoding) and the API
// (request schemas, OpenAPI) all read the same descriptors, so the field lists exist once.
import { isSafeAttrKey, isSafeAttrValue, isSafeCmdline, isSafeName, isValidMac, normalizeMac, type Check } from '../../lib/validate.js';
import { isValidIPv4 } from '../../lib/ipv4.js';
import { ValidationError } from './errors.js';
import { parsePowerTarget, PowerUriError } from '../power/uri.js';

export type JsonSchema = Record<string, unknown>;

/** How a field is encoded in a row: text, integer, boolean (0/1) or JSON text. */
export type Storage = 'text' | 'int' | 'bool' | 'json';

/** Collections whose objects other objects refer to. */
export type RefKind = 'attribs' | 'images' | 'repos' | 'distros';

/** Lookups a field needs while checking a written value. */
export interface FieldContext {
  /** The uid of the object `id` (uid or name) of `kind`, or undefined when there is none. */
  resolve(kind: RefKind, id: string): string | undefined;
  /** The name of the object `uid` of `kind` (the uid itself when it vanished). */
  nameOf(kind: RefKind, uid: string): string;
}

export interface Field {
  storage: Storage;
  /** Row column; defaults to the field name. */
  column?: string;
  /** Clients may set it in POST/PUT/PATCH bodies. */
  writable: boolean;
  /** Must be given on create (and PUT). */
  required?: boolean;
  /** Stored value when a writable field is absent on create or replace, and the start value of read-only ones. */
  initial: () => unknown;
  /** JSON schema of the value as shown. */
  schema: JsonSchema;
  /** JSON schema of the value as written (defaults to `schema`). */
  writeSchema?: JsonSchema;
  /** Written value -> stored value; throws ValidationError naming the field. Defaults to identity. */
  parse?: (value: unknown, ctx: FieldContext, field: string) => unknown;
  /** Stored value -> shown value. Defaults to identity. */
  show?: (stored: unknown, ctx: FieldContext) => unknown;
  /** PATCH merges into the stored map instead of replacing it; a null value deletes that key. */
  mergeMap?: boolean;
  /** A PUT that leaves the field out keeps the stored value (a node's index: its identity). */
  keepOnReplace?: boolean;
  /** The field holds uid(s) of objects of another collection (shown by name). */
  ref?: { kind: RefKind; many: boolean };
}

export type Fields = Readonly<Record<string, Field>>;

/** A ValidationError for `field`: `mac: invalid MAC "zz": expected six hex pairs ...`. */
export function invalid(field: string, reason: string): ValidationError {
  return new ValidationError(`${field}: ${reason}`);
}

/** Quotes a client value for a message, clipped so a huge value cannot flood logs. */
export function quote(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

function passes(check: Check, field: string, value: unknown, what: string): void {
  if (check !== true) throw invalid(field, `invalid ${what} ${quote(value)}: ${check}`);
}

function expectString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(field, 'must be a string');
  return value;
}

export const UID_RE = /^[0-9a-f]{32}$/;
const UID_LIKE_RE = /^[0-9a-fA-F]{32}$/;

/** A printable single line: no control, format or separator characters. */
const UNPRINTABLE_RE = /[\p{C}\p{Zl}\p{Zp}]/u;

// -----------------------------------------------------------------------------------------------------
// Value checks, usable outside descriptors too.

/** An object name (`isSafeName`) that cannot be mistaken for a uid. */
export function parseName(value: unknown, field = 'name'): string {
  const name = expectString(value, field);
  passes(isSafeName(name), field, name, 'name');
  if (UID_LIKE_RE.test(name)) throw invalid(field, `invalid name ${quote(name)}: 32 hex digits would read as a uid`);
  return name;
}

/** Normalized MAC (`52:54:00:ab:cd:ef`). */
export function parseMac(value: unknown, field = 'mac'): string {
  const text = expectString(value, field);
  passes(isValidMac(text), field, text, 'MAC');
  return normalizeMac(text) as string;
}

export function parseIp(value: unknown, field = 'ip'): string {
  const text = expectString(value, field);
  passes(isValidIPv4(text), field, text, 'IP address');
  return text;
}

/** Printable single-line text of at most `max` characters. */
export function parseText(value: unknown, field: string, max: number): string {
  const text = expectString(value, field);
  if (text.length > max) throw invalid(field, `is ${text.length} characters long (limit ${max})`);
  const bad = UNPRINTABLE_RE.exec(text);
  if (bad) throw invalid(field, `contains U+${(bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`);
  return text;
}

/** An attributes map `{key: value}`; with `allowNull`, null values survive (PATCH deletions). */
export function parseAttributes(value: unknown, field = 'attributes', allowNull = false): Record<string, string | null> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(field, 'must be an object of name: value');
  const out: Record<string, string | null> = {};
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_ATTRIBUTES) throw invalid(field, `has ${entries.length} attributes (limit ${MAX_ATTRIBUTES})`);
  for (const [key, v] of entries) {
    passes(isSafeAttrKey(key), field, key, 'attribute name');
    if (v === null) {
      if (allowNull) out[key] = null;
      continue;
    }
    if (typeof v !== 'string') throw invalid(`${field}.${key}`, 'must be a string');
    // A power URI holds a password: its own (stricter) check names what is wrong, never the value.
    if (key === '_power_uri') {
      const check = powerUriCheck(v);
      if (check !== true) throw invalid(`${field}.${key}`, check);
    }
    passes(isSafeAttrValue(v), `${field}.${key}`, v, 'value');
    const reserved = RESERVED_ATTRIBUTES[key];
    if (reserved) {
      const check = reserved(v);
      if (check !== true) throw invalid(`${field}.${key}`, `invalid value ${quote(v)}: ${check}`);
    }
    out[key] = v;
  }
  return out;
}

export const MAX_ATTRIBUTES = 1000;

export const BOOT_STYLES = ['rwram', 'roram', 'iscsi', 'disked', 'live', 'next', 'sanboot'] as const;
export type BootStyle = (typeof BOOT_STYLES)[number];
export const BOOT_RW_LAYERS = ['overlayfs', 'rwtab'] as const;

const oneOf = (values: readonly string[]) => (v: string): Check =>
  values.includes(v) ? true : `expected one of ${values.join(', ')}`;

/** Reserved attributes (leading `_`) whose values the boot code interprets. */
const RESERVED_ATTRIBUTES: Record<string, (v: string) => Check> = {
  _boot_config: isSafeName,
  _boot_style: oneOf(BOOT_STYLES),
  _boot_rw_layer: oneOf(BOOT_RW_LAYERS),
  // Appended to the kernel line of the node's iPXE script: the boot path's own check, at write time.
  _cmdline: isSafeCmdline,
  // The power_uri of nodes that have none of their own (set on an attribute group for a whole rack).
  _power_uri: powerUriCheck,
};

// URLs of repos and keys end up in yum/apt configs inside images: no whitespace, quotes or shell syntax.
const URL_RE = /^(https?|ftp|file):\/\/[\x21-\x7e]+$/;
const URL_FORBIDDEN = /["'`;{}\\<>|]/;

export function parseUrl(value: unknown, field: string): string {
  const text = expectString(value, field);
  if (text.length > 2048) throw invalid(field, `is ${text.length} characters long (limit 2048)`);
  const bad = URL_FORBIDDEN.exec(text);
  if (bad) throw invalid(field, `invalid URL ${quote(text)}: contains "${bad[0]}"`);
  if (!URL_RE.test(text)) throw invalid(field, `invalid URL ${quote(text)}: expected http://, https://, ftp:// or file:// without spaces`);
  return text;
}

// Power URIs are handed to ipmitool, ssh and the like later: no whitespace or shell metacharacters.
const POWER_URI_RE = /^[a-z][a-z0-9+.-]{0,15}:\/\/[\x21-\x7e]*$/;
const POWER_URI_FORBIDDEN = /["'`;{}\\<>|&$()*?!~]/;

/**
 * A power URI the power plugins can run (`ipmi:///admin:pw@10.0.0.1`, ...): true, or why not, without
 * repeating the value (it holds a password).
 */
export function powerUriCheck(text: string): Check {
  if (text.length > 1024) return `is ${text.length} characters long (limit 1024)`;
  const bad = POWER_URI_FORBIDDEN.exec(text);
  if (bad) return `invalid power URI: contains "${bad[0]}" (write such characters in a password as %XX, e.g. %24 for $)`;
  if (!POWER_URI_RE.test(text)) return 'invalid power URI: expected SCHEME://... without spaces or control characters, e.g. ipmi:///admin:password@10.0.0.1';
  try {
    parsePowerTarget(text);
  } catch (err) {
    if (err instanceof PowerUriError) return `invalid power URI: ${err.message}`;
    throw err;
  }
  return true;
}

export function parsePowerUri(value: unknown, field = 'power_uri'): string {
  const text = expectString(value, field);
  const check = powerUriCheck(text);
  if (check !== true) throw invalid(field, check);
  return text;
}

/** Kernel releases and distro releases: `5.14.0-362.24.1.el9_3.x86_64`, `7`, `bookworm`. */
const RELEASE_RE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/;

export function parseRelease(value: unknown, field = 'release'): string {
  const text = expectString(value, field);
  if (!RELEASE_RE.test(text)) throw invalid(field, `invalid release ${quote(text)}: use letters, digits and . _ + ~ - (at most 128)`);
  return text;
}

// -----------------------------------------------------------------------------------------------------
// Descriptor builders.

const nullable = (schema: JsonSchema): JsonSchema => ({ ...schema, type: [schema.type as string, 'null'] });

/** Wraps a parse function so that null stores null. */
function orNull(parse: (value: unknown, field: string) => unknown) {
  return (value: unknown, _ctx: FieldContext, field: string): unknown => (value === null ? null : parse(value, field));
}

export const uidSchema: JsonSchema = { type: 'string', pattern: '^[0-9a-f]{32}$', description: 'object id (32 hex digits)' };

export function nameField(description = 'unique name'): Field {
  return {
    storage: 'text',
    writable: true,
    required: true,
    initial: () => '',
    schema: { type: 'string', minLength: 1, maxLength: 63, description },
    parse: (v, _c, f) => parseName(v, f),
  };
}

export function textField(max: number, description: string): Field {
  return {
    storage: 'text',
    writable: true,
    initial: () => '',
    schema: { type: 'string', maxLength: max, description },
    parse: (v, _c, f) => parseText(v, f, max),
  };
}

export function nullableTextField(max: number, description: string, parse?: (value: unknown, field: string) => string): Field {
  return {
    storage: 'text',
    writable: true,
    initial: () => null,
    schema: nullable({ type: 'string', maxLength: max, description }),
    parse: orNull(parse ?? ((v, f) => parseText(v, f, max))),
  };
}

export function boolField(description: string): Field {
  return {
    storage: 'bool',
    writable: true,
    initial: () => false,
    schema: { type: 'boolean', description },
    parse: (v, _c, f) => {
      if (typeof v !== 'boolean') throw invalid(f, 'must be true or false');
      return v;
    },
  };
}

export function intField(min: number, max: number, initial: number, description: string): Field {
  return {
    storage: 'int',
    writable: true,
    initial: () => initial,
    schema: { type: 'integer', minimum: min, maximum: max, description },
    parse: (v, _c, f) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(f, `must be an integer from ${min} to ${max}`);
      return v;
    },
  };
}

export function enumField(values: readonly string[], initial: string | null, description: string): Field {
  const schema: JsonSchema = { type: 'string', enum: [...values], description };
  return {
    storage: 'text',
    writable: true,
    initial: () => initial,
    schema: initial === null ? { type: ['string', 'null'], enum: [...values, null], description } : schema,
    parse: (v, _c, f) => {
      if (v === null && initial === null) return null;
      if (typeof v !== 'string' || !values.includes(v)) throw invalid(f, `invalid value ${quote(v)}: expected one of ${values.join(', ')}`);
      return v;
    },
  };
}

export function attributesField(description = 'attributes {name: value}'): Field {
  return {
    storage: 'json',
    writable: true,
    initial: () => ({}),
    schema: { type: 'object', additionalProperties: { type: 'string' }, description },
    writeSchema: { type: 'object', additionalProperties: { type: ['string', 'null'] }, maxProperties: MAX_ATTRIBUTES, description },
    mergeMap: true,
    parse: (v, _c, f) => parseAttributes(v, f),
  };
}

export function stringListField(max: number, itemSchema: JsonSchema, parseItem: (value: unknown, field: string) => string, description: string): Field {
  return {
    storage: 'json',
    writable: true,
    initial: () => [],
    schema: { type: 'array', items: itemSchema, maxItems: max, description },
    parse: (v, _c, f) => {
      if (!Array.isArray(v)) throw invalid(f, 'must be a list');
      if (v.length > max) throw invalid(f, `has ${v.length} entries (limit ${max})`);
      const out = v.map((item, i) => parseItem(item, `${f}[${i}]`));
      const dup = out.find((item, i) => out.indexOf(item) !== i);
      if (dup !== undefined) throw invalid(f, `lists ${quote(dup)} twice`);
      return out;
    },
  };
}

/** A reference to one object of `kind` by name or uid (stored as its uid, shown by name), or null. */
export function refField(kind: RefKind, label: string, description: string): Field {
  return {
    storage: 'text',
    column: `${kindColumn(kind)}_uid`,
    writable: true,
    initial: () => null,
    schema: { type: ['string', 'null'], description },
    ref: { kind, many: false },
    parse: (v, ctx, f) => {
      if (v === null) return null;
      const id = expectString(v, f);
      const uid = ctx.resolve(kind, id);
      if (uid === undefined) throw invalid(f, `no ${label} ${quote(id)}`);
      return uid;
    },
    show: (stored, ctx) => (stored === null ? null : ctx.nameOf(kind, stored as string)),
  };
}

/** An ordered list of references to objects of `kind` (stored as uids, shown by name). */
export function refListField(kind: RefKind, label: string, description: string): Field {
  return {
    storage: 'json',
    writable: true,
    initial: () => [],
    schema: { type: 'array', items: { type: 'string' }, maxItems: 256, description },
    ref: { kind, many: true },
    parse: (v, ctx, f) => {
      if (!Array.isArray(v)) throw invalid(f, 'must be a list of names');
      if (v.length > 256) throw invalid(f, `has ${v.length} entries (limit 256)`);
      const uids: string[] = [];
      v.forEach((item, i) => {
        const id = expectString(item, `${f}[${i}]`);
        const uid = ctx.resolve(kind, id);
        if (uid === undefined) throw invalid(f, `no ${label} ${quote(id)}`);
        if (uids.includes(uid)) throw invalid(f, `lists ${quote(id)} twice`);
        uids.push(uid);
      });
      return uids;
    },
    show: (stored, ctx) => (stored as string[]).map((uid) => ctx.nameOf(kind, uid)),
  };
}

function kindColumn(kind: RefKind): string {
  return { attribs: 'attrib', images: 'image', repos: 'repo', distros: 'distro' }[kind];
}

/** A read-only field (set by the server, e.g. from an upload). */
export function readOnly(schema: JsonSchema, storage: Storage, initial: () => unknown): Field {
  return { storage, writable: false, initial, schema };
}
