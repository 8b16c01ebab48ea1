/**
 * Hundreds of malformed requests (seeded fast-check generators plus fixed cases from
 * serving-facts.md section 5): every answer is a 4xx in OpenAI's error shape, never a 5xx, and
 * the server keeps answering /health and generating the same text afterwards.
 *
 * Raw sockets carry what clients like the SDK cannot send (bad Content-Length, form bodies,
 * oversized or chunked bodies, huge headers, bad methods).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { MODEL_NAME, type RawResponse, type TestServer, assertOpenAiError, getText, postJson, rawPost, rawRequest, startTestServer } from "./helpers.js";

const CTX = 128;
const BODY_LIMIT = 64 * 1024;
const SEED = 20260526;

/** One request: raw JSON text (so bodies can hold 1e400, NaN...) and what must come back. */
interface Case {
  readonly label: string;
  readonly path: string;
  readonly body: string;
  readonly status: number;
}

/** Counts by outcome, reported at the end. */
const tally = new Map<string, number>();
let total = 0;

function check(r: RawResponse, c: { label: string; status: number }): void {
  total++;
  assert.ok(r.status < 500, `${c.label}: ${r.status} ${r.body.slice(0, 300)}`);
  assert.equal(r.status, c.status, `${c.label}: ${r.body.slice(0, 300)}`);
  if (r.status !== 200) assertOpenAiError(r.body, c.label);
  tally.set(String(r.status), (tally.get(String(r.status)) ?? 0) + 1);
}

/** Run cases with a few in flight at a time. */
async function runAll(url: string, cases: readonly Case[], parallel = 8): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const c = cases[next++]!;
      check(await postJson(url, c.path, c.body), c);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

// Bad values as raw JSON text, per field. Each is invalid on its own, whatever else the body holds.
const NUMBER_JUNK = ['"NaN"', '"Infinity"', '"-Infinity"', "1e400", "-1e400", "true", "[]", "{}", '"1"'];
const COMMON: Record<string, readonly string[]> = {
  max_tokens: ["0", "-1", "-100000", "1.5", "1e15", "4294967297", "200", "127", ...NUMBER_JUNK],
  temperature: ["-0.01", "2.01", "1e308", "-5", ...NUMBER_JUNK],
  top_p: ["0", "-0.5", "1.0001", "7", ...NUMBER_JUNK],
  top_k: ["-1", "0.5", "1e12", ...NUMBER_JUNK],
  min_p: ["-0.1", "1.5", ...NUMBER_JUNK],
  presence_penalty: ["-2.5", "2.5", ...NUMBER_JUNK],
  frequency_penalty: ["-2.01", "3", ...NUMBER_JUNK],
  repetition_penalty: ["0", "-1", "10.5", ...NUMBER_JUNK],
  seed: ["-1", "1.5", "9007199254740993", "1e20", ...NUMBER_JUNK],
  n: ["0", "-1", "9", "1000000", "1.5", ...NUMBER_JUNK],
  stop: ['["a","b","c","d","e"]', '""', '[""]', "[1]", "5", "{}", JSON.stringify("x".repeat(300)), "[null]", "true", '["a",["b"]]'],
  stream: ['"yes"', "1", "[]", "{}"],
  stream_options: ['"x"', '{"include_usage":"yes"}', "5", "[]"],
  model: ["123", "[]", "{}", "true", JSON.stringify("m".repeat(300))],
  user: ["123", "{}", "[]"],
  cache_salt: ["5", JSON.stringify("s".repeat(300)), "[]"],
  logit_bias: ['{"abc":1}', '{"1":101}', '{"1":-101}', '{"1":"5"}', "[1]", '{"-1":1}', '{"99999":1}', '{"1":1e400}', '"x"', '{"1.5":1}'],
};
const CHAT: Record<string, readonly string[]> = {
  ...COMMON,
  max_completion_tokens: ["0", "-1", "1.5", "1e15", "300", ...NUMBER_JUNK],
  logprobs: ['"true"', "1", "[]", "{}"],
  top_logprobs: ["21", "-1", "1.5", "100", ...NUMBER_JUNK],
  messages: [
    "null",
    '"hello"',
    "[]",
    "[123]",
    "[{}]",
    "{}",
    '[{"role":123,"content":"x"}]',
    '[{"role":"user","content":123}]',
    '[{"role":"robot","content":"x"}]',
    '[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]',
    '[{"role":"user","content":"x"},{}]',
    '[{"role":"user","content":"x"},null]',
    '[{"role":"user","content":{"text":"x"}}]',
    '[{"role":"user","content":[{"type":"text"}]}]',
    '[{"role":"user","content":"x","name":5}]',
    '[{"content":"x"}]',
    JSON.stringify([{ role: "user", content: "once upon a time ".repeat(60) }]),
  ],
  tools: ["5", "[{}]", '[{"type":"function"}]', '[{"type":"function","function":{}}]', '[{"type":"retrieval"}]', '{"type":"function"}'],
  tool_choice: ['"required"', '{"type":"function","function":{"name":"f"}}', "5"],
  response_format: ['{"type":"json_object"}', '{"type":"json_schema"}', '{"type":"json_schema","json_schema":{"name":"x"}}', '"json"', "5"],
};
const TEXT: Record<string, readonly string[]> = {
  ...COMMON,
  prompt: [
    "null",
    "123",
    "[]",
    "[[]]",
    "[-1]",
    "[1.5]",
    "[99999]",
    "[[1,-2]]",
    "{}",
    "true",
    '[1,"a"]',
    '["a",1]',
    '[[1],"a"]',
    '[["a"]]',
    "[1e400]",
    JSON.stringify("word ".repeat(300)),
    JSON.stringify(Array.from({ length: 200 }, (_, i) => 10 + i)),
    JSON.stringify(Array.from({ length: 9 }, () => "x")),
  ],
  logprobs: ["21", "-1", "true", "1.5", '"2"'],
  echo: ["true", '"yes"'],
  best_of: ["2", "0", '"1"'],
  suffix: ['"x"', "5"],
};

