// Reading an RPM file's lead, signature header and main header (the metadata before the payload).
// Hand-written: npm has no maintained RPM reader (`@snyk/rpm-parser` reads the rpmdb, the others build
// RPMs by running rpmbuild), and the format is small and documented (rpm's doc/manual/format.md, tags in
// rpmtag.h). Only the metadata is read here, through positioned reads on a file handle; the payload is
// left to the caller to stream.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/** The part of an RPM file a problem was found in. */
export type RpmPart = 'lead' | 'signature header' | 'header' | 'payload' | 'cpio archive';

/** A malformed, truncated or unsupported RPM: which part, at which byte, and what was wrong. */
export class RpmFormatError extends Error {
  readonly part: RpmPart;
  /** Byte offset in the RPM file (or, for `cpio archive`, in the decompressed payload). */
  readonly offset: number;
  constructor(part: RpmPart, offset: number, problem: string) {
    super(`${part} at byte ${offset}: ${problem}`);
    this.name = 'RpmFormatError';
    this.part = part;
    this.offset = offset;
  }
}

const LEAD_SIZE = 96;
const LEAD_MAGIC = 0xedabeedb;
const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01]);
/** rpm itself refuses headers over 256 MiB (hdrblob.c); the index count is capped alike. */
const MAX_HEADER_DATA = 256 * 1024 * 1024;
const MAX_INDEX_ENTRIES = 0x10000;

// Tag data types (rpmtag.h, rpmTagType).
const TYPE_CHAR = 1;
const TYPE_INT8 = 2;
const TYPE_INT16 = 3;
const TYPE_INT32 = 4;
const TYPE_INT64 = 5;
const TYPE_STRING = 6;
const TYPE_BIN = 7;
const TYPE_STRING_ARRAY = 8;
const TYPE_I18NSTRING = 9;

/** Tags of the main header this reader uses (rpmtag.h). */
export const Tag = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  OS: 1021,
  ARCH: 1022,
  PREIN: 1023,
  POSTIN: 1024,
  PREUN: 1025,
  POSTUN: 1026,
  FILESIZES: 1028,
  FILEMODES: 1030,
  FILEMTIMES: 1034,
  FILELINKTOS: 1036,
  FILEFLAGS: 1037,
  FILEUSERNAME: 1039,
  FILEGROUPNAME: 1040,
  TRIGGERSCRIPTS: 1065,
  TRIGGERNAME: 1066,
  TRIGGERVERSION: 1067,
  TRIGGERFLAGS: 1068,
  TRIGGERINDEX: 1069,
  PREINPROG: 1085,
  POSTINPROG: 1086,
  PREUNPROG: 1087,
  POSTUNPROG: 1088,
  TRIGGERSCRIPTPROG: 1092,
  FILEDEVICES: 1095,
  FILEINODES: 1096,
  DIRINDEXES: 1116,
  BASENAMES: 1117,
  DIRNAMES: 1118,
  PAYLOADFORMAT: 1124,
  PAYLOADCOMPRESSOR: 1125,
  LONGFILESIZES: 5008,
  PAYLOADDIGEST: 5092,
  PAYLOADDIGESTALGO: 5093,
} as const;

/** Tags of the signature header this reader uses. */
const SigTag = { SHA256: 273 } as const;

/** rpm's digest algorithm number for SHA-256 (PGPHASHALGO_SHA256). */
const DIGEST_ALGO_SHA256 = 8;

type TagValue = string | string[] | number[] | bigint[] | Buffer;

/** One parsed header: its tags and where it lay in the file. */
export interface HeaderBlob {
  tags: Map<number, TagValue>;
  /** File offset of the header's magic. */
  start: number;
  /** File offset just past its data store. */
  end: number;
  /** The header's bytes from its magic to its end (what rpm's header digests cover). */
  bytes: Buffer;
}

/** File flags (rpmfiles.h). */
export const FileFlag = { CONFIG: 1 << 0, DOC: 1 << 1, GHOST: 1 << 6, LICENSE: 1 << 7 } as const;

/** One file of the header's file list. */
export interface RpmFile {
  /** Absolute path, e.g. `/usr/bin/cw-status-updater`. */
  path: string;
  /** st_mode with the file type bits (S_IFREG, S_IFDIR, S_IFLNK, ...). */
  mode: number;
  size: number;
  mtime: number;
  user: string;
  group: string;
  /** Symlink target, empty for other files. */
  linkTo: string;
  flags: number;
  /** Device and inode as rpm numbered them: equal pairs are hard links of one file. */
  device: number;
  inode: number;
}

/** A scriptlet: its body and the interpreter (with arguments) rpm would run it with. */
export interface Scriptlet {
  interpreter: string[];
  body: string;
}

