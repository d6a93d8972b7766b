import type { MatchInfo, ServerEvent } from "./api.js";
import { type Frame } from "./codec.js";
import { ApiError } from "./errors.js";
/**
 * The part of the WebSocket API the SDK uses: the browser's WebSocket, Node
 * 22's global one, and the `ws` package all fit.
 */
export interface WebSocketLike {
    readonly readyState: number;
    binaryType: string;
    /** Text, or binary as an ArrayBuffer (the type every WebSocket API takes). */
    send(data: string | ArrayBuffer): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: any) => void) | null;
    onclose: ((ev: any) => void) | null;
    onmessage: ((ev: any) => void) | null;
    onerror: ((ev: any) => void) | null;
}
/** A WebSocket constructor (ClientOptions.WebSocket). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
/** The timer functions the SDK schedules with (injectable for tests). */
export interface Timers {
    setTimeout(fn: () => void, ms: number): unknown;
    clearTimeout(handle: unknown): void;
}
/** Options of Client.connect. */
export interface RealtimeOptions {
    /** Reconnect after an unexpected close (default true). */
    reconnect?: boolean;
    /** Attempts in a row before giving up (default 10; Infinity for no limit). */
    maxAttempts?: number;
    /** Delay before the first attempt, ms (default 500); it doubles at each failed attempt. */
    initialDelayMs?: number;
    /** Longest delay between attempts, ms (default 15000). */
    maxDelayMs?: number;
    /** Random share of each delay, 0 to 1 (default 0.5). */
    jitter?: number;
    /** How long a request waits for its answer, and a socket for its handshake, ms (default 10000). */
    requestTimeoutMs?: number;
    /**
     * How the socket authenticates: "ticket" (default: a single-use ticket from
     * POST /v1/realtime/tickets in the URL; refusals come back as HTTP errors)
     * or "subprotocol" (the access token as a `multijuego.bearer.<token>`
     * subprotocol; one round trip less).
     */
    auth?: "ticket" | "subprotocol";
    /**
     * Whether a close with this code should be followed by reconnection. The
     * default refuses 4000–4999 (the server's decisions: 4001 replaced by a
     * newer socket, 4002 session revoked, 4003 kicked or banned, and any
     * later application code) but 4004, the access token expired (the next
     * attempt refreshes it first), and accepts everything else (network
     * drops, 1001 server going away, 1006…).
     */
    shouldReconnect?: (code: number, reason: string) => boolean;
}
/** Payload of the "disconnect" event. */
export interface DisconnectInfo {
    /** WebSocket close code (1006 when the connection dropped without one). */
    code: number;
    reason: string;
    /**
     * Whether the socket will try to come back. A last "disconnect" with
     * false follows when the attempts run out.
     */
    willReconnect: boolean;
}
/** Payload of the "reconnect" event. */
export interface ReconnectInfo {
    /** The match the socket plays in again, or null. */
    matchId: string | null;
    /** Whether the seat was taken back (false: not in a match, or the grace period ran out). */
    resumed: boolean;
}
/**
 * Opens a new, authenticated socket (Client.connect supplies it); with
 * refresh, after a new access token even if the current one looks good.
 */
export type Dialer = (refresh?: boolean) => Promise<WebSocketLike>;
/** The default of RealtimeOptions.shouldReconnect. */
export declare function defaultShouldReconnect(code: number): boolean;
/**
 * An open realtime socket: create (Client.connect), then listen with `on`.
 * Requests (createMatch, listMatches, join, resume, leave, echo) return
 * promises settled by the server's answer; errors reject with ApiError
 * (status 0).
 */
export declare class Realtime {
    private readonly dial;
    private readonly timers;
    private readonly random;
    private ws;
    private ended;
    private attempt;
    private timer;
    private seq;
    private readonly pending;
    private readonly listeners;
    private _matchId;
    private _resumeToken;
    private _sessionId;
    private lastClose;
    /** The server said the access token expired: the next dial refreshes it. */
    private refreshFirst;
    private readonly reconnectOn;
    private readonly maxAttempts;
    private readonly backoff;
    private readonly requestTimeoutMs;
    private readonly shouldReconnect;
    private constructor();
    /** The match this socket plays in (also kept while reconnecting), or null. */
    get matchId(): string | null;
    /** The resume token of the last join, or null. */
    get resumeToken(): string | null;
    /** The server's id of the current socket (session.started), or null. */
    get sessionId(): string | null;
    /** Whether the socket is open now. */
    get connected(): boolean;
    /** Match frames (binary messages). */
    on(type: "frame", fn: (f: Frame) => void): () => void;
    /** JSON messages from the server (all but errors). */
    on(type: "event", fn: (e: ServerEvent) => void): () => void;
    /** Errors that reject no request: refused inputs, undecodable messages, a failed resume, giving up. */
    on(type: "error", fn: (e: ApiError) => void): () => void;
    /** The socket closed. */
    on(type: "disconnect", fn: (d: DisconnectInfo) => void): () => void;
    /** The socket is back after a drop (and has resumed its match if it could). */
    on(type: "reconnect", fn: (r: ReconnectInfo) => void): () => void;
    /** Starts a match (match.create). */
    createMatch(mode: string, params?: Record<string, string>): Promise<MatchInfo>;
    /** Lists open matches, of one mode and label when given (match.list). */
    listMatches(mode?: string, label?: string): Promise<MatchInfo[]>;
    /** Takes a seat in a match; returns the resume token (match.join). */
    join(matchId: string, meta?: Record<string, string>): Promise<string>;
    /** Takes the seat of a resume token back; returns the match id (match.resume). */
    resume(resumeToken: string): Promise<string>;
    /** Leaves the current match (match.leave). */
    leave(): Promise<void>;
    /** Sends a value the server echoes back unchanged (round-trip checks). */
    echo<T>(payload: T): Promise<T>;
    /**
     * Sends an input to the current match: op code (below 0xFF00) and the
     * game's payload, in one binary frame. Returns false, sending nothing,
     * while the socket is not open (inputs are not queued across a reconnect).
     */
    send(op: number, payload?: Uint8Array): boolean;
    /** Closes the socket for good: no reconnection, pending requests reject. */
    close(): void;
    private request;
    /** Resolves when ws opens; rejects (network_error) if it closes or times out first. */
    private waitOpen;
    private attach;
    private onMessage;
    private onEnvelope;
    private onClose;
    /** Plans the next attempt; minDelay honours a server's Retry-After. */
    private schedule;
    private reconnect;
    private giveUp;
    private failPending;
    private emit;
}
