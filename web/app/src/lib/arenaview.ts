// The arena screen: the match's frames, the controls (keyboard, pointer,
// on-screen joystick), drawing on the canvas with the other players
// interpolated and your own player predicted, and the HUD.

import type { Frame } from "../../../sdk/src/index.js";
import * as arena from "./arena.js";
import { byId, clock, fill, h } from "./dom.js";
import { Interpolator, Predictor, type Point } from "./motion.js";

/** What the arena screen needs from the page. */
export interface ArenaHost {
  /** The logged-in account. */
  me(): { id: string; username: string };
  /** Sends an input to the current match; false when it could not (not connected). */
  send(op: number, payload: Uint8Array): boolean;
  /** Whether the arena screen is the one showing (the keys belong to the game only then). */
  active(): boolean;
}

/** One player as the test hook shows it. */
export interface ArenaPlayerView {
  slot: number;
  id: string;
  username: string;
  /** Latest authoritative position. */
  x: number;
  y: number;
  /** Position drawn now (interpolated for the others). */
  rx: number;
  ry: number;
  score: number;
  it: boolean;
  lastSeq: number;
}

/** A player's place in the final ranking. */
export interface Ranked {
  account_id: string;
  username: string;
  placement: number;
  score: number;
}

const keyDirs: Record<string, [number, number]> = {
  ArrowUp: [0, -1],
  KeyW: [0, -1],
  ArrowDown: [0, 1],
  KeyS: [0, 1],
  ArrowLeft: [-1, 0],
  KeyA: [-1, 0],
  ArrowRight: [1, 0],
  KeyD: [1, 0],
};

const palette = ["#4e79a7", "#59a14f", "#edc948", "#b07aa1", "#76b7b2", "#ff9da7", "#9c755f", "#bab0ac", "#f28e2b", "#86bcb6", "#8cd17d", "#b6992d", "#499894", "#d37295", "#a0cbe8", "#fabfd2"];
const IT_COLOR = "#e15759";

/** How far behind the newest server state the other players are drawn, ms. */
export const INTERPOLATION_DELAY_MS = 100;

export class ArenaView {
  private readonly canvas = byId<HTMLCanvasElement>("arena-canvas");
  private readonly joystick = byId("joystick");
  private readonly knob = byId("joystick-knob");
  private readonly hudTime = byId("hud-time");
  private readonly hudScore = byId("hud-score");
  private readonly hudPhase = byId("hud-phase");
  private readonly hudScores = byId("hud-scores");

  private tickRate = 20;
  /** The newest state, or null before the first. */
  latest: arena.State | null = null;
  private readonly roster = new Map<number, arena.RosterEntry>(); // by slot
  /** Account id → display name, for everyone seen in this match. */
  readonly names = new Map<string, string>();
  private mySlot = -1;
  private readonly interp = new Interpolator(INTERPOLATION_DELAY_MS);
  private readonly pred = new Predictor();
  private seq = 0;
  private want = { dx: 0, dy: 0 }; // direction the controls ask for
  private sent = { dx: 0, dy: 0 }; // direction last sent
  private lastSendAt = -Infinity;
  private sendTimer = 0;
  private frameReq = 0;
  private lastFrameAt = 0;

  private readonly keys = new Set<string>();
  private readonly pointer = { active: false, id: -1, x: 0, y: 0 }; // target in world units
  private readonly stick = { active: false, id: -1, dx: 0, dy: 0 };

  constructor(private readonly host: ArenaHost) {
    this.listen();
  }

  /** Prepares for a new match (before joining: frames can come before the join's answer). */
  reset(tickRate: number): void {
    this.tickRate = tickRate > 0 ? tickRate : 20;
    this.latest = null;
    this.roster.clear();
    this.names.clear();
    this.mySlot = -1;
    this.interp.reset();
    this.pred.reset();
    this.seq = 0;
    this.want = { dx: 0, dy: 0 };
    this.sent = { dx: 0, dy: 0 };
    this.lastSendAt = -Infinity;
    this.stopInputs();
    this.keys.clear();
    this.pointer.active = false;
    this.stick.active = false;
    this.knob.style.transform = "";
    this.renderHud();
  }

  /** Stops sending inputs (the match is over or left). */
  stopInputs(): void {
    if (this.sendTimer) window.clearTimeout(this.sendTimer);
    this.sendTimer = 0;
  }

