// The HTTP side of the SDK: accounts, tokens that refresh themselves, the
// match and records APIs, and opening realtime sockets. Mirrors the Go SDK
// (client/client.go).

import type { Account, LeaderboardInfo, LeaderboardPage, MatchInfo, MatchLookup, MatchPage, Tokens } from "./api.js";
import { ApiError } from "./errors.js";
import { Realtime, type RealtimeOptions, type Timers, type WebSocketConstructor, type WebSocketLike } from "./realtime.js";

/** The part of the Fetch API the SDK uses (the global fetch fits). */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

/** Where the SDK keeps the session's tokens and the guest device id (localStorage and sessionStorage fit). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Options of a Client; every one has a default. */
export interface ClientOptions {
  /** Fetch implementation (default: the global fetch). */
  fetch?: FetchLike;
  /**
   * WebSocket constructor (default: the global WebSocket). Node 20 has
   * none: pass the `ws` package's.
   */
  WebSocket?: WebSocketConstructor;
  /**
   * Where tokens and the guest device id persist (default: localStorage when
   * there is one; null keeps them in memory only). localStorage is shared by
   * every tab of an origin, so two tabs are the same guest and the newer
   * socket replaces the older (close 4001): to play two guests side by side
   * in one browser, pass sessionStorage.
   */
  storage?: StorageLike | null;
  /** Prefix of the storage keys (default "multijuego"). */
  storageKey?: string;
  /** Clock, ms since the epoch (default Date.now). */
  now?: () => number;
  /** Timers for reconnection and request timeouts (default the global ones). */
  timers?: Timers;
  /** Random numbers in [0, 1) for backoff jitter and device ids without crypto (default Math.random). */
  random?: () => number;
  /** Called whenever the session's tokens change (login, refresh, logout): null when it ends. */
  onTokens?: (t: Tokens | null) => void;
}

/** An access token this close to expiry (ms) is refreshed before use. */
export const REFRESH_MARGIN_MS = 30_000;

interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  account_id: string;
}

const deviceIdPattern = /^[A-Za-z0-9_.:-]{10,128}$/;

/**
 * A client of one multijuego server. It keeps the session's tokens (and
 * persists them in storage): an access token about to expire is refreshed
 * before a call, and a call refused with 401 is retried once after a
 * refresh. Concurrent refreshes share one request.
 */
export class Client {
  /** The server's base URL without trailing slash ("" for the page's own origin). */
  readonly baseURL: string;
  private readonly fetchFn: FetchLike;
  private readonly WS: WebSocketConstructor | undefined;
  private readonly storage: StorageLike | null;
  private readonly key: string;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly onTokens: ((t: Tokens | null) => void) | undefined;
  private _tokens: Tokens | null = null;
  private refreshing: Promise<Tokens> | null = null;
  private memDevice = "";

  /**
   * @param baseURL the server, e.g. "http://127.0.0.1:8080"; "" means the
   *   origin of the page (browsers only).
   */
  constructor(baseURL: string, opts: ClientOptions = {}) {
    this.baseURL = checkBaseURL(baseURL);
    const g = globalThis as unknown as { fetch?: FetchLike; WebSocket?: WebSocketConstructor; localStorage?: StorageLike };
    if (!opts.fetch && typeof g.fetch !== "function") {
      throw new TypeError("multijuego: no global fetch: pass ClientOptions.fetch");
    }
    // Called through globalThis: a detached window.fetch throws "Illegal invocation".
    this.fetchFn = opts.fetch ?? ((url, init) => g.fetch!(url, init));
    this.WS = opts.WebSocket ?? g.WebSocket;
    this.storage = opts.storage !== undefined ? opts.storage : defaultStorage();
    this.key = opts.storageKey ?? "multijuego";
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    this.random = opts.random ?? Math.random;
    this.onTokens = opts.onTokens;
    this._tokens = this.loadTokens();
  }

  /** The session's tokens, or null when logged out. Setting them resumes a saved session (and persists it). */
  get tokens(): Tokens | null {
    return this._tokens;
  }

  set tokens(t: Tokens | null) {
    this.setTokens(t);
  }

  /** Creates a password account and logs in. email may be "". */
  register(username: string, email: string, password: string): Promise<Tokens> {
    return this.startSession("/v1/auth/register", { username, email, password });
  }

  /** Logs in with a username or an email address (anything with an @). */
  login(usernameOrEmail: string, password: string): Promise<Tokens> {
    const key = usernameOrEmail.includes("@") ? "email" : "username";
    return this.startSession("/v1/auth/login", { [key]: usernameOrEmail, password });
  }

