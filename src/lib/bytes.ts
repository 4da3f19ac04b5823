// Byte counts for people: the one place that knows the units.

const IEC_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;
const SI_UNITS = ['B', 'kB', 'MB', 'GB', 'TB'] as const;

/** `bytes` scaled by `base` until it is below `base` (or units run out): `[1.5, 1]` for 1536 in 1024s. */
function scale(bytes: number, base: number, units: number): [value: number, unit: number] {
  let value = bytes;
  let unit = 0;
  while (value >= base && unit < units - 1) {
    value /= base;
    unit++;
  }
  return [value, unit];
}

/** Binary units with one decimal below 10: `512 B`, `1.5 KiB`, `3.0 GiB`, `340 MiB`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${bytes} B`;
  const [value, unit] = scale(bytes, 1024, IEC_UNITS.length);
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${IEC_UNITS[unit]}`;
}

/** Decimal units as the container engines print them: `245MB`, `1.21GB`, `512kB`. */
export function formatBytesLikeEngines(bytes: number): string {
  const [value, unit] = scale(bytes, 1000, SI_UNITS.length);
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${Number(value.toFixed(digits))}${SI_UNITS[unit]}`;
}

/** A size limit exactly, in the largest binary unit that divides it: `512 MiB`, `4 KiB`, `1000-byte`. */
export function formatByteLimit(bytes: number): string {
  for (let unit = IEC_UNITS.length - 1; unit > 0; unit--) {
    const size = 1024 ** unit;
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${IEC_UNITS[unit]}`;
  }
  return `${bytes}-byte`;
}
