/**
 * SIGTERM drains `slimlm serve` (a subprocess): /health goes 503, new requests get 503 with
 * Retry-After, the running stream finishes (or, past --shutdown-timeout, ends with an error
 * chunk), and the process exits 0.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { STORIES_GGUF, assertOpenAiError, getText, postJson, sseData, streamRequest, waitFor } from "./helpers.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/slimlm.js");

interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [BIN, "serve", STORIES_GGUF, "--port", "0", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  await waitFor(() => /listening at (http:\/\/\S+)/.test(err) || child.exitCode !== null, 20000, "the server to listen");
  const url = /listening at (http:\/\/\S+)/.exec(err)?.[1];
  assert.ok(url !== undefined, err);
  await waitFor(async () => (await getText(`${url}/health`)).status === 200, 20000, "the model to load");
  return { child, url, stderr: () => err, exited };
}

describe("slimlm serve: SIGTERM", () => {
  it("drains: health 503, new requests 503, the running stream finishes, exit 0", async () => {
    const s = await serve(["--threads", "2", "--shutdown-timeout", "20"]);
    try {
      let chunks = 0;
      const running = streamRequest(s.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 1000, temperature: 0, stream: true }, { onData: () => chunks++ });
      await waitFor(() => chunks >= 5, 10000, "the stream to start");
      const t0 = performance.now();
      s.child.kill("SIGTERM");
      await waitFor(async () => (await getText(`${s.url}/health`)).status === 503, 2000, "health 503");
      const h = await getText(`${s.url}/health`);
      assert.deepEqual(JSON.parse(h.body), { status: "draining" });
      const refused = await postJson(s.url, "/v1/completions", { prompt: "Hi", max_tokens: 3 });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers["retry-after"], "1");
      assert.equal(assertOpenAiError(refused.body).code, "draining");
      const r = await running;
      assert.equal(r.status, 200);
      assert.equal(r.data.at(-1), "[DONE]");
      const last = JSON.parse(r.data.at(-2)!) as { choices: { finish_reason: string | null }[] };
      assert.equal(last.choices[0]!.finish_reason, "length", "the running request completed");
      const { code, signal } = await s.exited;
      assert.equal(signal, null);
      assert.equal(code, 0, s.stderr());
      assert.ok(performance.now() - t0 < 20000);
      assert.match(s.stderr(), /draining/);
    } finally {
      if (s.child.exitCode === null) s.child.kill("SIGKILL");
    }
  });

  it("past --shutdown-timeout the running stream is aborted with an error chunk; exit 0", async () => {
    const s = await serve(["--threads", "1", "--shutdown-timeout", "0", "--max-batch", "1"]);
    try {
      let chunks = 0;
      const running = streamRequest(s.url, "/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 1500, temperature: 0, stream: true }, { onData: () => chunks++ });
      await waitFor(() => chunks >= 3, 10000, "the stream to start");
      s.child.kill("SIGTERM");
      const r = await running;
      const data = sseData(r.raw);
      assert.equal(data.at(-1), "[DONE]");
      const e = assertOpenAiError(data.at(-2)!);
      assert.equal(e.code, "aborted");
      const { code } = await s.exited;
      assert.equal(code, 0, s.stderr());
    } finally {
      if (s.child.exitCode === null) s.child.kill("SIGKILL");
    }
  });
});