/** A trigger condition: `bash >= 4.0` is `{ name: 'bash', relation: '>=', version: '4.0' }`. */
export interface TriggerCondition {
  name: string;
  relation: string;
  version: string;
}

export type TriggerKind = 'triggerprein' | 'triggerin' | 'triggerun' | 'triggerpostun';

/** A trigger script with the packages it waits for. */
export interface Trigger extends Scriptlet {
  kind: TriggerKind;
  conditions: TriggerCondition[];
}

export type ScriptPhase = 'pre' | 'post' | 'preun' | 'postun';

/** What the converter needs from an RPM's headers. */
export interface RpmPackage {
  name: string;
  version: string;
  release: string;
  epoch: number | undefined;
  arch: string;
  os: string;
  files: RpmFile[];
  scripts: Partial<Record<ScriptPhase, Scriptlet>>;
  triggers: Trigger[];
  /** `gzip`, `xz`, `zstd`, ... (`gzip` when the tag is absent, as rpm assumes). */
  payloadCompressor: string;
  payloadFormat: string;
  /** SHA-256 (hex) of the compressed payload, when the header records one. */
  payloadSha256: string | undefined;
  /** File offset where the payload starts. */
  payloadOffset: number;
}

/** Reads exactly `length` bytes at `position`, or says which part ended early. */
async function readExact(fh: FileHandle, position: number, length: number, part: RpmPart, what: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new RpmFormatError(part, position + got, `file ends inside the ${what} (${got} of ${length} bytes)`);
    got += bytesRead;
  }
  return buf;
}

/** A header's raw bytes (magic to end of data store), checked for plausible sizes but not decoded yet. */
interface RawHeader {
  start: number;
  end: number;
  bytes: Buffer;
  count: number;
  dataSize: number;
}

async function readRawHeader(fh: FileHandle, start: number, part: RpmPart): Promise<RawHeader> {
  const intro = await readExact(fh, start, 16, part, 'header intro');
  if (!intro.subarray(0, 4).equals(HEADER_MAGIC)) {
    throw new RpmFormatError(part, start, `bad header magic ${intro.subarray(0, 4).toString('hex')} (expected 8eade801)`);
  }
  const count = intro.readUInt32BE(8);
  const dataSize = intro.readUInt32BE(12);
  if (count === 0 || count > MAX_INDEX_ENTRIES) throw new RpmFormatError(part, start + 8, `implausible index entry count ${count}`);
  if (dataSize > MAX_HEADER_DATA) throw new RpmFormatError(part, start + 12, `implausible data size ${dataSize}`);
  const body = await readExact(fh, start + 16, count * 16 + dataSize, part, 'header');
  return { start, end: start + 16 + body.length, bytes: Buffer.concat([intro, body]), count, dataSize };
}

function decodeHeader(raw: RawHeader, part: RpmPart): HeaderBlob {
  const { start, count, dataSize } = raw;
  const body = raw.bytes.subarray(16);
  const store = body.subarray(count * 16);
  const tags = new Map<number, TagValue>();
  for (let i = 0; i < count; i++) {
    const at = i * 16;
    const entryOffset = start + 16 + at;
    const tag = body.readInt32BE(at);
    const type = body.readUInt32BE(at + 4);
    const offset = body.readInt32BE(at + 8);
    const n = body.readUInt32BE(at + 12);
    if (offset < 0 || offset > dataSize) throw new RpmFormatError(part, entryOffset, `tag ${tag} points outside the data store (offset ${offset})`);
    if (n === 0 || n > dataSize) throw new RpmFormatError(part, entryOffset, `tag ${tag} has implausible count ${n}`);
    const bad = (problem: string) => new RpmFormatError(part, entryOffset, `tag ${tag}: ${problem}`);
    tags.set(tag, decodeValue(store, type, offset, n, bad));
  }
  return { tags, start, end: raw.end, bytes: raw.bytes };
}

function decodeValue(store: Buffer, type: number, offset: number, count: number, bad: (p: string) => RpmFormatError): TagValue {
  const need = (bytes: number): void => {
    if (offset + bytes > store.length) throw bad(`data runs past the data store (${bytes} bytes at ${offset} of ${store.length})`);
  };
  const strings = (n: number): string[] => {
    const out: string[] = [];
    let at = offset;
    for (let i = 0; i < n; i++) {
      const nul = store.indexOf(0, at);
      if (nul < 0) throw bad('unterminated string');
      out.push(store.toString('utf8', at, nul));
      at = nul + 1;
    }
    return out;
  };
  switch (type) {
    case TYPE_CHAR:
    case TYPE_INT8:
    case TYPE_BIN:
      need(count);
      return Buffer.from(store.subarray(offset, offset + count));
    case TYPE_INT16: {
      need(count * 2);
      return Array.from({ length: count }, (_, i) => store.readUInt16BE(offset + i * 2));
    }
    case TYPE_INT32: {
      need(count * 4);
      return Array.from({ length: count }, (_, i) => store.readUInt32BE(offset + i * 4));
    }
    case TYPE_INT64: {
      need(count * 8);
      return Array.from({ length: count }, (_, i) => store.readBigUInt64BE(offset + i * 8));
    }
    case TYPE_STRING:
      return strings(1)[0] ?? '';
    case TYPE_STRING_ARRAY:
    case TYPE_I18NSTRING:
      return strings(count);
    default:
      throw bad(`unknown data type ${type}`);
  }
}

