import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as arena from "../src/lib/arena.js";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const fromHex = (s: string) => new Uint8Array((s.match(/../g) ?? []).map((x) => parseInt(x, 16)));

// Bytes from the Go server's encoder (games/arena AppendState and
// AppendInput) for the values below.
const goState =
  "87d61200000000007ba8da769b0100002eea00000102000103002a00000000a054440000fa4300009643000000000502ffffffffffff0000a04100007544cd2154c3cd215443";
const goInput = "02010000817f0000";

describe("arena state", () => {
  test("decodes the Go encoder's bytes", () => {
    const s = arena.decodeState(fromHex(goState));
    assert.equal(s.tick, 1234567);
    assert.equal(s.serverTimeMs, 1767225600123);
    assert.equal(s.timeLeftMs, 59950);
    assert.equal(s.phase, arena.PHASE_PLAYING);
    assert.equal(s.players.length, 2);
    assert.deepEqual(s.players[0], { slot: 0, flags: arena.FLAG_IT, score: 3, lastSeq: 42, x: 850.5, y: 500, vx: 300, vy: 0 });
    const p = s.players[1]!;
    assert.deepEqual([p.slot, p.flags, p.score, p.lastSeq, p.x, p.y], [5, arena.FLAG_DISCONNECTED, 65535, 4294967295, 20, 980]);
    assert.ok(Math.abs(p.vx + 212.13203) < 1e-4 && Math.abs(p.vy - 212.13203) < 1e-4, `velocity ${p.vx}, ${p.vy}`);
  });

  test("encodes what it decodes", () => {
    assert.equal(hex(arena.encodeState(arena.decodeState(fromHex(goState)))), goState);
  });

  test("decodes a state inside a larger buffer (a frame's payload view)", () => {
    const frame = fromHex("ffffff" + goState + "ee");
    const s = arena.decodeState(frame.subarray(3, frame.length - 1));
    assert.equal(s.tick, 1234567);
    assert.equal(s.players[1]!.slot, 5);
  });

  test("refuses bytes that are not a state", () => {
    const good = fromHex(goState);
    for (const [name, b] of [
      ["short header", good.subarray(0, 21)],
      ["missing record bytes", good.subarray(0, good.length - 1)],
      ["extra bytes", fromHex(goState + "00")],
      ["more than 16 players", (() => {
        const b = new Uint8Array(22 + 17 * 24);
        b[21] = 17;
        return b;
      })()],
    ] as const) {
      assert.throws(() => arena.decodeState(b), /arena: a state/, name);
    }
  });
});

describe("arena input", () => {
  test("matches the Go encoder, -128 sent as -127", () => {
    assert.equal(hex(arena.encodeInput(258, -128, 127)), goInput);
  });

  test("rounds and clamps directions", () => {
    assert.equal(hex(arena.encodeInput(1, 126.6, -300)), "010000007f810000");
    assert.equal(hex(arena.encodeInput(0xffffffff, Number.NaN, 0)), "ffffffff00000000");
  });

  test("refuses a seq that is not a uint32", () => {
    for (const seq of [-1, 2 ** 32, 1.5, Number.NaN]) assert.throws(() => arena.encodeInput(seq, 0, 0), RangeError, String(seq));
  });

  test("a diagonal is no faster than a straight line", () => {
    const d = arena.direction(127, 127);
    assert.ok(Math.abs(Math.hypot(d.x, d.y) - 1) < 1e-12);
    assert.deepEqual(arena.direction(127, 0), { x: 1, y: 0 });
    assert.deepEqual(arena.direction(0, 0), { x: 0, y: 0 });
    const half = arena.direction(-64, 0);
    assert.ok(Math.abs(half.x + 64 / 127) < 1e-12 && half.y === 0);
  });
});

describe("arena roster", () => {
  test("decodes the JSON roster and skips malformed entries", () => {
    const b = new TextEncoder().encode(
      JSON.stringify({ players: [{ slot: 0, user_id: "a", username: "ann" }, { slot: "1", user_id: "b" }, null, { slot: 2, user_id: "c", username: "" }] }),
    );
    assert.deepEqual(arena.decodeRoster(b), [
      { slot: 0, user_id: "a", username: "ann" },
      { slot: 2, user_id: "c", username: "" },
    ]);
  });

  test("refuses anything else", () => {
    assert.throws(() => arena.decodeRoster(new TextEncoder().encode("[]")), /players/);
    assert.throws(() => arena.decodeRoster(new TextEncoder().encode("{")), SyntaxError);
  });
});
