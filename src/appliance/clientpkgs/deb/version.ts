// dpkg's version order (deb-version(7)): [epoch:]upstream[-revision], epochs compared as numbers, then
// upstream and revision each by dpkg's verrevcmp. Written here because no maintained npm package
// implements it against dpkg's own tests; the unit tests compare it with `dpkg --compare-versions`.

export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/** Splits a Debian version; null when it is not one (empty, bad epoch, or characters dpkg refuses). */
export function parseDebVersion(text: string): DebVersion | null {
  const colon = text.indexOf(':');
  let epoch = 0;
  let rest = text;
  if (colon >= 0) {
    const e = text.slice(0, colon);
    if (!/^[0-9]{1,9}$/.test(e)) return null;
    epoch = Number(e);
    rest = text.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : '';
  if (!/^[0-9][A-Za-z0-9.+~:-]*$/.test(upstream)) return null;
  if (dash >= 0 && !/^[A-Za-z0-9.+~]+$/.test(revision)) return null;
  return { epoch, upstream, revision };
}

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

/** A character's weight in the non-digit parts: `~` before the end, the end before letters, letters before the rest. */
function order(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (isAlpha(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

/** dpkg's verrevcmp: -1, 0 or 1. */
export function debVerRevCmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i] as string)) || (j < b.length && !isDigit(b[j] as string))) {
      const ac = order(a[i]);
      const bc = order(b[j]);
      if (ac !== bc) return Math.sign(ac - bc);
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    let firstDiff = 0;
    while (i < a.length && j < b.length && isDigit(a[i] as string) && isDigit(b[j] as string)) {
      if (firstDiff === 0) firstDiff = (a.charCodeAt(i) - b.charCodeAt(j));
      i++;
      j++;
    }
    if (i < a.length && isDigit(a[i] as string)) return 1;
    if (j < b.length && isDigit(b[j] as string)) return -1;
    if (firstDiff !== 0) return Math.sign(firstDiff);
  }
  return 0;
}

/** Orders two parsed Debian versions as dpkg does: `compareDebVersions(parse('1:1.0'), parse('2.0')) === 1`. */
export function compareDebVersions(a: DebVersion, b: DebVersion): number {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? 1 : -1;
  return debVerRevCmp(a.upstream, b.upstream) || debVerRevCmp(a.revision, b.revision);
}
