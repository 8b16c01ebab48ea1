/**
 * A load generator for OpenAI-compatible servers (`slimlm bench serve`): streaming requests over
 * node:http, measured from the client side.
 *
 * - TTFT: request sent -> first non-empty content delta; ITL: between content deltas (a delta may
 *   hold more than one token when text is held back at a UTF-8 or stop-string boundary);
 *   e2e: request sent -> `data: [DONE]`. All in milliseconds, reported at p50/p90/p99.
 * - Throughput: completed requests and output tokens (usage.completion_tokens, asked with
 *   stream_options.include_usage) over the wall time from the first request to the last answer.
 * - Closed loop by default: `concurrency` clients, each sending its next request when the last
 *   one ends. With `rate`: Poisson arrivals (exponential gaps, mean 1/rate s), still at most
 *   `concurrency` in flight (an arrival over the cap waits for a free slot).
 *
 * Workloads (all chat completions, `ignore_eos` so every request generates `maxTokens`):
 * - random: a random user message of 16-96 words;
 * - chat: conversations of `turns` turns; each turn resends the whole history (system prompt,
 *   earlier questions and the replies received) plus a new question: what a prefix cache is for;
 * - shared-prefix: one long system prompt (~400 words) shared by every request, then a short
 *   random question.
 */
import http from "node:http";
import { UsageError } from "../errors.js";

export type Workload = "random" | "chat" | "shared-prefix";
export const WORKLOADS: readonly Workload[] = ["random", "chat", "shared-prefix"];

export interface ServeLoadOptions {
  /** Server base URL, e.g. http://127.0.0.1:8080 (a trailing /v1 is accepted). */
  readonly url: string;
  readonly concurrency: number;
  readonly requests: number;
  readonly workload?: Workload;
  /** Poisson arrivals per second; undefined = closed loop at the concurrency. */
  readonly rate?: number;
  /** Tokens per reply. Default 64. */
  readonly maxTokens?: number;
  /** chat: turns per conversation. Default 4. */
  readonly turns?: number;
  readonly seed?: number;
  readonly model?: string;
  readonly apiKey?: string;
  /** Milliseconds a request may take before it counts as an error. Default 600000. */
  readonly timeoutMs?: number;
  readonly temperature?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
  readonly n: number;
}

export interface ServeLoadReport {
  readonly url: string;
  readonly workload: Workload;
  readonly concurrency: number;
  readonly rate: number | null;
  readonly max_tokens: number;
  readonly requests: number;
  readonly completed: number;
  readonly errors: number;
  /** Error kinds ("http 429", "stream error", "timeout", "network: ECONNRESET"...) -> count. */
  readonly error_kinds: Record<string, number>;
  readonly duration_s: number;
  readonly requests_per_s: number;
  readonly output_tokens: number;
  readonly output_tokens_per_s: number;
  readonly prompt_tokens: number;
  readonly cached_prompt_tokens: number;
  readonly ttft_ms: Percentiles;
  readonly itl_ms: Percentiles;
  readonly e2e_ms: Percentiles;
}

/** One request's client-side measurements. */
interface Sample {
  readonly ok: boolean;
  readonly error?: string;
  readonly text: string;
  readonly ttftMs: number;
  readonly itlMs: number[];
  readonly e2eMs: number;
  readonly completionTokens: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
}

interface Message {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

/** mulberry32: small seeded generator for prompts and arrival gaps. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the a little big dog cat bird tree house river sun moon star boat ball girl boy friend mother father " +
  "garden forest park happy sad quick slow red blue green yellow played ran jumped saw found made wanted " +
  "liked went said looked asked told gave took came day night morning rain snow wind flower apple cake toy " +
  "box door window road hill sea fish frog duck bear lion car train book song game story time home school"
).split(" ");

function words(r: () => number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]!);
  const s = out.join(" ");
  return s.charAt(0).toUpperCase() + s.slice(1) + ".";
}

/** Linear-interpolated percentiles (numpy's default). */
export function percentiles(xs: readonly number[]): Percentiles {
  if (xs.length === 0) return { p50: 0, p90: 0, p99: 0, mean: 0, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => {
    const i = q * (s.length - 1);
    const lo = Math.floor(i);
    const hi = Math.min(lo + 1, s.length - 1);
    return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
  };
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), mean: round(s.reduce((a, b) => a + b, 0) / s.length), n: s.length };
}

