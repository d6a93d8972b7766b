import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { ApiError, Client, encodeFrame, type DisconnectInfo, type Frame, type Realtime, type RealtimeOptions, type ReconnectInfo, type ServerEvent } from "../src/index.js";
import { FakeServer, FakeSocket, FakeTime, flush, MemoryStorage, tokenBody } from "./fakes.js";

let server: FakeServer;
let time: FakeTime;
let tickets: number;
let randomValue: number;

function client(): Client {
  const c = new Client("http://game.test:8080", {
    fetch: server.fetch,
    WebSocket: FakeSocket,
    storage: new MemoryStorage(),
    now: time.now,
    timers: time,
    random: () => randomValue,
  });
  c.tokens = { accessToken: "at0", refreshToken: "rt0", accessExpiresAt: time.nowMs + 15 * 60_000, accountId: "acc1" };
  return c;
}

/** Records every event a socket emits. */
function record(rt: Realtime) {
  const log = { frames: [] as Frame[], events: [] as ServerEvent[], errors: [] as ApiError[], disconnects: [] as DisconnectInfo[], reconnects: [] as ReconnectInfo[] };
  rt.on("frame", (f) => log.frames.push(f));
  rt.on("event", (e) => log.events.push(e));
  rt.on("error", (e) => log.errors.push(e));
  rt.on("disconnect", (d) => log.disconnects.push(d));
  rt.on("reconnect", (r) => log.reconnects.push(r));
  return log;
}

/** Connects, opening the socket the dial made. */
async function connect(c: Client, opts?: RealtimeOptions): Promise<Realtime> {
  const p = c.connect(opts);
  await flush();
  FakeSocket.last().open();
  return p;
}

/** Answers the last request sent on ws. */
function answer(ws: FakeSocket, type: string, payload: unknown): void {
  ws.receiveJSON(type, ws.lastEnvelope().cid!, payload);
}

/** Joins m1 with resume token mjs_1. */
async function joinM1(rt: Realtime): Promise<void> {
  const ws = FakeSocket.last();
  const p = rt.join("m1");
  answer(ws, "match.joined", { match_id: "m1", resume_token: "mjs_1" });
  assert.equal(await p, "mjs_1");
}

/** Runs the pending reconnection timer, then lets the dial's fetches finish. */
async function fireReconnect(): Promise<number> {
  const n = time.next();
  assert.ok(n, "a reconnection is scheduled");
  time.advance(n.at - time.nowMs);
  await flush();
  return n.ms;
}

beforeEach(() => {
  server = new FakeServer();
  time = new FakeTime();
  tickets = 0;
  randomValue = 0;
  FakeSocket.reset();
  server.route("POST /v1/realtime/tickets", () => ({ status: 201, body: { ticket: `mjt_${++tickets}`, expires_in: 30 } }));
  server.route("POST /v1/auth/refresh", () => tokenBody(1));
});

describe("connecting", () => {
  test("ticket auth: a fresh ticket in the URL, multijuego.v1 offered, binary as ArrayBuffer", async () => {
    const rt = await connect(client());
    const ws = FakeSocket.last();
    assert.equal(ws.url, "ws://game.test:8080/v1/realtime?ticket=mjt_1");
    assert.deepEqual(ws.protocols, ["multijuego.v1"]);
    assert.equal(ws.binaryType, "arraybuffer");
    assert.equal(server.requests[0]!.headers["Authorization"], "Bearer at0");
    assert.ok(rt.connected);
  });

  test("subprotocol auth: the access token as multijuego.bearer.<token>, no ticket", async () => {
    await connect(client(), { auth: "subprotocol" });
    assert.deepEqual(FakeSocket.last().protocols, ["multijuego.v1", "multijuego.bearer.at0"]);
    assert.equal(FakeSocket.last().url, "ws://game.test:8080/v1/realtime");
    assert.equal(server.requests.length, 0);
  });

  test("https becomes wss", () => {
    assert.equal(new Client("https://play.example", { fetch: server.fetch }).realtimeURL(), "wss://play.example/v1/realtime");
  });

  test("a first connection that fails rejects, with no retry", async () => {
    const p = client().connect();
    await flush();
    FakeSocket.last().serverClose(1006);
    await assert.rejects(p, (e: ApiError) => e.code === "network_error" && /close code 1006/.test(e.message));
    assert.equal(time.timers.size, 0);
  });

  test("a refused ticket rejects with the server's error", async () => {
    server.route("POST /v1/realtime/tickets", () => ({ status: 403, body: { error: { code: "banned", message: "This account is banned." } } }));
    await assert.rejects(client().connect(), (e: ApiError) => e.status === 403 && e.code === "banned");
  });

  test("no WebSocket implementation is a clear error", async () => {
    const c = new Client("http://game.test", { fetch: server.fetch, storage: null, WebSocket: undefined });
    c.tokens = { accessToken: "a", refreshToken: "r", accessExpiresAt: Date.now() + 600_000, accountId: "x" };
    if (!("WebSocket" in globalThis)) await assert.rejects(c.connect(), /pass ClientOptions.WebSocket/);
  });
});

