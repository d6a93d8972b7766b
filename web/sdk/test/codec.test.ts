import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  backoffDelay,
  decodeEnvelope,
  decodeFrame,
  decodeInput,
  encodeEnvelope,
  encodeFrame,
  encodeInput,
  OP_WARNING,
  ProtocolError,
} from "../src/index.js";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
const fromHex = (s: string) => new Uint8Array(s.split(/\s+/).filter(Boolean).map((x) => parseInt(x, 16)));

describe("encodeInput", () => {
  test("op code little-endian, then the payload (protocol.md example: tic-tac-toe move to cell 4)", () => {
    assert.equal(hex(encodeInput(1, new Uint8Array([4]))), "01 00 04");
    assert.equal(hex(encodeInput(0x1234, new Uint8Array([0xaa, 0xbb]))), "34 12 aa bb");
    assert.equal(hex(encodeInput(7)), "07 00");
    assert.equal(hex(encodeInput(0xfeff, new Uint8Array())), "ff fe");
  });

  test("arena input: seq uint32, dx int8, dy int8, two zero bytes", () => {
    const p = new Uint8Array(8);
    const dv = new DataView(p.buffer);
    dv.setUint32(0, 258, true);
    dv.setInt8(4, -1);
    dv.setInt8(5, 1);
    assert.equal(hex(encodeInput(1, p)), "01 00 02 01 00 00 ff 01 00 00");
  });

  for (const bad of [-1, 0xff00, 0xffff, 0x10000, 1.5, NaN, Infinity]) {
    test(`refuses op code ${bad}`, () => {
      assert.throws(() => encodeInput(bad, new Uint8Array()), (e: Error) => e instanceof RangeError && /0xFEFF/.test(e.message) && e.message.includes(String(bad)));
    });
  }

  test("refuses a payload that is not a Uint8Array", () => {
    assert.throws(() => encodeInput(1, [1, 2] as unknown as Uint8Array), /Uint8Array/);
  });

  test("decodeInput is its inverse and refuses a frame shorter than an op code", () => {
    const d = decodeInput(encodeInput(513, new Uint8Array([9, 8])));
    assert.equal(d.op, 513);
    assert.deepEqual([...d.payload], [9, 8]);
    assert.throws(() => decodeInput(new Uint8Array([1])), (e: Error) => e instanceof ProtocolError && /got 1 byte/.test(e.message));
  });
});

describe("decodeFrame", () => {
  // protocol.md: a tic-tac-toe state at tick 7 of match ab12 (op 2, JSON payload)
  const example = fromHex('01 02 00 07 00 00 00 00 00 00 00 04 61 62 31 32 7b 22 62 22 7d');

  test("decodes the protocol's example", () => {
    const f = decodeFrame(example);
    assert.equal(f.op, 2);
    assert.equal(f.tick, 7);
    assert.equal(f.matchId, "ab12");
    assert.equal(new TextDecoder().decode(f.data), '{"b"}');
  });

  test("accepts an ArrayBuffer and a view at an offset", () => {
    assert.equal(decodeFrame(example.slice().buffer).matchId, "ab12");
    const padded = new Uint8Array(example.length + 5);
    padded.set(example, 3);
    const f = decodeFrame(padded.subarray(3, 3 + example.length));
    assert.equal(f.tick, 7);
    assert.equal(f.matchId, "ab12");
    assert.equal(f.data.length, 5);
  });

  test("empty match id and empty payload", () => {
    const f = decodeFrame(fromHex("01 03 00 00 00 00 00 00 00 00 00 00"));
    assert.deepEqual({ op: f.op, tick: f.tick, matchId: f.matchId, n: f.data.length }, { op: 3, tick: 0, matchId: "", n: 0 });
  });

  test("round trip with encodeFrame, large ticks, warning op", () => {
    const data = new TextEncoder().encode("rate_limited");
    const f = decodeFrame(encodeFrame({ op: OP_WARNING, tick: 2 ** 40 + 3, matchId: "m-1", data }));
    assert.equal(f.op, 0xff00);
    assert.equal(f.tick, 2 ** 40 + 3);
    assert.equal(f.matchId, "m-1");
    assert.equal(new TextDecoder().decode(f.data), "rate_limited");
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(), /12-byte header; got 0 byte/],
    ["short header", fromHex("01 02 00 07"), /12-byte header; got 4 byte/],
    ["wrong kind", fromHex("02 02 00 07 00 00 00 00 00 00 00 00"), /unknown frame kind 0x02/],
    ["truncated match id", fromHex("01 02 00 07 00 00 00 00 00 00 00 05 61 62"), /5-byte match id but has only 2/],
    ["non-ASCII match id", fromHex("01 02 00 07 00 00 00 00 00 00 00 01 c3"), /non-ASCII byte 0xc3/],
    ["tick beyond 2^53", fromHex("01 02 00 00 00 00 00 00 00 00 ff 00"), /beyond 2\^53/],
  ];
  for (const [name, b, want] of bad) {
    test(`refuses ${name} with a clear error`, () => {
      assert.throws(() => decodeFrame(b), (e: Error) => e instanceof ProtocolError && want.test(e.message));
    });
  }

  test("refuses what is not bytes", () => {
    assert.throws(() => decodeFrame("01" as unknown as Uint8Array), /ArrayBuffer or a Uint8Array/);
  });

  test("encodeFrame refuses bad fields", () => {
    assert.throws(() => encodeFrame({ op: 0x10000, tick: 0, matchId: "" }), /op code/);
    assert.throws(() => encodeFrame({ op: 1, tick: -1, matchId: "" }), /tick/);
    assert.throws(() => encodeFrame({ op: 1, tick: 0, matchId: "é" }), /match id/);
  });
});

