// The admin console served at /admin/: live matches (end one), players
// online (kick), accounts (search, ban, unban), the dead-letter queue
// (list, show, replay) and the audit log (list, verify its hash chain). It uses only the admin API (/v1/admin/...), the
// same routes the gateway's tests exercise, with the logged-in
// administrator's token: the server checks the role on every call.

import { ApiError, Client, type StorageLike } from "../../sdk/src/index.js";
import { byId, errorMessage, fill, h, shortId, show, timeOfDay } from "./lib/dom.js";

interface AdminMatch {
  match_id: string;
  mode: string;
  label: string;
  node: string;
  tick_rate: number;
  players: number;
  max_players: number;
  player_ids?: string[];
  created: string;
  tick_ms: number;
}

interface OnlinePlayer {
  account_id: string;
  match_id: string;
  connected_at: string;
}

interface AdminAccount {
  id: string;
  username: string;
  email?: string;
  roles: string[];
  guest: boolean;
  banned: boolean;
  ban_reason?: string;
  created_at: string;
}

interface DeadLetter {
  seq: number;
  time: string;
  subject: string;
  type: string;
  event_id: string;
  match_id?: string;
  error: string;
  deliveries: number;
  payload?: string;
}

interface AuditEvent {
  id: number;
  at: string;
  kind: string;
  account_id?: string;
  actor_id?: string;
  ip?: string;
  detail?: string;
  chain_seq?: number;
}

interface AuditVerify {
  ok: boolean;
  chained: number;
  head?: string;
  unchained: number;
  oldest_unchained?: string;
  problem_count: number;
  problems: { kind: string; seq: number; id?: number; detail: string }[];
}

const REFRESH_MS = 5000;
const NOT_ADMIN = "This account is not an administrator.";

/** Per tab, apart from the game's session: closing the tab logs the console out. */
function tabStorage(): StorageLike | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

const client = new Client("", { storage: tabStorage(), storageKey: "multijuego.admin" });

const el = {
  who: byId("admin-who"),
  me: byId("admin-me"),
  logout: byId<HTMLButtonElement>("admin-logout"),
  login: byId("admin-login"),
  loginForm: byId<HTMLFormElement>("admin-login-form"),
  loginSubmit: byId<HTMLButtonElement>("admin-login-submit"),
  loginError: byId("admin-login-error"),
  console: byId("admin-console"),
  autorefresh: byId<HTMLInputElement>("admin-autorefresh"),
  refresh: byId<HTMLButtonElement>("admin-refresh"),
  updated: byId("admin-updated"),
  status: byId("admin-status"),
  error: byId("admin-error"),
  matchesBody: byId("matches-body"),
  matchesCount: byId("matches-count"),
  matchesError: byId("matches-error"),
  playersBody: byId("players-body"),
  playersCount: byId("players-count"),
  playersError: byId("players-error"),
  accountsForm: byId<HTMLFormElement>("accounts-search"),
  accountsQ: byId<HTMLInputElement>("accounts-q"),
  accountsBody: byId("accounts-body"),
  accountsMore: byId<HTMLButtonElement>("accounts-more"),
  accountsError: byId("accounts-error"),
  dlqBody: byId("dlq-body"),
  dlqCount: byId("dlq-count"),
  dlqError: byId("dlq-error"),
  dlqReplayAll: byId<HTMLButtonElement>("dlq-replay-all"),
  auditForm: byId<HTMLFormElement>("audit-filter"),
  auditKind: byId<HTMLInputElement>("audit-kind"),
  auditBody: byId("audit-body"),
  auditMore: byId<HTMLButtonElement>("audit-more"),
  auditError: byId("audit-error"),
  auditVerify: byId<HTMLButtonElement>("audit-verify"),
  auditChain: byId("audit-chain"),
  confirm: byId<HTMLDialogElement>("confirm-dialog"),
  confirmTitle: byId("confirm-title"),
  confirmText: byId("confirm-text"),
  confirmReason: byId<HTMLInputElement>("confirm-reason"),
  confirmReasonLabel: byId("confirm-reason-label"),
  payload: byId<HTMLDialogElement>("payload-dialog"),
  payloadTitle: byId("payload-title"),
  payloadText: byId("payload-text"),
};

