// How cw-modimg shows long steps: a heading, progress (the shared cli-progress bar on a terminal, a few
// milestone lines in logs), the tool's own output thinned out, and the elapsed time at the end.
import { createProgress, nextMilestone, type ProgressReporter } from '../../lib/progress.js';

export interface StepHandle {
  /** Progress in percent (0-100) with optional detail (`45/120 MiB`). */
  percent(p: number, detail?: string): void;
  /** A line of a command's output: shown in place on a terminal; in logs, at most one per interval. */
  line(text: string): void;
}

export interface Reporter {
  info(text: string): void;
  /** Runs `body` as a named step; prints `label: done in 12.3 s` (or the failure time). */
  step<T>(label: string, body: (s: StepHandle) => Promise<T>): Promise<T>;
  /** Elapsed seconds of each finished step, by label. */
  readonly timings: Map<string, number>;
}

export interface ReporterOptions {
  write: (text: string) => void;
  isTTY: boolean;
  /** Least time between output lines shown in logs (default 5 s). */
  lineIntervalMs?: number;
  now?: () => number;
  /** Terminal width (default: stderr's). */
  columns?: number;
}

export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Warning and error lines of apt, debootstrap and dnf are always shown. */
const IMPORTANT = /^(E|W|Err|ERROR|WARNING|Error|Warning)\b|^dpkg: error/;

export function createReporter(opts: ReporterOptions): Reporter {
  const now = opts.now ?? Date.now;
  const interval = opts.lineIntervalMs ?? 5000;
  const timings = new Map<string, number>();
  const clear = opts.isTTY ? '\r\x1b[K' : '';
  return {
    timings,
    info: (text) => opts.write(`${text}\n`),
    async step(label, body) {
      const start = now();
      const elapsed = () => `${Math.round((now() - start) / 1000)}s`.padStart(4);
      let lastMilestone = -1;
      let lastLineAt = 0;
      let inPlace = false;
      let bar: ProgressReporter | undefined;
      const columns = opts.columns ?? process.stderr.columns ?? 100;
      opts.write(`${label} ...\n`);
      const handle: StepHandle = {
        percent(p, detail) {
          const pct = Math.max(0, Math.min(100, Math.floor(p)));
          if (opts.isTTY) {
            bar ??= createProgress({ write: opts.write, isTTY: true, columns }, '', 100, { clearOnComplete: true });
            bar.update(pct, `${detail ? `${detail} ` : ''}[${elapsed().trim()}]`);
            inPlace = true;
            return;
          }
          const milestone = nextMilestone(pct, 100, lastMilestone, 10);
          if (milestone === undefined) return;
          lastMilestone = milestone;
          opts.write(`  [${elapsed()}] ${pct}%${detail ? ` ${detail}` : ''}\n`);
        },
        line(text) {
          const t = text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trimEnd();
          if (t === '') return;
          if (opts.isTTY && !IMPORTANT.test(t)) {
            // While a bar is drawn it is the line in place; other output would be drawn over.
            if (bar) return;
            opts.write(`${clear}  [${elapsed().trim()}] ${t.slice(0, Math.max(20, columns - 10))}`);
            inPlace = true;
            return;
          }
          const at = now();
          if (!IMPORTANT.test(t) && at - lastLineAt < interval) return;
          lastLineAt = at;
          if (inPlace) opts.write(clear);
          // The bar goes on redrawing itself on the line below.
          inPlace = bar !== undefined;
          opts.write(`  [${elapsed()}] ${t}\n`);
        },
      };
      const endBar = () => {
        bar?.finish();
        bar = undefined;
      };
      try {
        const result = await body(handle);
        endBar();
        const ms = now() - start;
        timings.set(label, ms / 1000);
        opts.write(`${inPlace ? clear : ''}${label}: done in ${formatSeconds(ms)}\n`);
        return result;
      } catch (err) {
        endBar();
        opts.write(`${inPlace ? clear : ''}${label}: failed after ${formatSeconds(now() - start)}\n`);
        throw err;
      }
    },
  };
}
