import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { HEIGHT, MAX_SPEED, RADIUS, WIDTH } from "../src/lib/arena.js";
import { Interpolator, Predictor, SMOOTH_MS, SNAP_DISTANCE } from "../src/lib/motion.js";

const near = (got: number, want: number, eps = 1e-6) => assert.ok(Math.abs(got - want) <= eps, `got ${got}, want ${want} ± ${eps}`);

describe("Interpolator", () => {
  // Server states every 50 ms; each arrives 1000 ms after its server time
  // (clock offset plus delay), so the render time at local L is L - 1100.
  const states = (ip: Interpolator) => {
    ip.push(0, [{ slot: 1, x: 0, y: 0 }], 1000);
    ip.push(50, [{ slot: 1, x: 100, y: 50 }], 1050);
    ip.push(100, [{ slot: 1, x: 100, y: 150 }, { slot: 2, x: 7, y: 7 }], 1100);
  };

  test("draws between the two states around the render time, delayMs behind", () => {
    const ip = new Interpolator(100);
    states(ip);
    assert.equal(ip.renderTime(1125), 25);
    assert.deepEqual(ip.sample(1125).get(1), { x: 50, y: 25 });
    assert.deepEqual(ip.sample(1175).get(1), { x: 100, y: 100 });
  });

  test("holds the oldest and the newest state outside the buffer", () => {
    const ip = new Interpolator(100);
    states(ip);
    assert.deepEqual(ip.sample(500).get(1), { x: 0, y: 0 });
    assert.deepEqual(ip.sample(5000).get(1), { x: 100, y: 150 });
  });

  test("a player new in the later state appears where it is", () => {
    const ip = new Interpolator(100);
    states(ip);
    assert.deepEqual(ip.sample(1175).get(2), { x: 7, y: 7 });
    assert.equal(ip.sample(1125).has(2), false);
  });

  test("the clock offset follows the fastest delivery", () => {
    const ip = new Interpolator(100);
    ip.push(0, [], 1000);
    ip.push(50, [], 1030); // faster: offset 980
    assert.equal(ip.renderTime(1100), 20);
    ip.push(100, [], 1200); // a slow one moves it only slightly
    assert.ok(ip.renderTime(1100) < 20 && ip.renderTime(1100) > 18, String(ip.renderTime(1100)));
  });

  test("drops states older than the newest and replaces one of the same time", () => {
    const ip = new Interpolator(0);
    ip.push(100, [{ slot: 0, x: 1, y: 1 }], 100);
    ip.push(50, [{ slot: 0, x: 9, y: 9 }], 110);
    ip.push(100, [{ slot: 0, x: 2, y: 2 }], 120);
    assert.deepEqual(ip.sample(1e6).get(0), { x: 2, y: 2 });
    assert.deepEqual(ip.sample(0).get(0), { x: 2, y: 2 });
  });

  test("reset forgets everything", () => {
    const ip = new Interpolator(100);
    states(ip);
    ip.reset();
    assert.equal(ip.sample(1125).size, 0);
  });
});

describe("Predictor", () => {
  const speed = MAX_SPEED / 1000; // units per ms

  test("starts at the first server position", () => {
    const p = new Predictor();
    assert.equal(p.ready, false);
    p.advance(100);
    p.reconcile(300, 400, 0, 0);
    assert.equal(p.ready, true);
    assert.deepEqual(p.display(), { x: 300, y: 400 });
  });

  test("moves at once with the player's own input", () => {
    const p = new Predictor();
    p.reconcile(500, 500, 0, 0);
    p.input(1, 127, 0, 0);
    p.advance(100);
    near(p.display().x, 500 + 100 * speed);
    near(p.display().y, 500);
  });

  test("replays the inputs the server has not applied yet", () => {
    const p = new Predictor();
    p.reconcile(500, 500, 0, 0);
    p.input(1, 0, 127, 0);
    p.reconcile(500, 500, 1, 40); // acknowledged after 40 ms: that is the round trip
    assert.equal(p.rtt, 40);
    p.input(2, 127, 0, 100); // right, not acknowledged yet
    // A state at 150 still reflecting only seq 1 (seq 2 is late), with the
    // player at (500, 530): seq 2 (right) is replayed from when it was
    // sent, the 50 ms since.
    p.reconcile(500, 530, 1, 150);
    near(p.x, 500 + 50 * speed);
    near(p.y, 530);
    // At 300 seq 2 is still not applied: replayed from 100 (200 ms).
    p.reconcile(500, 560, 1, 300);
    near(p.x, 500 + 200 * speed);
    near(p.y, 560);
    // Acknowledged at 320 (rtt sample 220): the state has everything up to
    // one round trip ago; only the acknowledged direction runs since.
    p.reconcile(540, 560, 2, 320);
    near(p.rtt, 0.8 * 40 + 0.2 * 220);
    near(p.x, 540 + p.rtt * speed);
    near(p.y, 560);
  });

  test("does not replay acknowledged inputs twice", () => {
    const p = new Predictor();
    p.reconcile(500, 500, 0, 0);
    p.input(1, 127, 0, 0);
    p.input(2, 0, 0, 100);
    p.reconcile(530, 500, 2, 400); // both applied, the player stopped at 530
    assert.equal(p.x, 530);
    assert.equal(p.y, 500);
  });

  test("smooths a small correction and snaps a large one", () => {
    const p = new Predictor();
    p.reconcile(500, 500, 0, 0);
    p.reconcile(520, 500, 0, 10); // 20 units off: drawn where it was, fading
    assert.equal(p.x, 520);
    near(p.display().x, 500);
    p.advance(SMOOTH_MS);
    near(p.display().x, 520 - 20 / Math.E, 1e-9);
    p.advance(10 * SMOOTH_MS);
    near(p.display().x, 520, 0.01);
    assert.equal(p.snaps, 0);
    p.reconcile(520 + SNAP_DISTANCE + 1, 500, 0, 20);
    assert.equal(p.display().x, 520 + SNAP_DISTANCE + 1);
    assert.equal(p.snaps, 1);
  });

  test("stays inside the walls", () => {
    const p = new Predictor();
    p.reconcile(WIDTH - RADIUS - 1, HEIGHT - RADIUS - 1, 0, 0);
    p.input(1, 127, 127, 0);
    p.advance(1000);
    assert.deepEqual(p.display(), { x: WIDTH - RADIUS, y: HEIGHT - RADIUS });
    p.reconcile(RADIUS, RADIUS, 0, 1000);
    p.input(2, -127, -127, 1000);
    p.advance(1000);
    assert.equal(p.x, RADIUS);
    assert.equal(p.y, RADIUS);
  });

  test("reset forgets the match", () => {
    const p = new Predictor();
    p.reconcile(500, 500, 0, 0);
    p.input(1, 127, 0, 0);
    p.reset();
    assert.equal(p.ready, false);
    p.reconcile(100, 100, 0, 0);
    p.advance(100);
    assert.deepEqual(p.display(), { x: 100, y: 100 });
  });
});
