/**
 * Reconnect delays: exponential with full jitter, so that many browsers dropped by the same edge
 * restart do not come back in lockstep.
 */
export interface BackoffOptions {
  /** First delay in ms. */
  baseMs: number;
  /** Ceiling in ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000 };

/** Delay before attempt `attempt` (0 = first retry); `random` is in [0, 1). */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random = Math.random()): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt));
  // Half fixed, half jitter: never immediately, never above the ceiling.
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