let screen: "loading" | "login" | "console" = "loading";
let me = { id: "", username: "" };
let timer = 0;
let refreshing = false;
let refreshAgain = false;
const data = {
  matches: [] as AdminMatch[],
  players: [] as OnlinePlayer[],
  playersCount: 0,
  accounts: [] as AdminAccount[],
  accountsNext: "",
  accountsQuery: "",
  dlq: [] as DeadLetter[],
  dlqAvailable: true,
  audit: [] as AuditEvent[],
  auditNext: 0,
  auditKind: "",
  chain: null as AuditVerify | null,
};

// --- session ---

function showLogin(message = ""): void {
  screen = "login";
  stopTimer();
  show(el.login, true);
  show(el.console, false);
  show(el.who, false);
  el.loginError.textContent = message;
}

async function enterConsole(): Promise<void> {
  // The server decides: an account without the admin role gets 403.
  try {
    await client.request("GET", "/v1/admin/accounts?limit=1");
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      await dropSession();
      showLogin(NOT_ADMIN);
      return;
    }
    if (e instanceof ApiError && e.status === 401) {
      await dropSession();
      showLogin("Your session ended; log in again.");
      return;
    }
    showLogin("Cannot reach the admin API: " + errorMessage(e));
    return;
  }
  const acc = await client.account();
  me = { id: acc.id, username: acc.username };
  el.me.textContent = acc.username;
  screen = "console";
  show(el.login, false);
  show(el.console, true);
  show(el.who, true);
  await Promise.all([refreshLive(), loadAccounts(false), loadAudit(false)]);
  startTimer();
}

async function dropSession(): Promise<void> {
  try {
    await client.logout();
  } catch {
    // the tokens are forgotten anyway
  }
}

el.loginForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(el.loginForm);
  el.loginError.textContent = "";
  el.loginSubmit.disabled = true;
  void (async () => {
    try {
      await client.login(String(f.get("username") ?? "").trim(), String(f.get("password") ?? ""));
      await enterConsole();
    } catch (e) {
      showLogin(e instanceof ApiError && e.status === 401 ? "Wrong username or password." : errorMessage(e));
    } finally {
      el.loginSubmit.disabled = false;
    }
  })();
});

el.logout.addEventListener("click", () => {
  void dropSession().then(() => showLogin());
});

/** Handles an error of any admin call: a lost session or role goes back to the login. */
function sessionLost(e: unknown): boolean {
  if (!(e instanceof ApiError)) return false;
  if (e.status === 401) {
    void dropSession();
    showLogin("Your session ended; log in again.");
    return true;
  }
  if (e.status === 403 && e.code !== "banned") {
    void dropSession();
    showLogin(NOT_ADMIN);
    return true;
  }
  return false;
}

// --- refresh ---

function startTimer(): void {
  stopTimer();
  if (el.autorefresh.checked) timer = window.setInterval(() => void refreshLive(), REFRESH_MS);
}

function stopTimer(): void {
  if (timer) window.clearInterval(timer);
  timer = 0;
}

el.autorefresh.addEventListener("change", () => {
  if (screen === "console") startTimer();
});

el.refresh.addEventListener("click", () => {
  void Promise.all([refreshLive(), loadAccounts(false), loadAudit(false)]);
});

/**
 * Reloads the live panels (matches, players online, dead letters). A call
 * during a reload makes one more reload follow it (an action's effect must
 * show even if a timed refresh was under way).
 */
async function refreshLive(): Promise<void> {
  if (screen !== "console") return;
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    do {
      refreshAgain = false;
      await Promise.all([loadMatches(), loadPlayers(), loadDLQ()]);
    } while (refreshAgain && screen === "console");
    if (screen === "console") el.updated.textContent = "Updated " + new Date().toLocaleTimeString();
  } finally {
    refreshing = false;
  }
}

