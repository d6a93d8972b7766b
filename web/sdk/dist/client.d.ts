import type { Account, LeaderboardInfo, LeaderboardPage, MatchInfo, MatchLookup, MatchPage, Tokens } from "./api.js";
import { Realtime, type RealtimeOptions, type Timers, type WebSocketConstructor } from "./realtime.js";
/** The part of the Fetch API the SDK uses (the global fetch fits). */
export type FetchLike = (url: string, init: {
    method: string;
    headers: Record<string, string>;
    body?: string;
}) => Promise<{
    status: number;
    headers: {
        get(name: string): string | null;
    };
    text(): Promise<string>;
}>;
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
export declare const REFRESH_MARGIN_MS = 30000;
/**
 * A client of one multijuego server. It keeps the session's tokens (and
 * persists them in storage): an access token about to expire is refreshed
 * before a call, and a call refused with 401 is retried once after a
 * refresh. Concurrent refreshes share one request.
 */
export declare class Client {
    /** The server's base URL without trailing slash ("" for the page's own origin). */
    readonly baseURL: string;
    private readonly fetchFn;
    private readonly WS;
    private readonly storage;
    private readonly key;
    private readonly now;
    private readonly timers;
    private readonly random;
    private readonly onTokens;
    private _tokens;
    private refreshing;
    private memDevice;
    /**
     * @param baseURL the server, e.g. "http://127.0.0.1:8080"; "" means the
     *   origin of the page (browsers only).
     */
    constructor(baseURL: string, opts?: ClientOptions);
    /** The session's tokens, or null when logged out. Setting them resumes a saved session (and persists it). */
    get tokens(): Tokens | null;
    set tokens(t: Tokens | null);
    /** Creates a password account and logs in. email may be "". */
    register(username: string, email: string, password: string): Promise<Tokens>;
    /** Logs in with a username or an email address (anything with an @). */
    login(usernameOrEmail: string, password: string): Promise<Tokens>;
    /**
     * Logs in as the guest account of a device id (10–128 letters, digits and
     * - _ . :), creating it on first use.
     */
    device(deviceId: string): Promise<Tokens>;
    /**
     * Signs in with an ID token or access token of an identity provider the
     * server trusts (Amazon Cognito or any OpenID Connect issuer), creating an
     * account on the identity's first sign-in. `issuer` is the provider's name
     * in the server's configuration; left out, the token's `iss` says.
     */
    oidc(token: string, issuer?: string): Promise<Tokens>;
    /**
     * Logs in as this browser's guest: a device id made up on first use and
     * kept in storage, so the same guest comes back.
     */
    guest(): Promise<Tokens>;
    /** Exchanges the refresh token for a new pair now; concurrent calls share one request. */
    refresh(): Promise<Tokens>;
    /** Ends the session on the server and forgets the tokens (the guest device id stays). */
    logout(): Promise<void>;
    /** The logged-in account. */
    account(): Promise<Account>;
    /**
     * Makes an authenticated JSON call to the API (path from the root, e.g.
     * "/v1/admin/accounts?limit=10") and returns the parsed answer (undefined
     * for an empty one). Errors reject with ApiError.
     */
    request<T>(method: string, path: string, body?: unknown): Promise<T>;
    /** Starts a match of a game mode ("arena", "tictactoe") with mode-specific parameters. */
    createMatch(mode: string, params?: Record<string, string>): Promise<MatchInfo>;
    /** Lists open matches, of one mode and label when given. */
    listMatches(mode?: string, label?: string): Promise<MatchInfo[]>;
    /** A live match, or its stored record once it has ended. */
    getMatch(id: string): Promise<MatchLookup>;
    /** A player's stored matches, newest first ("me" for the caller). */
    playerMatches(playerId: string, opts?: {
        before?: string;
        limit?: number;
    }): Promise<MatchPage>;
    /** The leaderboards the server keeps. */
    leaderboards(): Promise<LeaderboardInfo[]>;
    /** A leaderboard's top rows (limit 1–100, server default 10). */
    leaderboard(id: string, limit?: number): Promise<LeaderboardPage>;
    /** The rows around a player ("me" for the caller), n above and below (0–50, server default 5). */
    leaderboardAround(id: string, playerId: string, n?: number): Promise<LeaderboardPage>;
    /**
     * Opens a realtime socket for the session. The first connection's failure
     * rejects; later drops reconnect (see RealtimeOptions).
     */
    connect(opts?: RealtimeOptions): Promise<Realtime>;
    /** The realtime endpoint's URL (ws: or wss:). */
    realtimeURL(): string;
    private dial;
    /** A usable access token, refreshed first when it is about to expire. */
    private accessToken;
    /**
     * A token other than stale: another tab's or caller's newer one if it is
     * still good, else a refreshed one.
     */
    private freshToken;
    private doRefresh;
    /**
     * Takes the tokens in storage when another tab of the same account
     * rotated them (refresh tokens are single-use: refreshing with ours would
     * end the session).
     */
    private adoptStored;
    private startSession;
    private tokensOf;
    private setTokens;
    private loadTokens;
    private deviceId;
    /** One HTTP exchange; token "" for none. */
    private call;
}
