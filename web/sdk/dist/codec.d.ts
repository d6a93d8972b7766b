/** Kind byte that starts every server match frame. */
export declare const FRAME_KIND_MATCH = 1;
/** Op codes from 0xFF00 up belong to the engine; clients may not send them. */
export declare const OP_RESERVED = 65280;
/** Engine op: a warning (payload: UTF-8 text such as `rate_limited`). */
export declare const OP_WARNING = 65280;
/** Longest correlation id the server accepts, in bytes. */
export declare const MAX_CID_BYTES = 64;
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
/**
 * Encodes an input for the socket's current match: op code (uint16,
 * little-endian, below 0xFF00) then the game's payload.
 */
export declare function encodeInput(op: number, payload?: Uint8Array): Uint8Array;
/** Decodes an input (the server's view of encodeInput; for tests and tools). */
export declare function decodeInput(buf: ArrayBuffer | Uint8Array): {
    op: number;
    payload: Uint8Array;
};
/** Decodes a match frame: kind 0x01, op (uint16), tick (uint64), match id, payload. */
export declare function decodeFrame(buf: ArrayBuffer | Uint8Array): Frame;
/** Encodes a match frame (the server's side of decodeFrame; for tests and tools). */
export declare function encodeFrame(f: {
    op: number;
    tick: number;
    matchId: string;
    data?: Uint8Array;
}): Uint8Array;
/**
 * Encodes a client envelope. An undefined payload is left out (the server
 * reads it as none); cid must be at most 64 bytes.
 */
export declare function encodeEnvelope(type: string, cid?: string, payload?: unknown): string;
/**
 * Decodes a server envelope: one JSON object with a string `type`, a string
 * `cid` (absent counts as "") and any `payload` (absent counts as null).
 */
export declare function decodeEnvelope(text: string): Envelope;
