/**
 * CORS (`serve --cors`): preflights answered without the API key, allowed origins get
 * Access-Control-Allow-Origin on JSON and SSE responses and on errors, other origins get nothing,
 * and without --cors no CORS header is ever sent.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseCorsOrigins } from "../../src/cli/commands/serve.js";
import { UsageError } from "../../src/errors.js";
import { type TestServer, rawPost, rawRequest, startTestServer } from "./helpers.js";

const APP = "https://app.example.com";
const KEY = "secret-key";

function preflight(origin: string, path = "/v1/chat/completions"): string {
  return [
    `OPTIONS ${path} HTTP/1.1`,
    "Host: localhost",
    `Origin: ${origin}`,
    "Access-Control-Request-Method: POST",
    "Access-Control-Request-Headers: authorization, content-type",
    "Connection: close",
    "",
    "",
  ].join("\r\n");
}

const chat = (extra: object = {}): string =>
  JSON.stringify({ messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 4, temperature: 0, ...extra });

describe("CORS", () => {
  let srv: TestServer;
  let plain: TestServer;
  before(async () => {
    srv = await startTestServer({ corsOrigins: [APP], apiKey: KEY });
    plain = await startTestServer();
  });
  after(async () => {
    await srv.close();
    await plain.close();
  });

  it("answers a preflight from an allowed origin with 204, without the API key", async () => {
    const r = await rawRequest(srv.url, preflight(APP));
    assert.equal(r.status, 204);
    assert.equal(r.headers["access-control-allow-origin"], APP);
    assert.match(r.headers["access-control-allow-methods"]!, /POST/);
    assert.match(r.headers["access-control-allow-headers"]!, /Authorization/);
    assert.equal(r.headers["vary"], "Origin");
  });

  it("allowed origin: the header on JSON, SSE and error responses; other origins: none", async () => {
    const auth = { authorization: `Bearer ${KEY}`, origin: APP };
    const json = await rawRequest(srv.url, rawPost("/v1/chat/completions", chat(), auth));
    assert.equal(json.status, 200);
    assert.equal(json.headers["access-control-allow-origin"], APP);
    assert.match(json.headers["access-control-expose-headers"]!, /Retry-After/);
    const sse = await rawRequest(srv.url, rawPost("/v1/chat/completions", chat({ stream: true }), auth));
    assert.equal(sse.status, 200);
    assert.equal(sse.headers["content-type"], "text/event-stream");
    assert.equal(sse.headers["access-control-allow-origin"], APP);
    assert.ok(sse.body.includes("data: [DONE]"));
    const unauthorized = await rawRequest(srv.url, rawPost("/v1/chat/completions", chat(), { origin: APP }));
    assert.equal(unauthorized.status, 401, "only the preflight skips the key");
    assert.equal(unauthorized.headers["access-control-allow-origin"], APP, "so the page can read the error");
    const other = await rawRequest(srv.url, preflight("https://evil.example.com"));
    assert.equal(other.headers["access-control-allow-origin"], undefined);
    assert.notEqual(other.status, 204);
  });

  it("without --cors no CORS header is sent", async () => {
    const r = await rawRequest(plain.url, rawPost("/v1/chat/completions", chat(), { origin: APP }));
    assert.equal(r.status, 200);
    assert.equal(r.headers["access-control-allow-origin"], undefined);
    assert.notEqual((await rawRequest(plain.url, preflight(APP))).status, 204);
  });

  it("--cors takes * or a list of origins and refuses anything else", () => {
    assert.deepEqual(parseCorsOrigins("*"), ["*"]);
    assert.deepEqual(parseCorsOrigins("https://a.example, http://localhost:3000"), ["https://a.example", "http://localhost:3000"]);
    for (const bad of ["", " , ", "a.example", "https://a.example/path", "ftp://x"]) {
      assert.throws(() => parseCorsOrigins(bad), UsageError, bad);
    }
  });
});
