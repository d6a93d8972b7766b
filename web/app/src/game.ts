// The demo game page served at /: log in (guest or password), a lobby of
// open matches, the arena (canvas, keyboard and touch, interpolation of
// the others, prediction of your own player, result screen with the
// leaderboard) and tic-tac-toe. Everything goes through the SDK.
//
// Tests read the page's state through window.__mj.state() (read-only)
// instead of looking at pixels.

import { ApiError, Client, OP_WARNING, type Frame, type MatchInfo, type Realtime, type ServerEvent, type StorageLike } from "../../sdk/src/index.js";
import { ArenaView } from "./lib/arenaview.js";
import { byId, errorMessage, fill, h, shortId, show } from "./lib/dom.js";
import { ResultView } from "./lib/resultview.js";
import { TttView } from "./lib/tttview.js";

type Screen = "loading" | "login" | "lobby" | "arena" | "result" | "ttt";
type Mode = "arena" | "tictactoe";

/**
 * Session storage, not local storage: each tab is its own guest (and its
 * own session), so two windows side by side are two players. Local storage
 * would make every tab the same account, and the server keeps one socket
 * per account (a second tab would disconnect the first with close 4001).
 */
function tabStorage(): StorageLike | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the session lives in memory
  }
}

const client = new Client("", { storage: tabStorage() });

const LOBBY_REFRESH_MS = 3000;

// --- page state ---

let screen: Screen = "loading";
let me = { id: "", username: "" };
let rt: Realtime | null = null;
let connecting: Promise<Realtime> | null = null;
let mode: Mode | null = null;
let matchId: string | null = null;
let lobbyTimer = 0;
const lobby = { arena: [] as MatchInfo[], tictactoe: [] as MatchInfo[] };

const send = (op: number, payload: Uint8Array) => rt?.send(op, payload) ?? false;
const arenaView = new ArenaView({ me: () => me, send, active: () => screen === "arena" && mode === "arena" && matchId !== null });
const tttView = new TttView({ me: () => me, send });
const resultView = new ResultView(client);

// --- elements ---

const el = {
  banner: byId("banner"),
  who: byId("who"),
  meName: byId("me-name"),
  logout: byId<HTMLButtonElement>("logout-btn"),
  screens: {
    loading: byId("screen-loading"),
    login: byId("screen-login"),
    lobby: byId("screen-lobby"),
    arena: byId("screen-arena"),
    result: byId("screen-result"),
    ttt: byId("screen-ttt"),
  } satisfies Record<Screen, HTMLElement>,
  guest: byId<HTMLButtonElement>("guest-btn"),
  loginForm: byId<HTMLFormElement>("login-form"),
  registerForm: byId<HTMLFormElement>("register-form"),
  loginError: byId("login-error"),
  tabArena: byId<HTMLButtonElement>("tab-arena"),
  tabTtt: byId<HTMLButtonElement>("tab-ttt"),
  panelArena: byId("panel-arena"),
  panelTtt: byId("panel-ttt"),
  arenaForm: byId<HTMLFormElement>("arena-create-form"),
  arenaTime: byId<HTMLSelectElement>("arena-time"),
  arenaMax: byId<HTMLSelectElement>("arena-max"),
  arenaRefresh: byId<HTMLButtonElement>("arena-refresh"),
  arenaList: byId("arena-list"),
  tttCreate: byId<HTMLButtonElement>("ttt-create"),
  tttRefresh: byId<HTMLButtonElement>("ttt-refresh"),
  tttList: byId("ttt-list"),
  lobbyError: byId("lobby-error"),
  arenaLeave: byId<HTMLButtonElement>("arena-leave"),
  playAgain: byId<HTMLButtonElement>("play-again"),
  tttLeave: byId<HTMLButtonElement>("ttt-leave"),
};

// --- screens and messages ---

function setScreen(s: Screen): void {
  screen = s;
  for (const [name, node] of Object.entries(el.screens)) show(node, name === s);
  show(el.who, s !== "login" && s !== "loading");
  document.body.dataset["screen"] = s;
  if (s === "lobby") startLobbyRefresh();
  else stopLobbyRefresh();
  if (s === "arena") arenaView.start();
  else arenaView.stop();
  if (s !== "result") resultView.clear();
}

function banner(text: string): void {
  el.banner.textContent = text;
  show(el.banner, text !== "");
}

