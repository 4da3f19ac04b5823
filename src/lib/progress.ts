// Progress of long work, one helper for the host CLI (cw-containerctl img-load) and the admin tools
// (cw-modimg): a cli-progress bar redrawn in place on a terminal, a few milestone lines elsewhere.
import { Transform, type TransformCallback } from 'node:stream';
import cliProgress from 'cli-progress';

/** Where progress goes: a terminal (`isTTY`) gets a bar, anything else plain lines. */
export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean | undefined;
  /** Width of the terminal (default 80). */
  columns?: number | undefined;
}

/** Reports progress of a count towards a known total. */
export interface ProgressReporter {
  /** `detail` replaces the value text beside the bar (e.g. `45/120 MiB`, or the elapsed time). */
  update(done: number, detail?: string): void;
  /** Completes the display (the bar stays at its last value, or is cleared with `clearOnComplete`). */
  finish(): void;
}

export interface ProgressOptions {
  /** Shows done and total beside the bar as `{done} / {total}` (e.g. a byte formatter). */
  formatValue?: (n: number) => string;
  /** Plain output: print a line at each multiple of this many percent (default 25). */
  step?: number;
  /** Terminal: remove the bar when finished instead of leaving it on its line. */
  clearOnComplete?: boolean;
}

/** Whole percent done, clamped to 0..100 (0 of 0 counts as done). */
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

/**
 * A bar on a terminal (`Loading    [=====-----] 50% | 1.2 GiB / 2.4 GiB`); `LABEL: 25%` lines elsewhere.
 * An empty label starts the bar at the indentation of a step's output.
 */
export function createProgress(out: ProgressOutput, label: string, total: number, options: ProgressOptions = {}): ProgressReporter {
  const { formatValue } = options;
  const valueText = (done: number, detail?: string): string => {
    const text = detail ?? (formatValue ? `${formatValue(done)} / ${formatValue(total)}` : '');
    return text === '' ? '' : ` | ${text}`;
  };
  if (out.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        // cli-progress only writes to the stream and moves the cursor through it.
        stream: out as unknown as NodeJS.WritableStream,
        format: `${label === '' ? ' ' : label.padEnd(10)} [{bar}] {percentage}%{valueText}`,
        barsize: 30,
        hideCursor: true,
        clearOnComplete: options.clearOnComplete ?? false,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    let finished = false;
    bar.start(total, 0, { valueText: valueText(0) });
    return {
      update: (done, detail) => {
        if (!finished) bar.update(Math.min(done, total), { valueText: valueText(done, detail) });
      },
      finish: () => {
        if (finished) return;
        finished = true;
        bar.update(total, { valueText: valueText(total) });
        bar.stop();
      },
    };
  }
  const step = options.step ?? 25;
  let last = 0;
  return {
    update: (done) => {
      const milestone = nextMilestone(done, total, last, step);
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