  /**
   * Logs in as the guest account of a device id (10–128 letters, digits and
   * - _ . :), creating it on first use.
   */
  device(deviceId: string): Promise<Tokens> {
    return this.startSession("/v1/auth/device", { device_id: deviceId });
  }

  /**
   * Signs in with an ID token or access token of an identity provider the
   * server trusts (Amazon Cognito or any OpenID Connect issuer), creating an
   * account on the identity's first sign-in. `issuer` is the provider's name
   * in the server's configuration; left out, the token's `iss` says.
   */
  oidc(token: string, issuer?: string): Promise<Tokens> {
    return this.startSession("/v1/auth/oidc", issuer === undefined ? { token } : { token, issuer });
  }

  /**
   * Logs in as this browser's guest: a device id made up on first use and
   * kept in storage, so the same guest comes back.
   */
  guest(): Promise<Tokens> {
    return this.device(this.deviceId());
  }

  /** Exchanges the refresh token for a new pair now; concurrent calls share one request. */
  refresh(): Promise<Tokens> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Ends the session on the server and forgets the tokens (the guest device id stays). */
  async logout(): Promise<void> {
    if (!this._tokens) return;
    let tok: string;
    try {
      tok = await this.accessToken();
    } catch {
      this.setTokens(null); // the session was already over
      return;
    }
    try {
      await this.call<void>("POST", "/v1/auth/logout", tok);
    } finally {
      this.setTokens(null);
    }
  }

  /** The logged-in account. */
  account(): Promise<Account> {
    return this.request<Account>("GET", "/v1/account");
  }

  /**
   * Makes an authenticated JSON call to the API (path from the root, e.g.
   * "/v1/admin/accounts?limit=10") and returns the parsed answer (undefined
   * for an empty one). Errors reject with ApiError.
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (typeof path !== "string" || !path.startsWith("/")) {
      throw new TypeError(`multijuego: request path must start with "/", got ${JSON.stringify(path)}`);
    }
    const tok = await this.accessToken();
    try {
      return await this.call<T>(method, path, tok, body);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) throw e;
      let next: string;
      try {
        next = await this.freshToken(tok);
      } catch {
        throw e; // the original refusal says more than the refresh's
      }
      return this.call<T>(method, path, next, body);
    }
  }

  /** Starts a match of a game mode ("arena", "tictactoe") with mode-specific parameters. */
  createMatch(mode: string, params?: Record<string, string>): Promise<MatchInfo> {
    return this.request<MatchInfo>("POST", "/v1/matches", { mode, params });
  }

  /** Lists open matches, of one mode and label when given. */
  async listMatches(mode?: string, label?: string): Promise<MatchInfo[]> {
    const out = await this.request<{ matches: MatchInfo[] }>("GET", "/v1/matches" + query({ mode, label }));
    return out.matches ?? [];
  }

  /** A live match, or its stored record once it has ended. */
  getMatch(id: string): Promise<MatchLookup> {
    return this.request<MatchLookup>("GET", "/v1/matches/" + seg(id));
  }

  /** A player's stored matches, newest first ("me" for the caller). */
  playerMatches(playerId: string, opts: { before?: string; limit?: number } = {}): Promise<MatchPage> {
    return this.request<MatchPage>("GET", `/v1/players/${seg(playerId)}/matches` + query({ before: opts.before, limit: opts.limit }));
  }

  /** The leaderboards the server keeps. */
  async leaderboards(): Promise<LeaderboardInfo[]> {
    return (await this.request<{ leaderboards: LeaderboardInfo[] }>("GET", "/v1/leaderboards")).leaderboards ?? [];
  }

  /** A leaderboard's top rows (limit 1–100, server default 10). */
  leaderboard(id: string, limit?: number): Promise<LeaderboardPage> {
    return this.request<LeaderboardPage>("GET", "/v1/leaderboards/" + seg(id) + query({ limit }));
  }

  /** The rows around a player ("me" for the caller), n above and below (0–50, server default 5). */
  leaderboardAround(id: string, playerId: string, n?: number): Promise<LeaderboardPage> {
    return this.request<LeaderboardPage>("GET", `/v1/leaderboards/${seg(id)}/around/${seg(playerId)}` + query({ n }));
  }

