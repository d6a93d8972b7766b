import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as ttt from "../src/lib/tictactoe.js";

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const state = (over: Partial<ttt.State>): ttt.State => ({ board: ".........", x: "ann", o: "bob", turn: "X", status: "playing", moves: 0, ...over });

describe("tic-tac-toe messages", () => {
  test("decodes the server's state JSON", () => {
    // As games/tictactoe sends it (winner omitted while nobody won).
    const s = ttt.decodeState(enc({ board: "X...O....", x: "ann", o: "bob", turn: "X", status: "playing", moves: 2 }));
    assert.deepEqual(s, { board: "X...O....", x: "ann", o: "bob", turn: "X", status: "playing", moves: 2 });
    assert.equal(ttt.decodeState(enc({ board: "XXXOO....", x: "ann", o: "bob", turn: "", status: "won", winner: "ann", moves: 5 })).winner, "ann");
  });

  test("refuses anything else", () => {
    for (const bad of [{ board: "X..", status: "playing" }, { board: ".........", status: "paused" }, { board: "....Z....", status: "won" }, null]) {
      assert.throws(() => ttt.decodeState(enc(bad)), /not a state/, JSON.stringify(bad));
    }
  });

  test("decodes errors", () => {
    assert.equal(ttt.decodeError(enc({ error: "cell_taken" })), "cell_taken");
    assert.equal(ttt.decodeError(new TextEncoder().encode("nope")), "unknown");
    assert.equal(ttt.errorText("not_your_turn"), "It is not your turn.");
    assert.match(ttt.errorText("frob"), /frob/);
  });

  test("encodes moves 0..8 only", () => {
    assert.deepEqual(ttt.encodeMove(4), Uint8Array.of(4));
    for (const c of [-1, 9, 1.5]) assert.throws(() => ttt.encodeMove(c), RangeError);
  });
});

describe("tic-tac-toe view logic", () => {
  test("marks", () => {
    const s = state({});
    assert.equal(ttt.markOf(s, "ann"), "X");
    assert.equal(ttt.markOf(s, "bob"), "O");
    assert.equal(ttt.markOf(s, "cid"), "");
    assert.equal(ttt.markOf(state({ o: "" }), ""), "");
  });

  test("winning lines", () => {
    assert.deepEqual(ttt.winningLine("XXXOO...."), [0, 1, 2]);
    assert.deepEqual(ttt.winningLine("OXOXOXXOX"), []);
    assert.deepEqual(ttt.winningLine("X.OXO.OX."), [2, 4, 6]);
    assert.deepEqual(ttt.winningLine("........."), []);
  });

  test("what each player reads", () => {
    assert.equal(ttt.statusText(state({ status: "waiting", o: "" }), "ann"), "Waiting for an opponent to join…");
    assert.equal(ttt.statusText(state({}), "ann"), "Your turn (you are X)");
    assert.equal(ttt.statusText(state({}), "bob"), "Opponent's turn (you are O)");
    assert.equal(ttt.statusText(state({ status: "won", winner: "ann", turn: "" }), "ann"), "You won!");
    assert.equal(ttt.statusText(state({ status: "won", winner: "ann", turn: "" }), "bob"), "You lost.");
    assert.equal(ttt.statusText(state({ status: "draw", turn: "" }), "bob"), "Draw.");
    assert.equal(ttt.statusText(state({ status: "forfeit", winner: "bob", turn: "" }), "bob"), "Your opponent left: you win!");
  });
});
