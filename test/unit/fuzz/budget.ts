// Time and run budgets of the fuzz properties. CI runs the whole folder in well under a minute on two
// cores; CW_FUZZ_SECONDS=600 gives every property that many seconds (and no run limit) for a longer hunt
// on a developer's machine, CW_FUZZ_SEED=N replays a reported failure.
import fc from 'fast-check';

/** Seconds the whole folder may fuzz by default; each property gets its share. */
const DEFAULT_SECONDS = 40;

/**
 * fast-check parameters for one property: at most `numRuns` inputs and `share` of the folder's time
 * (the run stops there, as a pass, when the time is up). With CW_FUZZ_SECONDS the time is all that counts.
 * Example: fc.assert(property, budget(0.1, 2000)).
 */
export function budget<Ts>(share: number, numRuns: number, env: NodeJS.ProcessEnv = process.env): fc.Parameters<Ts> {
  const long = Number(env.CW_FUZZ_SECONDS);
  const seconds = Number.isFinite(long) && long > 0 ? long : DEFAULT_SECONDS * share;
  const seed = Number(env.CW_FUZZ_SEED);
  return {
    numRuns: Number.isFinite(long) && long > 0 ? 1_000_000_000 : numRuns,
    interruptAfterTimeLimit: Math.round(seconds * 1000),
    markInterruptAsFailure: false,
    ...(env.CW_FUZZ_SEED !== undefined && Number.isSafeInteger(seed) ? { seed } : {}),
  };
}

/** Most milliseconds one call may take: far above normal, low enough to catch a runaway (a regex, a huge range). */
export const CALL_LIMIT_MS = 2000;

/** Runs `fn` and throws when it took longer than CALL_LIMIT_MS (or `limit`). */
export function timed<T>(what: string, fn: () => T, limit = CALL_LIMIT_MS): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    const took = performance.now() - start;
    if (took > limit) throw new Error(`${what} took ${Math.round(took)} ms (limit ${limit} ms)`);
  }
}

/** Text with a bias to the characters parsers trip over: separators, controls, quotes, unicode. */
export function nastyText(maxLength = 80): fc.Arbitrary<string> {
  const pieces = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.constantFrom(' ', '\t', '\r', '\n', '\r\n', '\v', '\f', '\0', '\u00a0', '\u2028', '\u202e', '\uFEFF', '\ud800', '#', ';', '{', '}', '"', "'", '\\', '$', '${x}', '|', '&', '`', '<', '>', '%', '..', '/', ','),
  );
  return fc.array(pieces, { maxLength: Math.max(1, Math.ceil(maxLength / 4)) }).map((p) => p.join('').slice(0, maxLength));
}