/** A valid body with `bad` fields replaced by raw JSON fragments (or removed when undefined). */
function bodyWith(kind: "chat" | "text", bad: Record<string, string | undefined>): string {
  const base: Record<string, unknown> = kind === "chat" ? { model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 2 } : { model: MODEL_NAME, prompt: "Hi", max_tokens: 2 };
  const holes: string[] = [];
  for (const [k, v] of Object.entries(bad)) {
    if (v === undefined) delete base[k];
    else {
      base[k] = `\u0000HOLE${holes.length}\u0000`;
      holes.push(v);
    }
  }
  let text = JSON.stringify(base);
  holes.forEach((h, i) => (text = text.replace(JSON.stringify(`\u0000HOLE${i}\u0000`), h)));
  return text;
}

/** 1-3 distinct fields of a route, each with one bad value (seeded). */
function mutationCases(kind: "chat" | "text", count: number, seed: number): Case[] {
  const table = kind === "chat" ? CHAT : TEXT;
  const fields = Object.keys(table);
  const arb = fc.uniqueArray(fc.constantFrom(...fields), { minLength: 1, maxLength: 3 }).chain((fs) => fc.tuple(...fs.map((f) => fc.constantFrom(...table[f]!).map((v) => [f, v] as const))));
  return fc.sample(arb, { seed, numRuns: count }).map((muts) => {
    const bad = Object.fromEntries(muts);
    return { label: `${kind} ${JSON.stringify(bad).slice(0, 200)}`, path: kind === "chat" ? "/v1/chat/completions" : "/v1/completions", body: bodyWith(kind, bad), status: 400 };
  });
}