  onFrame(f: Frame): void {
    switch (f.op) {
      case arena.OP_ROSTER: {
        const me = this.host.me();
        this.roster.clear();
        for (const p of arena.decodeRoster(f.data)) {
          this.roster.set(p.slot, p);
          if (p.user_id === me.id) this.mySlot = p.slot;
        }
        for (const p of this.roster.values()) this.names.set(p.user_id, this.nameOfSlot(p.slot));
        this.renderHud();
        break;
      }
      case arena.OP_STATE: {
        const s = arena.decodeState(f.data);
        this.latest = s;
        this.interp.push(s.serverTimeMs, s.players, Date.now());
        const mine = s.players.find((p) => p.slot === this.mySlot);
        if (mine) this.pred.reconcile(mine.x, mine.y, mine.lastSeq, performance.now());
        this.renderHud();
        break;
      }
    }
  }

  /**
   * A player's display name: the roster's username, else (the server may
   * not know usernames in matches) your own name or "player N" by slot.
   */
  nameOfSlot(slot: number): string {
    const e = this.roster.get(slot);
    if (e?.username) return e.username;
    if (e && e.user_id === this.host.me().id) return this.host.me().username;
    return `player ${slot + 1}`;
  }

  /** The ranking of the last state: by score; equal scores share a place (the server breaks ties by time as "it"). */
  ranking(): Ranked[] {
    const players = [...(this.latest?.players ?? [])].sort((a, b) => b.score - a.score);
    const out: Ranked[] = [];
    players.forEach((p, i) => {
      const place = i > 0 && players[i - 1]!.score === p.score ? out[i - 1]!.placement : i + 1;
      out.push({ account_id: this.roster.get(p.slot)?.user_id ?? "", username: this.nameOfSlot(p.slot), placement: place, score: p.score });
    });
    return out;
  }

  /** The state for the test hook. */
  snapshot() {
    const s = this.latest;
    if (!s) return null;
    const drawn = this.interp.sample(Date.now());
    return {
      phase: ["waiting", "playing", "ended"][s.phase] ?? String(s.phase),
      tick: s.tick,
      timeLeftMs: s.timeLeftMs,
      mySlot: this.mySlot,
      seq: this.seq,
      rttMs: Math.round(this.pred.rtt),
      predicted: this.pred.ready ? this.pred.display() : null,
      players: s.players.map(
        (p): ArenaPlayerView => ({
          slot: p.slot,
          id: this.roster.get(p.slot)?.user_id ?? "",
          username: this.nameOfSlot(p.slot),
          x: p.x,
          y: p.y,
          rx: drawn.get(p.slot)?.x ?? p.x,
          ry: drawn.get(p.slot)?.y ?? p.y,
          score: p.score,
          it: (p.flags & arena.FLAG_IT) !== 0,
          lastSeq: p.lastSeq,
        }),
      ),
    };
  }

  // --- controls ---