describe("requests and messages", () => {
  test("answers are matched to requests by cid, whatever their order", async () => {
    const rt = await connect(client());
    const ws = FakeSocket.last();
    const list = rt.listMatches("arena");
    const create = rt.createMatch("tictactoe", { x: "1" });
    const [e1, e2] = ws.envelopes();
    assert.deepEqual(e1, { type: "match.list", cid: "1", payload: { mode: "arena" } });
    assert.deepEqual(e2, { type: "match.create", cid: "2", payload: { mode: "tictactoe", params: { x: "1" } } });
    ws.receiveJSON("match.created", "2", { match_id: "m9", mode: "tictactoe" });
    ws.receiveJSON("match.list", "1", { matches: [{ match_id: "m1" }] });
    assert.equal((await create).match_id, "m9");
    assert.deepEqual(await list, [{ match_id: "m1" }]);
  });

  test("join keeps the match and resume token; leave and match.closed forget them", async () => {
    const rt = await connect(client());
    const ws = FakeSocket.last();
    const log = record(rt);
    await joinM1(rt);
    assert.equal(rt.matchId, "m1");
    assert.equal(rt.resumeToken, "mjs_1");
    const left = rt.leave();
    assert.deepEqual(ws.lastEnvelope(), { type: "match.leave", cid: "2" });
    answer(ws, "match.left", { match_id: "m1" });
    await left;
    assert.equal(rt.matchId, null);
    await joinM1(rt);
    ws.receiveJSON("match.closed", "", { match_id: "m1", reason: "match_ended" });
    assert.equal(rt.matchId, null);
    assert.equal(rt.resumeToken, null);
    assert.deepEqual(log.events.map((e) => e.type), ["match.joined", "match.left", "match.joined", "match.closed"]);
    const closed = log.events[3]!;
    assert.ok(closed.type === "match.closed" && closed.payload.reason === "match_ended");
  });

  test("an error answer rejects its request with the server's code and field", async () => {
    const rt = await connect(client());
    const p = rt.join("nope");
    answer(FakeSocket.last(), "error", { code: "not_found", message: "No such match, or it has ended.", field: "match_id" });
    await assert.rejects(p, (e: ApiError) => e instanceof ApiError && e.status === 0 && e.code === "not_found" && e.field === "match_id" && e.message === "No such match, or it has ended.");
  });

  test("errors without a request (a refused input) are error events", async () => {
    const rt = await connect(client());
    const log = record(rt);
    FakeSocket.last().receiveJSON("error", "", { code: "invalid_argument", field: "op", message: "This match's game accepts no input with op code 77; the input was dropped." });
    assert.equal(log.errors.length, 1);
    assert.equal(log.errors[0]!.field, "op");
  });

  test("session.started sets the session id", async () => {
    const rt = await connect(client());
    FakeSocket.last().receiveJSON("session.started", "", { session_id: "s1", account_id: "acc1" });
    assert.equal(rt.sessionId, "s1");
  });

  test("binary messages are frames; undecodable ones are errors and the socket goes on", async () => {
    const rt = await connect(client());
    const log = record(rt);
    const ws = FakeSocket.last();
    ws.receive(encodeFrame({ op: 2, tick: 42, matchId: "m1", data: new Uint8Array([1, 2, 3]) }));
    ws.receive(new Uint8Array([9, 9]));
    ws.receive("not json");
    ws.receive(encodeFrame({ op: 2, tick: 43, matchId: "m1" }));
    assert.deepEqual(log.frames.map((f) => [f.op, f.tick, f.matchId, [...f.data]]), [
      [2, 42, "m1", [1, 2, 3]],
      [2, 43, "m1", []],
    ]);
    assert.deepEqual(log.errors.map((e) => e.code), ["bad_message", "bad_message"]);
    assert.match(log.errors[0]!.message, /12-byte header/);
    assert.ok(rt.connected);
  });

  test("send writes a binary input; it refuses bad op codes and reports false while disconnected", async () => {
    const rt = await connect(client(), { reconnect: false });
    const ws = FakeSocket.last();
    assert.equal(rt.send(1, new Uint8Array([4])), true);
    assert.deepEqual([...new Uint8Array(ws.sent[0] as ArrayBuffer)], [1, 0, 4]);
    assert.throws(() => rt.send(0xff00, new Uint8Array()), RangeError);
    ws.serverClose(1006);
    assert.equal(rt.send(1, new Uint8Array([4])), false);
  });

  test("echo returns the payload", async () => {
    const rt = await connect(client());
    const p = rt.echo({ sent_ms: 5 });
    answer(FakeSocket.last(), "echo", { sent_ms: 5 });
    assert.deepEqual(await p, { sent_ms: 5 });
  });

  test("a request with no answer times out", async () => {
    const rt = await connect(client(), { requestTimeoutMs: 2000 });
    const p = rt.listMatches();
    time.advance(2000);
    await assert.rejects(p, (e: ApiError) => e.code === "timeout" && /match.list within 2000 ms/.test(e.message));
  });

  test("a listener that throws does not stop the others; its error is rethrown apart", async () => {
    const rt = await connect(client());
    let got = 0;
    const rethrown: unknown[] = [];
    const real = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (fn) => {
      try {
        fn();
      } catch (e) {
        rethrown.push(e);
      }
    };
    try {
      rt.on("event", () => {
        throw new Error("listener bug");
      });
      const off = rt.on("event", () => got++);
      FakeSocket.last().receiveJSON("session.started", "", { session_id: "s", account_id: "a" });
      off();
      FakeSocket.last().receiveJSON("session.started", "", { session_id: "s", account_id: "a" });
    } finally {
      globalThis.queueMicrotask = real;
    }
    assert.equal(got, 1);
    assert.deepEqual(rethrown.map((e) => (e as Error).message), ["listener bug", "listener bug"]);
  });
});

