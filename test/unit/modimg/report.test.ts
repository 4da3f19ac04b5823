import test from 'ava';
import { createReporter } from '../../../src/tools/modimg/report.js';

function reporter(isTTY: boolean) {
  let clock = 0;
  const chunks: string[] = [];
  const r = createReporter({ write: (text) => void chunks.push(text), isTTY, columns: 100, now: () => clock, lineIntervalMs: 0 });
  return { r, chunks, text: () => chunks.join(''), tick: (ms: number) => (clock += ms) };
}

test('in logs: a milestone line every 10 percent and the time taken', async (t) => {
  const { r, text, tick } = reporter(false);
  await r.step('Packing img', async (s) => {
    for (const p of [0, 5, 12, 18, 55, 100, 100]) {
      tick(1000);
      s.percent(p, 'x');
    }
  });
  t.is(text(), 'Packing img ...\n  [  1s] 0% x\n  [  3s] 12% x\n  [  5s] 55% x\n  [  6s] 100% x\nPacking img: done in 7.0 s\n');
});

test('on a terminal: the shared cli-progress bar, cleared before the closing line', async (t) => {
  const { r, text, tick } = reporter(true);
  await r.step('Unpacking img', async (s) => {
    tick(2000);
    s.percent(45, '45/100 MiB');
    // cli-progress redraws on its own timer (10 per second).
    await new Promise((resolve) => setTimeout(resolve, 250));
    s.line('ordinary output is not drawn over the bar');
    s.line('E: but errors are shown');
    s.percent(100);
  });
  const out = text();
  t.true(out.startsWith('Unpacking img ...\n'));
  t.regex(out, /\[[\u2588\u2591]{30}\] 45% \| 45\/100 MiB \[2s\]/);
  t.regex(out, /\[ {2}2s\] E: but errors are shown\n/);
  t.false(out.includes('ordinary output'));
  t.true(out.endsWith('Unpacking img: done in 2.0 s\n'));
});

test('a failed step ends its bar and says how long it ran', async (t) => {
  const { r, text, tick } = reporter(true);
  await t.throwsAsync(
    r.step('Uploading img', async (s) => {
      s.percent(10);
      tick(1500);
      throw new Error('boom');
    }),
    { message: 'boom' },
  );
  t.true(text().endsWith('Uploading img: failed after 1.5 s\n'));
});
