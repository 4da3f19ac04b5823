// rpm's version order (rpmvercmp, rpm's lib/rpmvercmp.c; described in rpm's docs as "Version comparison"):
// alphanumeric segments compared one by one, numbers numerically, `~` sorts before anything (1.0~rc1 <
// 1.0) and `^` after the base (1.0^git1 > 1.0). Written here because npm has no maintained rpmvercmp and
// semver's order differs (it would put 1.10 and 1.9 right but not 1.0a, 1.0~rc1 or 2.el9).

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isAlnum = (c: string): boolean => isDigit(c) || isAlpha(c);

/** -1, 0 or 1 as version `a` is older than, equal to or newer than `b` by rpm's rules: `rpmVerCmp('1.10', '1.9')` is 1. */
export function rpmVerCmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]!) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]!) && b[j] !== '~' && b[j] !== '^') j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = isDigit(a[i]!);
    const inSegment = numeric ? isDigit : isAlpha;
    const si = i;
    const sj = j;
    while (i < a.length && inSegment(a[i]!)) i++;
    while (j < b.length && inSegment(b[j]!)) j++;
    let x = a.slice(si, i);
    let y = b.slice(sj, j);
    // Segments of different kinds: the numeric one is newer.
    if (y === '') return numeric ? 1 : -1;
    if (numeric) {
      x = x.replace(/^0+/, '');
      y = y.replace(/^0+/, '');
      if (x.length !== y.length) return x.length > y.length ? 1 : -1;
    }
    if (x !== y) return x > y ? 1 : -1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** Epoch, version, release of a package; a missing epoch is 0. */
export interface Evr {
  epoch?: number | undefined;
  version: string;
  release: string;
}

/** rpm's order of two packages' epoch:version-release. */
export function compareEvr(a: Evr, b: Evr): number {
  const epochs = (a.epoch ?? 0) - (b.epoch ?? 0);
  if (epochs !== 0) return Math.sign(epochs);
  return rpmVerCmp(a.version, b.version) || rpmVerCmp(a.release, b.release);
}
