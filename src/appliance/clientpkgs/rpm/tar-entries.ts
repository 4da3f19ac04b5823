// Tar entry headers through node-tar's Header and Pax encoders (a direct dependency, typed, maintained):
// they do the ustar fields, base-256 numbers and pax records for long or UTF-8 names. node-tar's Pack
// only packs files from a filesystem (or re-packs parsed entries, and then drops the group name), and
// tar-stream is only a transitive 2.x dependency without types, so the stream framing is here: a header
// (preceded by a pax header when needed), the data, zero padding to 512 bytes, two zero blocks at the end.
import { Header, Pax, type HeaderData } from 'tar';

export const BLOCK = 512;

/** What one tar entry says about itself. */
export interface TarEntry {
  /** Relative path, e.g. `pkg/usr/bin/cw-status-updater` (no leading `./`; directories without `/`). */
  path: string;
  type: 'File' | 'Directory' | 'SymbolicLink' | 'Link';
  /** Permission bits with setuid/setgid/sticky (no file type bits). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch. */
  mtime: number;
  /** Data size; 0 for anything but `File`. */
  size: number;
  /** Symlink target, or for `Link` the path of the entry it is a hard link to. */
  linkpath?: string;
}

/** The header block(s) for `entry`: a pax extended header first when a field does not fit ustar. */
export function tarHeader(entry: TarEntry): Buffer {
  const data: HeaderData = {
    path: entry.type === 'Directory' ? `${entry.path}/` : entry.path,
    type: entry.type,
    mode: entry.mode & 0o7777,
    uid: entry.uid,
    gid: entry.gid,
    uname: entry.uname,
    gname: entry.gname,
    size: entry.type === 'File' ? entry.size : 0,
    mtime: new Date(entry.mtime * 1000),
    ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}),
  };
  const header = new Header(data);
  const needPax = header.encode();
  if (!header.block) throw new Error(`tar header for ${entry.path} could not be encoded`);
  if (!needPax) return header.block;
  return Buffer.concat([new Pax(data).encode(), header.block]);
}

/** Zero bytes that pad `size` bytes of data to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end-of-archive marker: two zero blocks. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}
