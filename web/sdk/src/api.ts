// The JSON shapes of the HTTP API and of realtime messages, with the
// server's field names (docs/protocol.md, internal/gateway).

/** A session's credentials (what login, registration and refresh return). */
export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, ms since the epoch (client clock). */
  accessExpiresAt: number;
  accountId: string;
}

/** The logged-in account (GET /v1/account). */
export interface Account {
  id: string;
  username: string;
  email?: string;
  roles: string[];
  guest: boolean;
  /** How many devices log in to the account; device ids are credentials and never shown. */
  device_count: number;
  banned: boolean;
  ban_reason?: string;
  /** RFC 3339 time. */
  created_at: string;
  /** RFC 3339 time. */
  updated_at: string;
}

/** A live match (POST/GET /v1/matches, match.created, match.list). */
export interface MatchInfo {
  match_id: string;
  mode: string;
  label: string;
  tick_rate: number;
  players: number;
  max_players: number;
  open: boolean;
  /** RFC 3339 time. */
  created: string;
}

/** One player's result in a stored match. */
export interface MatchResult {
  account_id: string;
  placement: number;
  score: number;
  stats?: Record<string, number>;
}

/** A match as persistence stored it. */
export interface MatchRecord {
  match_id: string;
  mode: string;
  label: string;
  node: string;
  live: boolean;
  started_at: string;
  ended_at?: string;
  duration_ms?: number;
  end_reason?: string;
  results: MatchResult[];
}

/**
 * GET /v1/matches/{id}: the live match when the answering node runs it,
 * else its stored record (with results once it has ended).
 */
export type MatchLookup = { live: true; match: MatchInfo } | { live: false; match: MatchRecord };

/** A page of a player's matches, newest first; `next` is the cursor of the next page ("" at the end). */
export interface MatchPage {
  matches: MatchRecord[];
  next: string;
}

/** A leaderboard's definition (GET /v1/leaderboards). */
export interface LeaderboardInfo {
  id: string;
  mode: string;
  metric: string;
  operator: string;
  reset: string;
}

/** One leaderboard row. */
export interface LeaderboardRecord {
  rank: number;
  account_id: string;
  value: number;
  updated_at: string;
}

/** Rows of one leaderboard. */
export interface LeaderboardPage {
  leaderboard_id: string;
  records: LeaderboardRecord[];
}

/**
 * Why a player is out of a match (match.closed). Known values: match_ended,
 * kicked, rate_limited, replaced, match_error, shutdown, disconnected, left,
 * ended_by_operator; a newer server may send others.
 */
export type MatchCloseReason =
  | "match_ended"
  | "kicked"
  | "rate_limited"
  | "replaced"
  | "match_error"
  | "shutdown"
  | "disconnected"
  | "left"
  | "ended_by_operator"
  | (string & {});

/**
 * A JSON message from the server (every one but errors, which come as
 * "error" events or rejected promises). Answers to this client's own
 * requests are delivered here too, after the request's promise settles.
 * A newer server may send types not listed: keep a default case.
 */
export type ServerEvent =
  | { type: "session.started"; cid: string; payload: { session_id: string; account_id: string } }
  | { type: "match.created"; cid: string; payload: MatchInfo }
  | { type: "match.list"; cid: string; payload: { matches: MatchInfo[] } }
  | { type: "match.joined"; cid: string; payload: { match_id: string; resume_token: string } }
  | { type: "match.left"; cid: string; payload: { match_id: string } }
  | { type: "match.closed"; cid: string; payload: { match_id: string; reason: MatchCloseReason } }
  | { type: "echo"; cid: string; payload: unknown };
