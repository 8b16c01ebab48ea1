import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { startServer } from "../../server/index.js";
import type { BatchingPolicy } from "../../scheduler/scheduler.js";
import { KV_TYPE_HELP, parseIntOption, runCommand, say, parseKvType } from "../common.js";
import type { KvType } from "../../kernels/kernel-set.js";
import { MODEL_ARGUMENT_HELP, modelOrBuiltin } from "../builtin-model.js";

interface ServeCliOptions {
  host: string;
  port: number;
  apiKey?: string;
  cors?: string[];
  modelName?: string;
  batching: string;
  maxBatch: number;
  maxBatchTokens: number;
  maxQueue: number;
  maxQueueDelayMs: number;
  kvMemory?: string;
  ctx?: number;
  threads?: number;
  kvType?: KvType;
  shutdownTimeout: number;
  maxBody: number;
  /** commander's --no-prefix-cache */
  prefixCache: boolean;
}

/** "2g", "512m", "1.5GiB", plain bytes. */
export function parseSize(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(v);
  if (m === null) throw new UsageError("invalid size", { expected: "a size like 512m or 2g", got: JSON.stringify(v) });
  const mult = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Math.floor(Number(m[1]) * mult);
}

/** --cors: "*" or a comma-separated list of origins (scheme://host[:port], as browsers send them). */
export function parseCorsOrigins(v: string): string[] {
  const list = v.split(",").map((o) => o.trim()).filter((o) => o !== "");
  for (const o of list) {
    if (o !== "*" && !/^https?:\/\/[^/\s]+$/i.test(o)) {
      throw new UsageError("invalid --cors origin", { expected: "* or origins like https://app.example.com, comma-separated", got: JSON.stringify(o) });
    }
  }
  if (list.length === 0) throw new UsageError("invalid --cors", { expected: "* or a comma-separated list of origins", got: JSON.stringify(v) });
  return list;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("serve a model over an OpenAI-compatible HTTP API (continuous batching, prefix caching, metrics)")
    .argument("[model]", MODEL_ARGUMENT_HELP)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port", parseIntOption("--port", 0, 65535), 8080)
    .option("--api-key <key>", "require this key (Authorization: Bearer or X-Api-Key)")
    .option("--cors <origins>", "let browser pages from these origins call the API (comma-separated, or *)", parseCorsOrigins)
    .option("--model-name <name>", "model id in the API (default: the file name)")
    .option("--batching <policy>", "continuous | dynamic | static", "continuous")
    .option("--max-batch <n>", "sequences per forward pass", parseIntOption("--max-batch", 1, 1024), 16)
    .option("--max-batch-tokens <n>", "tokens per forward pass (prefill chunk)", parseIntOption("--max-batch-tokens", 1, 65536), 256)
    .option("--max-queue <n>", "waiting requests before 429", parseIntOption("--max-queue", 1, 1 << 20), 256)
    .option("--max-queue-delay-ms <n>", "dynamic/static batching: how long a batch may wait to fill", parseIntOption("--max-queue-delay-ms", 0, 3600000), 20)
    .option("--kv-memory <size>", "KV cache size, e.g. 2g (default: a quarter of free memory, at most max-batch full contexts)")
    .option("-c, --ctx <n>", "context per sequence (default: the model's, at most 4096)", parseIntOption("--ctx", 16, 1 << 20))
    .option("-t, --threads <n>", "threads (default: cores)", parseIntOption("--threads", 1, 64))
    .option("--kv-type <type>", KV_TYPE_HELP, parseKvType)
    .option("--shutdown-timeout <s>", "seconds running requests may take after SIGTERM", parseIntOption("--shutdown-timeout", 0, 86400), 30)
    .option("--max-body <bytes>", "largest request body", parseIntOption("--max-body", 1024, 1 << 30), 4 << 20)
    .option("--no-prefix-cache", "do not reuse the KV blocks of prompt prefixes seen before")
    .action((modelArg: string | undefined, o: ServeCliOptions) =>
      runCommand(async () => {
        const model = modelOrBuiltin(modelArg);
        if (!["continuous", "dynamic", "static"].includes(o.batching)) {
          throw new UsageError("invalid --batching", { expected: "continuous, dynamic or static", got: o.batching });
        }
        const server = await startServer({
          modelPath: model,
          host: o.host,
          port: o.port,
          ...(o.apiKey === undefined ? {} : { apiKey: o.apiKey }),
          ...(o.cors === undefined ? {} : { corsOrigins: o.cors }),
          ...(o.modelName === undefined ? {} : { modelName: o.modelName }),
          policy: o.batching as BatchingPolicy,
          maxBatch: o.maxBatch,
          maxBatchTokens: o.maxBatchTokens,
          maxQueue: o.maxQueue,
          maxQueueDelayMs: o.maxQueueDelayMs,
          ...(o.kvMemory === undefined ? {} : { kvMemoryBytes: parseSize(o.kvMemory) }),
          ...(o.ctx === undefined ? {} : { contextSize: o.ctx }),
          ...(o.threads === undefined ? {} : { threads: o.threads }),
          ...(o.kvType === undefined ? {} : { engine: { kvType: o.kvType } }),
          shutdownTimeout: o.shutdownTimeout,
          prefixCaching: o.prefixCache,
          bodyLimit: o.maxBody,
          log: say,
        });
        say(`listening at ${server.url} (loading the model...)`);
        const stop = (): void => {
          void server.shutdown().then(() => {
            say("stopped");
            process.exit(0);
          });
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
        try {
          await server.ready;
        } catch (e) {
          await server.app.close();
          throw e;
        }
      }),
    );
}
