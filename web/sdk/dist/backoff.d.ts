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
export declare const defaultBackoff: Readonly<Backoff>;
/**
 * Returns the delay before reconnection attempt `attempt` (0 for the first):
 * initialDelayMs × 2^attempt, capped at maxDelayMs, less up to `jitter` of it
 * at random. `random` returns a number in [0, 1) like Math.random.
 */
export declare function backoffDelay(attempt: number, b: Backoff, random: () => number): number;
/** Checks backoff settings, naming the one that is wrong. */
export declare function checkBackoff(b: Backoff): void;