/** Runs an admin call for a panel, showing its error in the panel. */
async function panelCall<T>(errEl: HTMLElement, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    const v = await fn();
    errEl.textContent = "";
    return v;
  } catch (e) {
    if (sessionLost(e)) return undefined;
    errEl.textContent = e instanceof ApiError && e.status === 404 ? "Not available on this server process (it runs no game role)." : errorMessage(e);
    return undefined;
  }
}

// --- matches ---

async function loadMatches(): Promise<void> {
  const r = await panelCall(el.matchesError, () => client.request<{ matches: AdminMatch[] }>("GET", "/v1/admin/matches"));
  if (!r) return;
  data.matches = r.matches ?? [];
  renderMatches();
}

function renderMatches(): void {
  el.matchesCount.textContent = `(${data.matches.length})`;
  if (data.matches.length === 0) {
    fill(el.matchesBody, h("tr", {}, h("td", { colspan: "8", class: "muted" }, "No live matches.")));
    return;
  }
  const rows = [...data.matches].sort((a, b) => a.created.localeCompare(b.created));
  fill(
    el.matchesBody,
    ...rows.map((m) => {
      const end = h("button", { type: "button", class: "danger", "data-testid": `end-match-${m.match_id}` }, "End match");
      end.addEventListener("click", () => void endMatch(m));
      return h(
        "tr",
        { "data-match-id": m.match_id },
        h("td", { class: "ids", title: m.match_id }, shortId(m.match_id)),
        h("td", {}, m.mode),
        h("td", {}, m.label),
        h("td", { title: (m.player_ids ?? []).join("\n") }, `${m.players}/${m.max_players}`),
        h("td", { class: "num", title: `${m.tick_rate} ticks per second` }, `${m.tick_ms.toFixed(2)} ms`),
        h("td", {}, m.node),
        h("td", {}, timeOfDay(m.created)),
        h("td", { class: "actions" }, end),
      );
    }),
  );
}

async function endMatch(m: AdminMatch): Promise<void> {
  const reason = await confirmAction("End match", `End ${m.mode} match ${m.match_id} with ${m.players} player(s) now? They see that an administrator ended it.`, "");
  if (reason === null) return;
  await action(`Match ${shortId(m.match_id)} ended.`, () => client.request("POST", `/v1/admin/matches/${encodeURIComponent(m.match_id)}/end`, { reason }));
  await refreshLive();
}

// --- players online ---

async function loadPlayers(): Promise<void> {
  const r = await panelCall(el.playersError, () => client.request<{ count: number; players: OnlinePlayer[] }>("GET", "/v1/admin/players/online"));
  if (!r) return;
  data.players = r.players ?? [];
  data.playersCount = r.count ?? data.players.length;
  renderPlayers();
}

function renderPlayers(): void {
  el.playersCount.textContent = `(${data.playersCount})`;
  if (data.players.length === 0) {
    fill(el.playersBody, h("tr", {}, h("td", { colspan: "4", class: "muted" }, "Nobody is connected.")));
    return;
  }
  fill(
    el.playersBody,
    ...data.players.map((p) => {
      const kick = h("button", { type: "button", class: "danger", "data-testid": `kick-${p.account_id}` }, "Kick");
      kick.addEventListener("click", () => void kickPlayer(p));
      return h(
        "tr",
        { "data-account-id": p.account_id },
        h("td", { class: "ids", title: p.account_id }, nameOf(p.account_id)),
        h("td", { class: "ids", title: p.match_id }, p.match_id ? shortId(p.match_id) : "–"),
        h("td", {}, timeOfDay(p.connected_at)),
        h("td", { class: "actions" }, kick),
      );
    }),
  );
}

function nameOf(accountId: string): string {
  const a = data.accounts.find((x) => x.id === accountId);
  return a ? a.username : shortId(accountId);
}

async function kickPlayer(p: OnlinePlayer): Promise<void> {
  const reason = await confirmAction("Kick player", `Disconnect ${nameOf(p.account_id)} (${p.account_id})${p.match_id ? " and take their seat in the match" : ""}?`, "");
  if (reason === null) return;
  await action(`${nameOf(p.account_id)} kicked.`, () => client.request("POST", `/v1/admin/players/${encodeURIComponent(p.account_id)}/kick`, { reason }));
  await refreshLive();
}

