// Drives an slm server with the official `openai` npm package (pinned in scripts/test.sh).
// Usage: NODE_PATH=<dir with node_modules/openai> node openai_npm_check.js BASE_URL API_KEY
// Run by tests/openai_sdk.rs against a server on 127.0.0.1; exits non-zero on the first failure.
"use strict";
const mod = require("openai");
const OpenAI = mod.default || mod.OpenAI || mod;

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey, maxRetries: 0, timeout: 120000 });
let checks = 0;
function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  checks++;
}

async function expectError(Kind, promise, what) {
  try {
    await promise;
  } catch (e) {
    check(e instanceof Kind, `${what}: got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    return e;
  }
  check(false, what + " must fail");
}

function clientVersion() {
  const path = require("path");
  const pkg = path.join(process.env.NODE_PATH || "", "openai", "package.json");
  try { return JSON.parse(require("fs").readFileSync(pkg, "utf8")).version; } catch (_) { return "unknown"; }
}

async function main() {
  const models = await client.models.list();
  check(models.data.length === 1, "one model");
  const model = models.data[0].id;

  const messages = [{ role: "user", content: "What is the capital of France?" }];
  const r = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
  check(r.object === "chat.completion", r.object);
  const text = r.choices[0].message.content;
  check(typeof text === "string" && text.length > 0, "content");
  check(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, "usage");

  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let streamed = "", usage = null;
  for await (const chunk of stream) {
    check(chunk.object === "chat.completion.chunk", chunk.object);
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) if (c.delta.content) streamed += c.delta.content;
  }
  check(streamed === text, `streamed ${JSON.stringify(streamed)} vs ${JSON.stringify(text)}`);
  check(usage && usage.completion_tokens === r.usage.completion_tokens, "stream usage");

  const lp = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 2 });
  const content = lp.choices[0].logprobs.content;
  check(content.length > 0, "logprobs");
  for (const t of content) {
    check(t.logprob <= 0 && t.top_logprobs.length === 2 && t.top_logprobs[0].token === t.token, "greedy logprobs");
  }

  const c = await client.completions.create({ model, prompt: "The capital of France is", max_tokens: 8, temperature: 0 });
  check(c.object === "text_completion" && c.choices[0].text.length > 0, "completion");

  // Structured output: the answer must parse and match the schema.
  const schema = {
    type: "object",
    properties: { name: { type: "string" }, age: { type: "integer" } },
    required: ["name", "age"],
    additionalProperties: false,
  };
  const js = await client.chat.completions.create({
    model, max_tokens: 48, temperature: 0,
    messages: [{ role: "user", content: "Invent a person. Answer in JSON with name and age." }],
    response_format: { type: "json_schema", json_schema: { name: "person", schema, strict: true } },
  });
  const person = JSON.parse(js.choices[0].message.content);
  check(typeof person.name === "string" && Number.isInteger(person.age), `json_schema answer ${js.choices[0].message.content}`);
  check(Object.keys(person).sort().join(",") === "age,name", "no extra keys");
  check(js.choices[0].finish_reason === "stop", `json_schema finish ${js.choices[0].finish_reason}`);
  const badSchema = await expectError(OpenAI.BadRequestError,
    client.chat.completions.create({ model, messages, max_tokens: 4,
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "no-such-type" } } } }),
    "invalid schema");
  check(String(badSchema.param || "").startsWith("response_format"), `invalid schema param ${badSchema.param}`);

  const overflow = await expectError(OpenAI.BadRequestError,
    client.chat.completions.create({ model, messages: [{ role: "user", content: "word ".repeat(2000) }], max_tokens: 4 }),
    "context overflow");
  check(overflow.status === 400 && overflow.code === "context_length_exceeded", `overflow code ${overflow.code}`);
  await expectError(OpenAI.BadRequestError, client.chat.completions.create({ model, messages, n: 3 }), "n=3");
  const wrong = new OpenAI({ baseURL: baseURL + "/v1", apiKey: "wrong", maxRetries: 0 });
  await expectError(OpenAI.AuthenticationError, wrong.chat.completions.create({ model, messages, max_tokens: 2 }), "wrong key");

  // Aborting a stream mid-way (the web page's stop button does the same).
  const ac = new AbortController();
  const long = await client.chat.completions.create(
    { model, messages: [{ role: "user", content: "Count to one thousand." }], max_tokens: 400, ignore_eos: true, stream: true },
    { signal: ac.signal });
  let pieces = 0;
  try {
    for await (const chunk of long) {
      if (chunk.choices.length && chunk.choices[0].delta.content) pieces++;
      if (pieces === 3) ac.abort();
    }
    check(false, "an aborted stream must throw");
  } catch (e) {
    // The client stops reading; whatever it throws must come from the abort, not from the server.
    check(ac.signal.aborted && !(e instanceof OpenAI.APIError && e.status), `abort: ${e && e.name}: ${e && e.message}`);
  }
  const after = await client.chat.completions.create({ model, messages, max_tokens: 2, temperature: 0 });
  check(after.choices.length === 1, "serving after an abort");

  console.log(JSON.stringify({ ok: true, checks, openai: clientVersion() }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
