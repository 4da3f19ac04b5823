// The one-sector MBR of a cwsquash file: a classic DOS partition table with a single Linux (0x83)
// partition holding the squashfs. Written and read here byte by byte, so no partitioning tool is needed
// and readers never guess the offset.

export const SECTOR_SIZE = 512;
/** First sector of the partition: 2048 sectors = 1 MiB, the usual alignment. */
export const PARTITION_START_LBA = 2048;
export const PARTITION_OFFSET = PARTITION_START_LBA * SECTOR_SIZE;
export const LINUX_PARTITION_TYPE = 0x83;

const TABLE_OFFSET = 0x1be;
const ENTRY_SIZE = 16;
const SIGNATURE_OFFSET = 0x1fe;
/** Largest sector count a 32-bit LBA field holds (2 TiB, far beyond any node image). */
const MAX_SECTORS = 0xffffffff;

/** Where the squashfs lies inside a cwsquash file. */
export interface CwsquashLayout {
  /** Byte offset of the partition (and of the squashfs) from the start of the file. */
  offset: number;
  /** Partition size in bytes (the squashfs, padded to a whole sector). */
  size: number;
  startLba: number;
  sectors: number;
}

/** A file that is not a well-formed cwsquash image; the message says what is wrong. */
export class CwsquashFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CwsquashFormatError';
  }
}

/**
 * The 512-byte MBR for a partition of `sectors` sectors starting at `startLba`.
 * `buildMbr(40)` -> sector 0 of a file whose squashfs is 40 sectors long at byte 1 MiB.
 */
export function buildMbr(sectors: number, startLba = PARTITION_START_LBA, diskSignature = 0): Buffer {
  if (!Number.isInteger(sectors) || sectors <= 0) throw new RangeError(`partition size must be a positive sector count, not ${sectors}`);
  if (!Number.isInteger(startLba) || startLba <= 0) throw new RangeError(`partition start must be a positive LBA, not ${startLba}`);
  if (startLba + sectors - 1 > MAX_SECTORS) throw new RangeError('partition ends beyond what an MBR can address (2 TiB)');
  const mbr = Buffer.alloc(SECTOR_SIZE);
  mbr.writeUInt32LE(diskSignature >>> 0, 0x1b8);
  const e = TABLE_OFFSET;
  mbr[e] = 0x00; // not bootable: nodes boot over the network, never from this table
  chs(startLba).copy(mbr, e + 1);
  mbr[e + 4] = LINUX_PARTITION_TYPE;
  chs(startLba + sectors - 1).copy(mbr, e + 5);
  mbr.writeUInt32LE(startLba, e + 8);
  mbr.writeUInt32LE(sectors, e + 12);
  mbr[SIGNATURE_OFFSET] = 0x55;
  mbr[SIGNATURE_OFFSET + 1] = 0xaa;
  return mbr;
}

/**
 * Reads the layout from sector 0 of a cwsquash file of `fileSize` bytes. Throws CwsquashFormatError
 * for anything else: no boot signature, no or several partitions, another partition type, a partition
 * that does not fit in the file.
 */
export function parseMbr(sector0: Buffer, fileSize: number): CwsquashLayout {
  if (sector0.length < SECTOR_SIZE || fileSize < SECTOR_SIZE) {
    throw new CwsquashFormatError(`not a cwsquash image: ${fileSize} bytes is too short for a partition table`);
  }
  if (sector0[SIGNATURE_OFFSET] !== 0x55 || sector0[SIGNATURE_OFFSET + 1] !== 0xaa) {
    const magic = sector0.subarray(0, 4).toString('latin1');
    const hint = magic === 'hsqs' ? ' (it is a bare squashfs; cwsquash puts it in a partition)' : '';
    throw new CwsquashFormatError(`not a cwsquash image: no partition table (MBR signature 0x55AA missing)${hint}`);
  }
  const used: number[] = [];
  for (let i = 0; i < 4; i++) {
    const e = TABLE_OFFSET + i * ENTRY_SIZE;
    if (sector0[e + 4] !== 0 || sector0.readUInt32LE(e + 12) !== 0) used.push(i);
  }
  if (used.length !== 1) {
    throw new CwsquashFormatError(`not a cwsquash image: the partition table has ${used.length} partitions, expected exactly one`);
  }
  const e = TABLE_OFFSET + (used[0] as number) * ENTRY_SIZE;
  const type = sector0[e + 4] as number;
  if (type === 0xee) throw new CwsquashFormatError('not a cwsquash image: it has a GPT partition table, expected an MBR');
  if (type !== LINUX_PARTITION_TYPE) {
    throw new CwsquashFormatError(`not a cwsquash image: partition type 0x${type.toString(16).padStart(2, '0')}, expected 0x83 (Linux)`);
  }
  const startLba = sector0.readUInt32LE(e + 8);
  const sectors = sector0.readUInt32LE(e + 12);
  if (startLba === 0) throw new CwsquashFormatError('not a cwsquash image: the partition starts at sector 0, over the partition table');
  const offset = startLba * SECTOR_SIZE;
  const size = sectors * SECTOR_SIZE;
  if (offset + size > fileSize) {
    throw new CwsquashFormatError(
      `cwsquash image is truncated: the partition ends at byte ${offset + size} but the file has ${fileSize} bytes`,
    );
  }
  return { offset, size, startLba, sectors };
}

/** CHS address of an LBA on the conventional 255-head, 63-sector geometry; 1023/254/63 beyond it. */
function chs(lba: number): Buffer {
  const heads = 255;
  const perTrack = 63;
  let c = Math.floor(lba / (heads * perTrack));
  let h = Math.floor(lba / perTrack) % heads;
  let s = (lba % perTrack) + 1;
  if (c > 1023) {
    c = 1023;
    h = 254;
    s = 63;
  }
  return Buffer.from([h, ((c >> 2) & 0xc0) | (s & 0x3f), c & 0xff]);
}