// --- login ---

async function startSession(how: () => Promise<unknown>, button: HTMLButtonElement): Promise<void> {
  el.loginError.textContent = "";
  button.disabled = true;
  try {
    await how();
    await enterLobby();
  } catch (e) {
    el.loginError.textContent = loginErrorText(e);
  } finally {
    button.disabled = false;
  }
}

function loginErrorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 401) return "Wrong username or password.";
    if (e.status === 429) return `Too many attempts; try again in ${Math.ceil((e.retryAfterMs ?? 60_000) / 1000)} s.`;
    if (e.field) return `${e.message} (${e.field})`;
  }
  return errorMessage(e);
}

el.guest.addEventListener("click", () => void startSession(() => client.guest(), el.guest));

el.loginForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(el.loginForm);
  void startSession(() => client.login(String(f.get("username") ?? "").trim(), String(f.get("password") ?? "")), byId("login-submit"));
});

el.registerForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(el.registerForm);
  void startSession(
    () => client.register(String(f.get("username") ?? "").trim(), String(f.get("email") ?? "").trim(), String(f.get("password") ?? "")),
    byId("register-submit"),
  );
});

el.logout.addEventListener("click", () => void logout());

async function logout(): Promise<void> {
  leaveLocally();
  rt?.close();
  rt = null;
  try {
    await client.logout();
  } catch {
    // the tokens are forgotten anyway
  }
  me = { id: "", username: "" };
  banner("");
  setScreen("login");
}

async function enterLobby(): Promise<void> {
  const acc = await client.account();
  me = { id: acc.id, username: acc.username };
  el.meName.textContent = acc.username + (acc.guest ? " (guest)" : "");
  setScreen("lobby");
  void refreshLobby();
  try {
    await ensureRealtime();
  } catch (e) {
    el.lobbyError.textContent = "Cannot open the realtime connection: " + errorMessage(e);
    return;
  }
  const seat = savedSeat();
  if (seat) await joinMatch(seat.mode, seat.id, seat.tickRate, true);
}

// --- realtime ---

function ensureRealtime(): Promise<Realtime> {
  if (rt && rt.connected) return Promise.resolve(rt);
  if (!connecting) {
    connecting = client
      .connect()
      .then((r) => {
        rt?.close();
        rt = r;
        r.on("frame", onFrame);
        r.on("event", onEvent);
        r.on("error", (e) => {
          if (mode === "tictactoe") tttView.showError(e.message);
          else banner(e.message);
        });
        r.on("disconnect", (d) => {
          if (r !== rt) return;
          if (d.willReconnect) {
            banner("Connection lost; reconnecting…");
            return;
          }
          rt = null;
          banner(disconnectText(d.code, d.reason));
          if (d.code === 4002) {
            void logout();
            return;
          }
          if (screen === "arena" || screen === "ttt") {
            leaveLocally();
            setScreen("lobby");
          }
        });
        r.on("reconnect", (info) => {
          if (r !== rt) return;
          banner("");
          if (matchId && !info.resumed && (screen === "arena" || screen === "ttt")) {
            leaveLocally();
            setScreen("lobby");
            banner("Reconnected, but the seat in the match was lost.");
          }
        });
        return r;
      })
      .finally(() => {
        connecting = null;
      });
  }
  return connecting;
}

function disconnectText(code: number, reason: string): string {
  switch (code) {
    case 4001:
      return "This account connected from another tab or window, which replaced this one (one connection per account). Reload to take it back.";
    case 4002:
      return "Your session ended; log in again.";
    case 4003:
      return "An administrator disconnected you" + (reason ? ` (${reason})` : "") + ".";
  }
  return `Disconnected from the server (${code}${reason ? ": " + reason : ""}). Reload to reconnect.`;
}

function onFrame(f: Frame): void {
  if (f.matchId !== matchId) return;
  if (f.op === OP_WARNING) {
    banner("The server warns: " + new TextDecoder().decode(f.data));
    return;
  }
  try {
    if (mode === "arena") arenaView.onFrame(f);
    else if (mode === "tictactoe") tttView.onFrame(f);
  } catch (e) {
    console.warn("undecodable frame", f.op, e);
  }
}

function onEvent(e: ServerEvent): void {
  if (e.type === "match.closed" && e.payload.match_id === matchId) {
    if (mode === "arena") showResult(matchId, e.payload.reason);
    else if (mode === "tictactoe") {
      tttView.close(closeReasonText(e.payload.reason));
      saveSeat(null);
    }
  }
}