/** A tag's value read as one string (the first of an array), or undefined. */
function str(tags: Map<number, TagValue>, tag: number): string | undefined {
  const v = tags.get(tag);
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

function strs(tags: Map<number, TagValue>, tag: number): string[] {
  const v = tags.get(tag);
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  return [];
}

function nums(tags: Map<number, TagValue>, tag: number): number[] {
  const v = tags.get(tag);
  if (Array.isArray(v)) return v.map((x) => Number(x));
  return [];
}

/** Relation of a dependency/trigger from its sense flags (rpmds.h: LESS 2, GREATER 4, EQUAL 8). */
function relation(flags: number): string {
  const less = flags & 2 ? '<' : '';
  const greater = flags & 4 ? '>' : '';
  const equal = flags & 8 ? '=' : '';
  const rel = `${less}${greater}${equal}`;
  return rel === '=' ? '=' : rel;
}

/** The trigger kind from its flags (rpmds.h: TRIGGERIN 1<<16, TRIGGERUN 1<<17, TRIGGERPOSTUN 1<<18, TRIGGERPREIN 1<<25). */
function triggerKind(flags: number): TriggerKind {
  if (flags & (1 << 25)) return 'triggerprein';
  if (flags & (1 << 17)) return 'triggerun';
  if (flags & (1 << 18)) return 'triggerpostun';
  return 'triggerin';
}

const SCRIPT_TAGS: Record<ScriptPhase, [body: number, prog: number]> = {
  pre: [Tag.PREIN, Tag.PREINPROG],
  post: [Tag.POSTIN, Tag.POSTINPROG],
  preun: [Tag.PREUN, Tag.PREUNPROG],
  postun: [Tag.POSTUN, Tag.POSTUNPROG],
};

/** What a digest over the bytes before the payload must be checked against. */
export interface RpmHeaders {
  pkg: RpmPackage;
  /** The bytes from the file's start to the payload, for the caller's checksum of the whole file. */
  prefix: Buffer[];
}

/**
 * Reads the lead, the signature header and the main header of the RPM open as `fh`, checks the main
 * header against the signature's SHA-256 when present, and returns the package's metadata and where its
 * payload starts. Throws RpmFormatError naming the part and byte offset of the first problem.
 */
export async function readRpmHeaders(fh: FileHandle): Promise<RpmHeaders> {
  const lead = await readExact(fh, 0, LEAD_SIZE, 'lead', 'lead');
  if (lead.readUInt32BE(0) !== LEAD_MAGIC) {
    if (lead.subarray(0, 8).toString('latin1') === '!<arch>\n') throw new RpmFormatError('lead', 0, 'this is an ar archive (a DEB?), not an RPM');
    throw new RpmFormatError('lead', 0, `bad magic ${lead.subarray(0, 4).toString('hex')} (expected edabeedb): not an RPM`);
  }
  if (lead[4] !== 3 && lead[4] !== 4) throw new RpmFormatError('lead', 4, `unsupported RPM format version ${lead[4]}`);
  if (lead.readUInt16BE(6) !== 0) throw new RpmFormatError('lead', 6, 'a source RPM, not a binary package');
  const sig = decodeHeader(await readRawHeader(fh, LEAD_SIZE, 'signature header'), 'signature header');
  // The signature header is padded to a multiple of 8 bytes.
  const pad = (8 - ((sig.end - LEAD_SIZE) % 8)) % 8;
  const padding = await readExact(fh, sig.end, pad, 'signature header', 'padding');
  const raw = await readRawHeader(fh, sig.end + pad, 'header');
  // Checked before decoding, so a damaged header is reported as such rather than as the odd value it holds.
  const expected = str(sig.tags, SigTag.SHA256);
  if (expected !== undefined) {
    const actual = createHash('sha256').update(raw.bytes).digest('hex');
    if (actual !== expected.toLowerCase()) {
      throw new RpmFormatError('header', raw.start, `SHA-256 ${actual} differs from the signature's ${expected}: the header is corrupt`);
    }
  }
  const main = decodeHeader(raw, 'header');
  const pkg = packageOf(main);
  return { pkg, prefix: [lead, sig.bytes, padding, main.bytes] };
}

function packageOf(main: HeaderBlob): RpmPackage {
  const { tags } = main;
  const fail = (problem: string): never => {
    throw new RpmFormatError('header', main.start, problem);
  };
  const name = str(tags, Tag.NAME) ?? fail('no package name');
  const version = str(tags, Tag.VERSION) ?? fail('no version');
  const release = str(tags, Tag.RELEASE) ?? fail('no release');
  const epochs = nums(tags, Tag.EPOCH);

  const basenames = strs(tags, Tag.BASENAMES);
  const dirnames = strs(tags, Tag.DIRNAMES);
  const dirIndexes = nums(tags, Tag.DIRINDEXES);
  const n = basenames.length;
  const sizes = tags.has(Tag.LONGFILESIZES) ? nums(tags, Tag.LONGFILESIZES) : nums(tags, Tag.FILESIZES);
  const modes = nums(tags, Tag.FILEMODES);
  const mtimes = nums(tags, Tag.FILEMTIMES);
  const links = strs(tags, Tag.FILELINKTOS);
  const flags = nums(tags, Tag.FILEFLAGS);
  const users = strs(tags, Tag.FILEUSERNAME);
  const groups = strs(tags, Tag.FILEGROUPNAME);
  const devices = nums(tags, Tag.FILEDEVICES);
  const inodes = nums(tags, Tag.FILEINODES);
  for (const [what, list] of [
    ['dirindexes', dirIndexes],
    ['sizes', sizes],
    ['modes', modes],
    ['mtimes', mtimes],
    ['users', users],
    ['groups', groups],
  ] as const) {
    if (list.length !== n) fail(`file list: ${n} names but ${list.length} ${what}`);
  }
  const files: RpmFile[] = basenames.map((base, i) => {
    const dir = dirnames[dirIndexes[i] ?? -1] ?? fail(`file ${base}: directory index ${dirIndexes[i]} out of range`);
    return {
      path: dir + base,
      mode: modes[i] ?? 0,
      size: sizes[i] ?? 0,
      mtime: mtimes[i] ?? 0,
      user: users[i] ?? 'root',
      group: groups[i] ?? 'root',
      linkTo: links[i] ?? '',
      flags: flags[i] ?? 0,
      device: devices[i] ?? 0,
      inode: inodes[i] ?? i + 1,
    };
  });

  const scripts: Partial<Record<ScriptPhase, Scriptlet>> = {};
  for (const [phase, [bodyTag, progTag]] of Object.entries(SCRIPT_TAGS) as [ScriptPhase, [number, number]][]) {
    const body = str(tags, bodyTag);
    const prog = strs(tags, progTag);
    if (body !== undefined || prog.length > 0) scripts[phase] = { interpreter: prog.length > 0 ? prog : ['/bin/sh'], body: body ?? '' };
  }

  const triggerScripts = strs(tags, Tag.TRIGGERSCRIPTS);
  const triggerProgs = strs(tags, Tag.TRIGGERSCRIPTPROG);
  const triggerNames = strs(tags, Tag.TRIGGERNAME);
  const triggerVersions = strs(tags, Tag.TRIGGERVERSION);
  const triggerFlags = nums(tags, Tag.TRIGGERFLAGS);
  const triggerIndex = nums(tags, Tag.TRIGGERINDEX);
  const triggers: Trigger[] = triggerScripts.map((body, i) => {
    const conditions: TriggerCondition[] = [];
    let kind: TriggerKind = 'triggerin';
    triggerIndex.forEach((index, j) => {
      if (index !== i) return;
      const f = triggerFlags[j] ?? 0;
      kind = triggerKind(f);
      conditions.push({ name: triggerNames[j] ?? '', relation: relation(f), version: triggerVersions[j] ?? '' });
    });
    // rpm stores each trigger's interpreter as one string ("/bin/sh" or "/usr/bin/lua").
    return { kind, conditions, interpreter: (triggerProgs[i] ?? '/bin/sh').split(' ').filter(Boolean), body };
  });

  const digestAlgo = nums(tags, Tag.PAYLOADDIGESTALGO)[0];
  const digest = str(tags, Tag.PAYLOADDIGEST);
  return {
    name,
    version,
    release,
    epoch: epochs[0],
    arch: str(tags, Tag.ARCH) ?? 'noarch',
    os: str(tags, Tag.OS) ?? 'linux',
    files,
    scripts,
    triggers,
    payloadCompressor: str(tags, Tag.PAYLOADCOMPRESSOR) ?? 'gzip',
    payloadFormat: str(tags, Tag.PAYLOADFORMAT) ?? 'cpio',
    payloadSha256: digest !== undefined && digestAlgo === DIGEST_ALGO_SHA256 ? digest.toLowerCase() : undefined,
    payloadOffset: main.end,
  };
}
