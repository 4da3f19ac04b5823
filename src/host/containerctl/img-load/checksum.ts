import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';

export type ChecksumParse = { ok: true; hex: string } | { ok: false; problem: string };

/**
 * Reads the expected SHA-256 from a `.sha256` file for the archive named `fileName`. Accepts
 * `HEX  NAME` (sha256sum, also `HEX *NAME`), a bare `HEX`, and BSD `SHA256 (NAME) = HEX`; with several
 * lines, the one naming this file (or the only one) wins.
 */
export function parseChecksumFile(text: string, fileName: string): ChecksumParse {
  const wanted = basename(fileName);
  const found: { hex: string; name: string | undefined; line: number }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    let m = /^([0-9a-fA-F]{64})(?:\s+\*?(.+))?$/.exec(line);
    if (m) {
      found.push({ hex: m[1]!.toLowerCase(), name: m[2]?.trim(), line: i + 1 });
      continue;
    }
    m = /^SHA256\s*\((.+)\)\s*=\s*([0-9a-fA-F]{64})$/.exec(line);
    if (m) {
      found.push({ hex: m[2]!.toLowerCase(), name: m[1]!.trim(), line: i + 1 });
      continue;
    }
    return { ok: false, problem: `line ${i + 1} is not a SHA-256 checksum ("HEX  NAME" or "HEX")` };
  }
  if (found.length === 0) return { ok: false, problem: 'no SHA-256 checksum in it' };
  if (found.length === 1) return { ok: true, hex: found[0]!.hex };
  const named = found.filter((f) => f.name !== undefined && basename(f.name) === wanted);
  if (named.length === 1) return { ok: true, hex: named[0]!.hex };
  return { ok: false, problem: `${found.length} checksums and ${named.length === 0 ? 'none' : 'several'} for ${wanted}` };
}

/** SHA-256 of a file as lowercase hex, reporting bytes read. */
export async function sha256File(path: string, onProgress?: (bytes: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    onProgress?.(bytes);
  }
  return hash.digest('hex');
}