function closeReasonText(reason: string): string {
  if (reason === "match_ended") return "";
  if (reason.startsWith("ended_by_operator")) {
    const why = reason.slice("ended_by_operator".length).replace(/^:\s*/, "");
    return "An administrator ended the match" + (why ? `: ${why}` : "") + ".";
  }
  switch (reason) {
    case "kicked":
      return "You were removed from the match.";
    case "rate_limited":
      return "You were removed from the match for sending too many inputs.";
    case "match_error":
      return "The match stopped on a server error.";
    case "shutdown":
      return "The server is shutting down.";
    case "disconnected":
      return "You were disconnected for too long.";
  }
  return `The match closed (${reason}).`;
}

// --- lobby ---

function startLobbyRefresh(): void {
  if (!lobbyTimer) lobbyTimer = window.setInterval(() => void refreshLobby(), LOBBY_REFRESH_MS);
}

function stopLobbyRefresh(): void {
  if (lobbyTimer) window.clearInterval(lobbyTimer);
  lobbyTimer = 0;
}

function selectTab(which: Mode): void {
  el.tabArena.setAttribute("aria-selected", String(which === "arena"));
  el.tabTtt.setAttribute("aria-selected", String(which === "tictactoe"));
  show(el.panelArena, which === "arena");
  show(el.panelTtt, which === "tictactoe");
}

el.tabArena.addEventListener("click", () => selectTab("arena"));
el.tabTtt.addEventListener("click", () => selectTab("tictactoe"));
el.arenaRefresh.addEventListener("click", () => void refreshLobby());
el.tttRefresh.addEventListener("click", () => void refreshLobby());

async function refreshLobby(): Promise<void> {
  try {
    const [a, t] = await Promise.all([client.listMatches("arena"), client.listMatches("tictactoe")]);
    lobby.arena = a;
    lobby.tictactoe = t;
    if (el.lobbyError.textContent?.startsWith("Cannot list")) el.lobbyError.textContent = "";
  } catch (e) {
    el.lobbyError.textContent = "Cannot list matches: " + errorMessage(e);
    if (e instanceof ApiError && e.status === 401) {
      void logout();
      return;
    }
  }
  renderList(el.arenaList, "arena", lobby.arena);
  renderList(el.tttList, "tictactoe", lobby.tictactoe);
}

function renderList(list: HTMLElement, m: Mode, matches: MatchInfo[]): void {
  if (matches.length === 0) {
    fill(list, h("li", { class: "empty" }, m === "arena" ? "No open arena matches: create one!" : "No open games: create one!"));
    return;
  }
  const sorted = [...matches].sort((a, b) => a.created.localeCompare(b.created));
  fill(
    list,
    ...sorted.map((x) =>
      h(
        "li",
        { "data-match-id": x.match_id },
        h("span", { class: "mid", title: x.match_id }, shortId(x.match_id)),
        h("span", {}, x.label || "open"),
        h("span", {}, `${x.players}/${x.max_players} players`),
        joinButton(m, x),
      ),
    ),
  );
}

function joinButton(m: Mode, x: MatchInfo): HTMLButtonElement {
  const b = h("button", { type: "button", "data-testid": `join-${x.match_id}`, "data-match-id": x.match_id, class: "primary" }, "Join");
  b.addEventListener("click", () => {
    b.disabled = true;
    void joinMatch(m, x.match_id, x.tick_rate).finally(() => {
      b.disabled = false;
    });
  });
  return b;
}

el.arenaForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const btn = byId<HTMLButtonElement>("arena-create");
  btn.disabled = true;
  void createAndJoin("arena", { time_limit: el.arenaTime.value, max_players: el.arenaMax.value }).finally(() => {
    btn.disabled = false;
  });
});

el.tttCreate.addEventListener("click", () => {
  el.tttCreate.disabled = true;
  void createAndJoin("tictactoe").finally(() => {
    el.tttCreate.disabled = false;
  });
});

async function createAndJoin(m: Mode, params?: Record<string, string>): Promise<void> {
  el.lobbyError.textContent = "";
  try {
    const r = await ensureRealtime();
    const info = await r.createMatch(m, params);
    await joinMatch(m, info.match_id, info.tick_rate);
  } catch (e) {
    el.lobbyError.textContent = "Cannot create the match: " + errorMessage(e);
  }
}

