// Test doubles: a clock with timers that only move when told, a WebSocket
// the test drives by hand, an HTTP server as a route table, and storage.

import type { FetchLike, StorageLike, Timers, WebSocketLike } from "../src/index.js";

/** A fake clock and timers: nothing runs until advance() or runNext(). */
export class FakeTime implements Timers {
  nowMs = 1_700_000_000_000;
  private nextId = 1;
  timers = new Map<number, { at: number; ms: number; fn: () => void }>();
  /** Every delay ever scheduled, in order. */
  scheduled: number[] = [];

  now = (): number => this.nowMs;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.nowMs + ms, ms, fn });
    this.scheduled.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** The pending timer due first, if any. */
  next(): { id: number; at: number; ms: number } | undefined {
    let best: { id: number; at: number; ms: number } | undefined;
    for (const [id, t] of this.timers) {
      if (!best || t.at < best.at || (t.at === best.at && id < best.id)) best = { id, at: t.at, ms: t.ms };
    }
    return best;
  }

  /** Moves the clock by ms, running the timers that come due, in order. */
  advance(ms: number): void {
    const end = this.nowMs + ms;
    for (;;) {
      const n = this.next();
      if (!n || n.at > end) break;
      const t = this.timers.get(n.id)!;
      this.timers.delete(n.id);
      this.nowMs = n.at;
      t.fn();
    }
    this.nowMs = end;
  }
}

/** Lets pending promise callbacks run (fetch answers, awaits in the SDK). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A WebSocket driven by the test: open(), receive(), serverClose(). */
export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  static reset(): void {
    FakeSocket.all = [];
  }
  static last(): FakeSocket {
    const s = FakeSocket.all[FakeSocket.all.length - 1];
    if (!s) throw new Error("no socket was opened");
    return s;
  }

  readyState = 0;
  binaryType = "blob";
  sent: (string | ArrayBuffer)[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: ((ev: any) => void) | null = null;
  onclose: ((ev: any) => void) | null = null;
  onmessage: ((ev: any) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;

  constructor(
    public url: string,
    public protocols?: string | string[],
  ) {
    FakeSocket.all.push(this);
  }

  send(data: string | ArrayBuffer): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(data: string | ArrayBuffer | Uint8Array): void {
    this.onmessage?.({ data: typeof data === "string" ? data : data instanceof Uint8Array ? data.slice().buffer : data });
  }

  receiveJSON(type: string, cid: string, payload: unknown): void {
    this.receive(JSON.stringify({ type, cid, payload }));
  }

  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code, reason });
  }

  /** The envelopes sent, parsed. */
  envelopes(): { type: string; cid?: string; payload?: any }[] {
    return this.sent.filter((d): d is string => typeof d === "string").map((d) => JSON.parse(d));
  }

  /** The last envelope sent. */
  lastEnvelope(): { type: string; cid?: string; payload?: any } {
    const e = this.envelopes();
    const last = e[e.length - 1];
    if (!last) throw new Error("nothing sent");
    return last;
  }
}

export type Handler = (req: { method: string; path: string; headers: Record<string, string>; body: any }) => { status: number; body?: unknown; headers?: Record<string, string> };

/** An HTTP server as a table of "METHOD /path" handlers; it records every request. */
export class FakeServer {
  requests: { method: string; path: string; headers: Record<string, string>; body: any }[] = [];
  routes = new Map<string, Handler>();
  /** Set to make every request fail like a network error. */
  down = false;

  route(key: string, h: Handler): this {
    this.routes.set(key, h);
    return this;
  }

  fetch: FetchLike = async (url, init) => {
    const u = new URL(url);
    const path = u.pathname + u.search;
    const req = { method: init.method, path, headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) };
    this.requests.push(req);
    if (this.down) throw new TypeError("fetch failed");
    const h = this.routes.get(`${init.method} ${u.pathname}`);
    const r = h ? h(req) : { status: 404, body: { error: { code: "not_found", message: "No such route." } } };
    const text = r.body === undefined ? "" : typeof r.body === "string" ? r.body : JSON.stringify(r.body);
    const hdrs = new Map(Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    return { status: r.status, headers: { get: (n: string) => hdrs.get(n.toLowerCase()) ?? null }, text: async () => text };
  };

  /** The paths requested, as "METHOD /path". */
  log(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }
}

/** Storage in a Map. */
export class MemoryStorage implements StorageLike {
  m = new Map<string, string>();
  getItem(k: string): string | null {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.m.set(k, v);
  }
  removeItem(k: string): void {
    this.m.delete(k);
  }
}

/** A token answer as the server gives it. */
export function tokenBody(n: number, expiresIn = 900): { status: number; body: unknown } {
  return { status: 200, body: { access_token: `at${n}`, refresh_token: `rt${n}`, token_type: "Bearer", expires_in: expiresIn, account_id: "acc1" } };
}
