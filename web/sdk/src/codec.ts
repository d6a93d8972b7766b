// The realtime protocol's wire formats (docs/protocol.md, sections 2 and 3):
// JSON envelopes in text frames, inputs and match frames in binary frames.
// Pure functions, no I/O: the Realtime class and the tests use them.

import { ProtocolError } from "./errors.js";

/** Kind byte that starts every server match frame. */
export const FRAME_KIND_MATCH = 0x01;
/** Op codes from 0xFF00 up belong to the engine; clients may not send them. */
export const OP_RESERVED = 0xff00;
/** Engine op: a warning (payload: UTF-8 text such as `rate_limited`). */
export const OP_WARNING = 0xff00;
/** Longest correlation id the server accepts, in bytes. */
export const MAX_CID_BYTES = 64;

/** A match frame from the server (binary message). */
export interface Frame {
  /** Op code (game-defined below 0xFF00; OP_WARNING and up are the engine's). */
  op: number;
  /** The match tick during which the frame was produced. */
  tick: number;
  /** The match the frame belongs to. */
  matchId: string;
  /** The game's payload (a view into the received message, not a copy). */
  data: Uint8Array;
}

/** A control message, the JSON object of a text frame. */
export interface Envelope<P = unknown> {
  type: string;
  /** Correlation id; "" when there is none. */
  cid: string;
  /** The message's fields (null when absent). */
  payload: P;
}

const HEADER = 12; // kind (1) + op (2) + tick (8) + id length (1)

/**
 * Encodes an input for the socket's current match: op code (uint16,
 * little-endian, below 0xFF00) then the game's payload.
 */
export function encodeInput(op: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (!Number.isInteger(op) || op < 0 || op >= OP_RESERVED) {
    throw new RangeError(`multijuego: input op code must be an integer from 0 to 65279 (0xFEFF), got ${String(op)}; 0xFF00 and up are reserved`);
  }
  if (!(payload instanceof Uint8Array)) {
    throw new TypeError("multijuego: input payload must be a Uint8Array");
  }
  const out = new Uint8Array(2 + payload.length);
  out[0] = op & 0xff;
  out[1] = op >> 8;
  out.set(payload, 2);
  return out;
}

/** Decodes an input (the server's view of encodeInput; for tests and tools). */
export function decodeInput(buf: ArrayBuffer | Uint8Array): { op: number; payload: Uint8Array } {
  const b = bytes(buf);
  if (b.length < 2) {
    throw new ProtocolError(`multijuego: an input is an op code (2 bytes) and a payload; got ${b.length} byte(s)`);
  }
  return { op: b[0]! | (b[1]! << 8), payload: b.subarray(2) };
}

/** Decodes a match frame: kind 0x01, op (uint16), tick (uint64), match id, payload. */
export function decodeFrame(buf: ArrayBuffer | Uint8Array): Frame {
  const b = bytes(buf);
  if (b.length < HEADER) {
    throw new ProtocolError(`multijuego: a match frame has a ${HEADER}-byte header; got ${b.length} byte(s)`);
  }
  if (b[0] !== FRAME_KIND_MATCH) {
    throw new ProtocolError(`multijuego: unknown frame kind 0x${b[0]!.toString(16).padStart(2, "0")} (want 0x01)`);
  }
  const n = b[11]!;
  if (b.length < HEADER + n) {
    throw new ProtocolError(`multijuego: frame names a ${n}-byte match id but has only ${b.length - HEADER} byte(s) after the header`);
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tick = dv.getBigUint64(3, true);
  if (tick > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ProtocolError(`multijuego: frame tick ${tick} is beyond 2^53`);
  }
  let matchId = "";
  for (let i = HEADER; i < HEADER + n; i++) {
    const c = b[i]!;
    if (c > 0x7e || c < 0x20) {
      throw new ProtocolError(`multijuego: frame match id has a non-ASCII byte 0x${c.toString(16)} at offset ${i}`);
    }
    matchId += String.fromCharCode(c);
  }
  return { op: dv.getUint16(1, true), tick: Number(tick), matchId, data: b.subarray(HEADER + n) };
}

/** Encodes a match frame (the server's side of decodeFrame; for tests and tools). */
export function encodeFrame(f: { op: number; tick: number; matchId: string; data?: Uint8Array }): Uint8Array {
  if (!Number.isInteger(f.op) || f.op < 0 || f.op > 0xffff) {
    throw new RangeError(`multijuego: frame op code must be an integer from 0 to 65535, got ${String(f.op)}`);
  }
  if (!Number.isSafeInteger(f.tick) || f.tick < 0) {
    throw new RangeError(`multijuego: frame tick must be a non-negative safe integer, got ${String(f.tick)}`);
  }
  if (f.matchId.length > 255 || !/^[\x20-\x7e]*$/.test(f.matchId)) {
    throw new RangeError("multijuego: frame match id must be at most 255 printable ASCII characters");
  }
  const data = f.data ?? new Uint8Array(0);
  const out = new Uint8Array(HEADER + f.matchId.length + data.length);
  const dv = new DataView(out.buffer);
  out[0] = FRAME_KIND_MATCH;
  dv.setUint16(1, f.op, true);
  dv.setBigUint64(3, BigInt(f.tick), true);
  out[11] = f.matchId.length;
  for (let i = 0; i < f.matchId.length; i++) out[HEADER + i] = f.matchId.charCodeAt(i);
  out.set(data, HEADER + f.matchId.length);
  return out;
}

/**
 * Encodes a client envelope. An undefined payload is left out (the server
 * reads it as none); cid must be at most 64 bytes.
 */
export function encodeEnvelope(type: string, cid = "", payload?: unknown): string {
  if (typeof type !== "string" || type === "") {
    throw new TypeError("multijuego: envelope type must be a non-empty string");
  }
  if (typeof cid !== "string" || utf8Length(cid) > MAX_CID_BYTES) {
    throw new RangeError(`multijuego: envelope cid must be a string of at most ${MAX_CID_BYTES} bytes`);
  }
  const env: Record<string, unknown> = { type };
  if (cid !== "") env["cid"] = cid;
  if (payload !== undefined) env["payload"] = payload;
  return JSON.stringify(env);
}

/**
 * Decodes a server envelope: one JSON object with a string `type`, a string
 * `cid` (absent counts as "") and any `payload` (absent counts as null).
 */
export function decodeEnvelope(text: string): Envelope {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(`multijuego: envelope is not JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new ProtocolError("multijuego: envelope must be a JSON object");
  }
  const o = v as Record<string, unknown>;
  if (typeof o["type"] !== "string" || o["type"] === "") {
    throw new ProtocolError('multijuego: envelope has no "type" string');
  }
  const cid = o["cid"] ?? "";
  if (typeof cid !== "string") {
    throw new ProtocolError('multijuego: envelope "cid" must be a string');
  }
  return { type: o["type"], cid, payload: o["payload"] ?? null };
}

function bytes(buf: ArrayBuffer | Uint8Array): Uint8Array {
  if (buf instanceof Uint8Array) return buf;
  // toString, not instanceof: an ArrayBuffer from another realm (a worker,
  // an iframe, a Node WebSocket library) is still one.
  if (buf instanceof ArrayBuffer || Object.prototype.toString.call(buf) === "[object ArrayBuffer]") {
    return new Uint8Array(buf as ArrayBuffer);
  }
  if (ArrayBuffer.isView(buf)) {
    const v = buf as ArrayBufferView;
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  throw new TypeError("multijuego: binary data must be an ArrayBuffer or a Uint8Array");
}

function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}
