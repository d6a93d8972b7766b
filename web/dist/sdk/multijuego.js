// multijuego client SDK (ES module). Generated from web/sdk/src by `go generate ./web`; do not edit.

// src/backoff.ts
var defaultBackoff = Object.freeze({ initialDelayMs: 500, maxDelayMs: 15e3, jitter: 0.5 });
function backoffDelay(attempt, b, random) {
  const base = Math.min(b.maxDelayMs, b.initialDelayMs * 2 ** Math.min(attempt, 30));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(base * (1 - b.jitter * r));
}
function checkBackoff(b) {
  const bad = (name, want, got) => new RangeError(`multijuego: RealtimeOptions.${name} must be ${want}, got ${String(got)}`);
  if (!(Number.isFinite(b.initialDelayMs) && b.initialDelayMs >= 0)) throw bad("initialDelayMs", "a number ≥ 0", b.initialDelayMs);
  if (!(Number.isFinite(b.maxDelayMs) && b.maxDelayMs >= b.initialDelayMs)) throw bad("maxDelayMs", "a number ≥ initialDelayMs", b.maxDelayMs);
  if (!(b.jitter >= 0 && b.jitter <= 1)) throw bad("jitter", "between 0 and 1", b.jitter);
}

// src/errors.ts
var ApiError = class extends Error {
  constructor(status, code, message, extra) {
    super(message, extra?.cause === void 0 ? void 0 : { cause: extra.cause });
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    if (extra?.field) this.field = extra.field;
    if (extra?.requestId) this.requestId = extra.requestId;
    if (extra?.retryAfterMs !== void 0) this.retryAfterMs = extra.retryAfterMs;
  }
};
var ProtocolError = class extends Error {
  constructor(message) {
    super(message);
    this.name = "ProtocolError";
  }
};

