// The arena game's wire formats (games/arena/protocol.go): the 8-byte input
// the client sends, the binary state the server broadcasts every tick and
// the JSON roster. Pure functions, no I/O.

/** World size and speed, in units and units per second (games/arena). */
export const WIDTH = 1000;
export const HEIGHT = 1000;
export const RADIUS = 20;
export const MAX_SPEED = 300;

/** Op codes. */
export const OP_INPUT = 1;
export const OP_STATE = 2;
export const OP_ROSTER = 3;

/** Phases in a state. */
export const PHASE_WAITING = 0;
export const PHASE_PLAYING = 1;
export const PHASE_ENDED = 2;

/** Player flags. */
export const FLAG_IT = 1;
export const FLAG_DISCONNECTED = 2;

const HEADER = 22;
const RECORD = 24;
const MAX_SLOTS = 16;

/** One player's record in a state. */
export interface PlayerState {
  slot: number;
  flags: number;
  score: number;
  /** Seq of the last input the server applied for this player. */
  lastSeq: number;
  x: number;
  y: number;
  vx: number;
  vy: number;
}

/** The OpState payload. */
export interface State {
  tick: number;
  /** The server's clock at that tick, ms since the epoch. */
  serverTimeMs: number;
  timeLeftMs: number;
  phase: number;
  players: PlayerState[];
}

/** Decodes an OpState payload; throws on anything else. */
export function decodeState(b: Uint8Array): State {
  if (b.length < HEADER) throw new Error(`arena: a state has a ${HEADER}-byte header, got ${b.length} bytes`);
  const n = b[21]!;
  if (n > MAX_SLOTS || b.length !== HEADER + n * RECORD) {
    throw new Error(`arena: a state with ${n} players is ${HEADER + n * RECORD} bytes, got ${b.length}`);
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const players: PlayerState[] = [];
  for (let i = 0; i < n; i++) {
    const o = HEADER + i * RECORD;
    players.push({
      slot: b[o]!,
      flags: b[o + 1]!,
      score: dv.getUint16(o + 2, true),
      lastSeq: dv.getUint32(o + 4, true),
      x: dv.getFloat32(o + 8, true),
      y: dv.getFloat32(o + 12, true),
      vx: dv.getFloat32(o + 16, true),
      vy: dv.getFloat32(o + 20, true),
    });
  }
  return {
    tick: Number(dv.getBigUint64(0, true)),
    serverTimeMs: Number(dv.getBigInt64(8, true)),
    timeLeftMs: dv.getUint32(16, true),
    phase: b[20]!,
    players,
  };
}

/** Encodes a state (the server's side; for tests). */
export function encodeState(s: State): Uint8Array {
  const out = new Uint8Array(HEADER + s.players.length * RECORD);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(s.tick), true);
  dv.setBigInt64(8, BigInt(s.serverTimeMs), true);
  dv.setUint32(16, s.timeLeftMs, true);
  out[20] = s.phase;
  out[21] = s.players.length;
  s.players.forEach((p, i) => {
    const o = HEADER + i * RECORD;
    out[o] = p.slot;
    out[o + 1] = p.flags;
    dv.setUint16(o + 2, p.score, true);
    dv.setUint32(o + 4, p.lastSeq, true);
    dv.setFloat32(o + 8, p.x, true);
    dv.setFloat32(o + 12, p.y, true);
    dv.setFloat32(o + 16, p.vx, true);
    dv.setFloat32(o + 20, p.vy, true);
  });
  return out;
}

/**
 * Encodes an OpInput payload: seq (uint32), dx and dy (int8, -127..127,
 * right and down positive), two zero bytes.
 */
export function encodeInput(seq: number, dx: number, dy: number): Uint8Array {
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) throw new RangeError(`arena: seq must be a uint32, got ${seq}`);
  const out = new Uint8Array(8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, seq, true);
  dv.setInt8(4, clampAxis(dx));
  dv.setInt8(5, clampAxis(dy));
  return out;
}

/** Rounds an axis to an int8 in -127..127 (the server refuses -128). */
export function clampAxis(v: number): number {
  if (!Number.isFinite(v)) return 0;
  return Math.max(-127, Math.min(127, Math.round(v)));
}

/**
 * The direction the server derives from an input: (dx, dy)/127, shortened
 * to length 1 (a diagonal is no faster than a straight line).
 */
export function direction(dx: number, dy: number): { x: number; y: number } {
  let x = dx / 127;
  let y = dy / 127;
  const l = Math.hypot(x, y);
  if (l > 1) {
    x /= l;
    y /= l;
  }
  return { x, y };
}

/** One seated player in a roster. */
export interface RosterEntry {
  slot: number;
  user_id: string;
  username: string;
}

/** Decodes an OpRoster payload (JSON {"players": [...]}). */
export function decodeRoster(b: Uint8Array): RosterEntry[] {
  const v = JSON.parse(new TextDecoder().decode(b)) as { players?: unknown };
  if (!v || !Array.isArray(v.players)) throw new Error("arena: a roster is {\"players\": [...]}");
  return v.players.filter(
    (p): p is RosterEntry => !!p && typeof p.slot === "number" && typeof p.user_id === "string" && typeof p.username === "string",
  );
}

/** Keeps a coordinate inside the walls, as the server does. */
export function clampX(x: number): number {
  return Math.max(RADIUS, Math.min(WIDTH - RADIUS, x));
}

export function clampY(y: number): number {
  return Math.max(RADIUS, Math.min(HEIGHT - RADIUS, y));
}
