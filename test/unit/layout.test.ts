// The layout the folders promise (docs/ARCHITECTURE.md, "Where things live"): the appliance, the host
// CLI, the admin tools and node-image making meet only in src/lib, and the appliance's own folders
// import each other without cycles.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Every `.ts` file under `dir`, absolute. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

// Static imports and re-exports (`import ... from '...'`, `export ... from '...'`, `import '...'`) and
// literal dynamic imports (`await import('./x.js')`).
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

interface Edge {
  from: string;
  to: string;
}

/** Imports of the project's own files, as paths relative to src/ (`appliance/db/store.ts`). */
function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec === undefined || !spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      out.push({ from: relative(SRC, file).split(sep).join('/'), to: relative(SRC, target).split(sep).join('/') });
    }
  }
  return out;
}

const side = (path: string): string => path.split('/')[0] ?? '';

test('the sides meet only in src/lib: no imports between appliance and host, tools or images, and lib imports no side', (t) => {
  const all = edges();
  t.true(all.length > 100, 'the import scan found the project imports');
  const wrong = all.filter(({ from, to }) => {
    const a = side(from);
    const b = side(to);
    if (a === b || b === 'lib') return false;
    if (a === 'lib') return true;
    return a === 'appliance' || b === 'appliance';
  });
  t.deepEqual(wrong.map((e) => `${e.from} -> ${e.to}`), []);
});

test('no import leaves src/', (t) => {
  const outside = edges().filter((e) => e.to.startsWith('..'));
  t.deepEqual(outside.map((e) => `${e.from} -> ${e.to}`), []);
});

test("the appliance's folders import each other without cycles", (t) => {
  // Folder graph: appliance/<folder>/... -> appliance/<folder>/...; files directly in src/appliance
  // (the composition root, the environment, the storage paths) are outside the graph.
  const folderOf = (path: string): string | undefined => {
    const parts = path.split('/');
    return parts[0] === 'appliance' && parts.length > 2 ? parts[1] : undefined;
  };
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of edges()) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === undefined || b === undefined || a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
  }
  const cycles: string[] = [];
  const visit = (node: string, path: string[]): void => {
    const at = path.indexOf(node);
    if (at >= 0) {
      cycles.push([...path.slice(at), node].join(' -> '));
      return;
    }
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
  };
  for (const node of graph.keys()) visit(node, []);
  t.deepEqual([...new Set(cycles)], []);
});