  /**
   * Opens a realtime socket for the session. The first connection's failure
   * rejects; later drops reconnect (see RealtimeOptions).
   */
  connect(opts: RealtimeOptions = {}): Promise<Realtime> {
    const mode = opts.auth ?? "ticket";
    if (mode !== "ticket" && mode !== "subprotocol") {
      return Promise.reject(new RangeError(`multijuego: RealtimeOptions.auth must be "ticket" or "subprotocol", got ${JSON.stringify(mode)}`));
    }
    return Realtime._open((refresh) => this.dial(mode, refresh), opts, this.timers, this.random);
  }

  /** The realtime endpoint's URL (ws: or wss:). */
  realtimeURL(): string {
    let base = this.baseURL;
    if (base === "") {
      const loc = (globalThis as { location?: { protocol: string; host: string } }).location;
      if (!loc) throw new TypeError('multijuego: baseURL "" (same origin) needs a page; pass the server\'s URL');
      base = `${loc.protocol}//${loc.host}`;
    }
    return base.replace(/^http/, "ws") + "/v1/realtime";
  }

  private async dial(mode: "ticket" | "subprotocol", refresh = false): Promise<WebSocketLike> {
    const WS = this.WS;
    if (!WS) {
      throw new TypeError("multijuego: no global WebSocket: pass ClientOptions.WebSocket (for Node 20, the ws package's)");
    }
    if (refresh && this._tokens) await this.freshToken(this._tokens.accessToken);
    if (mode === "subprotocol") {
      const tok = await this.accessToken();
      return new WS(this.realtimeURL(), ["multijuego.v1", "multijuego.bearer." + tok]);
    }
    const t = await this.request<{ ticket: string }>("POST", "/v1/realtime/tickets");
    return new WS(this.realtimeURL() + "?ticket=" + encodeURIComponent(t.ticket), ["multijuego.v1"]);
  }

  /** A usable access token, refreshed first when it is about to expire. */
  private async accessToken(): Promise<string> {
    const t = this._tokens;
    if (!t) throw noSession();
    if (this.now() + REFRESH_MARGIN_MS < t.accessExpiresAt) return t.accessToken;
    return this.freshToken(t.accessToken);
  }

  /**
   * A token other than stale: another tab's or caller's newer one if it is
   * still good, else a refreshed one.
   */
  private async freshToken(stale: string): Promise<string> {
    this.adoptStored();
    const t = this._tokens;
    if (!t) throw noSession();
    if (t.accessToken !== stale && this.now() + REFRESH_MARGIN_MS < t.accessExpiresAt) return t.accessToken;
    return (await this.refresh()).accessToken;
  }

  private async doRefresh(): Promise<Tokens> {
    this.adoptStored();
    const t = this._tokens;
    if (!t) throw noSession();
    let tr: TokenResponse;
    try {
      tr = await this.call<TokenResponse>("POST", "/v1/auth/refresh", "", { refresh_token: t.refreshToken });
    } catch (e) {
      // 401: the session is over (expired, revoked, or the refresh token
      // was reused). Forget it, unless it changed meanwhile.
      if (e instanceof ApiError && e.status === 401 && this._tokens === t) this.setTokens(null);
      throw e;
    }
    return this.setTokens(this.tokensOf(tr))!;
  }

  /**
   * Takes the tokens in storage when another tab of the same account
   * rotated them (refresh tokens are single-use: refreshing with ours would
   * end the session).
   */
  private adoptStored(): void {
    const s = this.loadTokens();
    const t = this._tokens;
    if (s && t && s.accountId === t.accountId && s.refreshToken !== t.refreshToken) this._tokens = s;
  }

  private async startSession(path: string, body: unknown): Promise<Tokens> {
    const tr = await this.call<TokenResponse>("POST", path, "", body);
    return this.setTokens(this.tokensOf(tr))!;
  }

  private tokensOf(tr: TokenResponse): Tokens {
    if (!tr || typeof tr.access_token !== "string" || typeof tr.refresh_token !== "string" || typeof tr.expires_in !== "number") {
      throw new ApiError(0, "bad_response", "multijuego: the server's token answer lacks access_token, refresh_token or expires_in");
    }
    return { accessToken: tr.access_token, refreshToken: tr.refresh_token, accessExpiresAt: this.now() + tr.expires_in * 1000, accountId: tr.account_id };
  }

  private setTokens(t: Tokens | null): Tokens | null {
    this._tokens = t;
    try {
      if (t) this.storage?.setItem(this.key + ".tokens", JSON.stringify(t));
      else this.storage?.removeItem(this.key + ".tokens");
    } catch {
      // storage full or forbidden (private mode): the session lives in memory
    }
    this.onTokens?.(t);
    return t;
  }