describe("envelopes", () => {
  test("encode: type, cid and payload; empty cid and undefined payload left out", () => {
    assert.equal(encodeEnvelope("match.join", "7", { match_id: "m1" }), '{"type":"match.join","cid":"7","payload":{"match_id":"m1"}}');
    assert.equal(encodeEnvelope("match.leave"), '{"type":"match.leave"}');
    assert.equal(encodeEnvelope("echo", "1", null), '{"type":"echo","cid":"1","payload":null}');
    // undefined fields inside a payload vanish (the server treats absent as empty)
    assert.equal(encodeEnvelope("match.list", "2", { mode: "arena", label: undefined }), '{"type":"match.list","cid":"2","payload":{"mode":"arena"}}');
  });

  test("encode refuses an empty type and a cid over 64 bytes (counted in UTF-8)", () => {
    assert.throws(() => encodeEnvelope(""), /type must be a non-empty string/);
    assert.doesNotThrow(() => encodeEnvelope("echo", "x".repeat(64)));
    assert.throws(() => encodeEnvelope("echo", "x".repeat(65)), /at most 64 bytes/);
    assert.throws(() => encodeEnvelope("echo", "é".repeat(33)), /at most 64 bytes/); // 66 bytes, 33 characters
  });

  test("decode a server envelope", () => {
    assert.deepEqual(decodeEnvelope('{"type":"match.joined","cid":"3","payload":{"match_id":"m","resume_token":"mjs_x"}}'), {
      type: "match.joined",
      cid: "3",
      payload: { match_id: "m", resume_token: "mjs_x" },
    });
  });

  test("decode: absent cid is empty, absent payload is null", () => {
    assert.deepEqual(decodeEnvelope('{"type":"session.started"}'), { type: "session.started", cid: "", payload: null });
  });

  const bad: [string, string, RegExp][] = [
    ["not JSON", "{nope", /not JSON/],
    ["empty", "", /not JSON/],
    ["an array", "[1]", /must be a JSON object/],
    ["null", "null", /must be a JSON object/],
    ["no type", '{"cid":"1"}', /no "type" string/],
    ["a number type", '{"type":5}', /no "type" string/],
    ["a number cid", '{"type":"echo","cid":5}', /"cid" must be a string/],
  ];
  for (const [name, text, want] of bad) {
    test(`decode refuses ${name}`, () => {
      assert.throws(() => decodeEnvelope(text), (e: Error) => e instanceof ProtocolError && want.test(e.message));
    });
  }
});

describe("backoffDelay", () => {
  const b = { initialDelayMs: 500, maxDelayMs: 15_000, jitter: 0.5 };

  test("doubles from initialDelayMs and stops at maxDelayMs (no jitter draw)", () => {
    const got = Array.from({ length: 8 }, (_, i) => backoffDelay(i, b, () => 0));
    assert.deepEqual(got, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    assert.equal(backoffDelay(1000, b, () => 0), 15000); // no overflow for huge attempts
  });

  test("jitter keeps each delay within [d × (1 − jitter), d]", () => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const d = Math.min(15_000, 500 * 2 ** attempt);
      for (const r of [0, 0.1, 0.5, 0.9, 0.999999]) {
        const got = backoffDelay(attempt, b, () => r);
        assert.ok(got >= d * 0.5 && got <= d, `attempt ${attempt}, random ${r}: got ${got}, want in [${d * 0.5}, ${d}]`);
      }
    }
    assert.equal(backoffDelay(2, { ...b, jitter: 0 }, () => 0.9), 2000);
    assert.equal(backoffDelay(2, { ...b, jitter: 1 }, () => 0.5), 1000);
  });
});