// --- accounts ---

el.accountsForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  data.accountsQuery = el.accountsQ.value.trim();
  void loadAccounts(false);
});

el.accountsMore.addEventListener("click", () => void loadAccounts(true));

async function loadAccounts(more: boolean): Promise<void> {
  const q = new URLSearchParams({ limit: "50" });
  if (data.accountsQuery) q.set("q", data.accountsQuery);
  if (more && data.accountsNext) q.set("after", data.accountsNext);
  const r = await panelCall(el.accountsError, () => client.request<{ accounts: AdminAccount[]; next?: string }>("GET", "/v1/admin/accounts?" + q.toString()));
  if (!r) return;
  data.accounts = more ? [...data.accounts, ...(r.accounts ?? [])] : (r.accounts ?? []);
  data.accountsNext = r.next ?? "";
  renderAccounts();
  renderPlayers(); // names may be known now
}

function renderAccounts(): void {
  show(el.accountsMore, data.accountsNext !== "");
  if (data.accounts.length === 0) {
    fill(el.accountsBody, h("tr", {}, h("td", { colspan: "5", class: "muted" }, data.accountsQuery ? "No account matches." : "No accounts.")));
    return;
  }
  fill(
    el.accountsBody,
    ...data.accounts.map((a) => {
      const self = a.id === me.id;
      const btn = a.banned
        ? h("button", { type: "button", "data-testid": `unban-${a.id}` }, "Unban")
        : h("button", { type: "button", class: "danger", "data-testid": `ban-${a.id}`, disabled: self, title: self ? "You cannot ban yourself" : undefined }, "Ban");
      btn.addEventListener("click", () => void (a.banned ? unban(a) : ban(a)));
      return h(
        "tr",
        { "data-account-id": a.id },
        h("td", {}, a.username, a.guest ? h("span", { class: "muted" }, " (guest)") : null, a.email ? h("div", { class: "muted" }, a.email) : null),
        h("td", { class: "ids", title: a.id }, shortId(a.id)),
        h(
          "td",
          {},
          ...a.roles.map((r) => h("span", { class: r === "admin" ? "badge admin" : "badge" }, r)),
          a.banned ? h("span", { class: "badge banned", title: a.ban_reason ?? "" }, "banned" + (a.ban_reason ? `: ${a.ban_reason}` : "")) : null,
        ),
        h("td", {}, new Date(a.created_at).toLocaleDateString()),
        h("td", { class: "actions" }, btn),
      );
    }),
  );
}

async function ban(a: AdminAccount): Promise<void> {
  const reason = await confirmAction("Ban account", `Ban ${a.username} (${a.id})? Their sessions end at once on every node.`, "");
  if (reason === null) return;
  await action(`${a.username} banned.`, () => client.request("POST", `/v1/admin/accounts/${encodeURIComponent(a.id)}/ban`, { reason }));
  await Promise.all([loadAccounts(false), refreshLive()]);
}

async function unban(a: AdminAccount): Promise<void> {
  const ok = await confirmAction("Unban account", `Let ${a.username} (${a.id}) log in again?`, null);
  if (ok === null) return;
  await action(`${a.username} unbanned.`, () => client.request("POST", `/v1/admin/accounts/${encodeURIComponent(a.id)}/unban`));
  await loadAccounts(false);
}

// --- dead-letter queue ---

async function loadDLQ(): Promise<void> {
  try {
    const r = await client.request<{ messages: DeadLetter[] }>("GET", "/v1/admin/dlq?limit=100");
    data.dlq = r.messages ?? [];
    data.dlqAvailable = true;
    el.dlqError.textContent = "";
  } catch (e) {
    if (sessionLost(e)) return;
    data.dlq = [];
    data.dlqAvailable = !(e instanceof ApiError && e.status === 503 && e.code === "unavailable");
    el.dlqError.textContent = errorMessage(e);
  }
  renderDLQ();
}