// src/codec.ts
var FRAME_KIND_MATCH = 1;
var OP_RESERVED = 65280;
var OP_WARNING = 65280;
var MAX_CID_BYTES = 64;
var HEADER = 12;
function encodeInput(op, payload = new Uint8Array(0)) {
  if (!Number.isInteger(op) || op < 0 || op >= OP_RESERVED) {
    throw new RangeError(`multijuego: input op code must be an integer from 0 to 65279 (0xFEFF), got ${String(op)}; 0xFF00 and up are reserved`);
  }
  if (!(payload instanceof Uint8Array)) {
    throw new TypeError("multijuego: input payload must be a Uint8Array");
  }
  const out = new Uint8Array(2 + payload.length);
  out[0] = op & 255;
  out[1] = op >> 8;
  out.set(payload, 2);
  return out;
}
function decodeInput(buf) {
  const b = bytes(buf);
  if (b.length < 2) {
    throw new ProtocolError(`multijuego: an input is an op code (2 bytes) and a payload; got ${b.length} byte(s)`);
  }
  return { op: b[0] | b[1] << 8, payload: b.subarray(2) };
}
function decodeFrame(buf) {
  const b = bytes(buf);
  if (b.length < HEADER) {
    throw new ProtocolError(`multijuego: a match frame has a ${HEADER}-byte header; got ${b.length} byte(s)`);
  }
  if (b[0] !== FRAME_KIND_MATCH) {
    throw new ProtocolError(`multijuego: unknown frame kind 0x${b[0].toString(16).padStart(2, "0")} (want 0x01)`);
  }
  const n = b[11];
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
    const c = b[i];
    if (c > 126 || c < 32) {
      throw new ProtocolError(`multijuego: frame match id has a non-ASCII byte 0x${c.toString(16)} at offset ${i}`);
    }
    matchId += String.fromCharCode(c);
  }
  return { op: dv.getUint16(1, true), tick: Number(tick), matchId, data: b.subarray(HEADER + n) };
}
function encodeFrame(f) {
  if (!Number.isInteger(f.op) || f.op < 0 || f.op > 65535) {
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
function encodeEnvelope(type, cid = "", payload) {
  if (typeof type !== "string" || type === "") {
    throw new TypeError("multijuego: envelope type must be a non-empty string");
  }
  if (typeof cid !== "string" || utf8Length(cid) > MAX_CID_BYTES) {
    throw new RangeError(`multijuego: envelope cid must be a string of at most ${MAX_CID_BYTES} bytes`);
  }
  const env = { type };
  if (cid !== "") env["cid"] = cid;
  if (payload !== void 0) env["payload"] = payload;
  return JSON.stringify(env);
}
function decodeEnvelope(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(`multijuego: envelope is not JSON: ${e.message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new ProtocolError("multijuego: envelope must be a JSON object");
  }
  const o = v;
  if (typeof o["type"] !== "string" || o["type"] === "") {
    throw new ProtocolError('multijuego: envelope has no "type" string');
  }
  const cid = o["cid"] ?? "";
  if (typeof cid !== "string") {
    throw new ProtocolError('multijuego: envelope "cid" must be a string');
  }
  return { type: o["type"], cid, payload: o["payload"] ?? null };
}
function bytes(buf) {
  if (buf instanceof Uint8Array) return buf;
  if (buf instanceof ArrayBuffer || Object.prototype.toString.call(buf) === "[object ArrayBuffer]") {
    return new Uint8Array(buf);
  }
  if (ArrayBuffer.isView(buf)) {
    const v = buf;
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  throw new TypeError("multijuego: binary data must be an ArrayBuffer or a Uint8Array");
}
function utf8Length(s) {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    n += c < 128 ? 1 : c < 2048 ? 2 : c < 65536 ? 3 : 4;
  }
  return n;
}

// src/realtime.ts
var OPEN = 1;
var CLOSE_TOKEN_EXPIRED = 4004;
function defaultShouldReconnect(code) {
  return code < 4e3 || code > 4999 || code === CLOSE_TOKEN_EXPIRED;
}
var Realtime = class _Realtime {
  constructor(dial, opts, timers, random) {
    this.dial = dial;
    this.timers = timers;
    this.random = random;
    this.ws = null;
    this.ended = false;
    this.attempt = 0;
    this.timer = null;
    this.seq = 0;
    this.pending = /* @__PURE__ */ new Map();
    this.listeners = {
      frame: /* @__PURE__ */ new Set(),
      event: /* @__PURE__ */ new Set(),
      error: /* @__PURE__ */ new Set(),
      disconnect: /* @__PURE__ */ new Set(),
      reconnect: /* @__PURE__ */ new Set()
    };
    this._matchId = null;
    this._resumeToken = null;
    this._sessionId = null;
    this.lastClose = { code: 0, reason: "" };
    /** The server said the access token expired: the next dial refreshes it. */
    this.refreshFirst = false;
    this.reconnectOn = opts.reconnect ?? true;
    this.maxAttempts = opts.maxAttempts ?? 10;
    if (!(this.maxAttempts >= 0)) throw new RangeError(`multijuego: RealtimeOptions.maxAttempts must be ≥ 0, got ${String(opts.maxAttempts)}`);
    this.backoff = {
      initialDelayMs: opts.initialDelayMs ?? defaultBackoff.initialDelayMs,
      maxDelayMs: opts.maxDelayMs ?? Math.max(defaultBackoff.maxDelayMs, opts.initialDelayMs ?? 0),
      jitter: opts.jitter ?? defaultBackoff.jitter
    };
    checkBackoff(this.backoff);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 1e4;
    if (!(this.requestTimeoutMs > 0)) throw new RangeError(`multijuego: RealtimeOptions.requestTimeoutMs must be > 0, got ${String(opts.requestTimeoutMs)}`);
    this.shouldReconnect = opts.shouldReconnect ?? defaultShouldReconnect;
  }
  /**
   * Opens a socket with dial and returns it once open (Client.connect
   * uses it). The first connection is not retried: its failure rejects.
   * @internal
   */
  static async _open(dial, opts, timers, random) {
    const rt = new _Realtime(dial, opts, timers, random);
    const ws = await dial();
    await rt.waitOpen(ws);
    rt.attach(ws);
    return rt;
  }
  /** The match this socket plays in (also kept while reconnecting), or null. */
  get matchId() {
    return this._matchId;
  }
  /** The resume token of the last join, or null. */
  get resumeToken() {
    return this._resumeToken;
  }
  /** The server's id of the current socket (session.started), or null. */
  get sessionId() {
    return this._sessionId;
  }
  /** Whether the socket is open now. */
  get connected() {
    return this.ws !== null && this.ws.readyState === OPEN;
  }
  /** Adds a listener; the returned function removes it. */
  on(type, fn) {
    const set = this.listeners[type];
    if (!set) throw new TypeError(`multijuego: unknown Realtime event ${JSON.stringify(type)}`);
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }
  /** Starts a match (match.create). */
  async createMatch(mode, params) {
    return (await this.request("match.create", { mode, params })).payload;
  }
  /** Lists open matches, of one mode and label when given (match.list). */
  async listMatches(mode, label) {
    return (await this.request("match.list", { mode, label })).payload.matches ?? [];
  }
  /** Takes a seat in a match; returns the resume token (match.join). */
  async join(matchId, meta) {
    return (await this.request("match.join", { match_id: matchId, meta })).payload.resume_token;
  }
  /** Takes the seat of a resume token back; returns the match id (match.resume). */
  async resume(resumeToken) {
    return (await this.request("match.resume", { resume_token: resumeToken })).payload.match_id;
  }
  /** Leaves the current match (match.leave). */
  async leave() {
    await this.request("match.leave");
  }
  /** Sends a value the server echoes back unchanged (round-trip checks). */
  async echo(payload) {
    return (await this.request("echo", payload)).payload;
  }
  /**
   * Sends an input to the current match: op code (below 0xFF00) and the
   * game's payload, in one binary frame. Returns false, sending nothing,
   * while the socket is not open (inputs are not queued across a reconnect).
   */
  send(op, payload = new Uint8Array(0)) {
    const frame = encodeInput(op, payload);
    if (!this.connected) return false;
    this.ws.send(frame.buffer);
    return true;
  }
  /** Closes the socket for good: no reconnection, pending requests reject. */
  close() {
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
        ws.close(1e3, "client closed");
      } catch {
      }
    }
    this.failPending(new ApiError(0, "disconnected", "multijuego: the realtime socket was closed"));
    this._matchId = null;
    this.emit("disconnect", { code: 1e3, reason: "closed by client", willReconnect: false });
  }
  request(type, payload) {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) {
      return Promise.reject(new ApiError(0, "not_connected", `multijuego: cannot send ${type}: the realtime socket is not connected`));
    }
    const cid = String(++this.seq);
    const text = encodeEnvelope(type, cid, payload);
    return new Promise((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        if (this.pending.delete(cid)) {
          reject(new ApiError(0, "timeout", `multijuego: no answer to ${type} within ${this.requestTimeoutMs} ms`));
        }
      }, this.requestTimeoutMs);
      this.pending.set(cid, {
        resolve: (e) => {
          this.timers.clearTimeout(timer);
          resolve(e);
        },
        reject: (e) => {
          this.timers.clearTimeout(timer);
          reject(e);
        }
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
  waitOpen(ws) {
    ws.binaryType = "arraybuffer";
    return new Promise((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        detach(ws);
        try {
          ws.close();
        } catch {
        }
        reject(new ApiError(0, "network_error", `multijuego: the realtime socket did not open within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      ws.onopen = () => {
        this.timers.clearTimeout(timer);
        resolve();
      };
      ws.onclose = (ev) => {
        this.timers.clearTimeout(timer);
        detach(ws);
        const code = ev?.code ?? 1006;
        this.lastClose = { code, reason: ev?.reason ?? "" };
        reject(new ApiError(0, "network_error", `multijuego: the realtime socket did not open (close code ${code}${ev?.reason ? ": " + ev.reason : ""})`));
      };
      ws.onerror = () => {
      };
    });
  }
  attach(ws) {
    this.ws = ws;
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => this.onClose(ws, ev?.code ?? 1006, ev?.reason ?? "");
    ws.onerror = () => {
    };
  }
  onMessage(data) {
    if (typeof data === "string") {
      let env;
      try {
        env = decodeEnvelope(data);
      } catch (e) {
        this.emit("error", new ApiError(0, "bad_message", errorText(e)));
        return;
      }
      this.onEnvelope(env);
      return;
    }
    let f;
    try {
      f = decodeFrame(data);
    } catch (e) {
      this.emit("error", new ApiError(0, "bad_message", errorText(e)));
      return;
    }
    this.emit("frame", f);
  }
  onEnvelope(env) {
    const p = env.payload ?? {};
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
    const pend = env.cid ? this.pending.get(env.cid) : void 0;
    if (pend) this.pending.delete(env.cid);
    if (env.type === "error") {
      const err = new ApiError(0, str(p["code"]) || "internal", str(p["message"]) || "multijuego: the server answered an error", {
        field: str(p["field"])
      });
      if (pend) pend.reject(err);
      else this.emit("error", err);
      return;
    }
    pend?.resolve(env);
    this.emit("event", env);
  }
  onClose(ws, code, reason) {
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
  schedule(minDelay = 0) {
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
  async reconnect() {
    let ws;
    try {
      ws = await this.dial(this.refreshFirst);
      this.refreshFirst = false;
      if (this.ended) {
        detach(ws);
        ws.close(1e3);
        return;
      }
      await this.waitOpen(ws);
    } catch (e) {
      if (this.ended) return;
      if (retryable(e)) this.schedule(e.retryAfterMs ?? 0);
      else this.giveUp(e);
      return;
    }
    if (this.ended) {
      ws.close(1e3);
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
        else await this.join(matchId);
        resumed = true;
      } catch (e) {
        if (this.ws !== ws) return;
        this._matchId = null;
        this._resumeToken = null;
        this.emit("error", asApiError(e));
      }
    }
    this.emit("reconnect", { matchId: this._matchId, resumed });
  }
  giveUp(err) {
    this.ended = true;
    this._matchId = null;
    if (err) this.emit("error", asApiError(err));
    const reason = err ? `gave up reconnecting: ${errorText(err)}` : `gave up reconnecting after ${this.attempt} attempt(s)`;
    this.emit("disconnect", { code: this.lastClose.code, reason, willReconnect: false });
  }
  failPending(err) {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
  emit(type, arg) {
    for (const fn of [...this.listeners[type]]) {
      try {
        fn(arg);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
};
function detach(ws) {
  ws.onopen = ws.onclose = ws.onmessage = ws.onerror = null;
}
function str(v) {
  return typeof v === "string" ? v : "";
}
function errorText(e) {
  return e instanceof Error ? e.message : String(e);
}
function asApiError(e) {
  return e instanceof ApiError ? e : new ApiError(0, "internal", errorText(e), { cause: e });
}
function retryable(e) {
  if (!(e instanceof ApiError)) return false;
  return e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500;
}

// src/client.ts
var REFRESH_MARGIN_MS = 3e4;
var deviceIdPattern = /^[A-Za-z0-9_.:-]{10,128}$/;
var Client = class {
  /**
   * @param baseURL the server, e.g. "http://127.0.0.1:8080"; "" means the
   *   origin of the page (browsers only).
   */
  constructor(baseURL, opts = {}) {
    this._tokens = null;
    this.refreshing = null;
    this.memDevice = "";
    this.baseURL = checkBaseURL(baseURL);
    const g = globalThis;
    if (!opts.fetch && typeof g.fetch !== "function") {
      throw new TypeError("multijuego: no global fetch: pass ClientOptions.fetch");
    }
    this.fetchFn = opts.fetch ?? ((url, init) => g.fetch(url, init));
    this.WS = opts.WebSocket ?? g.WebSocket;
    this.storage = opts.storage !== void 0 ? opts.storage : defaultStorage();
    this.key = opts.storageKey ?? "multijuego";
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h)
    };
    this.random = opts.random ?? Math.random;
    this.onTokens = opts.onTokens;
    this._tokens = this.loadTokens();
  }
  /** The session's tokens, or null when logged out. Setting them resumes a saved session (and persists it). */
  get tokens() {
    return this._tokens;
  }
  set tokens(t) {
    this.setTokens(t);
  }
  /** Creates a password account and logs in. email may be "". */
  register(username, email, password) {
    return this.startSession("/v1/auth/register", { username, email, password });
  }
  /** Logs in with a username or an email address (anything with an @). */
  login(usernameOrEmail, password) {
    const key = usernameOrEmail.includes("@") ? "email" : "username";
    return this.startSession("/v1/auth/login", { [key]: usernameOrEmail, password });
  }
  /**
   * Logs in as the guest account of a device id (10–128 letters, digits and
   * - _ . :), creating it on first use.
   */
  device(deviceId) {
    return this.startSession("/v1/auth/device", { device_id: deviceId });
  }
  /**
   * Signs in with an ID token or access token of an identity provider the
   * server trusts (Amazon Cognito or any OpenID Connect issuer), creating an
   * account on the identity's first sign-in. `issuer` is the provider's name
   * in the server's configuration; left out, the token's `iss` says.
   */
  oidc(token, issuer) {
    return this.startSession("/v1/auth/oidc", issuer === void 0 ? { token } : { token, issuer });
  }
  /**
   * Logs in as this browser's guest: a device id made up on first use and
   * kept in storage, so the same guest comes back.
   */
  guest() {
    return this.device(this.deviceId());
  }
  /** Exchanges the refresh token for a new pair now; concurrent calls share one request. */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }
  /** Ends the session on the server and forgets the tokens (the guest device id stays). */
  async logout() {
    if (!this._tokens) return;
    let tok;
    try {
      tok = await this.accessToken();
    } catch {
      this.setTokens(null);
      return;
    }
    try {
      await this.call("POST", "/v1/auth/logout", tok);
    } finally {
      this.setTokens(null);
    }
  }
  /** The logged-in account. */
  account() {
    return this.request("GET", "/v1/account");
  }
  /**
   * Makes an authenticated JSON call to the API (path from the root, e.g.
   * "/v1/admin/accounts?limit=10") and returns the parsed answer (undefined
   * for an empty one). Errors reject with ApiError.
   */
  async request(method, path, body) {
    if (typeof path !== "string" || !path.startsWith("/")) {
      throw new TypeError(`multijuego: request path must start with "/", got ${JSON.stringify(path)}`);
    }
    const tok = await this.accessToken();
    try {
      return await this.call(method, path, tok, body);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) throw e;
      let next;
      try {
        next = await this.freshToken(tok);
      } catch {
        throw e;
      }
      return this.call(method, path, next, body);
    }
  }
  /** Starts a match of a game mode ("arena", "tictactoe") with mode-specific parameters. */
  createMatch(mode, params) {
    return this.request("POST", "/v1/matches", { mode, params });
  }
  /** Lists open matches, of one mode and label when given. */
  async listMatches(mode, label) {
    const out = await this.request("GET", "/v1/matches" + query({ mode, label }));
    return out.matches ?? [];
  }
  /** A live match, or its stored record once it has ended. */
  getMatch(id) {
    return this.request("GET", "/v1/matches/" + seg(id));
  }
  /** A player's stored matches, newest first ("me" for the caller). */
  playerMatches(playerId, opts = {}) {
    return this.request("GET", `/v1/players/${seg(playerId)}/matches` + query({ before: opts.before, limit: opts.limit }));
  }
  /** The leaderboards the server keeps. */
  async leaderboards() {
    return (await this.request("GET", "/v1/leaderboards")).leaderboards ?? [];
  }
  /** A leaderboard's top rows (limit 1–100, server default 10). */
  leaderboard(id, limit) {
    return this.request("GET", "/v1/leaderboards/" + seg(id) + query({ limit }));
  }
  /** The rows around a player ("me" for the caller), n above and below (0–50, server default 5). */
  leaderboardAround(id, playerId, n) {
    return this.request("GET", `/v1/leaderboards/${seg(id)}/around/${seg(playerId)}` + query({ n }));
  }
  /**
   * Opens a realtime socket for the session. The first connection's failure
   * rejects; later drops reconnect (see RealtimeOptions).
   */
  connect(opts = {}) {
    const mode = opts.auth ?? "ticket";
    if (mode !== "ticket" && mode !== "subprotocol") {
      return Promise.reject(new RangeError(`multijuego: RealtimeOptions.auth must be "ticket" or "subprotocol", got ${JSON.stringify(mode)}`));
    }
    return Realtime._open((refresh) => this.dial(mode, refresh), opts, this.timers, this.random);
  }
  /** The realtime endpoint's URL (ws: or wss:). */
  realtimeURL() {
    let base = this.baseURL;
    if (base === "") {
      const loc = globalThis.location;
      if (!loc) throw new TypeError(`multijuego: baseURL "" (same origin) needs a page; pass the server's URL`);
      base = `${loc.protocol}//${loc.host}`;
    }
    return base.replace(/^http/, "ws") + "/v1/realtime";
  }
  async dial(mode, refresh = false) {
    const WS = this.WS;
    if (!WS) {
      throw new TypeError("multijuego: no global WebSocket: pass ClientOptions.WebSocket (for Node 20, the ws package's)");
    }
    if (refresh && this._tokens) await this.freshToken(this._tokens.accessToken);
    if (mode === "subprotocol") {
      const tok = await this.accessToken();
      return new WS(this.realtimeURL(), ["multijuego.v1", "multijuego.bearer." + tok]);
    }
    const t = await this.request("POST", "/v1/realtime/tickets");
    return new WS(this.realtimeURL() + "?ticket=" + encodeURIComponent(t.ticket), ["multijuego.v1"]);
  }
  /** A usable access token, refreshed first when it is about to expire. */
  async accessToken() {
    const t = this._tokens;
    if (!t) throw noSession();
    if (this.now() + REFRESH_MARGIN_MS < t.accessExpiresAt) return t.accessToken;
    return this.freshToken(t.accessToken);
  }
  /**
   * A token other than stale: another tab's or caller's newer one if it is
   * still good, else a refreshed one.
   */
  async freshToken(stale) {
    this.adoptStored();
    const t = this._tokens;
    if (!t) throw noSession();
    if (t.accessToken !== stale && this.now() + REFRESH_MARGIN_MS < t.accessExpiresAt) return t.accessToken;
    return (await this.refresh()).accessToken;
  }
  async doRefresh() {
    this.adoptStored();
    const t = this._tokens;
    if (!t) throw noSession();
    let tr;
    try {
      tr = await this.call("POST", "/v1/auth/refresh", "", { refresh_token: t.refreshToken });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && this._tokens === t) this.setTokens(null);
      throw e;
    }
    return this.setTokens(this.tokensOf(tr));
  }
  /**
   * Takes the tokens in storage when another tab of the same account
   * rotated them (refresh tokens are single-use: refreshing with ours would
   * end the session).
   */
  adoptStored() {
    const s = this.loadTokens();
    const t = this._tokens;
    if (s && t && s.accountId === t.accountId && s.refreshToken !== t.refreshToken) this._tokens = s;
  }
  async startSession(path, body) {
    const tr = await this.call("POST", path, "", body);
    return this.setTokens(this.tokensOf(tr));
  }
  tokensOf(tr) {
    if (!tr || typeof tr.access_token !== "string" || typeof tr.refresh_token !== "string" || typeof tr.expires_in !== "number") {
      throw new ApiError(0, "bad_response", "multijuego: the server's token answer lacks access_token, refresh_token or expires_in");
    }
    return { accessToken: tr.access_token, refreshToken: tr.refresh_token, accessExpiresAt: this.now() + tr.expires_in * 1e3, accountId: tr.account_id };
  }
  setTokens(t) {
    this._tokens = t;
    try {
      if (t) this.storage?.setItem(this.key + ".tokens", JSON.stringify(t));
      else this.storage?.removeItem(this.key + ".tokens");
    } catch {
    }
    this.onTokens?.(t);
    return t;
  }
  loadTokens() {
    let raw = null;
    try {
      raw = this.storage?.getItem(this.key + ".tokens") ?? null;
    } catch {
      return null;
    }
    if (!raw) return null;
    try {
      const t = JSON.parse(raw);
      if (typeof t.accessToken === "string" && typeof t.refreshToken === "string" && typeof t.accessExpiresAt === "number" && typeof t.accountId === "string") {
        return { accessToken: t.accessToken, refreshToken: t.refreshToken, accessExpiresAt: t.accessExpiresAt, accountId: t.accountId };
      }
    } catch {
    }
    return null;
  }
  deviceId() {
    const k = this.key + ".device";
    let id = null;
    try {
      id = this.storage?.getItem(k) ?? null;
    } catch {
    }
    if (id && deviceIdPattern.test(id)) return id;
    if (this.memDevice) return this.memDevice;
    id = "web-" + randomHex(16, this.random);
    this.memDevice = id;
    try {
      this.storage?.setItem(k, id);
    } catch {
    }
    return id;
  }
  /** One HTTP exchange; token "" for none. */
  async call(method, path, token, body) {
    const headers = { Accept: "application/json" };
    const init = { method, headers };
    if (body !== void 0) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (token) headers["Authorization"] = "Bearer " + token;
    let res;
    let text;
    try {
      res = await this.fetchFn(this.baseURL + path, init);
      text = await res.text();
    } catch (e) {
      if (e instanceof ApiError) throw e;
      const why = e instanceof Error ? e.message : String(e);
      throw new ApiError(0, "network_error", `Cannot reach the server (${method} ${path}: ${why}).`, { cause: e });
    }
    if (res.status >= 400) throw errorOf(res, text);
    if (text === "") return void 0;
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(res.status, "bad_response", `multijuego: ${method} ${path}: the answer is not JSON`);
    }
  }
};
function errorOf(res, text) {
  let code = "http_" + res.status;
  let message = `HTTP ${res.status}`;
  let field;
  let requestId;
  try {
    const e = JSON.parse(text).error;
    if (e && typeof e.code === "string" && e.code !== "") {
      code = e.code;
      if (typeof e.message === "string") message = e.message;
      if (typeof e.field === "string") field = e.field;
      if (typeof e.request_id === "string") requestId = e.request_id;
    }
  } catch {
  }
  const extra = {};
  if (field) extra.field = field;
  if (requestId) extra.requestId = requestId;
  const ra = Number(res.headers.get("Retry-After") ?? "");
  if (Number.isFinite(ra) && ra > 0) extra.retryAfterMs = ra * 1e3;
  return new ApiError(res.status, code, message, extra);
}
function noSession() {
  return new ApiError(401, "unauthenticated", "Not logged in.");
}
function checkBaseURL(u) {
  if (typeof u !== "string") throw new TypeError("multijuego: baseURL must be a string");
  const s = u.replace(/\/+$/, "");
  if (s !== "" && !/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(s)) {
    throw new TypeError(`multijuego: baseURL must be "" (same origin) or http(s)://HOST[:PORT][/PATH], got ${JSON.stringify(u)}`);
  }
  return s;
}
function defaultStorage() {
  try {
    const ls = globalThis.localStorage;
    return ls && typeof ls.getItem === "function" ? ls : null;
  } catch {
    return null;
  }
}
function seg(s) {
  if (typeof s !== "string" || s === "") throw new TypeError("multijuego: an id in a path must be a non-empty string");
  return encodeURIComponent(s);
}
function query(q) {
  const parts = [];
  for (const [k, v] of Object.entries(q)) {
    if (v !== void 0 && v !== "") parts.push(`${k}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? "?" + parts.join("&") : "";
}
function randomHex(nBytes, random) {
  const b = new Uint8Array(nBytes);
  const c = globalThis.crypto;
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < nBytes; i++) b[i] = Math.floor(random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
export {
  ApiError,
  Client,
  FRAME_KIND_MATCH,
  MAX_CID_BYTES,
  OP_RESERVED,
  OP_WARNING,
  ProtocolError,
  REFRESH_MARGIN_MS,
  Realtime,
  backoffDelay,
  decodeEnvelope,
  decodeFrame,
  decodeInput,
  defaultBackoff,
  defaultShouldReconnect,
  encodeEnvelope,
  encodeFrame,
  encodeInput
};