/** POST a streaming chat completion and measure it. Never throws: failures are samples with ok false. */
function streamChat(agent: http.Agent, base: URL, body: unknown, apiKey: string | undefined, timeoutMs: number): Promise<Sample> {
  const data = JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let text = "";
    let ttft = -1;
    let last = 0;
    const itl: number[] = [];
    let usage: { completion_tokens?: number; prompt_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } } | undefined;
    let deltas = 0;
    let streamError: string | undefined;
    let sawDone = false;
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ok = error === undefined && streamError === undefined && sawDone;
      resolve({
        ok,
        ...(ok ? {} : { error: error ?? streamError ?? "stream ended without [DONE]" }),
        text,
        ttftMs: ttft,
        itlMs: itl,
        e2eMs: performance.now() - t0,
        completionTokens: usage?.completion_tokens ?? deltas,
        promptTokens: usage?.prompt_tokens ?? 0,
        cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? 0,
      });
    };
    const headers: Record<string, string | number> = { "content-type": "application/json", "content-length": Buffer.byteLength(data), accept: "text/event-stream" };
    if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
    const req = http.request(new URL("chat/completions", base), { method: "POST", headers, agent }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        res.on("end", () => finish(`http ${res.statusCode}`));
        return;
      }
      res.setEncoding("utf8");
      let pending = "";
      res.on("data", (chunk: string) => {
        pending += chunk;
        let i: number;
        while ((i = pending.indexOf("\n\n")) >= 0) {
          const ev = pending.slice(0, i);
          pending = pending.slice(i + 2);
          for (const line of ev.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const payload = line.slice(6);
            if (payload === "[DONE]") {
              sawDone = true;
              continue;
            }
            let o: { error?: { message?: string }; choices?: { delta?: { content?: string } }[]; usage?: typeof usage };
            try {
              o = JSON.parse(payload) as typeof o;
            } catch {
              streamError = "bad chunk";
              continue;
            }
            if (o.error !== undefined) streamError = "stream error";
            if (o.usage !== undefined && o.usage !== null) usage = o.usage;
            const content = o.choices?.[0]?.delta?.content;
            if (content !== undefined && content.length > 0) {
              const now = performance.now();
              if (ttft < 0) ttft = now - t0;
              else itl.push(now - last);
              last = now;
              deltas++;
              text += content;
            }
          }
        }
      });
      res.on("end", () => finish());
      res.on("error", (e: NodeJS.ErrnoException) => finish(`network: ${e.code ?? e.message}`));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish("timeout");
    }, timeoutMs);
    req.on("error", (e: NodeJS.ErrnoException) => finish(`network: ${e.code ?? e.message}`));
    req.end(data);
  });
}

/** Where requests come from: the workload's prompts, chat conversations with their history. */
class PromptSource {
  private readonly r: () => number;
  private readonly system: string;
  /** chat: conversations not waiting for a reply, with their history. */
  private readonly idle: Message[][] = [];

  constructor(
    readonly workload: Workload,
    seed: number,
    private readonly turns: number,
  ) {
    this.r = rng(seed);
    this.system =
      workload === "shared-prefix"
        ? `You are a helpful assistant for a children's library. ${Array.from({ length: 20 }, () => words(this.r, 20)).join(" ")}`
        : "You are a storyteller. Answer with a short story.";
  }

  /** The next request's messages; `done(reply)` must be called when its answer is in. */
  next(): { messages: Message[]; done: (reply: string | undefined) => void } {
    const r = this.r;
    if (this.workload === "random") return { messages: [{ role: "user", content: words(r, 16 + Math.floor(r() * 80)) }], done: () => {} };
    if (this.workload === "shared-prefix") return { messages: [{ role: "system", content: this.system }, { role: "user", content: words(r, 8 + Math.floor(r() * 16)) }], done: () => {} };
    const history = this.idle.shift() ?? [{ role: "system", content: this.system }];
    const messages: Message[] = [...history, { role: "user", content: words(r, 24 + Math.floor(r() * 16)) }];
    return {
      messages,
      done: (reply) => {
        // a failed turn ends its conversation; a finished one goes back to the pool until its last turn
        if (reply === undefined) return;
        const h: Message[] = [...messages, { role: "assistant", content: reply }];
        if ((h.length - 1) / 2 < this.turns) this.idle.push(h);
      },
    };
  }
}