describe("reconnection", () => {
  test("a drop reconnects with a new ticket and resumes the match with the last resume token", async () => {
    const rt = await connect(client());
    const log = record(rt);
    await joinM1(rt);
    const pending = rt.listMatches();
    FakeSocket.last().serverClose(1006);
    await assert.rejects(pending, (e: ApiError) => e.code === "disconnected");
    assert.deepEqual(log.disconnects, [{ code: 1006, reason: "", willReconnect: true }]);
    assert.equal(rt.connected, false);
    assert.equal(rt.matchId, "m1", "the seat is kept while reconnecting");

    const delay = await fireReconnect();
    assert.equal(delay, 500);
    assert.equal(FakeSocket.all.length, 2);
    const ws2 = FakeSocket.last();
    assert.equal(ws2.url, "ws://game.test:8080/v1/realtime?ticket=mjt_2");
    ws2.open();
    await flush();
    assert.deepEqual(ws2.lastEnvelope(), { type: "match.resume", cid: "3", payload: { resume_token: "mjs_1" } });
    assert.equal(log.reconnects.length, 0, "reconnect waits for the resume");
    // the game sends the returning player its state before the answer
    ws2.receive(encodeFrame({ op: 2, tick: 9, matchId: "m1" }));
    answer(ws2, "match.joined", { match_id: "m1", resume_token: "mjs_2" });
    await flush();
    assert.deepEqual(log.reconnects, [{ matchId: "m1", resumed: true }]);
    assert.equal(rt.resumeToken, "mjs_2");
    assert.equal(log.frames.length, 1);
    assert.ok(rt.connected);
  });

  test("not in a match: reconnects without resuming", async () => {
    const rt = await connect(client());
    const log = record(rt);
    FakeSocket.last().serverClose(1001, "going away");
    await fireReconnect();
    FakeSocket.last().open();
    await flush();
    assert.deepEqual(log.reconnects, [{ matchId: null, resumed: false }]);
    assert.equal(FakeSocket.last().sent.length, 0);
  });

  test("a seat lost during the drop: reconnect says so and the error is reported", async () => {
    const rt = await connect(client());
    const log = record(rt);
    await joinM1(rt);
    FakeSocket.last().serverClose(1006);
    await fireReconnect();
    const ws2 = FakeSocket.last();
    ws2.open();
    await flush();
    answer(ws2, "error", { code: "not_found", field: "resume_token", message: "The resume token is unknown or expired." });
    await flush();
    assert.deepEqual(log.reconnects, [{ matchId: null, resumed: false }]);
    assert.equal(rt.matchId, null);
    assert.deepEqual(log.errors.map((e) => e.code), ["not_found"]);
  });

  test("backoff doubles up to the cap, then gives up after maxAttempts", async () => {
    const rt = await connect(client(), { initialDelayMs: 100, maxDelayMs: 1000, maxAttempts: 6 });
    const log = record(rt);
    FakeSocket.last().serverClose(1006);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      delays.push(await fireReconnect());
      FakeSocket.last().serverClose(1006); // the attempt fails before opening
      await flush();
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    assert.equal(FakeSocket.all.length, 7);
    assert.equal(time.next(), undefined, "no attempt after the last");
    assert.deepEqual(log.disconnects, [
      { code: 1006, reason: "", willReconnect: true },
      { code: 1006, reason: "gave up reconnecting after 6 attempt(s)", willReconnect: false },
    ]);
    assert.equal(rt.matchId, null);
  });

  test("jitter draws each delay within [d × (1 − jitter), d]", async () => {
    randomValue = 0.999;
    const rt = await connect(client(), { initialDelayMs: 1000, maxDelayMs: 8000, jitter: 0.4 });
    record(rt);
    FakeSocket.last().serverClose(1006);
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      delays.push(await fireReconnect());
      FakeSocket.last().serverClose(1006);
      await flush();
    }
    const bases = [1000, 2000, 4000, 8000, 8000];
    delays.forEach((d, i) => assert.ok(d >= bases[i]! * 0.6 && d <= bases[i]!, `attempt ${i}: ${d} not in [${bases[i]! * 0.6}, ${bases[i]}]`));
    assert.deepEqual(delays, [600, 1201, 2402, 4803, 4803]); // d × (1 − 0.4 × 0.999)
  });

  test("a successful reconnection resets the backoff", async () => {
    const rt = await connect(client());
    record(rt);
    FakeSocket.last().serverClose(1006);
    assert.equal(await fireReconnect(), 500);
    FakeSocket.last().serverClose(1006);
    await flush();
    assert.equal(await fireReconnect(), 1000);
    FakeSocket.last().open();
    await flush();
    FakeSocket.last().serverClose(1006);
    assert.equal(await fireReconnect(), 500);
  });

  test("close() ends it: no reconnection, one final disconnect", async () => {
    const rt = await connect(client());
    const log = record(rt);
    const ws = FakeSocket.last();
    rt.close();
    assert.deepEqual(ws.closedWith, { code: 1000, reason: "client closed" });
    assert.deepEqual(log.disconnects, [{ code: 1000, reason: "closed by client", willReconnect: false }]);
    ws.serverClose(1000); // the browser's close event comes later: ignored
    assert.equal(time.timers.size, 0);
    assert.equal(FakeSocket.all.length, 1);
    await assert.rejects(rt.listMatches(), (e: ApiError) => e.code === "not_connected");
  });

  test("close() while waiting to reconnect cancels the attempt", async () => {
    const rt = await connect(client());
    const log = record(rt);
    FakeSocket.last().serverClose(1006);
    rt.close();
    time.advance(60_000);
    await flush();
    assert.equal(FakeSocket.all.length, 1);
    assert.deepEqual(log.disconnects.map((d) => d.willReconnect), [true, false]);
  });

  for (const [code, why] of [
    [4001, "replaced by a newer connection"],
    [4002, "session revoked"],
    [4003, "banned"],
  ] as const) {
    test(`no reconnection after close code ${code} (${why})`, async () => {
      const rt = await connect(client());
      const log = record(rt);
      await joinM1(rt);
      FakeSocket.last().serverClose(code, why);
      assert.deepEqual(log.disconnects, [{ code, reason: why, willReconnect: false }]);
      assert.equal(time.next(), undefined);
      assert.equal(rt.matchId, null);
    });
  }

  test("close code 4004 (token expired): refreshes the token, reconnects and resumes", async () => {
    const rt = await connect(client()); // the client's clock says at0 is good for 15 min
    const log = record(rt);
    await joinM1(rt);
    FakeSocket.last().serverClose(4004, "access token expired");
    assert.deepEqual(log.disconnects, [{ code: 4004, reason: "access token expired", willReconnect: true }]);
    const before = server.requests.length;
    await fireReconnect();
    assert.deepEqual(server.log().slice(before), ["POST /v1/auth/refresh", "POST /v1/realtime/tickets"]);
    assert.equal(server.requests.at(-1)!.headers["Authorization"], "Bearer at1");
    const ws2 = FakeSocket.last();
    ws2.open();
    await flush();
    assert.deepEqual(ws2.lastEnvelope().payload, { resume_token: "mjs_1" });
    answer(ws2, "match.joined", { match_id: "m1", resume_token: "mjs_2" });
    await flush();
    assert.deepEqual(log.reconnects, [{ matchId: "m1", resumed: true }]);
  });

  test("shouldReconnect overrides the default", async () => {
    const rt = await connect(client(), { shouldReconnect: (code) => code !== 1001 });
    const log = record(rt);
    FakeSocket.last().serverClose(1001);
    assert.equal(log.disconnects[0]!.willReconnect, false);
  });

  test("reconnect: false never reconnects", async () => {
    const rt = await connect(client(), { reconnect: false });
    const log = record(rt);
    FakeSocket.last().serverClose(1006);
    assert.equal(log.disconnects[0]!.willReconnect, false);
    assert.equal(time.next(), undefined);
  });

  test("an access token near expiry is refreshed before the reconnection's ticket", async () => {
    const c = client();
    const rt = await connect(c);
    record(rt);
    time.nowMs = c.tokens!.accessExpiresAt - 1000; // the access token has a second left
    FakeSocket.last().serverClose(1006);
    await fireReconnect();
    assert.deepEqual(server.log(), ["POST /v1/realtime/tickets", "POST /v1/auth/refresh", "POST /v1/realtime/tickets"]);
    assert.equal(server.requests[2]!.headers["Authorization"], "Bearer at1");
  });

  test("subprotocol auth offers the refreshed token on reconnection", async () => {
    const c = client();
    const rt = await connect(c, { auth: "subprotocol" });
    record(rt);
    time.nowMs = c.tokens!.accessExpiresAt + 1;
    FakeSocket.last().serverClose(1006);
    await fireReconnect();
    assert.deepEqual(FakeSocket.last().protocols, ["multijuego.v1", "multijuego.bearer.at1"]);
  });

  test("a session that is over (refresh refused) stops reconnection with the error", async () => {
    const c = client();
    const rt = await connect(c);
    const log = record(rt);
    server.route("POST /v1/auth/refresh", () => ({ status: 401, body: { error: { code: "unauthenticated", message: "Session revoked." } } }));
    time.nowMs = c.tokens!.accessExpiresAt + 1;
    FakeSocket.last().serverClose(1006);
    await fireReconnect();
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(time.next(), undefined);
    assert.deepEqual(log.errors.map((e) => e.message), ["Session revoked."]);
    assert.deepEqual(log.disconnects.map((d) => d.willReconnect), [true, false]);
  });

  test("a server that is down keeps being retried; Retry-After is honoured", async () => {
    const rt = await connect(client());
    record(rt);
    server.down = true;
    FakeSocket.last().serverClose(1006);
    assert.equal(await fireReconnect(), 500);
    assert.equal(await fireReconnect(), 1000);
    server.down = false;
    server.route("POST /v1/realtime/tickets", () => ({ status: 503, headers: { "Retry-After": "7" }, body: { error: { code: "unavailable", message: "Try again shortly." } } }));
    assert.equal(await fireReconnect(), 2000);
    assert.equal(await fireReconnect(), 7000);
  });

  test("a handshake that never completes times out and is retried", async () => {
    const rt = await connect(client(), { requestTimeoutMs: 3000 });
    record(rt);
    FakeSocket.last().serverClose(1006);
    await fireReconnect();
    const stuck = FakeSocket.last();
    time.advance(3000);
    await flush();
    assert.ok(stuck.closedWith, "the stuck socket is closed");
    assert.ok(time.next(), "another attempt is scheduled");
  });

  test("a drop during the resume is followed by another attempt that resumes again", async () => {
    const rt = await connect(client());
    const log = record(rt);
    await joinM1(rt);
    FakeSocket.last().serverClose(1006);
    await fireReconnect();
    FakeSocket.last().open();
    await flush();
    FakeSocket.last().serverClose(1006); // before the resume's answer
    await flush();
    assert.equal(log.reconnects.length, 0);
    await fireReconnect();
    const ws3 = FakeSocket.last();
    ws3.open();
    await flush();
    assert.deepEqual(ws3.lastEnvelope().payload, { resume_token: "mjs_1" });
    answer(ws3, "match.joined", { match_id: "m1", resume_token: "mjs_3" });
    await flush();
    assert.deepEqual(log.reconnects, [{ matchId: "m1", resumed: true }]);
  });
});
