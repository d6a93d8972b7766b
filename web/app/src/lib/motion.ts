// Smooth movement for the arena: other players are interpolated between
// the last two server states, the local player is predicted. Pure logic,
// clocks passed in, so the tests drive them step by step.

import { clampX, clampY, direction, MAX_SPEED } from "./arena.js";

export interface Point {
  x: number;
  y: number;
}

interface Snapshot {
  t: number; // server time, ms
  pos: Map<number, Point>; // by slot
}

/**
 * Interpolator renders other players INTERP_DELAY_MS behind the newest
 * server state, between the two states around that instant, so that they
 * move smoothly although states arrive only every tick (50 ms at 20 Hz)
 * and with jitter.
 *
 * Server times are mapped to the local clock with an offset (local arrival
 * minus server time) that follows the lowest recent sample: the fastest
 * delivery is the best estimate of the one-way delay plus the clock skew.
 */
export class Interpolator {
  private buf: Snapshot[] = [];
  private offset: number | null = null;

  constructor(
    readonly delayMs = 100,
    private readonly keepMs = 1000,
  ) {}

  /** Adds a server state received at localNow (ms, same clock as sample's). */
  push(serverTimeMs: number, players: readonly { slot: number; x: number; y: number }[], localNow: number): void {
    const sample = localNow - serverTimeMs;
    if (this.offset === null || sample < this.offset) this.offset = sample;
    else this.offset += (sample - this.offset) * 0.01; // let a clock drift in slowly
    const pos = new Map<number, Point>();
    for (const p of players) pos.set(p.slot, { x: p.x, y: p.y });
    const last = this.buf[this.buf.length - 1];
    if (last && serverTimeMs <= last.t) {
      if (serverTimeMs < last.t) return; // out of order: drop
      this.buf[this.buf.length - 1] = { t: serverTimeMs, pos };
      return;
    }
    this.buf.push({ t: serverTimeMs, pos });
    while (this.buf.length > 2 && this.buf[1]!.t < serverTimeMs - this.keepMs) this.buf.shift();
  }

  /** The server time rendered at localNow. */
  renderTime(localNow: number): number {
    return localNow - (this.offset ?? 0) - this.delayMs;
  }

  /** Positions by slot at localNow: between the two states around the render time, or the nearest state outside them. */
  sample(localNow: number): Map<number, Point> {
    const buf = this.buf;
    if (buf.length === 0) return new Map();
    const t = this.renderTime(localNow);
    const first = buf[0]!;
    const last = buf[buf.length - 1]!;
    if (t <= first.t) return new Map(first.pos);
    if (t >= last.t) return new Map(last.pos);
    let i = 0;
    while (buf[i + 1]!.t <= t) i++;
    const a = buf[i]!;
    const b = buf[i + 1]!;
    const k = (t - a.t) / (b.t - a.t);
    const out = new Map<number, Point>();
    for (const [slot, pb] of b.pos) {
      const pa = a.pos.get(slot);
      out.set(slot, pa ? { x: pa.x + (pb.x - pa.x) * k, y: pa.y + (pb.y - pa.y) * k } : { ...pb });
    }
    return out;
  }

  /** Forgets every state (a new match). */
  reset(): void {
    this.buf = [];
    this.offset = null;
  }
}

interface SentInput {
  seq: number;
  dx: number;
  dy: number;
  t: number; // local time sent, ms
}

/** Errors larger than this (units) are snapped away instead of smoothed. */
export const SNAP_DISTANCE = 80;
/** Time constant of the smoothing of corrections, ms. */
export const SMOOTH_MS = 100;

/**
 * Predictor moves the local player at once with its own inputs (the server
 * would show the move only a round trip later) and reconciles with the
 * authoritative state.
 *
 * The arena's states carry, for each player, the seq of the last input the
 * server applied, so reconciliation replays inputs (no blending guesswork):
 * on each state the prediction restarts from the server's position and
 * re-applies the local direction history up to now: every input the state
 * does not acknowledge, from when it was sent, and before them the
 * acknowledged direction from one round trip ago (the instant the state
 * reflects). The round trip is measured from the acknowledgements
 * themselves (time from sending input N to the first state with last seq
 * N). What is left
 * between the previous prediction and the new one (collisions, wall pushes,
 * timing jitter) is shown as an offset that fades over SMOOTH_MS; an error
 * over SNAP_DISTANCE (a teleport, a long stall) is snapped at once.
 */