  private listen(): void {
    const typing = (t: EventTarget | null) => t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
    window.addEventListener("keydown", (ev) => {
      if (!this.host.active() || typing(ev.target) || !(ev.code in keyDirs)) return;
      ev.preventDefault();
      if (ev.repeat && this.keys.has(ev.code)) return;
      this.keys.add(ev.code);
      this.updateControls();
    });
    window.addEventListener("keyup", (ev) => {
      if (!this.keys.delete(ev.code)) return;
      ev.preventDefault();
      this.updateControls();
    });
    window.addEventListener("blur", () => {
      this.keys.clear();
      this.pointer.active = this.stick.active = false;
      this.updateControls();
    });

    // Hold the mouse or a finger on the field: your player runs toward it.
    const c = this.canvas;
    c.addEventListener("pointerdown", (ev) => {
      c.setPointerCapture(ev.pointerId);
      Object.assign(this.pointer, { active: true, id: ev.pointerId }, this.worldPoint(ev));
      this.updateControls();
    });
    c.addEventListener("pointermove", (ev) => {
      if (this.pointer.active && ev.pointerId === this.pointer.id) Object.assign(this.pointer, this.worldPoint(ev));
    });
    for (const type of ["pointerup", "pointercancel"] as const) {
      c.addEventListener(type, (ev) => {
        if (ev.pointerId !== this.pointer.id) return;
        this.pointer.active = false;
        this.updateControls();
      });
    }

    // The on-screen joystick (shown on touch screens).
    const j = this.joystick;
    j.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      j.setPointerCapture(ev.pointerId);
      this.stick.active = true;
      this.stick.id = ev.pointerId;
      this.stickMove(ev);
    });
    j.addEventListener("pointermove", (ev) => {
      if (this.stick.active && ev.pointerId === this.stick.id) this.stickMove(ev);
    });
    for (const type of ["pointerup", "pointercancel"] as const) {
      j.addEventListener(type, (ev) => {
        if (ev.pointerId !== this.stick.id) return;
        this.stick.active = false;
        this.knob.style.transform = "";
        this.updateControls();
      });
    }
  }

  private worldPoint(ev: PointerEvent): Point {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((ev.clientX - r.left) / r.width) * arena.WIDTH, y: ((ev.clientY - r.top) / r.height) * arena.HEIGHT };
  }

  private stickMove(ev: PointerEvent): void {
    const r = this.joystick.getBoundingClientRect();
    const radius = r.width / 2;
    let dx = (ev.clientX - (r.left + radius)) / radius;
    let dy = (ev.clientY - (r.top + radius)) / radius;
    const l = Math.hypot(dx, dy);
    if (l > 1) {
      dx /= l;
      dy /= l;
    }
    this.stick.dx = dx;
    this.stick.dy = dy;
    this.knob.style.transform = `translate(${dx * 50}%, ${dy * 50}%)`;
    this.updateControls();
  }

  /** Works out the direction the controls ask for and sends it if it changed. Keys win over the joystick, which wins over the pointer. */
  private updateControls(): void {
    let dx = 0;
    let dy = 0;
    if (this.keys.size > 0) {
      for (const k of this.keys) {
        const d = keyDirs[k];
        if (d) {
          dx += d[0];
          dy += d[1];
        }
      }
      dx = Math.sign(dx) * 127;
      dy = Math.sign(dy) * 127;
    } else if (this.stick.active) {
      dx = this.stick.dx * 127;
      dy = this.stick.dy * 127;
    } else if (this.pointer.active) {
      const from = this.pred.ready ? this.pred.display() : this.myServerPosition();
      if (from) {
        const vx = this.pointer.x - from.x;
        const vy = this.pointer.y - from.y;
        const l = Math.hypot(vx, vy);
        if (l > 8) {
          dx = (vx / l) * 127;
          dy = (vy / l) * 127;
        }
      }
    }
    dx = arena.clampAxis(dx);
    dy = arena.clampAxis(dy);
    if (dx === this.want.dx && dy === this.want.dy) return;
    this.want = { dx, dy };
    this.scheduleSend();
  }

  /**
   * Sends the wanted direction, at most one input per tick and a bit: the
   * server applies only the newest input of each tick, so a quick key
   * press (down then up within one tick) would otherwise never move the
   * player; it also keeps the input rate well under the server's limit.
   */
  private scheduleSend(): void {
    const gap = 1000 / this.tickRate + 10;
    const wait = this.lastSendAt + gap - performance.now();
    if (wait <= 0) {
      this.sendInput();
    } else if (!this.sendTimer) {
      this.sendTimer = window.setTimeout(() => {
        this.sendTimer = 0;
        this.sendInput();
      }, wait);
    }
  }

  private sendInput(): void {
    if (!this.host.active()) return;
    const { dx, dy } = this.want;
    if (dx === this.sent.dx && dy === this.sent.dy) return;
    const seq = this.seq + 1;
    if (!this.host.send(arena.OP_INPUT, arena.encodeInput(seq, dx, dy))) return; // not connected: the next change resends
    const now = performance.now();
    this.seq = seq;
    this.sent = { dx, dy };
    this.lastSendAt = now;
    this.pred.input(seq, dx, dy, now);
  }

  private myServerPosition(): Point | null {
    const p = this.latest?.players.find((q) => q.slot === this.mySlot);
    return p ? { x: p.x, y: p.y } : null;
  }

  // --- drawing ---

  /** Starts drawing every animation frame (while the screen shows). */
  start(): void {
    if (this.frameReq) return;
    this.lastFrameAt = performance.now();
    const loop = (now: number) => {
      this.frameReq = requestAnimationFrame(loop);
      this.pred.advance(Math.min(now - this.lastFrameAt, 250));
      this.lastFrameAt = now;
      if (this.pointer.active) this.updateControls(); // the target stays, the player moves
      this.draw();
    };
    this.frameReq = requestAnimationFrame(loop);
  }

  stop(): void {
    if (this.frameReq) cancelAnimationFrame(this.frameReq);
    this.frameReq = 0;
  }

  private draw(): void {
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    const W = arena.WIDTH;
    const H = arena.HEIGHT;
    ctx.fillStyle = "#10151c";
    ctx.fillRect(0, 0, W, H);
    ctx.strokeStyle = "#1d2733";
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (let g = 100; g < W; g += 100) {
      ctx.moveTo(g, 0);
      ctx.lineTo(g, H);
      ctx.moveTo(0, g);
      ctx.lineTo(W, g);
    }
    ctx.stroke();
    ctx.strokeStyle = "#5b6b7f";
    ctx.lineWidth = 6;
    ctx.strokeRect(3, 3, W - 6, H - 6);
    const s = this.latest;
    if (!s) {
      caption(ctx, "Joining…");
      return;
    }
    const others = this.interp.sample(Date.now());
    ctx.textAlign = "center";
    ctx.font = "bold 22px system-ui, sans-serif";
    for (const p of s.players) {
      const mine = p.slot === this.mySlot;
      const pos = mine ? (this.pred.ready ? this.pred.display() : p) : (others.get(p.slot) ?? p);
      const it = (p.flags & arena.FLAG_IT) !== 0;
      ctx.globalAlpha = p.flags & arena.FLAG_DISCONNECTED ? 0.35 : 1;
      ctx.beginPath();
      ctx.arc(pos.x, pos.y, arena.RADIUS, 0, Math.PI * 2);
      ctx.fillStyle = it ? IT_COLOR : palette[p.slot % palette.length]!;
      ctx.fill();
      if (mine) {
        ctx.lineWidth = 5;
        ctx.strokeStyle = "#ffffff";
        ctx.stroke();
      }
      ctx.fillStyle = "#e8edf3";
      const label = mine ? "you" : this.nameOfSlot(p.slot);
      const half = ctx.measureText(label).width / 2 + 4;
      ctx.fillText(label, Math.min(Math.max(pos.x, half), W - half), pos.y - arena.RADIUS - 10);
      ctx.globalAlpha = 1;
    }
    if (s.phase === arena.PHASE_WAITING) caption(ctx, "Waiting for another player to join…");
    else if (s.phase === arena.PHASE_ENDED) caption(ctx, "Match over");
  }

  private renderHud(): void {
    const s = this.latest;
    if (!s) {
      this.hudTime.textContent = "–";
      this.hudScore.textContent = "0";
      this.hudPhase.textContent = "Joining…";
      fill(this.hudScores);
      return;
    }
    this.hudTime.textContent = clock(s.timeLeftMs);
    const mine = s.players.find((p) => p.slot === this.mySlot);
    this.hudScore.textContent = String(mine?.score ?? 0);
    const it = s.players.find((p) => p.flags & arena.FLAG_IT);
    const meIt = !!it && it.slot === this.mySlot;
    this.hudPhase.textContent =
      s.phase === arena.PHASE_WAITING
        ? "Waiting for another player"
        : s.phase === arena.PHASE_ENDED
          ? "Match over"
          : meIt
            ? "You are it: tag someone!"
            : `Run! ${it ? this.nameOfSlot(it.slot) : "nobody"} is it`;
    this.hudPhase.classList.toggle("it", meIt);
    const rows = [...s.players].sort((a, b) => b.score - a.score || a.slot - b.slot);
    fill(
      this.hudScores,
      ...rows.map((p) =>
        h(
          "li",
          { class: p.slot === this.mySlot ? "me" : undefined, "data-slot": String(p.slot) },
          `${this.nameOfSlot(p.slot)}${p.slot === this.mySlot ? " (you)" : ""}: ${p.score}`,
          p.flags & arena.FLAG_IT ? h("span", { class: "tag-it" }, " it") : null,
        ),
      ),
    );
  }
}

function caption(ctx: CanvasRenderingContext2D, text: string): void {
  ctx.textAlign = "center";
  ctx.font = "bold 40px system-ui, sans-serif";
  ctx.fillStyle = "rgba(232, 237, 243, 0.85)";
  ctx.fillText(text, arena.WIDTH / 2, arena.HEIGHT / 2);
}
