// The npm package's files are generated and committed: dist/*.d.ts by tsc
// (npm run types), dist/index.js by `go generate ./web`. These tests fail
// when either no longer matches the sources.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as src from "../src/index.js";

// This file runs from .test-build/test/.
const root = fileURLToPath(new URL("../../", import.meta.url));

test("dist/*.d.ts are what tsc makes of src (else: npm run types)", () => {
  const out = mkdtempSync(join(tmpdir(), "multijuego-dts-"));
  try {
    execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.types.json"), "--outDir", out], { stdio: "inherit" });
    const want = readdirSync(out).sort();
    const got = readdirSync(join(root, "dist")).filter((f) => f.endsWith(".d.ts")).sort();
    assert.deepEqual(got, want, "dist/ holds other declaration files than tsc makes: run `npm run types` in web/sdk");
    for (const f of want) {
      const a = readFileSync(join(root, "dist", f), "utf8").split("\n");
      const b = readFileSync(join(out, f), "utf8").split("\n");
      const i = a.findIndex((line, i) => line !== b[i]);
      if (i >= 0 || a.length !== b.length) {
        const n = i >= 0 ? i : Math.min(a.length, b.length);
        assert.fail(`dist/${f} is stale: run \`npm run types\` in web/sdk (line ${n + 1}: have ${JSON.stringify(a[n])}, want ${JSON.stringify(b[n])})`);
      }
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("dist/index.js exports what the sources export (else: go generate ./web)", async () => {
  const dist = (await import(join(root, "dist", "index.js"))) as Record<string, unknown>;
  assert.deepEqual(Object.keys(dist).sort(), Object.keys(src).sort());
  // and it works: a round trip through the bundled codec
  const enc = dist["encodeInput"] as typeof src.encodeInput;
  assert.deepEqual([...enc(1, new Uint8Array([4]))], [1, 0, 4]);
});
