import { Transform, type TransformCallback } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Output } from './context.js';
import { formatBytesLikeEngines } from '../../lib/bytes.js';

/** Reports progress of a byte count towards a known total. */
export interface ProgressReporter {
  update(doneBytes: number): void;
  /** Completes the display (the bar stays, at its last value). */
  finish(): void;
}

/** Whole percent done, clamped to 0..100 (0 bytes of 0 counts as done). */
export function percentDone(done: number, total: number): number {
  if (total <= 0) return 100;
  return Math.min(100, Math.max(0, Math.floor((done / total) * 100)));
}

/**
 * Plain-text progress for pipes and logs: the milestone (a multiple of `step` percent) to print now,
 * or undefined when the last printed one is still current.
 * Example: `nextMilestone(60, 100, 25)` → 50; `nextMilestone(60, 100, 50)` → undefined.
 */
export function nextMilestone(done: number, total: number, lastPrinted: number, step = 25): number | undefined {
  const milestone = Math.floor(percentDone(done, total) / step) * step;
  return milestone > lastPrinted ? milestone : undefined;
}

/** A bar on a terminal; a few `LABEL: N%` lines elsewhere. */
export function createProgress(out: Output, label: string, total: number): ProgressReporter {
  if (out.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: out as NodeJS.WriteStream,
        format: `${label.padEnd(10)} [{bar}] {percentage}% | {doneText} / {totalText}`,
        barsize: 30,
        hideCursor: true,
        clearOnComplete: false,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { doneText: formatBytesLikeEngines(0), totalText: formatBytesLikeEngines(total) });
    return {
      update: (done) => bar.update(Math.min(done, total), { doneText: formatBytesLikeEngines(done) }),
      finish: () => {
        bar.update(total, { doneText: formatBytesLikeEngines(total) });
        bar.stop();
      },
    };
  }
  let last = 0;
  return {
    update: (done) => {
      const milestone = nextMilestone(done, total, last);
      if (milestone === undefined || milestone === 100) return;
      last = milestone;
      out.write(`${label}: ${milestone}%\n`);
    },
    finish: () => {
      if (last < 100) out.write(`${label}: 100%\n`);
      last = 100;
    },
  };
}

/** Passes bytes through unchanged and reports the running total: progress measured at the upload. */
export class ByteCounter extends Transform {
  private count = 0;
  constructor(private readonly onBytes: (total: number) => void) {
    super();
  }
  get bytes(): number {
    return this.count;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.count += chunk.length;
    this.onBytes(this.count);
    done(null, chunk);
  }
}