function renderDLQ(): void {
  el.dlqCount.textContent = data.dlqAvailable ? `(${data.dlq.length})` : "";
  el.dlqReplayAll.disabled = data.dlq.length === 0;
  show(el.dlqReplayAll, data.dlqAvailable);
  if (data.dlq.length === 0) {
    fill(el.dlqBody, h("tr", {}, h("td", { colspan: "6", class: "muted" }, data.dlqAvailable ? "No dead letters." : "–")));
    return;
  }
  fill(
    el.dlqBody,
    ...data.dlq.map((d) => {
      const showBtn = h("button", { type: "button", "data-testid": `show-${d.seq}` }, "Show");
      showBtn.addEventListener("click", () => void showLetter(d.seq));
      const replay = h("button", { type: "button", class: "primary", "data-testid": `replay-${d.seq}` }, "Replay");
      replay.addEventListener("click", () => void replayOne(d));
      return h(
        "tr",
        { "data-seq": String(d.seq) },
        h("td", { class: "num" }, String(d.seq)),
        h("td", {}, timeOfDay(d.time)),
        h("td", {}, d.type || "?", h("div", { class: "muted ids", title: d.event_id }, d.subject)),
        h("td", { class: "err" }, d.error),
        h("td", { class: "num" }, String(d.deliveries)),
        h("td", { class: "actions" }, showBtn, " ", replay),
      );
    }),
  );
}

async function showLetter(seq: number): Promise<void> {
  try {
    const d = await client.request<DeadLetter>("GET", `/v1/admin/dlq/${seq}`);
    el.payloadTitle.textContent = `Dead letter ${seq}: ${d.type || d.subject}`;
    let text = d.payload ?? "";
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not JSON: show as is
    }
    el.payloadText.textContent = `${d.error}\n\n${text}`;
    el.payload.showModal();
  } catch (e) {
    if (!sessionLost(e)) el.dlqError.textContent = errorMessage(e);
  }
}

async function replayOne(d: DeadLetter): Promise<void> {
  const ok = await confirmAction("Replay dead letter", `Put event ${d.event_id || d.seq} back on the queue for persistence?`, null);
  if (ok === null) return;
  await action(`Dead letter ${d.seq} replayed.`, () => client.request("POST", `/v1/admin/dlq/${d.seq}/replay`));
  await loadDLQ();
}

el.dlqReplayAll.addEventListener("click", () => {
  void (async () => {
    const ok = await confirmAction("Replay all dead letters", `Put all ${data.dlq.length} dead letter(s) back on the queue?`, null);
    if (ok === null) return;
    let n = 0;
    await action("", async () => {
      n = (await client.request<{ replayed: number }>("POST", "/v1/admin/dlq/replay")).replayed;
    });
    if (!el.error.textContent) el.status.textContent = `Replayed ${n} dead letter(s).`;
    await loadDLQ();
  })();
});

// --- actions ---

/** Runs an admin action, reporting success in the status line and failure in the error line. */
async function action(done: string, fn: () => Promise<unknown>): Promise<void> {
  el.error.textContent = "";
  try {
    await fn();
    if (done) el.status.textContent = done;
  } catch (e) {
    if (!sessionLost(e)) el.error.textContent = errorMessage(e);
  }
}

/**
 * Asks for confirmation in a dialog. With a reason (a string, possibly
 * empty) the dialog asks for one and resolves to it; with null it only
 * confirms and resolves to "". Cancel resolves to null.
 */
function confirmAction(title: string, text: string, reason: string | null): Promise<string | null> {
  el.confirmTitle.textContent = title;
  el.confirmText.textContent = text;
  show(el.confirmReason, reason !== null);
  show(el.confirmReasonLabel, reason !== null);
  el.confirmReason.value = reason ?? "";
  el.confirm.returnValue = "";
  return new Promise((resolve) => {
    el.confirm.addEventListener(
      "close",
      () => {
        resolve(el.confirm.returnValue === "ok" ? el.confirmReason.value.trim() : null);
      },
      { once: true },
    );
    el.confirm.showModal();
    if (reason !== null) el.confirmReason.focus();
  });
}

// --- audit log ---

el.auditForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  data.auditKind = el.auditKind.value.trim();
  void loadAudit(false);
});

el.auditMore.addEventListener("click", () => void loadAudit(true));