  private loadTokens(): Tokens | null {
    let raw: string | null = null;
    try {
      raw = this.storage?.getItem(this.key + ".tokens") ?? null;
    } catch {
      return null;
    }
    if (!raw) return null;
    try {
      const t = JSON.parse(raw) as Partial<Tokens>;
      if (typeof t.accessToken === "string" && typeof t.refreshToken === "string" && typeof t.accessExpiresAt === "number" && typeof t.accountId === "string") {
        return { accessToken: t.accessToken, refreshToken: t.refreshToken, accessExpiresAt: t.accessExpiresAt, accountId: t.accountId };
      }
    } catch {
      // unreadable: ignore
    }
    return null;
  }

  private deviceId(): string {
    const k = this.key + ".device";
    let id: string | null = null;
    try {
      id = this.storage?.getItem(k) ?? null;
    } catch {
      // no storage: memory only
    }
    if (id && deviceIdPattern.test(id)) return id;
    if (this.memDevice) return this.memDevice;
    id = "web-" + randomHex(16, this.random);
    this.memDevice = id;
    try {
      this.storage?.setItem(k, id);
    } catch {
      // memory only
    }
    return id;
  }

  /** One HTTP exchange; token "" for none. */
  private async call<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const init: { method: string; headers: Record<string, string>; body?: string } = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (token) headers["Authorization"] = "Bearer " + token;
    let res: Awaited<ReturnType<FetchLike>>;
    let text: string;
    try {
      res = await this.fetchFn(this.baseURL + path, init);
      text = await res.text();
    } catch (e) {
      if (e instanceof ApiError) throw e;
      const why = e instanceof Error ? e.message : String(e);
      throw new ApiError(0, "network_error", `Cannot reach the server (${method} ${path}: ${why}).`, { cause: e });
    }
    if (res.status >= 400) throw errorOf(res, text);
    if (text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, "bad_response", `multijuego: ${method} ${path}: the answer is not JSON`);
    }
  }
}

function errorOf(res: { status: number; headers: { get(name: string): string | null } }, text: string): ApiError {
  let code = "http_" + res.status;
  let message = `HTTP ${res.status}`;
  let field: string | undefined;
  let requestId: string | undefined;
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown; field?: unknown; request_id?: unknown } }).error;
    if (e && typeof e.code === "string" && e.code !== "") {
      code = e.code;
      if (typeof e.message === "string") message = e.message;
      if (typeof e.field === "string") field = e.field;
      if (typeof e.request_id === "string") requestId = e.request_id;
    }
  } catch {
    // not the API's error shape (a proxy's page): keep the status
  }
  const extra: { field?: string; requestId?: string; retryAfterMs?: number } = {};
  if (field) extra.field = field;
  if (requestId) extra.requestId = requestId;
  const ra = Number(res.headers.get("Retry-After") ?? "");
  if (Number.isFinite(ra) && ra > 0) extra.retryAfterMs = ra * 1000;
  return new ApiError(res.status, code, message, extra);
}

function noSession(): ApiError {
  return new ApiError(401, "unauthenticated", "Not logged in.");
}

function checkBaseURL(u: string): string {
  if (typeof u !== "string") throw new TypeError("multijuego: baseURL must be a string");
  const s = u.replace(/\/+$/, "");
  if (s !== "" && !/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(s)) {
    throw new TypeError(`multijuego: baseURL must be "" (same origin) or http(s)://HOST[:PORT][/PATH], got ${JSON.stringify(u)}`);
  }
  return s;
}

function defaultStorage(): StorageLike | null {
  try {
    const ls = (globalThis as { localStorage?: StorageLike }).localStorage;
    return ls && typeof ls.getItem === "function" ? ls : null;
  } catch {
    return null; // access denied (sandboxed frame)
  }
}

function seg(s: string): string {
  if (typeof s !== "string" || s === "") throw new TypeError("multijuego: an id in a path must be a non-empty string");
  return encodeURIComponent(s);
}

function query(q: Record<string, string | number | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && v !== "") parts.push(`${k}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? "?" + parts.join("&") : "";
}

function randomHex(nBytes: number, random: () => number): string {
  const b = new Uint8Array(nBytes);
  const c = (globalThis as { crypto?: { getRandomValues?(a: Uint8Array): Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < nBytes; i++) b[i] = Math.floor(random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
