/**
 * OpenAI request schemas (zod). Unknown fields are ignored, never rejected (clients send many:
 * logit_bias, functions, user...). Every number is range-checked: NaN, infinities and huge values
 * are 400s, never engine errors.
 */
import { z } from "zod";

export const MAX_N = 8;
export const MAX_STOP = 4;
export const MAX_STOP_LENGTH = 256;
export const MAX_TOP_LOGPROBS = 20;
export const MAX_MESSAGES = 1024;
export const MAX_PROMPTS = 8;
export const MAX_LOGIT_BIAS = 1024;

const finite = z.number().finite();
const int = z.number().int();

const stop = z
  .union([z.string().min(1).max(MAX_STOP_LENGTH), z.array(z.string().min(1).max(MAX_STOP_LENGTH)).max(MAX_STOP)])
  .nullish();

/** Fields shared by chat and text completions (and `slimlm batch` lines). */
export const samplingFields = {
  model: z.string().max(256).nullish(),
  max_tokens: int.min(1).max(1 << 20).nullish(),
  temperature: finite.min(0).max(2).nullish(),
  top_p: finite.gt(0).max(1).nullish(),
  top_k: int.min(0).max(1 << 20).nullish(),
  min_p: finite.min(0).max(1).nullish(),
  repetition_penalty: finite.gt(0).max(10).nullish(),
  presence_penalty: finite.min(-2).max(2).nullish(),
  frequency_penalty: finite.min(-2).max(2).nullish(),
  seed: int.min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
  stop,
  n: int.min(1).max(MAX_N).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().max(256).nullish(),
  /** Prefix-cache salt, as vLLM's cache_salt. */
  cache_salt: z.string().max(256).nullish(),
  /** Keep generating past end-of-generation tokens (vLLM and llama.cpp's extension; for benchmarks). */
  ignore_eos: z.boolean().nullish(),
  /** Token id (decimal string) -> bias added to its logit, in [-100, 100] (OpenAI's range). */
  logit_bias: z
    .record(z.string().regex(/^\d{1,9}$/, "token ids as decimal strings"), finite.min(-100).max(100))
    .refine((o) => Object.keys(o).length <= MAX_LOGIT_BIAS, `at most ${MAX_LOGIT_BIAS} entries`)
    .nullish(),
};

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const content = z.union([z.string(), z.array(textPart).max(MAX_MESSAGES)]).nullish();

export const chatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content,
  name: z.string().max(256).nullish(),
});

/** Tools are accepted (validated, then ignored: slimlm never emits tool calls). */
const tool = z.object({
  type: z.literal("function"),
  function: z.object({ name: z.string().min(1).max(64), description: z.string().max(65536).nullish(), parameters: z.record(z.string(), z.unknown()).nullish() }),
});

export const chatRequest = z.object({
  ...samplingFields,
  messages: z.array(chatMessage).min(1).max(MAX_MESSAGES),
  max_completion_tokens: int.min(1).max(1 << 20).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: int.min(0).max(MAX_TOP_LOGPROBS).nullish(),
  tools: z.array(tool).max(128).nullish(),
  /** Only "none" and "auto" can be honoured (the model is never forced to call a tool). */
  tool_choice: z.enum(["none", "auto"], { error: 'only "none" and "auto" are supported (slimlm does not call tools)' }).nullish(),
  /** Structured output is not implemented: only plain text. */
  response_format: z.object({ type: z.literal("text", { error: 'only "text" is supported (no structured output)' }) }).nullish(),
});

export const tokenIds = z.array(int.min(0).max(2 ** 31 - 1)).min(1).max(1 << 20);

export const completionRequest = z.object({
  ...samplingFields,
  prompt: z.union([z.string(), tokenIds, z.array(z.string()).min(1).max(MAX_PROMPTS), z.array(tokenIds).min(1).max(MAX_PROMPTS)]),
  /** Legacy completions logprobs: how many top alternatives per token (0..5 in OpenAI; we allow 20). */
  logprobs: int.min(0).max(MAX_TOP_LOGPROBS).nullish(),
  echo: z.literal(false).nullish(),
  suffix: z.null().optional(),
  best_of: z.literal(1).nullish(),
});

export type ChatRequest = z.infer<typeof chatRequest>;
export type CompletionRequest = z.infer<typeof completionRequest>;
export type ChatMessage = z.infer<typeof chatMessage>;

/** The text of a message's content (string or text parts). */
export function messageText(c: ChatMessage["content"]): string {
  if (c === null || c === undefined) return "";
  if (typeof c === "string") return c;
  return c.map((p) => p.text).join("");
}

/** First problem of a failed parse, as OpenAI's `param` and a message. */
export function describeIssue(error: z.ZodError): { param: string | null; message: string } {
  const issue = error.issues[0];
  if (issue === undefined) return { param: null, message: "invalid request" };
  const param = issue.path.length > 0 ? issue.path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".").replace(/\.\[/g, "[") : null;
  return { param, message: `${param ?? "request"}: ${issue.message}` };
}
