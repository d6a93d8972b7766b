// Compile-time checks (npm run typecheck): the platform's own fetch,
// WebSocket and storage fit ClientOptions, and events narrow by type. The
// function is never called: Node 20 has no global WebSocket.

import { test } from "node:test";

import { Client, type ServerEvent } from "../src/index.js";

export function browserOptionsFit(): Client {
  const c = new Client("", { fetch, WebSocket, storage: sessionStorage });
  void new Client("https://play.example", { fetch: window.fetch.bind(window), storage: localStorage, timers: window });
  return c;
}

export function eventsNarrow(e: ServerEvent): string {
  switch (e.type) {
    case "match.closed":
      return e.payload.reason;
    case "match.joined":
      return e.payload.resume_token;
    case "session.started":
      return e.payload.account_id;
    default:
      return e.type;
  }
}

test("type checks compile", () => {});
