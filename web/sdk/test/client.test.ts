import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { ApiError, Client, type Tokens } from "../src/index.js";
import { FakeServer, FakeTime, MemoryStorage, tokenBody } from "./fakes.js";

let server: FakeServer;
let time: FakeTime;
let storage: MemoryStorage;

function client(opts: { storage?: MemoryStorage | null } = {}): Client {
  return new Client("http://game.test:8080/", {
    fetch: server.fetch,
    storage: opts.storage === undefined ? storage : opts.storage,
    now: time.now,
    timers: time,
  });
}

beforeEach(() => {
  server = new FakeServer();
  time = new FakeTime();
  storage = new MemoryStorage();
});

describe("sessions", () => {
  test("register posts the fields, keeps the tokens with an absolute expiry, persists them", async () => {
    server.route("POST /v1/auth/register", () => ({ ...tokenBody(1), status: 201 }));
    const c = client();
    const t = await c.register("ana", "ana@example.com", "correct horse");
    assert.deepEqual(server.requests[0]!.body, { username: "ana", email: "ana@example.com", password: "correct horse" });
    assert.equal(server.requests[0]!.headers["Content-Type"], "application/json");
    assert.equal(server.requests[0]!.headers["Authorization"], undefined);
    assert.deepEqual(t, { accessToken: "at1", refreshToken: "rt1", accessExpiresAt: time.nowMs + 900_000, accountId: "acc1" });
    assert.deepEqual(c.tokens, t);
    assert.deepEqual(JSON.parse(storage.getItem("multijuego.tokens")!), t);
    // a new client on the same storage resumes the session
    assert.deepEqual(client().tokens, t);
  });

  test("login sends an email as email and anything else as username", async () => {
    server.route("POST /v1/auth/login", () => tokenBody(1));
    const c = client();
    await c.login("ana@example.com", "pw");
    await c.login("ana", "pw");
    assert.deepEqual(server.requests.map((r) => r.body), [
      { email: "ana@example.com", password: "pw" },
      { username: "ana", password: "pw" },
    ]);
  });

  test("oidc sends the external token, and the issuer when named", async () => {
    server.route("POST /v1/auth/oidc", () => ({ ...tokenBody(1), status: 201 }));
    const c = client();
    const t = await c.oidc("id.token.sig");
    await c.oidc("id.token.sig", "cognito");
    assert.deepEqual(server.requests.map((r) => r.body), [{ token: "id.token.sig" }, { token: "id.token.sig", issuer: "cognito" }]);
    assert.equal(t.accountId, "acc1");
    assert.deepEqual(c.tokens, t);
  });

  test("guest makes one valid device id, keeps it in storage and reuses it", async () => {
    server.route("POST /v1/auth/device", () => ({ ...tokenBody(1), status: 201 }));
    await client().guest();
    await client().guest();
    const ids = server.requests.map((r) => r.body.device_id as string);
    assert.match(ids[0]!, /^[A-Za-z0-9_.:-]{10,128}$/);
    assert.equal(ids[1], ids[0]);
    assert.equal(storage.getItem("multijuego.device"), ids[0]);
    // without storage a client keeps its id in memory; another client gets another
    const mem = client({ storage: null });
    await mem.guest();
    await mem.guest();
    await client({ storage: null }).guest();
    const more = server.requests.slice(2).map((r) => r.body.device_id);
    assert.equal(more[0], more[1]);
    assert.notEqual(more[2], more[0]);
  });

  test("logout calls the server and forgets the tokens, not the device id", async () => {
    server.route("POST /v1/auth/device", () => tokenBody(1)).route("POST /v1/auth/logout", () => ({ status: 204 }));
    const c = client();
    await c.guest();
    await c.logout();
    assert.equal(c.tokens, null);
    assert.equal(storage.getItem("multijuego.tokens"), null);
    assert.notEqual(storage.getItem("multijuego.device"), null);
    assert.equal(server.requests[1]!.headers["Authorization"], "Bearer at1");
    await c.logout(); // no session: nothing to do
    assert.equal(server.requests.length, 2);
  });

  test("setting tokens resumes a saved session and persists it", async () => {
    const c = client();
    const t: Tokens = { accessToken: "a", refreshToken: "r", accessExpiresAt: time.nowMs + 60_000, accountId: "x" };
    c.tokens = t;
    assert.deepEqual(JSON.parse(storage.getItem("multijuego.tokens")!), t);
    c.tokens = null;
    assert.equal(storage.getItem("multijuego.tokens"), null);
  });

  test("unreadable stored tokens are ignored", () => {
    storage.setItem("multijuego.tokens", "{not json");
    assert.equal(client().tokens, null);
    storage.setItem("multijuego.tokens", JSON.stringify({ accessToken: 1 }));
    assert.equal(client().tokens, null);
  });
});