export class Predictor {
  /** Predicted position (without the visual smoothing offset). */
  x = 0;
  y = 0;
  private offX = 0;
  private offY = 0;
  private dx = 0;
  private dy = 0;
  private history: SentInput[] = [];
  private acked = 0;
  private started = false;
  /** Round-trip estimate, ms. */
  rtt = 100;
  /** Corrections snapped (for tests and the debug view). */
  snaps = 0;

  /** Whether a server position has been seen. */
  get ready(): boolean {
    return this.started;
  }

  /** Records an input sent at localNow; it takes effect in the prediction at once. */
  input(seq: number, dx: number, dy: number, localNow: number): void {
    this.history.push({ seq, dx, dy, t: localNow });
    if (this.history.length > 256) this.history.shift();
    this.dx = dx;
    this.dy = dy;
  }

  /** Moves the prediction forward by dtMs with the current direction. */
  advance(dtMs: number): void {
    if (!this.started || dtMs <= 0) return;
    const d = direction(this.dx, this.dy);
    this.x = clampX(this.x + d.x * MAX_SPEED * (dtMs / 1000));
    this.y = clampY(this.y + d.y * MAX_SPEED * (dtMs / 1000));
    const decay = Math.exp(-dtMs / SMOOTH_MS);
    this.offX *= decay;
    this.offY *= decay;
  }

  /** The position to draw: the prediction plus the fading correction. */
  display(): Point {
    return { x: this.x + this.offX, y: this.y + this.offY };
  }

  /** Takes an authoritative state of the local player received at localNow. */
  reconcile(serverX: number, serverY: number, lastSeq: number, localNow: number): void {
    if (!this.started) {
      this.started = true;
      this.x = serverX;
      this.y = serverY;
    }
    if (lastSeq > this.acked) {
      const sent = this.history.find((h) => h.seq === lastSeq);
      if (sent) {
        const sample = Math.max(1, localNow - sent.t);
        this.rtt = this.acked === 0 ? sample : this.rtt * 0.8 + sample * 0.2;
      }
      this.acked = lastSeq;
    }
    // Keep the acknowledged input (its direction still applies) and the
    // ones after it.
    let base = -1;
    for (let i = 0; i < this.history.length; i++) if (this.history[i]!.seq <= this.acked) base = i;
    if (base > 0) this.history.splice(0, base);
    const ackedInput = base >= 0 ? this.history[0] : undefined;
    // The state reflects the inputs sent up to one round trip ago, never
    // less than the acknowledged one, and none that it does not
    // acknowledge: those are replayed in full from when they were sent.
    let from = localNow - this.rtt;
    if (ackedInput && ackedInput.t > from) from = ackedInput.t;
    const firstPending = this.history.find((h) => h.seq > this.acked);
    if (firstPending && firstPending.t < from) from = firstPending.t;
    let x = serverX;
    let y = serverY;
    let t = from;
    let dir = ackedInput ?? { dx: 0, dy: 0 };
    for (const h of this.history) {
      if (h.seq <= this.acked) continue;
      if (h.t > t) {
        ({ x, y } = step(x, y, dir.dx, dir.dy, h.t - t));
        t = h.t;
      }
      dir = h;
    }
    if (localNow > t) ({ x, y } = step(x, y, dir.dx, dir.dy, localNow - t));
    // The drawn position must not jump: carry the difference as an offset.
    const shownX = this.x + this.offX;
    const shownY = this.y + this.offY;
    this.x = x;
    this.y = y;
    this.offX = shownX - x;
    this.offY = shownY - y;
    if (Math.hypot(this.offX, this.offY) > SNAP_DISTANCE) {
      this.offX = this.offY = 0;
      this.snaps++;
    }
  }

  /** Forgets everything (a new match). */
  reset(): void {
    this.x = this.y = this.offX = this.offY = this.dx = this.dy = 0;
    this.history = [];
    this.acked = 0;
    this.started = false;
    this.rtt = 100;
    this.snaps = 0;
  }
}

function step(x: number, y: number, dx: number, dy: number, ms: number): Point {
  const d = direction(dx, dy);
  return { x: clampX(x + d.x * MAX_SPEED * (ms / 1000)), y: clampY(y + d.y * MAX_SPEED * (ms / 1000)) };
}
