// The slm-wasm page in headless Chromium (playwright-core; the browser is the system's,
// /usr/bin/chromium or SLM_CHROMIUM). Run by tests/browser.rs:
//   NODE_PATH=<node_modules> node browser_check.js BASE_URL SCREENSHOT.png EXPECTED_JSON
// EXPECTED_JSON: {question, n_tokens, ids, text, text16, model_bytes, model_path} from the native engine.
// Prints one JSON line of measurements; exits non-zero on the first failed check.
"use strict";
const { chromium } = require("playwright-core");

const [baseURL, shot, expectedJson] = process.argv.slice(2);
const expected = JSON.parse(expectedJson);
let checks = 0;
function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  checks++;
}

async function loadPage(page) {
  await page.goto(`${baseURL}/web/?model=model.gguf&autoload=1`);
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 180000 });
  const status = await page.textContent("#status");
  check((await page.evaluate(() => document.body.dataset.state)) === "ready", `the model loads (${status})`);
  return { status, source: await page.evaluate(() => document.body.dataset.source) };
}

async function ask(page, text, temperature, maxTokens) {
  const before = await page.locator(".msg.assistant").count();
  await page.fill("#temperature", String(temperature));
  await page.fill("#max-tokens", String(maxTokens));
  await page.fill("#prompt", text);
  await page.click("#send");
  return before;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.SLM_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  const result = {};
  try {
    const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    const page = await context.newPage();
    const errors = [];
    const foreign = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    context.on("request", (r) => { if (!r.url().startsWith(baseURL)) foreign.push(r.url()); });

    // A file that is not a model: a clear error on the page, and nothing cached.
    await page.goto(`${baseURL}/web/?model=style.css&autoload=1`);
    await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 60000 });
    const bad = await page.textContent("#status");
    check(bad.includes("not a valid GGUF model file"), `a non-model file gives a clear error (${bad})`);
    check(await page.isDisabled("#send"), "nothing to chat with after a failed load");
    check(!(await page.evaluate(async () => !!(await (await caches.open("slm-models-v1")).match(new URL("style.css", location.href).href)))),
      "a failed load leaves nothing in the cache");

    // First visit: the model comes over the network, with progress.
    let t0 = Date.now();
    const first = await loadPage(page);
    result.first_load_s = (Date.now() - t0) / 1000;
    check(first.source === "network", `first load downloads the model (source ${first.source})`);
    check(first.status.includes("SIMD128"), `the SIMD128 build is used (${first.status})`);

    // Greedy answer: streamed, same tokens as the native engine.
    await page.evaluate(() => {
      window.__updates = 0;
      new MutationObserver(() => window.__updates++).observe(document.getElementById("log"), { subtree: true, childList: true, characterData: true });
    });
    await ask(page, expected.question, 0, expected.n_tokens);
    await page.waitForSelector(".msg.assistant[data-done='1']", { timeout: 120000 });
    const answer = await page.textContent(".msg.assistant");
    const stats = await page.evaluate(() => ({ ...document.getElementById("stats").dataset }));
    const ids = stats.tokens.split(",").filter(Boolean).map(Number);
    let same = 0;
    while (same < ids.length && ids[same] === expected.ids[same]) same++;
    result.same_greedy_tokens = same;
    check(same >= Math.min(16, expected.ids.length), `the first 16 greedy tokens equal native slm's (same: ${same}; browser ${ids.slice(0, 20)} vs native ${expected.ids.slice(0, 20)})`);
    check(answer.startsWith(expected.text16), `the answer starts with native slm's first 16 tokens: ${JSON.stringify(answer)} vs ${JSON.stringify(expected.text16)}`);
    result.same_text = answer === expected.text;
    check(await page.evaluate(() => window.__updates) >= 4, "the answer arrived in several streamed pieces");
    check((await page.textContent("#stats")).includes("tok/s"), "tokens/s shown");
    check((await page.textContent("#stats")).includes("MiB"), "memory shown");
    result.greedy_tok_s = Number(stats.tps);

    // A long answer, stopped mid-way with the Stop button. Greedy, on a prompt whose greedy answer is
    // long (natively 300+ tokens): sampled answers to a counting prompt were sometimes done in < 40
    // characters, before Stop could be pressed (a flaky timeout in CI).
    await page.click("#new-chat");
    const before = await ask(page, "Write a long story about a dragon who learns to cook.", 0, 1000);
    await page.waitForFunction((n) => {
      const all = document.querySelectorAll(".msg.assistant");
      return all.length === n + 1 && all[n].textContent.length > 40;
    }, before, { timeout: 120000 });
    check(!(await page.isDisabled("#stop")), "Stop is enabled while generating");
    await page.click("#stop");
    await page.waitForFunction(() => document.getElementById("stats").dataset.finish === "cancelled", null, { timeout: 10000 });
    const stopped = await page.evaluate(() => ({ ...document.getElementById("stats").dataset }));
    check(Number(stopped.ntokens) < 1000, `Stop ended the answer early (${stopped.ntokens} tokens)`);
    result.sampled_tok_s = Number(stopped.tps);
    result.wasm_memory_mib = Number((await page.textContent("#stats")).match(/memory ([\d.]+) MiB/)[1]);
    await page.screenshot({ path: shot, fullPage: true });

    // Second visit: the model comes from the browser cache, not the network.
    t0 = Date.now();
    const second = await loadPage(page);
    result.cached_load_s = (Date.now() - t0) / 1000;
    check(second.source === "cache", `second load reads the browser cache (source ${second.source})`);

    // A model file picked on this device: read as a stream, never cached.
    await page.setInputFiles("#model-file", expected.model_path);
    await page.waitForFunction(() => document.body.dataset.source === "file" && ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 120000 });
    check((await page.evaluate(() => document.body.dataset.state)) === "ready", `a picked file loads (${await page.textContent("#status")})`);

    check(errors.length === 0, `no page errors: ${errors.join(" | ")}`);
    check(foreign.length === 0, `no requests outside the server: ${foreign.join(" ")}`);
    result.checks = checks;
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