describe("automatic refresh", () => {
  function withSession(expiresInMs: number): Client {
    const c = client();
    c.tokens = { accessToken: "at0", refreshToken: "rt0", accessExpiresAt: time.nowMs + expiresInMs, accountId: "acc1" };
    return c;
  }

  test("a fresh token is used as it is", async () => {
    server.route("GET /v1/account", () => ({ status: 200, body: { id: "acc1" } }));
    const c = withSession(10 * 60_000);
    assert.equal((await c.account()).id, "acc1");
    assert.deepEqual(server.log(), ["GET /v1/account"]);
    assert.equal(server.requests[0]!.headers["Authorization"], "Bearer at0");
  });

  test("a token within 30 s of expiry is refreshed before the call", async () => {
    server.route("POST /v1/auth/refresh", () => tokenBody(1)).route("GET /v1/account", () => ({ status: 200, body: { id: "acc1" } }));
    const c = withSession(20_000);
    await c.account();
    assert.deepEqual(server.log(), ["POST /v1/auth/refresh", "GET /v1/account"]);
    assert.deepEqual(server.requests[0]!.body, { refresh_token: "rt0" });
    assert.equal(server.requests[1]!.headers["Authorization"], "Bearer at1");
    assert.equal(c.tokens!.refreshToken, "rt1");
  });

  test("concurrent calls share one refresh", async () => {
    let n = 0;
    server.route("POST /v1/auth/refresh", () => tokenBody(++n)).route("GET /v1/matches", () => ({ status: 200, body: { matches: [] } }));
    const c = withSession(0);
    await Promise.all([c.listMatches(), c.listMatches("arena"), c.listMatches("arena", "waiting"), c.refresh()]);
    assert.equal(n, 1);
    assert.deepEqual(server.log().filter((l) => l.startsWith("GET")).sort(), [
      "GET /v1/matches",
      "GET /v1/matches?mode=arena",
      "GET /v1/matches?mode=arena&label=waiting",
    ]);
  });

  test("a 401 is refreshed and retried once", async () => {
    let calls = 0;
    server
      .route("POST /v1/auth/refresh", () => tokenBody(1))
      .route("GET /v1/account", (r) => (++calls === 1 ? { status: 401, body: { error: { code: "unauthenticated", message: "Token expired." } } } : { status: 200, body: { id: r.headers["Authorization"] } }));
    const c = withSession(10 * 60_000);
    assert.equal((await c.account()).id, "Bearer at1");
    assert.deepEqual(server.log(), ["GET /v1/account", "POST /v1/auth/refresh", "GET /v1/account"]);
  });

  test("a second 401 is the caller's error; a refused refresh ends the session", async () => {
    server
      .route("POST /v1/auth/refresh", () => ({ status: 401, body: { error: { code: "unauthenticated", message: "Refresh token reused." } } }))
      .route("GET /v1/account", () => ({ status: 401, body: { error: { code: "unauthenticated", message: "Token revoked." } } }));
    const c = withSession(10 * 60_000);
    await assert.rejects(c.account(), (e: ApiError) => e.status === 401 && e.message === "Token revoked.");
    assert.equal(c.tokens, null);
    await assert.rejects(c.account(), (e: ApiError) => e.code === "unauthenticated" && e.message === "Not logged in.");
  });

  test("tokens another tab rotated are adopted instead of refreshing with a spent refresh token", async () => {
    server.route("GET /v1/account", (r) => ({ status: 200, body: { id: r.headers["Authorization"] } }));
    const c = withSession(0);
    // the other tab refreshed: storage holds the new pair
    storage.setItem("multijuego.tokens", JSON.stringify({ accessToken: "other", refreshToken: "rt9", accessExpiresAt: time.nowMs + 600_000, accountId: "acc1" }));
    assert.equal((await c.account()).id, "Bearer other");
    assert.deepEqual(server.log(), ["GET /v1/account"]);
  });
});

