/**
 * Prometheus metrics, named as vLLM's under a `slimlm:` prefix, each with a `model_name` label
 * (buckets from vllm/v1/metrics; see /work/shared/docs/serving-facts.md section 4).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ServingEngine, ServingObserver } from "./serving-engine.js";

const TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const LATENCY = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
const BATCH = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const STEP_TOKENS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly labels: { model_name: string };
  readonly httpRequests: Counter<"handler" | "method" | "status" | "model_name">;

  constructor(
    modelName: string,
    private readonly serving: () => ServingEngine | undefined,
  ) {
    this.labels = { model_name: modelName };
    const r = [this.registry];
    const names = ["model_name"] as const;
    const labels = this.labels;
    const current = this.serving;
    const gauge = (name: string, help: string, read: (s: ServingEngine) => number): void => {
      new Gauge({
        name: `slimlm:${name}`,
        help,
        labelNames: names,
        registers: r,
        // NOTE: prom-client calls collect() with `this` bound to the gauge, on every scrape.
        collect(this: Gauge<"model_name">) {
          const s = current();
          if (s !== undefined) this.set(labels, read(s));
        },
      });
    };
    gauge("num_requests_running", "Requests in the running batch.", (s) => s.numRunning);
    gauge("num_requests_waiting", "Requests waiting to be scheduled.", (s) => s.numWaiting);
    gauge("kv_cache_usage_perc", "Fraction of KV cache blocks in use (0-1).", (s) => s.kvUsage);
    this.httpRequests = new Counter({ name: "slimlm:http_requests_total", help: "HTTP requests by route and status.", labelNames: ["handler", "method", "status", "model_name"], registers: r });
    this.counters = {
      prompt: new Counter({ name: "slimlm:prompt_tokens_total", help: "Prompt tokens processed.", labelNames: names, registers: r }),
      generation: new Counter({ name: "slimlm:generation_tokens_total", help: "Tokens generated.", labelNames: names, registers: r }),
      success: new Counter({ name: "slimlm:request_success_total", help: "Finished requests by reason.", labelNames: ["model_name", "finished_reason"], registers: r }),
      preemptions: new Counter({ name: "slimlm:num_preemptions_total", help: "Requests preempted when the KV cache ran out.", labelNames: names, registers: r }),
    };
    this.prefixQueries = new Counter({
      name: "slimlm:prefix_cache_queries_total",
      help: "Prompt tokens looked up in the prefix cache.",
      labelNames: names,
      registers: r,
      collect: () => this.syncPrefix(),
    });
    this.prefixHits = new Counter({ name: "slimlm:prefix_cache_hits_total", help: "Prompt tokens found in the prefix cache.", labelNames: names, registers: r });
    const hist = (name: string, help: string, buckets: number[]) => new Histogram({ name: `slimlm:${name}`, help, buckets, labelNames: names, registers: r });
    this.hist = {
      ttft: hist("time_to_first_token_seconds", "Time to first token.", TTFT),
      itl: hist("inter_token_latency_seconds", "Time between tokens of a request.", ITL),
      e2e: hist("e2e_request_latency_seconds", "Request latency, arrival to finish.", LATENCY),
      queue: hist("request_queue_time_seconds", "Time waiting before first scheduled.", LATENCY),
      batch: hist("batch_size", "Sequences per forward pass.", BATCH),
      stepTokens: hist("iteration_tokens_total", "Tokens per forward pass.", STEP_TOKENS),
    };
  }

  private readonly counters: Record<"prompt" | "generation" | "success" | "preemptions", Counter<string>>;
  private readonly prefixQueries: Counter<"model_name">;
  private readonly prefixHits: Counter<"model_name">;
  private readonly hist: Record<"ttft" | "itl" | "e2e" | "queue" | "batch" | "stepTokens", Histogram<"model_name">>;
  private seenQueries = 0;
  private seenHits = 0;

  /** The pool counts prefix-cache tokens; mirror its totals into the counters on scrape. */
  private syncPrefix(): void {
    const pool = this.serving()?.engine.pool;
    if (pool === undefined) return;
    this.prefixQueries.inc(this.labels, pool.queriedTokens - this.seenQueries);
    this.prefixHits.inc(this.labels, pool.hitTokens - this.seenHits);
    this.seenQueries = pool.queriedTokens;
    this.seenHits = pool.hitTokens;
  }

  observer(): ServingObserver {
    const l = this.labels;
    return {
      onStep: (batch, tokens) => {
        this.hist.batch.observe(l, batch);
        this.hist.stepTokens.observe(l, tokens);
      },
      onFirstToken: (s) => this.hist.ttft.observe(l, s),
      onInterToken: (s) => this.hist.itl.observe(l, s),
      onPreempt: (n) => this.counters.preemptions.inc(l, n),
      onFinish: (reason, e) => {
        this.hist.e2e.observe(l, e.e2e);
        this.hist.queue.observe(l, e.queue);
        this.counters.prompt.inc(l, e.promptTokens);
        this.counters.generation.inc(l, e.completionTokens);
        this.counters.success.inc({ ...l, finished_reason: reason }, 1);
      },
    };
  }

  countHttp(handler: string, method: string, status: number): void {
    this.httpRequests.inc({ ...this.labels, handler, method, status: String(status) });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