async function loadAudit(more: boolean): Promise<void> {
  const q = new URLSearchParams({ limit: "50" });
  if (data.auditKind) q.set("kind", data.auditKind);
  if (more && data.auditNext) q.set("before", String(data.auditNext));
  const r = await panelCall(el.auditError, () => client.request<{ events: AuditEvent[]; next?: number }>("GET", "/v1/admin/audit?" + q.toString()));
  if (!r) return;
  data.audit = more ? [...data.audit, ...(r.events ?? [])] : (r.events ?? []);
  data.auditNext = r.next ?? 0;
  renderAudit();
}

function renderAudit(): void {
  show(el.auditMore, data.auditNext !== 0);
  if (data.audit.length === 0) {
    fill(el.auditBody, h("tr", {}, h("td", { colspan: "7", class: "muted" }, data.auditKind ? "No events of this kind." : "No events.")));
    return;
  }
  fill(
    el.auditBody,
    ...data.audit.map((e) =>
      h(
        "tr",
        { "data-audit-id": String(e.id) },
        h("td", { class: "num", title: e.chain_seq ? "place in the hash chain" : "not chained yet" }, e.chain_seq ? String(e.chain_seq) : "–"),
        h("td", { title: e.at }, new Date(e.at).toLocaleString()),
        h("td", {}, h("span", { class: "badge" }, e.kind)),
        h("td", { class: "ids", title: e.account_id ?? "" }, e.account_id ? nameOf(e.account_id) : ""),
        h("td", { class: "ids", title: e.actor_id ?? "" }, e.actor_id ? nameOf(e.actor_id) : ""),
        h("td", {}, e.ip ?? ""),
        h("td", { class: "muted detail" }, e.detail ?? ""),
      ),
    ),
  );
}

el.auditVerify.addEventListener("click", () => {
  el.auditVerify.disabled = true;
  el.auditChain.textContent = "Verifying…";
  void (async () => {
    const r = await panelCall(el.auditError, () => client.request<AuditVerify>("GET", "/v1/admin/audit/verify"));
    el.auditVerify.disabled = false;
    data.chain = r ?? null;
    el.auditChain.textContent = r ? chainSummary(r) : "";
    el.auditChain.className = r && !r.ok ? "err" : "muted";
  })();
});

function chainSummary(r: AuditVerify): string {
  const pending = r.unchained > 0 ? ` ${r.unchained} not chained yet (oldest ${timeOfDay(r.oldest_unchained ?? "")}).` : "";
  if (r.ok) return `Chain OK: ${r.chained} rows unchanged${r.head ? `, head ${r.head}` : ""}.${pending}`;
  const first = r.problems.slice(0, 5).map((p) => `${p.kind} at ${p.seq}`).join(", ");
  return `Chain broken: ${r.problem_count} problem(s): ${first}${r.problem_count > 5 ? ", …" : ""}. Run 'multijuego audit verify' for all.${pending}`;
}

// --- the test hook ---

declare global {
  interface Window {
    __mjAdmin?: { readonly version: 1; state(): unknown };
  }
}

window.__mjAdmin = Object.freeze({
  version: 1 as const,
  /** A read-only copy of what the console shows (for browser tests). */
  state() {
    return {
      screen,
      me: { ...me },
      matches: data.matches.map((m) => m.match_id),
      players: data.players.map((p) => p.account_id),
      accounts: data.accounts.map((a) => ({ id: a.id, username: a.username, banned: a.banned })),
      dlq: data.dlq.map((d) => d.seq),
      dlqAvailable: data.dlqAvailable,
      audit: data.audit.map((e) => ({ id: e.id, kind: e.kind, chainSeq: e.chain_seq ?? 0 })),
      chain: data.chain ? { ok: data.chain.ok, chained: data.chain.chained, problems: data.chain.problem_count } : null,
      loginError: el.loginError.textContent ?? "",
      error: el.error.textContent ?? "",
    };
  },
});

// --- start ---

if (client.tokens) {
  void enterConsole().catch((e) => showLogin(errorMessage(e)));
} else {
  showLogin();
}
