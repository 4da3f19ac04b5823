// Load every production dependency the way the appliance will, and open an in-memory SQLite
// database, so a broken native addon or an over-eager trim fails the image build, not a start.
// Copy this file into the package root before running it: bare imports resolve from its location.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const require = createRequire(import.meta.url);
const names = Object.keys(pkg.dependencies ?? {});
const failures = [];

for (const name of names) {
  try {
    await import(name);
  } catch (err) {
    failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

if (names.includes('better-sqlite3')) {
  try {
    const Database = require('better-sqlite3');
    const db = new Database(':memory:');
    db.prepare('select sqlite_version() as v').get();
    db.close();
  } catch (err) {
    failures.push(`better-sqlite3 (open): ${err instanceof Error ? err.message : String(err)}`);
  }
}

if (failures.length > 0) {
  for (const line of failures) console.error(`ERROR: ${line}`);
  process.exit(1);
}
console.log(`runtime check: ${names.length} dependencies load on node ${process.version}`);
