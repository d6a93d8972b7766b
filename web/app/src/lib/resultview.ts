// The arena's result screen: placements at once from the last state, then
// the match as persistence stored it (GET /v1/matches/{id}) and the
// leaderboard around the player (arena_best_score). Persistence is
// asynchronous, so both are retried for a few seconds.

import { ApiError, type Client, type LeaderboardRecord, type MatchLookup } from "../../../sdk/src/index.js";
import type { Ranked } from "./arenaview.js";
import { byId, errorMessage, fill, h, shortId, show, sleep } from "./dom.js";

/** The leaderboard the result screen shows. */
export const LEADERBOARD = "arena_best_score";
/** How long the screen waits for the stored result, ms. */
export const RESULT_WAIT_MS = 6000;
const RETRY_MS = 500;

export class ResultView {
  private readonly reasonEl = byId("result-reason");
  private readonly placementsEl = byId("result-placements");
  private readonly recordEl = byId("result-record");
  private readonly leaderboardEl = byId("result-leaderboard");
  private readonly leaderboardStatusEl = byId("result-leaderboard-status");

  private matchId = "";
  private reason = "";
  private placements: Ranked[] = [];
  private stored = false;
  private endReason = "";
  private leaderboard: LeaderboardRecord[] = [];
  private leaderboardStatus = "";
  private names = new Map<string, string>();
  private me = { id: "", username: "" };

  constructor(private readonly client: Client) {}

  /**
   * Shows the result of match id: reason is why the player is out of it
   * (text, "" for a normal end), ranking the placements from the last state,
   * names the display names by account id. Resolves once the stored record
   * and the leaderboard are in (or given up on).
   */
  async show(id: string, reason: string, ranking: Ranked[], names: Map<string, string>, me: { id: string; username: string }): Promise<void> {
    this.matchId = id;
    this.reason = reason;
    this.placements = ranking;
    this.names = new Map(names);
    this.me = { ...me };
    this.stored = false;
    this.endReason = "";
    this.leaderboard = [];
    this.leaderboardStatus = "Loading…";
    this.recordEl.textContent = "Saving the result…";
    this.render();

    const deadline = performance.now() + RESULT_WAIT_MS;
    const rec = await this.loadRecord(id, deadline);
    if (this.matchId !== id) return; // the player moved on
    if (rec && !rec.live) {
      const m = rec.match;
      this.stored = true;
      this.endReason = m.end_reason ?? "";
      if (m.results.length > 0) {
        this.placements = m.results.map((x) => ({
          account_id: x.account_id,
          username: this.names.get(x.account_id) || shortId(x.account_id),
          placement: x.placement,
          score: x.score,
        }));
      }
      const secs = m.duration_ms ? ` after ${Math.round(m.duration_ms / 1000)} s` : "";
      this.recordEl.textContent = `Result stored${secs} (${endReasonText(this.endReason)}).`;
    } else if (!this.recordEl.textContent?.startsWith("Cannot")) {
      this.recordEl.textContent = "The result is not stored yet; it will show in your match history.";
    }
    this.render();
    await this.loadLeaderboard(id, deadline);
  }

  /** Forgets the screen (the player left it): pending loads stop. */
  clear(): void {
    this.matchId = "";
  }

  private async loadRecord(id: string, deadline: number): Promise<MatchLookup | null> {
    for (;;) {
      try {
        const r = await this.client.getMatch(id);
        if (!r.live && r.match.ended_at) return r;
      } catch (e) {
        // 404: not stored yet.
        if (!(e instanceof ApiError && e.status === 404)) {
          this.recordEl.textContent = "Cannot load the stored result: " + errorMessage(e);
          return null;
        }
      }
      if (performance.now() > deadline || this.matchId !== id) return null;
      await sleep(RETRY_MS);
    }
  }

  private async loadLeaderboard(id: string, deadline: number): Promise<void> {
    for (;;) {
      try {
        const page = await this.client.leaderboardAround(LEADERBOARD, "me", 3);
        if (this.matchId !== id) return;
        this.leaderboard = page.records;
        this.leaderboardStatus = page.records.length ? "" : "No scores yet.";
        break;
      } catch (e) {
        // 404: no record of this player yet (persistence is catching up).
        const notYet = e instanceof ApiError && e.status === 404;
        if (!notYet || performance.now() > deadline) {
          this.leaderboardStatus = notYet ? "You are not on the leaderboard yet." : "Cannot load the leaderboard: " + errorMessage(e);
          break;
        }
      }
      if (this.matchId !== id) return;
      await sleep(RETRY_MS);
    }
    if (this.matchId === id) this.render();
  }

  private render(): void {
    const me = this.me;
    this.reasonEl.textContent = this.reason;
    show(this.reasonEl, this.reason !== "");
    if (this.placements.length === 0) {
      fill(this.placementsEl, h("li", { class: "empty" }, "Nobody was ranked."));
    } else {
      fill(
        this.placementsEl,
        ...this.placements.map((p) =>
          h(
            "li",
            { "data-testid": `placement-${p.account_id}`, class: p.account_id === me.id ? "me" : undefined },
            `${ordinal(p.placement)}: ${p.account_id === me.id ? me.username + " (you)" : p.username} with ${p.score} point${p.score === 1 ? "" : "s"}`,
          ),
        ),
      );
    }
    fill(
      this.leaderboardEl,
      ...this.leaderboard.map((r) =>
        h(
          "tr",
          { class: r.account_id === me.id ? "me" : undefined, "data-testid": `rank-${r.account_id}` },
          h("td", {}, String(r.rank)),
          h("td", { title: r.account_id }, r.account_id === me.id ? `${me.username} (you)` : this.names.get(r.account_id) || shortId(r.account_id)),
          h("td", {}, String(r.value)),
        ),
      ),
    );
    this.leaderboardStatusEl.textContent = this.leaderboardStatus;
  }

  /** The state for the test hook. */
  snapshot() {
    return {
      matchId: this.matchId,
      reason: this.reason,
      stored: this.stored,
      endReason: this.endReason,
      placements: this.placements.map((p) => ({ ...p })),
      leaderboard: this.leaderboard.map((r) => ({ rank: r.rank, account_id: r.account_id, value: r.value })),
      leaderboardStatus: this.leaderboardStatus,
    };
  }
}

function endReasonText(r: string): string {
  switch (r) {
    case "time_limit":
      return "time is up";
    case "opponents_left":
      return "everyone else left";
    case "abandoned":
      return "everyone left";
    case "shutdown":
      return "the server shut down";
  }
  return r.startsWith("ended_by_operator") ? "ended by an administrator" : r || "ended";
}

/** 1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, … 21st. */
export function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return n + s;
}
