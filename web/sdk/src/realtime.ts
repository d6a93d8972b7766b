// The realtime socket (docs/protocol.md): requests answered by correlation
// id, match frames, typed events, and reconnection with backoff that takes
// the match seat back with the last resume token.

import type { MatchInfo, ServerEvent } from "./api.js";
import { backoffDelay, checkBackoff, defaultBackoff, type Backoff } from "./backoff.js";
import { decodeEnvelope, decodeFrame, encodeEnvelope, encodeInput, type Envelope, type Frame } from "./codec.js";
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
  // Handlers take `any` so that the DOM's own event types fit.
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

interface Listeners {
  frame: (f: Frame) => void;
  event: (e: ServerEvent) => void;
  error: (e: ApiError) => void;
  disconnect: (d: DisconnectInfo) => void;
  reconnect: (r: ReconnectInfo) => void;
}

/**
 * Opens a new, authenticated socket (Client.connect supplies it); with
 * refresh, after a new access token even if the current one looks good.
 */
export type Dialer = (refresh?: boolean) => Promise<WebSocketLike>;

interface Pending {
  resolve(e: Envelope): void;
  reject(e: ApiError): void;
}

const OPEN = 1;

/** Close code of a socket whose access token expired: refresh and reconnect. */
const CLOSE_TOKEN_EXPIRED = 4004;

/** The default of RealtimeOptions.shouldReconnect. */
export function defaultShouldReconnect(code: number): boolean {
  return code < 4000 || code > 4999 || code === CLOSE_TOKEN_EXPIRED;
}

/**
 * An open realtime socket: create (Client.connect), then listen with `on`.
 * Requests (createMatch, listMatches, join, resume, leave, echo) return
 * promises settled by the server's answer; errors reject with ApiError
 * (status 0).
 */
export class Realtime {
  private ws: WebSocketLike | null = null;
  private ended = false;
  private attempt = 0;
  private timer: unknown = null;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners: { [K in keyof Listeners]: Set<Listeners[K]> } = {
    frame: new Set(),
    event: new Set(),
    error: new Set(),
    disconnect: new Set(),
    reconnect: new Set(),
  };
  private _matchId: string | null = null;
  private _resumeToken: string | null = null;
  private _sessionId: string | null = null;
  private lastClose: { code: number; reason: string } = { code: 0, reason: "" };
  /** The server said the access token expired: the next dial refreshes it. */
  private refreshFirst = false;
  private readonly reconnectOn: boolean;
  private readonly maxAttempts: number;
  private readonly backoff: Backoff;
  private readonly requestTimeoutMs: number;
  private readonly shouldReconnect: (code: number, reason: string) => boolean;

  private constructor(
    private readonly dial: Dialer,
    opts: RealtimeOptions,
    private readonly timers: Timers,
    private readonly random: () => number,
  ) {
    this.reconnectOn = opts.reconnect ?? true;
    this.maxAttempts = opts.maxAttempts ?? 10;
    if (!(this.maxAttempts >= 0)) throw new RangeError(`multijuego: RealtimeOptions.maxAttempts must be ≥ 0, got ${String(opts.maxAttempts)}`);
    this.backoff = {
      initialDelayMs: opts.initialDelayMs ?? defaultBackoff.initialDelayMs,
      maxDelayMs: opts.maxDelayMs ?? Math.max(defaultBackoff.maxDelayMs, opts.initialDelayMs ?? 0),
      jitter: opts.jitter ?? defaultBackoff.jitter,
    };
    checkBackoff(this.backoff);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    if (!(this.requestTimeoutMs > 0)) throw new RangeError(`multijuego: RealtimeOptions.requestTimeoutMs must be > 0, got ${String(opts.requestTimeoutMs)}`);
    this.shouldReconnect = opts.shouldReconnect ?? defaultShouldReconnect;
  }

  /**
   * Opens a socket with dial and returns it once open (Client.connect
   * uses it). The first connection is not retried: its failure rejects.
   * @internal
   */
  static async _open(dial: Dialer, opts: RealtimeOptions, timers: Timers, random: () => number): Promise<Realtime> {
    const rt = new Realtime(dial, opts, timers, random);
    const ws = await dial();
    await rt.waitOpen(ws);
    rt.attach(ws);
    return rt;
  }

  /** The match this socket plays in (also kept while reconnecting), or null. */
  get matchId(): string | null {
    return this._matchId;
  }

  /** The resume token of the last join, or null. */
  get resumeToken(): string | null {
    return this._resumeToken;
  }

  /** The server's id of the current socket (session.started), or null. */
  get sessionId(): string | null {
    return this._sessionId;
  }

