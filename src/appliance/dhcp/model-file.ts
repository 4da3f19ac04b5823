// The hand-over between the API (which owns the cluster model) and the supervisor's dhcpd service:
// after a commit that affects DHCP the API writes the model here, then asks for `POST /reload/dhcpd`.
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-write.js';
import { readTextIfExists } from '../../lib/optional-file.js';
import { DhcpModelError, validateDhcpModel, type DhcpModel } from './model.js';

export const DHCP_MODEL_FILE = 'dhcp-model.json';

/** Where the model lives: `STORAGE/etc/generated/dhcp-model.json` (both StoragePaths and ServicePaths fit). */
export interface DhcpModelPaths {
  generatedDir: string;
}

export function dhcpModelPath(paths: DhcpModelPaths): string {
  return path.join(paths.generatedDir, DHCP_MODEL_FILE);
}

/**
 * Validates the model and replaces the file atomically (mode 0644): readers see the old or the new
 * model, never a mix. Throws DhcpModelError, before writing anything, for a value dhcpd must not see.
 * Example: await writeDhcpModel(storagePaths(), {version: 7, nets, hosts}).
 */
export async function writeDhcpModel(paths: DhcpModelPaths, model: DhcpModel): Promise<void> {
  const checked = validateDhcpModel(model);
  // One host per line: a 10,000-node model stays readable and diffable without being pretty-printed.
  const body = [
    `{"version":${checked.version},`,
    ...(checked.domain !== undefined ? [`"domain":${JSON.stringify(checked.domain)},`] : []),
    `"nets":${jsonLines(checked.nets)},`,
    `"hosts":${jsonLines(checked.hosts)}}`,
    '',
  ].join('\n');
  await mkdir(paths.generatedDir, { recursive: true });
  await writeFileAtomic(dhcpModelPath(paths), body, { mode: 0o644 });
}

/** Reads and validates the model; null when the API has not written one yet. Throws DhcpModelError when it is unusable. */
export async function readDhcpModel(paths: DhcpModelPaths): Promise<DhcpModel | null> {
  const file = dhcpModelPath(paths);
  const text = await readTextIfExists(file);
  if (text === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new DhcpModelError([`not JSON (${err instanceof Error ? err.message : String(err)})`], file);
  }
  try {
    return validateDhcpModel(parsed);
  } catch (err) {
    if (err instanceof DhcpModelError) throw new DhcpModelError(err.problems, file);
    throw err;
  }
}

function jsonLines(items: readonly object[]): string {
  return items.length === 0 ? '[]' : `[\n${items.map((item) => JSON.stringify(item)).join(',\n')}\n]`;
}
