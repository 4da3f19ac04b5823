import test from 'ava';
import { COLLECTIONS, type CollectionSpec } from '../../../src/appliance/db/collections.js';
import type { Field } from '../../../src/appliance/db/fields.js';
import { NODE_SPEC } from '../../../src/appliance/db/nodes.js';
import { COLLECTION_FIELDS, type FieldKind } from '../../../src/lib/collections.js';

/** How the server's descriptor takes a written value, in the shared table's words. */
function kindOf(field: Field): FieldKind | string {
  const type = (field.writeSchema ?? field.schema).type;
  const types = Array.isArray(type) ? type : [type];
  if (types.includes('null')) return types.length === 2 && types.includes('string') ? 'nullable' : `nullable ${types.join('|')}`;
  return { string: 'string', integer: 'int', boolean: 'bool', array: 'list', object: 'map' }[type as string] ?? String(type);
}

const specs: CollectionSpec[] = [NODE_SPEC, ...Object.values(COLLECTIONS)];

test('the shared collection table names every collection the server has, with the same paths', (t) => {
  t.deepEqual(specs.map((s) => s.kind).sort(), Object.keys(COLLECTION_FIELDS).sort());
  for (const spec of specs) {
    const shared = COLLECTION_FIELDS[spec.kind];
    t.is(shared.plural, spec.kind);
    t.is(spec.singular, shared.singular);
  }
});

test("the shared table's writable fields and kinds are the server descriptors' (what the tools send is what the API takes)", (t) => {
  for (const spec of specs) {
    const writable = Object.fromEntries(
      Object.entries(spec.fields)
        .filter(([, f]) => f.writable)
        .map(([name, f]) => [name, kindOf(f)]),
    );
    t.deepEqual(writable, { ...COLLECTION_FIELDS[spec.kind].writable }, spec.kind);
  }
});

test('upload fields are read-only fields of the server (filled by the upload route), or routes of their own', (t) => {
  for (const spec of specs) {
    for (const name of COLLECTION_FIELDS[spec.kind].uploads) {
      const field = spec.fields[name];
      if (field) t.false(field.writable, `${spec.kind}.${name}`);
    }
  }
  t.deepEqual([...COLLECTION_FIELDS.bootconfigs.uploads], ['kernel', 'initramfs']);
});
