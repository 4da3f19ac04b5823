// Yum/dnf `.repo` files, for `cw-clusterctl distros import`:
//
//   [baseos]
//   name=CentOS Stream $releasever - BaseOS
//   baseurl=http://mirror.stream.centos.org/$releasever-stream/BaseOS/$basearch/os/
//           http://vault.example/$releasever/BaseOS/$basearch/os/     <- continuation line
//   gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-centosofficial
//   enabled=1
//
// INI as yum reads it: `#`/`;` comments, `key=value` (or `key: value`), indented continuation lines.
// `$releasever`/`$basearch` stay as they are: the distro's release fills them in at image build time.

export interface YumRepo {
  /** The section name, e.g. `baseos`: becomes the repo's name. */
  id: string;
  /** The `name=` line (a description), if any. */
  title?: string;
  urls: string[];
  keys: string[];
  enabled: boolean;
  /** Has `mirrorlist=` or `metalink=` (which are not URLs of the repository itself). */
  mirrored: boolean;
  line: number;
}

/** A refused file: every problem as `file:line: message`. */
export class YumRepoError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.slice(0, 5).join('; ') + (problems.length > 5 ? ` (and ${problems.length - 5} more problems)` : ''));
    this.name = 'YumRepoError';
    this.problems = problems;
  }
}

const FALSE_WORDS = new Set(['0', 'false', 'no', 'off']);

/** Parses a `.repo` file's text; throws YumRepoError listing every malformed line. */
export function parseYumRepo(text: string, fileName = 'file.repo'): YumRepo[] {
  const problems: string[] = [];
  const sections: Array<{ id: string; line: number; values: Map<string, string> }> = [];
  let lastKey: string | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    if (/^\s*([#;].*)?$/.test(raw)) return;
    const current = sections[sections.length - 1];
    if (/^\s/.test(raw)) {
      // A continuation of the previous value (yum allows one baseurl per line).
      if (current && lastKey !== undefined) {
        current.values.set(lastKey, `${current.values.get(lastKey) ?? ''}\n${raw.trim()}`);
        return;
      }
    }
    const line = raw.trim();
    const header = /^\[([^\]]*)\]$/.exec(line);
    if (header) {
      const id = (header[1] as string).trim();
      if (id === '') problems.push(`${fileName}:${lineNo}: empty section name`);
      else if (sections.some((s) => s.id === id)) problems.push(`${fileName}:${lineNo}: section [${id}] appears twice`);
      sections.push({ id, line: lineNo, values: new Map() });
      lastKey = undefined;
      return;
    }
    const eq = line.search(/[=:]/);
    if (eq <= 0) {
      problems.push(`${fileName}:${lineNo}: expected [section] or key=value, not "${clip(line)}"`);
      return;
    }
    if (!current) {
      problems.push(`${fileName}:${lineNo}: "${clip(line)}" comes before any [section]`);
      return;
    }
    lastKey = line.slice(0, eq).trim().toLowerCase();
    current.values.set(lastKey, line.slice(eq + 1).trim());
  });
  if (problems.length > 0) throw new YumRepoError(problems);

  return sections
    .filter((s) => s.id.toLowerCase() !== 'main')
    .map((s) => {
      const repo: YumRepo = {
        id: s.id,
        urls: splitList(s.values.get('baseurl')),
        keys: splitList(s.values.get('gpgkey')),
        enabled: !FALSE_WORDS.has((s.values.get('enabled') ?? '1').trim().toLowerCase()),
        mirrored: s.values.has('mirrorlist') || s.values.has('metalink'),
        line: s.line,
      };
      const title = s.values.get('name')?.replace(/\s+/g, ' ').trim();
      if (title) repo.title = title;
      return repo;
    });
}

function splitList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(/[\s,]+/).filter((s) => s !== '');
}

function clip(s: string): string {
  return s.length > 50 ? `${s.slice(0, 47)}...` : s;
}