const isObject = (s: string): boolean => {
  try {
    const v: unknown = JSON.parse(s);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
};

describe("malformed requests", () => {
  let srv: TestServer;
  let reference = "";
  before(async () => {
    srv = await startTestServer({ contextSize: CTX, bodyLimit: BODY_LIMIT });
    reference = await completionText(srv.url);
  });
  after(async () => {
    await srv.close();
    const counts = [...tally].map(([s, n]) => `${s}: ${n}`).join(", ");
    process.stderr.write(`malformed requests: ${total} sent (${counts})\n`);
  });

  const healthy = async (): Promise<void> => {
    const h = await getText(`${srv.url}/health`);
    assert.equal(h.status, 200);
    assert.equal(srv.serving.numRunning + srv.serving.numWaiting, 0, "nothing left running");
  };

  it("300 bodies with 1-3 bad fields (types, NaN/Infinity, huge/negative/out-of-range values, >4 stops, top_logprobs 21, bad messages, prompts over the context): 400", async () => {
    const cases = [...mutationCases("chat", 150, SEED), ...mutationCases("text", 150, SEED + 1)];
    await runAll(srv.url, cases);
    await healthy();
  });

  it("fixed cases: missing fields, empty messages, context limits, unknown model (404)", async () => {
    const long = "once upon a time ".repeat(40);
    const cases: Case[] = [
      { label: "no messages", path: "/v1/chat/completions", body: bodyWith("chat", { messages: undefined }), status: 400 },
      { label: "no prompt", path: "/v1/completions", body: bodyWith("text", { prompt: undefined }), status: 400 },
      { label: "empty object chat", path: "/v1/chat/completions", body: "{}", status: 400 },
      { label: "empty object text", path: "/v1/completions", body: "{}", status: 400 },
      { label: "empty messages", path: "/v1/chat/completions", body: bodyWith("chat", { messages: "[]" }), status: 400 },
      { label: "prompt > ctx", path: "/v1/completions", body: JSON.stringify({ prompt: long }), status: 400 },
      { label: "chat > ctx", path: "/v1/chat/completions", body: JSON.stringify({ messages: [{ role: "user", content: long }] }), status: 400 },
      { label: "60 KB prompt (refused before tokenizing)", path: "/v1/completions", body: JSON.stringify({ prompt: "a b ".repeat(15000) }), status: 400 },
      { label: "60 KB of messages", path: "/v1/chat/completions", body: JSON.stringify({ messages: Array.from({ length: 60 }, () => ({ role: "user", content: "a b ".repeat(250) })) }), status: 400 },
      { label: "prompt + max_tokens > ctx", path: "/v1/completions", body: JSON.stringify({ prompt: "Hi", max_tokens: CTX }), status: 400 },
      { label: "chat + max_tokens > ctx", path: "/v1/chat/completions", body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: CTX - 3 }), status: 400 },
      { label: "unknown model chat", path: "/v1/chat/completions", body: bodyWith("chat", { model: '"gpt-4o"' }), status: 404 },
      { label: "unknown model text", path: "/v1/completions", body: bodyWith("text", { model: '"llama"' }), status: 404 },
      { label: "unknown model bare route", path: "/completions", body: bodyWith("text", { model: '"../../etc/passwd"' }), status: 404 },
      { label: "token id = vocab", path: "/v1/completions", body: JSON.stringify({ prompt: [1, 512], max_tokens: 2 }), status: 400 },
      { label: "prompts x n > 16", path: "/v1/completions", body: JSON.stringify({ prompt: ["a", "b", "c"], n: 8, max_tokens: 2 }), status: 400 },
      { label: "deep nesting in a known field", path: "/v1/chat/completions", body: `{"messages":${"[".repeat(20000)}${"]".repeat(20000)}}`, status: 400 },
      { label: "__proto__ key", path: "/v1/completions", body: '{"prompt":"x","__proto__":{"max_tokens":1}}', status: 400 },
      { label: "constructor.prototype", path: "/v1/completions", body: '{"prompt":"x","constructor":{"prototype":{"x":1}}}', status: 400 },
      { label: "duplicate keys, last one bad", path: "/v1/completions", body: '{"prompt":"x","max_tokens":2,"max_tokens":-2}', status: 400 },
      { label: "literal NaN", path: "/v1/completions", body: '{"prompt":"x","temperature":NaN}', status: 400 },
      { label: "literal Infinity", path: "/v1/completions", body: '{"prompt":"x","max_tokens":Infinity}', status: 400 },
      { label: "lone surrogate escape", path: "/v1/completions", body: '{"prompt":"\\ud800","max_tokens":2,"temperature":7}', status: 400 },
      { label: "json_schema without schema", path: "/v1/chat/completions", body: bodyWith("chat", { response_format: '{"type":"json_schema"}' }), status: 400 },
      { label: "required tool call", path: "/v1/chat/completions", body: bodyWith("chat", { tools: '[{"type":"function","function":{"name":"f"}}]', tool_choice: '"required"' }), status: 400 },
    ];
    await runAll(srv.url, cases, 4);
    await healthy();
  });

  it("80 random strings and 40 truncated bodies as JSON: 400", async () => {
    const valid = bodyWith("text", {});
    const randoms = fc.sample(fc.string({ maxLength: 120, unit: "binary" }), { seed: SEED + 2, numRuns: 80 }).filter((s) => !isObject(s));
    const cuts = fc.sample(fc.integer({ min: 0, max: valid.length - 1 }), { seed: SEED + 3, numRuns: 40 }).map((n) => valid.slice(0, n));
    const cases: Case[] = [...randoms, ...cuts].map((b, i) => ({ label: `junk ${i}: ${JSON.stringify(b).slice(0, 80)}`, path: i % 2 === 0 ? "/v1/chat/completions" : "/v1/completions", body: b, status: 400 }));
    assert.ok(cases.length >= 110);
    await runAll(srv.url, cases);
    await healthy();
  });

  it("40 JSON bodies that are not objects (arrays, numbers, null, strings, booleans): 400", async () => {
    const values = fc.sample(fc.jsonValue({ maxDepth: 3 }), { seed: SEED + 4, numRuns: 200 }).filter((v) => typeof v !== "object" || v === null || Array.isArray(v));
    const fixed: unknown[] = [[], [{}], null, 0, -1, 1e300, "", "hello", true, false, [{ prompt: "x" }]];
    const bodies = [...fixed, ...values].slice(0, 40).map((v) => JSON.stringify(v));
    assert.equal(bodies.length, 40);
    await runAll(
      srv.url,
      bodies.map((b, i) => ({ label: `non-object ${b.slice(0, 60)}`, path: i % 2 === 0 ? "/v1/chat/completions" : "/completions", body: b, status: 400 })),
    );
    await healthy();
  });

  it("60 unknown routes and wrong methods: 404", async () => {
    const known = new Set(["/health", "/metrics", "/models", "/v1/models", "/completions", "/v1/completions", "/chat/completions", "/v1/chat/completions"]);
    const paths = fc
      .sample(fc.webPath({ size: "small" }), { seed: SEED + 5, numRuns: 120 })
      .filter((p) => p.startsWith("/") && !known.has(p.split("?")[0]!))
      .slice(0, 45);
    const methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    const wrong: [string, string][] = [
      ["GET", "/v1/completions"],
      ["GET", "/v1/chat/completions"],
      ["PUT", "/v1/chat/completions"],
      ["DELETE", "/v1/completions"],
      ["POST", "/v1/models"],
      ["POST", "/health"],
      ["DELETE", "/metrics"],
      ["GET", "/v1/embeddings"],
      ["POST", "/v1/responses"],
      ["GET", "/v2/models"],
      ["GET", "/v1/models/../../etc/passwd"],
      ["GET", "/v1//models"],
      ["GET", "/health/"],
      ["GET", "/%2e%2e/%2e%2e/etc/passwd"],
      ["GET", "/nope?x=%0D%0ASet-Cookie:%20a=b"],
    ];
    const all: [string, string][] = [...paths.map((p, i): [string, string] => [methods[i % methods.length]!, p]), ...wrong];
    assert.ok(all.length >= 60, `${all.length} routes`);
    for (const [method, p] of all) {
      const body = method === "GET" || method === "DELETE" ? "" : "{}";
      const data = `${method} ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${body === "" ? "" : `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`}\r\n${body}`;
      const r = await rawRequest(srv.url, data);
      check(r, { label: `${method} ${p}`, status: 404 });
      assert.ok(!("set-cookie" in r.headers), "no header injection");
    }
    await healthy();
  });

  it("HTTP level: form and other content types, body limit (chunked too), bad Content-Length, huge headers and URLs, bad methods", async () => {
    const pad = (n: number): string => {
      const head = '{"prompt":"Hi","max_tokens":1,"pad":"';
      return head + "x".repeat(n - head.length - 2) + '"}';
    };
    const chunked = (body: string, piece = 4000): string => {
      let out = "";
      for (let i = 0; i < body.length; i += piece) {
        const c = body.slice(i, i + piece);
        out += `${c.length.toString(16)}\r\n${c}\r\n`;
      }
      return out + "0\r\n\r\n";
    };
    const cases: [string, string | Buffer, number][] = [
      ["form urlencoded", rawPost("/v1/completions", "prompt=Hi&max_tokens=2", { "content-type": "application/x-www-form-urlencoded" }), 415],
      ["multipart", rawPost("/v1/chat/completions", "--b\r\nContent-Disposition: form-data; name=x\r\n\r\ny\r\n--b--\r\n", { "content-type": "multipart/form-data; boundary=b" }), 415],
      ["xml", rawPost("/v1/completions", "<prompt/>", { "content-type": "application/xml" }), 415],
      ["octet-stream", rawPost("/v1/completions", Buffer.from([0, 1, 2, 255]), { "content-type": "application/octet-stream" }), 415],
      ["text/plain json", rawPost("/v1/completions", '{"prompt":"Hi"}', { "content-type": "text/plain" }), 400],
      ["no content type", rawPost("/v1/completions", '{"prompt":"Hi"}', { "content-type": "" }), 415],
      ["empty json body", rawPost("/v1/completions", ""), 400],
      ["at the limit", rawPost("/v1/completions", pad(BODY_LIMIT)), 200],
      ["one byte over", rawPost("/v1/completions", pad(BODY_LIMIT + 1)), 413],
      ["far over", rawPost("/v1/completions", pad(BODY_LIMIT * 4)), 413],
      ["chunked at the limit", rawPost("/v1/completions", chunked(pad(BODY_LIMIT)), { "transfer-encoding": "chunked" }), 200],
      ["chunked over", rawPost("/v1/completions", chunked(pad(BODY_LIMIT * 2)), { "transfer-encoding": "chunked" }), 413],
      ["Content-Length not a number", rawPost("/v1/completions", "{}", { "content-length": "abc" }), 400],
      ["Content-Length negative", rawPost("/v1/completions", "{}", { "content-length": "-5" }), 400],
      ["Content-Length 1e3", rawPost("/v1/completions", "{}", { "content-length": "1e3" }), 400],
      ["Content-Length shorter than the body", rawPost("/v1/completions", '{"prompt":"Hi"}', { "content-length": "3" }), 400],
      ["two Content-Lengths", Buffer.from('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}'), 400],
      ["Content-Length and chunked", Buffer.from('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n'), 400],
      ["Content-Length over the limit, no body", rawPost("/v1/completions", "", { "content-length": String(BODY_LIMIT * 100) }), 413],
      ["bad chunk size", rawPost("/v1/completions", "zz\r\n{}\r\n0\r\n\r\n", { "transfer-encoding": "chunked" }), 400],
      ["huge header", Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20000)}\r\nConnection: close\r\n\r\n`), 431],
      ["many headers", Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 4000 }, (_, i) => `X-H${i}: v`).join("\r\n")}\r\nConnection: close\r\n\r\n`), 431],
      ["huge URL", Buffer.from(`GET /v1/models?${"q".repeat(20000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), 431],
      ["bad method", Buffer.from("FOO /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400],
      ["binary garbage", Buffer.from([0, 1, 2, 3, 13, 10, 13, 10]), 400],
      ["header without colon", Buffer.from("GET /health HTTP/1.1\r\nHost x\r\nConnection: close\r\n\r\n"), 400],
      ["CR in header value", Buffer.from("GET /health HTTP/1.1\r\nHost: x\rInjected: y\r\nConnection: close\r\n\r\n"), 400],
      ["gzip body we cannot read", rawPost("/v1/completions", Buffer.from([31, 139, 8, 0, 1, 2, 3]), { "content-encoding": "gzip" }), 415],
    ];
    for (const [label, data, status] of cases) check(await rawRequest(srv.url, data), { label, status });
    await healthy();
  });

  it("still serves: /health 200 and the same greedy text as before everything", async () => {
    await healthy();
    assert.equal(await completionText(srv.url), reference);
    assert.ok(total >= 500, `${total} malformed requests`);
  });
});

describe("API key", () => {
  const KEY = "sk-test-KEY";
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ apiKey: KEY, contextSize: CTX });
  });
  after(() => srv.close());

  it("missing, wrong, case-variant, truncated or extended keys: 401 on every protected route; /health and /metrics stay open", async () => {
    const variants: (Record<string, string> | undefined)[] = [
      undefined,
      { authorization: "Bearer wrong" },
      { authorization: "Bearer sk-test-key" },
      { authorization: "Bearer SK-TEST-KEY" },
      { authorization: "Bearer sk-test-KE" },
      { authorization: "Bearer sk-test-KEYX" },
      { authorization: `Basic ${Buffer.from(`user:${KEY}`).toString("base64")}` },
      { authorization: "Bearer" },
      { authorization: KEY },
      { "x-api-key": "wrong" },
      { "x-api-key": KEY.toLowerCase() },
    ];
    const routes: [string, string][] = [
      ["POST", "/v1/chat/completions"],
      ["POST", "/chat/completions"],
      ["POST", "/v1/completions"],
      ["POST", "/completions"],
      ["GET", "/v1/models"],
      ["GET", "/models"],
    ];
    for (const h of variants) {
      for (const [method, p] of routes) {
        const r =
          method === "GET"
            ? await fetch(srv.url + p, { headers: h ?? {} }).then(async (x) => ({ status: x.status, headers: {}, body: await x.text() }))
            : await postJson(srv.url, p, { prompt: "Hi", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }, h ?? {});
        check(r, { label: `${method} ${p} ${JSON.stringify(h)}`, status: 401 });
        assert.equal(assertOpenAiError(r.body).type, "authentication_error");
      }
    }
    // auth comes before the body: a bad body without a key is still 401
    check(await postJson(srv.url, "/v1/completions", "{not json"), { label: "bad JSON, no key", status: 401 });
    check(await rawRequest(srv.url, rawPost("/v1/completions", "x".repeat(10000), { "content-type": "application/x-www-form-urlencoded" })), { label: "form, no key", status: 401 });
    assert.equal((await getText(`${srv.url}/health`)).status, 200);
    assert.equal((await getText(`${srv.url}/metrics`)).status, 200);
    for (const h of [{ authorization: `Bearer ${KEY}` }, { authorization: `bearer ${KEY}` }, { "x-api-key": KEY }] as Record<string, string>[]) {
      const ok = await postJson(srv.url, "/v1/completions", { prompt: "Hi", max_tokens: 2 }, h);
      assert.equal(ok.status, 200, JSON.stringify(h));
    }
  });
});

async function completionText(url: string): Promise<string> {
  const r = await postJson(url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 20, temperature: 0 });
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { choices: { text: string }[] }).choices[0]!.text;
}
