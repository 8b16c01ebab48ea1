/** `slimlm bench serve` (the CLI over src/bench/serve-load.ts) against an in-process server. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { type TestServer, startTestServer } from "./helpers.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/slimlm.js");

/** Run the CLI without blocking this process's event loop (the server under test lives here). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("slimlm bench serve", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ maxBatch: 8 });
  });
  after(() => srv.close());

  it("--json: one report object; the human report on stderr otherwise; bad options are one-line errors", async () => {
    const j = await cli(["bench", "serve", "--url", srv.url, "--concurrency", "2", "--requests", "4", "--max-tokens", "3", "--workload", "shared-prefix", "--json"]);
    assert.equal(j.code, 0, j.stderr);
    const lines = j.stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    const r = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(r.completed, 4);
    assert.equal(r.output_tokens, 12);
    assert.equal(r.workload, "shared-prefix");
    for (const k of ["ttft_ms", "itl_ms", "e2e_ms"]) assert.deepEqual(Object.keys(r[k] as object), ["p50", "p90", "p99", "mean", "n"]);
    const h = await cli(["bench", "serve", "--url", srv.url, "--concurrency", "2", "--requests", "3", "--max-tokens", "2", "--rate", "50"]);
    assert.equal(h.code, 0, h.stderr);
    assert.equal(h.stdout, "");
    assert.match(h.stderr, /3 of 3 requests/);
    assert.match(h.stderr, /time to first token/);
    for (const args of [["--url", srv.url, "--workload", "nope"], ["--url", srv.url, "--concurrency", "0"], ["--concurrency", "2"], ["--url", "ftp://x"]]) {
      const e = await cli(["bench", "serve", ...args]);
      assert.equal(e.code, 1, args.join(" "));
      assert.equal(e.stderr.trim().split("\n").length, 1, e.stderr);
      assert.match(e.stderr, /error/);
    }
  });
});

