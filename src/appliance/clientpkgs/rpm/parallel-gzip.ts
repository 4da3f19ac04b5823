// gzip on every core, as pigz does: the stream is cut into fixed 1 MiB blocks, each compressed as a
// gzip member of its own by zlib on libuv's thread pool, a few at once, and written in order. Concatenated
// members are one valid gzip file (RFC 1952; gzip, GNU tar, busybox and Node read them). One zlib stream
// compresses on one thread only, and gzip is most of a conversion's time (3.4 s of ~4.5 s for 110 MiB).
// The output depends only on the input (fixed block boundaries, zlib's header without a time), so two
// conversions of one RPM give the same bytes.
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { gzip, type ZlibOptions } from 'node:zlib';

const gzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gzip);

export const GZIP_BLOCK = 1024 * 1024;
/** Deflate never grows a block by more than a few bytes per 16 KiB, plus the gzip header and trailer. */
const OUTPUT_CHUNK = GZIP_BLOCK + 64 * 1024;

/** At most this many blocks compress at once (libuv's pool has 4 threads by default; files need it too). */
function defaultConcurrency(): number {
  return Math.min(4, Math.max(1, availableParallelism()));
}

/** The bytes of `source`, gzip-compressed in parallel blocks; memory is bounded by `concurrency` blocks. */
export async function* parallelGzip(source: AsyncIterable<Buffer>, level = 6, concurrency = defaultConcurrency()): AsyncGenerator<Buffer> {
  const pending: Promise<Buffer>[] = [];
  let parts: Buffer[] = [];
  let size = 0;
  let blocks = 0;
  const flush = (): void => {
    blocks++;
    // An output buffer larger than any block's output: zlib then compresses the block in one job on the
    // pool, instead of one job per 16 KiB of output, each waiting for the (busy) main thread to start it.
    const done = gzipAsync(Buffer.concat(parts, size), { level, chunkSize: OUTPUT_CHUNK });
    // Awaited in order below; this only keeps a failure from being reported as unhandled meanwhile.
    done.catch(() => {});
    pending.push(done);
    parts = [];
    size = 0;
  };
  for await (const chunk of source) {
    let rest = chunk;
    while (rest.length > 0) {
      const take = Math.min(rest.length, GZIP_BLOCK - size);
      parts.push(rest.subarray(0, take));
      size += take;
      rest = rest.subarray(take);
      if (size === GZIP_BLOCK) {
        flush();
        while (pending.length >= concurrency) yield await pending.shift()!;
      }
    }
  }
  // An empty input still gets one (empty) member: a gzip file is never zero bytes.
  if (size > 0 || blocks === 0) flush();
  while (pending.length > 0) yield await pending.shift()!;
}
