/** Helpers for the server tests: in-process servers, raw HTTP, SSE and Prometheus parsing. */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { type RunningServer, type ServeOptions, startServer } from "../../src/server/index.js";
import type { ServingEngine } from "../../src/server/serving-engine.js";
import { STORIES_GGUF } from "../helpers/slimlm.js";

export { STORIES_GGUF };
export const MODEL_NAME = "stories260K";

export interface TestServer {
  readonly server: RunningServer;
  readonly url: string;
  readonly serving: ServingEngine;
  close(): Promise<void>;
}

/** An in-process server on a free port, model loaded (stories260K, 1 thread unless told). */
export async function startTestServer(over: Partial<ServeOptions> = {}): Promise<TestServer> {
  const server = await startServer({ modelPath: STORIES_GGUF, port: 0, threads: 1, ...over });
  const serving = await server.ready;
  return { server, url: server.url, serving, close: () => server.shutdown() };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Send bytes on a fresh socket and read until the server closes it (or `timeoutMs`). Parses the
 * first response (status, headers, body; chunked bodies are de-chunked).
 */
export function rawRequest(url: string, data: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(), timeoutMs);
    sock.on("data", (d) => chunks.push(d));
    sock.on("error", () => {}); // a reset after the answer is fine
    sock.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const head = text.indexOf("\r\n\r\n");
      if (head < 0) return reject(new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      const lines = text.slice(0, head).split("\r\n");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)?.[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let body = text.slice(head + 4);
      if (headers["transfer-encoding"] === "chunked") body = dechunk(body);
      resolve({ status, headers, body: Buffer.from(body, "latin1").toString("utf8") });
    });
    sock.write(data);
  });
}

function dechunk(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; ) {
    const eol = s.indexOf("\r\n", i);
    if (eol < 0) break;
    const n = parseInt(s.slice(i, eol), 16);
    if (!(n > 0)) break;
    out += s.slice(eol + 2, eol + 2 + n);
    i = eol + 2 + n + 2;
  }
  return out;
}

/** A POST as raw bytes (Connection: close), with the Content-Length of the body unless `headers` sets one. */
export function rawPost(path: string, body: string | Buffer, headers: Record<string, string> = {}): Buffer {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  const h: Record<string, string> = { host: "localhost", "content-type": "application/json", connection: "close", ...headers };
  if (!Object.keys(h).some((k) => k.toLowerCase() === "content-length" || k.toLowerCase() === "transfer-encoding")) h["content-length"] = String(b.length);
  const head = `POST ${path} HTTP/1.1\r\n${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\r\n")}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), b]);
}

/** JSON POST with node:http (keep-alive off); resolves with status, headers and body text. */
export function postJson(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  const data = typeof body === "string" ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url + path, { method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...headers }, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: flatHeaders(res.headers), body: text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(data);
  });
}

export async function getText(url: string): Promise<RawResponse> {
  const r = await fetch(url);
  const headers: Record<string, string> = {};
  r.headers.forEach((v, k) => (headers[k] = v));
  return { status: r.status, headers, body: await r.text() };
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** Assert an error body in OpenAI's shape; returns it. */
export function assertOpenAiError(body: string, context = ""): { message: string; type: string; param: string | null; code: string | null } {
  let o: unknown;
  try {
    o = JSON.parse(body);
  } catch {
    assert.fail(`error body is not JSON ${context}: ${body.slice(0, 200)}`);
  }
  assert.ok(typeof o === "object" && o !== null && "error" in o, `no "error" ${context}: ${body.slice(0, 200)}`);
  const e = (o as { error: Record<string, unknown> }).error;
  assert.equal(typeof e.message, "string", `error.message ${context}`);
  assert.ok((e.message as string).length > 0, `error.message is empty ${context}`);
  assert.equal(typeof e.type, "string", `error.type ${context}`);
  assert.ok(e.param === null || typeof e.param === "string", `error.param ${context}`);
  assert.ok(e.code === null || typeof e.code === "string", `error.code ${context}`);
  return e as { message: string; type: string; param: string | null; code: string | null };
}

/** The `data:` payloads of an SSE body, in order; asserts the framing (events end with a blank line). */
export function sseData(body: string): string[] {
  assert.ok(body.endsWith("\n\n"), "the stream ends with a complete event");
  const out: string[] = [];
  for (const ev of body.slice(0, -2).split("\n\n")) {
    for (const line of ev.split("\n")) {
      if (line.startsWith(":")) continue; // comment
      assert.ok(line.startsWith("data: "), `an SSE data line: ${JSON.stringify(line)}`);
      out.push(line.slice(6));
    }
  }
  return out;
}

/** Prometheus text format -> "name{labels}" and "name" (summed over labels) -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const r = /^([^{\s]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (r === null) continue;
    const v = Number(r[3]);
    m.set(r[1]! + (r[2] ?? ""), v);
    m.set(r[1]!, (m.get(r[1]!) ?? 0) + v);
  }
  return m;
}

export async function scrape(url: string): Promise<Map<string, number>> {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200);
  return parseMetrics(await r.text());
}

/** Poll `cond` every 10 ms until true; returns the milliseconds it took (fails after `timeoutMs`). */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what = "condition"): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await cond()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Stream a request with node:http and collect the SSE data payloads. */
export function streamRequest(url: string, path: string, body: unknown, opts: { onData?: (payload: string, req: http.ClientRequest) => void } = {}): Promise<{ status: number; headers: Record<string, string>; data: string[]; raw: string }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url + path, { method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) }, agent: false }, (res) => {
      let raw = "";
      let pending = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        raw += d;
        pending += d;
        let i: number;
        while ((i = pending.indexOf("\n\n")) >= 0) {
          const ev = pending.slice(0, i);
          pending = pending.slice(i + 2);
          if (ev.startsWith("data: ")) opts.onData?.(ev.slice(6), req);
        }
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: flatHeaders(res.headers), data: raw.length > 0 && raw.endsWith("\n\n") ? sseData(raw) : [], raw }));
      res.on("error", reject);
      res.on("close", () => resolve({ status: res.statusCode ?? 0, headers: flatHeaders(res.headers), data: [], raw }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

/** The text of an SSE chat or completions stream (concatenated deltas of choice `index`). */
export function streamText(data: readonly string[], index = 0): string {
  let text = "";
  for (const d of data) {
    if (d === "[DONE]") continue;
    const o = JSON.parse(d) as { choices?: { index: number; delta?: { content?: string }; text?: string }[] };
    for (const c of o.choices ?? []) if (c.index === index) text += c.delta?.content ?? c.text ?? "";
  }
  return text;
}
