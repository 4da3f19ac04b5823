import type { RestartPolicy } from './types.js';

/**
 * Delay before restart number `attempt` (0-based since the last reset): `initial * factor^attempt`,
 * capped at `maxDelayMs`, spread by ±`jitter` using `random()` in [0, 1), and never above the cap.
 * Example: initial 200, factor 2, cap 10000, no jitter → 200, 400, 800, ..., 10000.
 */
export function restartDelay(policy: Pick<RestartPolicy, 'initialDelayMs' | 'maxDelayMs' | 'factor' | 'jitter'>, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** Math.max(0, attempt));
  const spread = Math.min(1, Math.max(0, policy.jitter));
  const jittered = base * (1 + spread * (2 * random() - 1));
  return Math.max(0, Math.round(Math.min(jittered, policy.maxDelayMs)));
}