export async function runServeLoad(o: ServeLoadOptions): Promise<ServeLoadReport> {
  const workload = o.workload ?? "random";
  const maxTokens = o.maxTokens ?? 64;
  const check = (name: string, v: number, ok: boolean): void => {
    if (!ok) throw new UsageError(`invalid ${name}`, { got: String(v) });
  };
  check("concurrency", o.concurrency, Number.isInteger(o.concurrency) && o.concurrency >= 1 && o.concurrency <= 4096);
  check("requests", o.requests, Number.isInteger(o.requests) && o.requests >= 1);
  check("max tokens", maxTokens, Number.isInteger(maxTokens) && maxTokens >= 1);
  if (o.rate !== undefined) check("rate", o.rate, Number.isFinite(o.rate) && o.rate > 0);
  if (!WORKLOADS.includes(workload)) throw new UsageError("invalid workload", { expected: WORKLOADS.join(", "), got: String(workload) });
  let base: URL;
  try {
    base = new URL(o.url.replace(/\/+$/, "").replace(/\/v1$/, "") + "/v1/");
  } catch {
    throw new UsageError("invalid --url", { expected: "http://host:port", got: o.url });
  }
  if (base.protocol !== "http:") throw new UsageError("invalid --url", { expected: "an http:// URL", got: o.url });

  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const source = new PromptSource(workload, o.seed ?? 1, o.turns ?? 4);
  const gaps = rng((o.seed ?? 1) ^ 0x9e3779b9);
  const samples: Sample[] = [];
  let started = 0;
  const one = async (): Promise<void> => {
    const { messages, done } = source.next();
    const body = {
      ...(o.model === undefined ? {} : { model: o.model }),
      messages,
      max_tokens: maxTokens,
      temperature: o.temperature ?? 0,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    };
    const s = await streamChat(agent, base, body, o.apiKey, o.timeoutMs ?? 600_000);
    done(s.ok ? s.text : undefined);
    samples.push(s);
    o.onProgress?.(samples.length, o.requests);
  };

  const t0 = performance.now();
  try {
    if (o.rate === undefined) {
      // closed loop: each client sends its next request when the last one ends
      const client = async (): Promise<void> => {
        while (started < o.requests) {
          started++;
          await one();
        }
      };
      await Promise.all(Array.from({ length: Math.min(o.concurrency, o.requests) }, client));
    } else {
      // open loop: Poisson arrivals, at most `concurrency` in flight
      let inFlight = 0;
      let wake: (() => void) | undefined;
      const running: Promise<void>[] = [];
      let next = performance.now();
      for (let i = 0; i < o.requests; i++) {
        next += (-Math.log(1 - gaps()) / o.rate) * 1000;
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        while (inFlight >= o.concurrency) await new Promise<void>((r) => (wake = r));
        inFlight++;
        running.push(
          one().finally(() => {
            inFlight--;
            wake?.();
            wake = undefined;
          }),
        );
      }
      await Promise.all(running);
    }
  } finally {
    agent.destroy();
  }
  const durationS = (performance.now() - t0) / 1000;
  const ok = samples.filter((s) => s.ok);
  const kinds: Record<string, number> = {};
  for (const s of samples) if (!s.ok) kinds[s.error!] = (kinds[s.error!] ?? 0) + 1;
  const outTokens = ok.reduce((a, s) => a + s.completionTokens, 0);
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    url: o.url,
    workload,
    concurrency: o.concurrency,
    rate: o.rate ?? null,
    max_tokens: maxTokens,
    requests: samples.length,
    completed: ok.length,
    errors: samples.length - ok.length,
    error_kinds: kinds,
    duration_s: round(durationS),
    requests_per_s: round(ok.length / durationS),
    output_tokens: outTokens,
    output_tokens_per_s: round(outTokens / durationS),
    prompt_tokens: ok.reduce((a, s) => a + s.promptTokens, 0),
    cached_prompt_tokens: ok.reduce((a, s) => a + s.cachedTokens, 0),
    ttft_ms: percentiles(ok.filter((s) => s.ttftMs >= 0).map((s) => s.ttftMs)),
    itl_ms: percentiles(ok.flatMap((s) => s.itlMs)),
    e2e_ms: percentiles(ok.map((s) => s.e2eMs)),
  };
}
