/** How a Realtime socket waits between reconnection attempts. */
export interface Backoff {
  /** Delay before the first attempt, in ms (default 500). */
  initialDelayMs: number;
  /** Longest delay, in ms (default 15000). */
  maxDelayMs: number;
  /**
   * Share of each delay that is random, from 0 (none) to 1 (default 0.5): the
   * delay is drawn from [d × (1 − jitter), d], so clients dropped together
   * by a server restart do not come back together.
   */
  jitter: number;
}

/** The defaults of RealtimeOptions. */
export const defaultBackoff: Readonly<Backoff> = Object.freeze({ initialDelayMs: 500, maxDelayMs: 15_000, jitter: 0.5 });

/**
 * Returns the delay before reconnection attempt `attempt` (0 for the first):
 * initialDelayMs × 2^attempt, capped at maxDelayMs, less up to `jitter` of it
 * at random. `random` returns a number in [0, 1) like Math.random.
 */
export function backoffDelay(attempt: number, b: Backoff, random: () => number): number {
  const base = Math.min(b.maxDelayMs, b.initialDelayMs * 2 ** Math.min(attempt, 30));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(base * (1 - b.jitter * r));
}

/** Checks backoff settings, naming the one that is wrong. */
export function checkBackoff(b: Backoff): void {
  const bad = (name: string, want: string, got: unknown) => new RangeError(`multijuego: RealtimeOptions.${name} must be ${want}, got ${String(got)}`);
  if (!(Number.isFinite(b.initialDelayMs) && b.initialDelayMs >= 0)) throw bad("initialDelayMs", "a number ≥ 0", b.initialDelayMs);
  if (!(Number.isFinite(b.maxDelayMs) && b.maxDelayMs >= b.initialDelayMs)) throw bad("maxDelayMs", "a number ≥ initialDelayMs", b.maxDelayMs);
  if (!(b.jitter >= 0 && b.jitter <= 1)) throw bad("jitter", "between 0 and 1", b.jitter);
}
