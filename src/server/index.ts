/**
 * `slimlm serve`: listen at once (health answers 503 while the model loads), load the model,
 * serve; SIGTERM/SIGINT drain: health goes 503, new requests get 503, running ones finish until
 * the shutdown timeout, then the rest are aborted and the process exits 0.
 */
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.js";
import { ServerMetrics } from "./metrics.js";
import { ServingEngine, type ServingOptions } from "./serving-engine.js";

export interface ServeOptions extends ServingOptions {
  readonly modelPath: string;
  readonly host?: string;
  readonly port?: number;
  readonly apiKey?: string;
  readonly modelName?: string;
  readonly bodyLimit?: number;
  /** Origins allowed to call the API from a browser (CORS), or ["*"]. */
  readonly corsOrigins?: readonly string[];
  /** Seconds running requests may take to finish after SIGTERM. */
  readonly shutdownTimeout?: number;
  /** Print lines to stderr (the CLI). */
  readonly log?: (line: string) => void;
}

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly ready: Promise<ServingEngine>;
  /** Drain and stop (what SIGTERM does). */
  shutdown(): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const modelName = o.modelName ?? path.basename(o.modelPath).replace(/\.gguf$/i, "");
  let serving: ServingEngine | undefined;
  let draining = false;
  const metrics = new ServerMetrics(modelName, () => serving);
  const app = buildApp({
    modelName,
    ...(o.apiKey === undefined ? {} : { apiKey: o.apiKey }),
    ...(o.bodyLimit === undefined ? {} : { bodyLimit: o.bodyLimit }),
    ...(o.corsOrigins === undefined ? {} : { corsOrigins: o.corsOrigins }),
    metrics,
    serving: () => serving,
    draining: () => draining,
  });
  const address = await app.listen({ host: o.host ?? "127.0.0.1", port: o.port ?? 8080 });
  const ready = ServingEngine.create(o.modelPath, o).then((s) => {
    s.observer = metrics.observer();
    serving = s;
    o.log?.(`serving ${modelName} at ${address}/v1 (${s.opts.policy} batching, max batch ${s.opts.maxBatch}, context ${s.contextSize}, KV cache ${s.engine.kvType}, ${s.engine.threads} thread(s))`);
    return s;
  });
  ready.catch(() => {}); // the caller awaits it; avoid an unhandled rejection here
  let closing: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      o.log?.("draining...");
      const s = serving;
      if (s !== undefined) await s.drain((o.shutdownTimeout ?? 30) * 1000);
      await app.close();
      await s?.close();
    })();
    return closing;
  };
  return { app, url: address, ready, shutdown };
}