  /** Whether the socket is open now. */
  get connected(): boolean {
    return this.ws !== null && this.ws.readyState === OPEN;
  }

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
  /** Adds a listener; the returned function removes it. */
  on<K extends keyof Listeners>(type: K, fn: Listeners[K]): () => void {
    const set = this.listeners[type] as Set<Listeners[K]> | undefined;
    if (!set) throw new TypeError(`multijuego: unknown Realtime event ${JSON.stringify(type)}`);
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  /** Starts a match (match.create). */
  async createMatch(mode: string, params?: Record<string, string>): Promise<MatchInfo> {
    return (await this.request<MatchInfo>("match.create", { mode, params })).payload;
  }

  /** Lists open matches, of one mode and label when given (match.list). */
  async listMatches(mode?: string, label?: string): Promise<MatchInfo[]> {
    return (await this.request<{ matches: MatchInfo[] }>("match.list", { mode, label })).payload.matches ?? [];
  }

  /** Takes a seat in a match; returns the resume token (match.join). */
  async join(matchId: string, meta?: Record<string, string>): Promise<string> {
    return (await this.request<{ resume_token: string }>("match.join", { match_id: matchId, meta })).payload.resume_token;
  }

  /** Takes the seat of a resume token back; returns the match id (match.resume). */
  async resume(resumeToken: string): Promise<string> {
    return (await this.request<{ match_id: string }>("match.resume", { resume_token: resumeToken })).payload.match_id;
  }

  /** Leaves the current match (match.leave). */
  async leave(): Promise<void> {
    await this.request("match.leave");
  }

  /** Sends a value the server echoes back unchanged (round-trip checks). */
  async echo<T>(payload: T): Promise<T> {
    return (await this.request<T>("echo", payload)).payload;
  }

  /**
   * Sends an input to the current match: op code (below 0xFF00) and the
   * game's payload, in one binary frame. Returns false, sending nothing,
   * while the socket is not open (inputs are not queued across a reconnect).
   */
  send(op: number, payload: Uint8Array = new Uint8Array(0)): boolean {
    const frame = encodeInput(op, payload);
    if (!this.connected) return false;
    // encodeInput's array fills its own buffer, so the buffer is the frame.
    this.ws!.send(frame.buffer as ArrayBuffer);
    return true;
  }

  /** Closes the socket for good: no reconnection, pending requests reject. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
    this.failPending(new ApiError(0, "disconnected", "multijuego: the realtime socket was closed"));
    this._matchId = null;
    this.emit("disconnect", { code: 1000, reason: "closed by client", willReconnect: false });
  }

  private request<P>(type: string, payload?: unknown): Promise<Envelope<P>> {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) {
      return Promise.reject(new ApiError(0, "not_connected", `multijuego: cannot send ${type}: the realtime socket is not connected`));
    }
    const cid = String(++this.seq);
    const text = encodeEnvelope(type, cid, payload);
    return new Promise<Envelope<P>>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        if (this.pending.delete(cid)) {
          reject(new ApiError(0, "timeout", `multijuego: no answer to ${type} within ${this.requestTimeoutMs} ms`));
        }
      }, this.requestTimeoutMs);
      this.pending.set(cid, {
        resolve: (e) => {
          this.timers.clearTimeout(timer);
          resolve(e as Envelope<P>);
        },
        reject: (e) => {
          this.timers.clearTimeout(timer);
          reject(e);
        },
      });
      try {
        ws.send(text);
      } catch (e) {
        this.pending.delete(cid);
        this.timers.clearTimeout(timer);
        reject(new ApiError(0, "not_connected", `multijuego: cannot send ${type}: ${errorText(e)}`, { cause: e }));
      }
    });
  }

  /** Resolves when ws opens; rejects (network_error) if it closes or times out first. */
  private waitOpen(ws: WebSocketLike): Promise<void> {
    ws.binaryType = "arraybuffer";
    return new Promise<void>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        detach(ws);
        try {
          ws.close();
        } catch {
          // not open yet
        }
        reject(new ApiError(0, "network_error", `multijuego: the realtime socket did not open within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      ws.onopen = () => {
        this.timers.clearTimeout(timer);
        resolve();
      };
      ws.onclose = (ev: { code?: number; reason?: string }) => {
        this.timers.clearTimeout(timer);
        detach(ws);
        const code = ev?.code ?? 1006;
        this.lastClose = { code, reason: ev?.reason ?? "" };
        reject(new ApiError(0, "network_error", `multijuego: the realtime socket did not open (close code ${code}${ev?.reason ? ": " + ev.reason : ""})`));
      };
      ws.onerror = () => {
        // a close event follows with the details
      };
    });
  }

  private attach(ws: WebSocketLike): void {
    this.ws = ws;
    ws.onmessage = (ev: { data: unknown }) => this.onMessage(ev.data);
    ws.onclose = (ev: { code?: number; reason?: string }) => this.onClose(ws, ev?.code ?? 1006, ev?.reason ?? "");
    ws.onerror = () => {};
  }

  private onMessage(data: unknown): void {
    if (typeof data === "string") {
      let env: Envelope;
      try {
        env = decodeEnvelope(data);
      } catch (e) {
        this.emit("error", new ApiError(0, "bad_message", errorText(e)));
        return;
      }
      this.onEnvelope(env);
      return;
    }
    let f: Frame;
    try {
      f = decodeFrame(data as ArrayBuffer);
    } catch (e) {
      this.emit("error", new ApiError(0, "bad_message", errorText(e)));
      return;
    }
    this.emit("frame", f);
  }

  private onEnvelope(env: Envelope): void {
    const p = (env.payload ?? {}) as Record<string, unknown>;
    switch (env.type) {
      case "session.started":
        this._sessionId = str(p["session_id"]) || null;
        break;
      case "match.joined":
        this._matchId = str(p["match_id"]) || null;
        this._resumeToken = str(p["resume_token"]) || null;
        break;
      case "match.left":
      case "match.closed":
        if (this._matchId === str(p["match_id"])) {
          this._matchId = null;
          this._resumeToken = null;
        }
        break;
    }
    const pend = env.cid ? this.pending.get(env.cid) : undefined;
    if (pend) this.pending.delete(env.cid);
    if (env.type === "error") {
      const err = new ApiError(0, str(p["code"]) || "internal", str(p["message"]) || "multijuego: the server answered an error", {
        field: str(p["field"]),
      });
      if (pend) pend.reject(err);
      else this.emit("error", err);
      return;
    }
    pend?.resolve(env);
    this.emit("event", env as ServerEvent);
  }

  private onClose(ws: WebSocketLike, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = null;
    detach(ws);
    this.lastClose = { code, reason };
    if (code === CLOSE_TOKEN_EXPIRED) this.refreshFirst = true;
    this.failPending(new ApiError(0, "disconnected", `multijuego: the realtime socket closed (code ${code}) before the answer came`));
    const will = !this.ended && this.reconnectOn && this.maxAttempts > 0 && this.shouldReconnect(code, reason);
    if (!will) {
      this.ended = true;
      this._matchId = null;
    }
    this.emit("disconnect", { code, reason, willReconnect: will });
    if (will) this.schedule();
  }

  /** Plans the next attempt; minDelay honours a server's Retry-After. */
  private schedule(minDelay = 0): void {
    if (this.attempt >= this.maxAttempts) {
      this.giveUp(null);
      return;
    }
    const delay = Math.max(minDelay, backoffDelay(this.attempt++, this.backoff, this.random));
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      void this.reconnect();
    }, delay);
  }

  private async reconnect(): Promise<void> {
    let ws: WebSocketLike;
    try {
      // dial refreshes the access token first when it is about to expire,
      // or at once after the server closed the socket for its expiry (the
      // client's clock may lag the server's).
      ws = await this.dial(this.refreshFirst);
      this.refreshFirst = false;
      if (this.ended) {
        detach(ws);
        ws.close(1000);
        return;
      }
      await this.waitOpen(ws);
    } catch (e) {
      if (this.ended) return;
      if (retryable(e)) this.schedule((e as ApiError).retryAfterMs ?? 0);
      else this.giveUp(e);
      return;
    }
    if (this.ended) {
      ws.close(1000);
      return;
    }
    this.attach(ws);
    this.attempt = 0;
    let resumed = false;
    const token = this._resumeToken;
    const matchId = this._matchId;
    if (token || matchId) {
      try {
        if (token) await this.resume(token);
        else await this.join(matchId!);
        resumed = true;
      } catch (e) {
        if (this.ws !== ws) return; // dropped again: the next attempt resumes
        this._matchId = null;
        this._resumeToken = null;
        this.emit("error", asApiError(e));
      }
    }
    this.emit("reconnect", { matchId: this._matchId, resumed });
  }

  private giveUp(err: unknown): void {
    this.ended = true;
    this._matchId = null;
    if (err) this.emit("error", asApiError(err));
    const reason = err ? `gave up reconnecting: ${errorText(err)}` : `gave up reconnecting after ${this.attempt} attempt(s)`;
    this.emit("disconnect", { code: this.lastClose.code, reason, willReconnect: false });
  }

  private failPending(err: ApiError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  private emit<K extends keyof Listeners>(type: K, arg: Parameters<Listeners[K]>[0]): void {
    for (const fn of [...this.listeners[type]]) {
      try {
        (fn as (a: typeof arg) => void)(arg);
      } catch (e) {
        // A throwing listener must not stop the others or the socket;
        // report it the way event targets do.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}

function detach(ws: WebSocketLike): void {
  ws.onopen = ws.onclose = ws.onmessage = ws.onerror = null;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function asApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError(0, "internal", errorText(e), { cause: e });
}

/**
 * Whether a failed reconnection attempt is worth another: network failures,
 * timeouts and server-side trouble are; a refused session (401, 403 banned)
 * or a programming error is not.
 */
function retryable(e: unknown): boolean {
  if (!(e instanceof ApiError)) return false;
  return e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500;
}