describe("errors", () => {
  test("the API's error body becomes an ApiError with code, field, request id and Retry-After", async () => {
    server.route("POST /v1/auth/register", () => ({
      status: 429,
      headers: { "Retry-After": "3" },
      body: { error: { code: "rate_limited", message: "Slow down.", field: "username", request_id: "req-1" } },
    }));
    await assert.rejects(client().register("a", "", "b"), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.deepEqual(
        { status: e.status, code: e.code, message: e.message, field: e.field, requestId: e.requestId, retryAfterMs: e.retryAfterMs },
        { status: 429, code: "rate_limited", message: "Slow down.", field: "username", requestId: "req-1", retryAfterMs: 3000 },
      );
      return true;
    });
  });

  test("an error that is not the API's shape keeps its status", async () => {
    server.route("POST /v1/auth/login", () => ({ status: 502, body: "<html>Bad gateway</html>" }));
    await assert.rejects(client().login("a", "b"), (e: ApiError) => e.status === 502 && e.code === "http_502");
  });

  test("an unreachable server is network_error, status 0", async () => {
    server.down = true;
    await assert.rejects(client().guest(), (e: ApiError) => e instanceof ApiError && e.status === 0 && e.code === "network_error" && /Cannot reach the server/.test(e.message));
  });

  test("a success that is not JSON is bad_response", async () => {
    server.route("POST /v1/auth/login", () => ({ status: 200, body: "<html>" }));
    await assert.rejects(client().login("a", "b"), (e: ApiError) => e.code === "bad_response");
    server.route("POST /v1/auth/device", () => ({ status: 200, body: { hello: 1 } }));
    await assert.rejects(client().device("0123456789"), (e: ApiError) => e.code === "bad_response" && /access_token/.test(e.message));
  });

  test("calls without a session fail before any request", async () => {
    await assert.rejects(client().account(), (e: ApiError) => e.status === 401 && e.code === "unauthenticated");
    assert.equal(server.requests.length, 0);
  });

  test("bad arguments are refused with a message that says what is wrong", async () => {
    assert.throws(() => new Client("game.test"), /baseURL must be "" \(same origin\) or http\(s\)/);
    assert.throws(() => new Client("ftp://x"), /baseURL/);
    assert.doesNotThrow(() => new Client("", { fetch: server.fetch }));
    const c = client();
    c.tokens = { accessToken: "a", refreshToken: "r", accessExpiresAt: time.nowMs + 600_000, accountId: "x" };
    await assert.rejects(c.request("GET", "v1/account"), /must start with "\/"/);
    assert.throws(() => c.getMatch(""), /non-empty string/);
  });
});

describe("API calls", () => {
  test("paths, queries and bodies", async () => {
    for (const k of ["POST /v1/matches", "GET /v1/players/me/matches", "GET /v1/leaderboards/arena_wins", "GET /v1/leaderboards/arena_wins/around/me", "GET /v1/leaderboards", "POST /v1/admin/accounts/a1/ban"]) {
      server.route(k, () => ({ status: 200, body: { leaderboards: [], records: [] } }));
    }
    server.route("GET /v1/matches/m%201", () => ({ status: 200, body: { live: true, match: {} } }));
    const c = client();
    c.tokens = { accessToken: "a", refreshToken: "r", accessExpiresAt: time.nowMs + 600_000, accountId: "x" };
    await c.createMatch("arena", { max_players: "4" });
    await c.getMatch("m 1");
    await c.playerMatches("me", { before: "cur/1", limit: 5 });
    await c.leaderboard("arena_wins", 3);
    await c.leaderboardAround("arena_wins", "me", 2);
    await c.leaderboards();
    await c.request("POST", "/v1/admin/accounts/a1/ban", { reason: "cheating" });
    assert.deepEqual(server.log(), [
      "POST /v1/matches",
      "GET /v1/matches/m%201",
      "GET /v1/players/me/matches?before=cur%2F1&limit=5",
      "GET /v1/leaderboards/arena_wins?limit=3",
      "GET /v1/leaderboards/arena_wins/around/me?n=2",
      "GET /v1/leaderboards",
      "POST /v1/admin/accounts/a1/ban",
    ]);
    assert.deepEqual(server.requests[0]!.body, { mode: "arena", params: { max_players: "4" } });
    assert.deepEqual(server.requests[6]!.body, { reason: "cheating" });
    assert.ok(server.requests.every((r) => r.headers["Authorization"] === "Bearer a"));
  });

  test("an empty answer (204) is undefined", async () => {
    server.route("POST /v1/x", () => ({ status: 204 }));
    const c = client();
    c.tokens = { accessToken: "a", refreshToken: "r", accessExpiresAt: time.nowMs + 600_000, accountId: "x" };
    assert.equal(await c.request("POST", "/v1/x"), undefined);
  });
});
