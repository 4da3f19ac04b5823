// The API's collections as both sides see them: the path names and, for every field a client may write,
// how its value travels in JSON. The server's field descriptors (appliance/db) check and store the values
// and a unit test holds them to this table; the admin tools turn `key=value` words into JSON by it.

/**
 * How a written value travels: `string` as given; `nullable` a string or null; `int` a whole number;
 * `bool` true/false; `list` an array of strings; `map` an object of strings.
 */
export type FieldKind = 'string' | 'nullable' | 'int' | 'bool' | 'list' | 'map';

export interface CollectionFields {
  /** Collection path, e.g. `bootconfigs` (`GET /bootconfigs`). */
  plural: string;
  /** Object path, e.g. `bootconfig` (`GET /bootconfig/:id`). */
  singular: string;
  /** Every field a client may write in POST/PUT/PATCH bodies. */
  writable: Readonly<Record<string, FieldKind>>;
  /** Files sent through `PUT /<singular>/:id/<field>` (the server fills the field from the upload). */
  uploads: readonly string[];
}

export const COLLECTION_FIELDS = {
  nodes: {
    plural: 'nodes',
    singular: 'node',
    writable: { index: 'int', mac: 'nullable', macs: 'list', ip: 'nullable', type: 'string', groups: 'list', attributes: 'map', power_uri: 'nullable' },
    uploads: [],
  },
  attribs: {
    plural: 'attribs',
    singular: 'attrib',
    writable: { name: 'string', description: 'string', attributes: 'map', priority: 'int' },
    uploads: [],
  },
  nets: {
    plural: 'nets',
    singular: 'net',
    writable: { name: 'string', first: 'string', last: 'nullable', prefix: 'int', gateway: 'nullable', dynamic: 'bool' },
    uploads: [],
  },
  bootconfigs: {
    plural: 'bootconfigs',
    singular: 'bootconfig',
    writable: { name: 'string', description: 'string', cmdline: 'string', release: 'nullable', boot_style: 'string', image: 'nullable', frozen: 'bool' },
    uploads: ['kernel', 'initramfs'],
  },
  images: {
    plural: 'images',
    singular: 'image',
    writable: { name: 'string', description: 'string', frozen: 'bool' },
    uploads: ['content'],
  },
  distros: {
    plural: 'distros',
    singular: 'distro',
    writable: { name: 'string', package_manager: 'nullable', release: 'nullable', repos: 'list' },
    uploads: [],
  },
  repos: {
    plural: 'repos',
    singular: 'repo',
    writable: { name: 'string', urls: 'list', keys: 'list', iso: 'nullable', description: 'string' },
    uploads: [],
  },
} as const satisfies Record<string, CollectionFields>;

export type CollectionKind = keyof typeof COLLECTION_FIELDS;
