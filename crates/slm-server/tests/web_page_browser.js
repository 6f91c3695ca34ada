// The chat page in headless Chromium (playwright-core, pinned in scripts/test.sh; the browser is the
// system's, /usr/bin/chromium or SLM_CHROMIUM): type a message and see a streamed answer, then
// stop a long answer with the Stop button. Saves a screenshot.
// Usage: NODE_PATH=<node_modules> node web_page_browser.js BASE_URL SCREENSHOT.png
// Run by tests/web_page.rs; exits non-zero on the first failure.
"use strict";
const { chromium } = require("playwright-core");

const [baseURL, shot] = process.argv.slice(2);
let checks = 0;
function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  checks++;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.SLM_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const errors = [];
    const foreign = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => { if (!r.url().startsWith(baseURL)) foreign.push(r.url()); });
    await page.goto(baseURL + "/");
    await page.waitForFunction(() => document.getElementById("model-info").textContent.includes("tokens context"), null, { timeout: 30000 });
    check((await page.textContent("#model-info")).includes("smollm2-test"), "model info shows the model id");

    // Count how often the answer's text changes: a streamed answer changes many times.
    await page.evaluate(() => {
      window.__updates = 0;
      new MutationObserver(() => window.__updates++).observe(document.getElementById("log"), { subtree: true, childList: true, characterData: true });
    });
    await page.fill("#input", "What is the capital of France?");
    await page.press("#input", "Enter");
    await page.waitForSelector(".msg.assistant[data-state=done]", { timeout: 60000 });
    const answer = await page.textContent(".msg.assistant");
    check(answer.trim().length > 0, "an answer appeared");
    check(await page.evaluate(() => window.__updates) >= 4, "the answer arrived in several streamed pieces");
    check((await page.textContent("#speed")).includes("tok/s"), "tokens/s shown");
    check((await page.textContent(".msg.user")) === "What is the capital of France?", "the user message is shown");

    // A long answer (the test asks the server to ignore end-of-text), stopped mid-way.
    await page.route("**/v1/chat/completions", (route) => {
      const body = JSON.parse(route.request().postData());
      body.ignore_eos = true;
      body.max_tokens = 400;
      route.continue({ postData: JSON.stringify(body) });
    });
    await page.fill("#input", "Count to one thousand.");
    await page.click("#send");
    await page.waitForFunction(() => {
      const all = document.querySelectorAll(".msg.assistant");
      return all.length === 2 && all[1].textContent.length > 20;
    }, null, { timeout: 60000 });
    check(!(await page.isDisabled("#stop")), "Stop is enabled while streaming");
    await page.click("#stop");
    await page.waitForSelector(".msg.assistant[data-state=stopped]", { timeout: 10000 });
    const stopped = await page.evaluate(() => document.querySelectorAll(".msg.assistant")[1].textContent);
    await page.waitForTimeout(700);
    const later = await page.evaluate(() => document.querySelectorAll(".msg.assistant")[1].textContent);
    check(stopped === later, "no text arrives after Stop");
    check(await page.isDisabled("#stop") && !(await page.isDisabled("#send")), "buttons reset after Stop");
    check(errors.length === 0, "no page errors: " + errors.join("; "));
    check(foreign.length === 0, "no requests outside the server: " + foreign.join(", "));
    await page.screenshot({ path: shot });
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ ok: true, checks }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
