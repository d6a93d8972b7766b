// The tic-tac-toe screen: a 3×3 grid of buttons, whose turn it is, and
// the result. Clicks send moves; the server's state is the only truth (a
// cell shows a mark only once the server says so).

import type { Frame } from "../../../sdk/src/index.js";
import { byId, fill, h } from "./dom.js";
import * as ttt from "./tictactoe.js";

/** What the tic-tac-toe screen needs from the page. */
export interface TttHost {
  me(): { id: string; username: string };
  /** Sends an input to the current match; false when it could not (not connected). */
  send(op: number, payload: Uint8Array): boolean;
}

export class TttView {
  private readonly statusEl = byId("ttt-status");
  private readonly errorEl = byId("ttt-error");
  private readonly leaveBtn = byId<HTMLButtonElement>("ttt-leave");
  private readonly cells: HTMLButtonElement[] = [];

  private state: ttt.State | null = null;
  private error = "";
  /** Whether the player is out of the match (it ended, or they were removed). */
  closed = false;

  constructor(private readonly host: TttHost) {
    for (let i = 0; i < 9; i++) {
      const b = h("button", { type: "button", id: `ttt-cell-${i}`, "data-testid": `ttt-cell-${i}`, class: "cell", "data-cell": String(i) });
      b.addEventListener("click", () => this.play(i));
      this.cells.push(b);
    }
    fill(byId("ttt-board"), ...this.cells);
    this.render();
  }

  /** Prepares for a new game. */
  reset(): void {
    this.state = null;
    this.error = "";
    this.closed = false;
    this.leaveBtn.textContent = "Leave";
    this.render();
  }

  onFrame(f: Frame): void {
    switch (f.op) {
      case ttt.OP_STATE:
        this.state = ttt.decodeState(f.data);
        this.error = "";
        break;
      case ttt.OP_ERROR:
        this.error = ttt.errorText(ttt.decodeError(f.data));
        break;
      default:
        return;
    }
    this.render();
  }

  /** The player is out of the match; why is a text to show, or "". */
  close(why: string): void {
    this.closed = true;
    if (why) this.error = why;
    this.leaveBtn.textContent = "Back to lobby";
    this.render();
  }

  /** Shows an error from the connection (a refused input). */
  showError(message: string): void {
    this.error = message;
    this.render();
  }

  private play(cell: number): void {
    const s = this.state;
    const mine = s ? ttt.markOf(s, this.host.me().id) : "";
    if (!s || this.closed || s.status !== "playing" || s.turn !== mine || s.board[cell] !== ".") return;
    this.error = this.host.send(ttt.OP_MOVE, ttt.encodeMove(cell)) ? "" : "Not connected; the move was not sent.";
    this.render();
  }

  private render(): void {
    const s = this.state;
    const me = this.host.me().id;
    const mine = s ? ttt.markOf(s, me) : "";
    const line = s ? ttt.winningLine(s.board) : [];
    this.cells.forEach((b, i) => {
      const c = s ? s.board[i]! : ".";
      b.textContent = c === "." ? "" : c;
      b.classList.toggle("win", line.includes(i));
      b.disabled = !s || this.closed || s.status !== "playing" || s.turn !== mine || c !== ".";
      b.setAttribute("aria-label", `Row ${Math.floor(i / 3) + 1}, column ${(i % 3) + 1}: ${c === "." ? "empty" : c}`);
    });
    this.statusEl.textContent = s ? ttt.statusText(s, me) : "Joining…";
    this.errorEl.textContent = this.error;
  }

  /** The state for the test hook. */
  snapshot() {
    const s = this.state;
    return s ? { ...s, mark: ttt.markOf(s, this.host.me().id), error: this.error, closed: this.closed } : null;
  }
}
