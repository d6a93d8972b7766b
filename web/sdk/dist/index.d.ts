/**
 * multijuego's client SDK for browsers and Node ≥ 20: accounts (register,
 * login, guest devices), tokens that refresh themselves, the match and
 * records APIs, and the realtime socket with typed events and reconnection.
 * It speaks docs/protocol.md and mirrors the Go SDK (client/).
 *
 * @example
 * import { Client } from "/sdk/multijuego.js";
 * const c = new Client("");            // the page's own server
 * await c.guest();
 * const rt = await c.connect();
 * rt.on("frame", (f) => console.log(f.op, f.tick, f.data));
 * const m = await rt.createMatch("tictactoe");
 * await rt.join(m.match_id);
 * rt.send(1, new Uint8Array([4]));     // tic-tac-toe: play cell 4
 *
 * @module
 */
export type { Account, LeaderboardInfo, LeaderboardPage, LeaderboardRecord, MatchCloseReason, MatchInfo, MatchLookup, MatchPage, MatchRecord, MatchResult, ServerEvent, Tokens, } from "./api.js";
export { backoffDelay, defaultBackoff, type Backoff } from "./backoff.js";
export { Client, REFRESH_MARGIN_MS, type ClientOptions, type FetchLike, type StorageLike } from "./client.js";
export { decodeEnvelope, decodeFrame, decodeInput, encodeEnvelope, encodeFrame, encodeInput, FRAME_KIND_MATCH, MAX_CID_BYTES, OP_RESERVED, OP_WARNING, type Envelope, type Frame, } from "./codec.js";
export { ApiError, ProtocolError } from "./errors.js";
export { defaultShouldReconnect, Realtime, type DisconnectInfo, type Dialer, type ReconnectInfo, type RealtimeOptions, type Timers, type WebSocketConstructor, type WebSocketLike, } from "./realtime.js";