/** Joins a match; taking a seat back (after a reload) fails quietly. */
async function joinMatch(m: Mode, id: string, tickRate: number, rejoin = false): Promise<void> {
  el.lobbyError.textContent = "";
  banner("");
  let r: Realtime;
  try {
    r = await ensureRealtime();
  } catch (e) {
    el.lobbyError.textContent = "Cannot connect: " + errorMessage(e);
    return;
  }
  // Frames can arrive before the join's answer: be ready for them first.
  resetMatch(m, id, tickRate);
  setScreen(m === "arena" ? "arena" : "ttt");
  try {
    await r.join(id);
    saveSeat({ mode: m, id, tickRate });
  } catch (e) {
    leaveLocally();
    setScreen("lobby");
    if (!rejoin) el.lobbyError.textContent = "Cannot join: " + errorMessage(e);
    void refreshLobby();
  }
}

// The seat survives a reload: the server keeps it for the disconnect grace
// period (30 s by default) and a join of the same match takes it back.
interface Seat {
  mode: Mode;
  id: string;
  tickRate: number;
}
const SEAT_KEY = "multijuego.demo.seat";

function saveSeat(seat: Seat | null): void {
  try {
    if (seat) window.sessionStorage.setItem(SEAT_KEY, JSON.stringify(seat));
    else window.sessionStorage.removeItem(SEAT_KEY);
  } catch {
    // no storage: no rejoin after a reload
  }
}

function savedSeat(): Seat | null {
  try {
    const v = JSON.parse(window.sessionStorage.getItem(SEAT_KEY) ?? "null") as Partial<Seat> | null;
    if (v && (v.mode === "arena" || v.mode === "tictactoe") && typeof v.id === "string" && typeof v.tickRate === "number") {
      return { mode: v.mode, id: v.id, tickRate: v.tickRate };
    }
  } catch {
    // unreadable: none
  }
  return null;
}

function resetMatch(m: Mode, id: string, tickRate: number): void {
  mode = m;
  matchId = id;
  arenaView.reset(tickRate);
  tttView.reset();
}

/** The arena match is over for this player: the result screen. */
function showResult(id: string, closeReason: string): void {
  const ranking = arenaView.ranking();
  const names = new Map(arenaView.names);
  leaveLocally();
  setScreen("result");
  void resultView.show(id, closeReasonText(closeReason), ranking, names, me);
}

/** Forgets the current match on this side (the server is told separately, or already knows). */
function leaveLocally(): void {
  mode = null;
  matchId = null;
  arenaView.stopInputs();
  saveSeat(null);
}

async function leaveMatch(): Promise<void> {
  const r = rt;
  const wasOpen = matchId !== null && !(mode === "tictactoe" && tttView.closed);
  leaveLocally();
  setScreen("lobby");
  if (r && wasOpen) {
    try {
      await r.leave();
    } catch {
      // not in the match any more: nothing to leave
    }
  }
  void refreshLobby();
}

el.arenaLeave.addEventListener("click", () => void leaveMatch());
el.tttLeave.addEventListener("click", () => void leaveMatch());
el.playAgain.addEventListener("click", () => {
  leaveLocally();
  setScreen("lobby");
  void refreshLobby();
});

// --- the test hook ---

declare global {
  interface Window {
    __mj?: { readonly version: 1; state(): unknown };
  }
}

window.__mj = Object.freeze({
  version: 1 as const,
  /** A read-only copy of what the page shows (for browser tests). */
  state() {
    return {
      screen,
      me: { ...me },
      connected: rt?.connected ?? false,
      mode,
      matchId,
      lobby: { arena: lobby.arena.map((m) => m.match_id), tictactoe: lobby.tictactoe.map((m) => m.match_id) },
      arena: mode === "arena" ? arenaView.snapshot() : null,
      ttt: mode === "tictactoe" || screen === "ttt" ? tttView.snapshot() : null,
      result: screen === "result" ? resultView.snapshot() : null,
    };
  },
});

// --- start ---

async function start(): Promise<void> {
  if (!client.tokens) {
    setScreen("login");
    return;
  }
  try {
    await enterLobby();
  } catch {
    setScreen("login"); // the saved session is over
  }
}

void start();
