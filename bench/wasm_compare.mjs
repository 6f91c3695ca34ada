// Side by side in one headless Chromium: generation (and short-prompt) speed of slm-wasm (this repo's
// WebAssembly build, SIMD128, one thread, in its Web Worker) vs wllama (@wllama/wllama = llama.cpp in
// WebAssembly, single-thread: n_threads 1 and no cross-origin isolation), on the same GGUF file, and
// native slm (`slm bench`, 1 and 2 threads) on the same machine. Rounds alternate between the two
// browser engines so background load hits both alike. Not run by CI.
//
// Needs: scripts/build_wasm.sh (target/web), target/release/slm, playwright-core (scripts/test.sh
// puts it in target/test-clients/npm) and Chromium (/usr/bin/chromium or SLM_CHROMIUM); wllama:
//   npm install --prefix target/bench/npm @wllama/wllama@3.13.0
// Usage:
//   node bench/wasm_compare.mjs [--model FILE.gguf] [--tokens 128] [--rounds 3] [--json OUT.json]
//        [--wllama-log 1] [--wllama-flash-attn 0|1]   (wllama's log; its flash_attn, default auto)
// Prints a Markdown table (the one in docs/BENCHMARKS.md) and, with --json, writes the raw numbers.
import { createServer } from "node:http";
import { createReadStream, existsSync, statSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(fileURLToPath(import.meta.url), "../..");
const WLLAMA_VERSION = "3.13.0";
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const model = resolve(args.model || process.env.SLM_TEST_MODEL || "/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf");
const nTokens = Number(args.tokens || 128);
const rounds = Number(args.rounds || 3);
const PROMPT =
  "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined " +
  "movable metal type, oil-based ink and a screw press. Within decades, printed books spread across Europe";

const webDir = join(repo, "target/web");
const wllamaDir = join(repo, "target/bench/npm/node_modules/@wllama/wllama/esm");
const playwrightDir = join(repo, "target/test-clients/npm/node_modules");
for (const [what, path, hint] of [
  ["the slm-wasm page", join(webDir, "pkg/slm_wasm_bg.wasm"), "bash scripts/build_wasm.sh"],
  ["wllama", join(wllamaDir, "index.js"), `npm install --prefix target/bench/npm @wllama/wllama@${WLLAMA_VERSION}`],
  ["playwright-core", join(playwrightDir, "playwright-core/package.json"), "bash scripts/test.sh (or npm install playwright-core)"],
  ["the model", model, "set --model or SLM_TEST_MODEL"],
  ["native slm", join(repo, "target/release/slm"), "cargo build --release -p slm-cli"],
]) {
  if (!existsSync(path)) {
    console.error(`missing ${what} (${path}); run: ${hint}`);
    process.exit(2);
  }
}
const { chromium } = createRequire(join(playwrightDir, "x.js"))("playwright-core");

// One static server for both engines: same origin, no COOP/COEP (so wllama cannot use threads).
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".svg": "image/svg+xml" };
const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  let file = null;
  if (path === "/bench.html") {
    res.writeHead(200, { "content-type": "text/html" });
    return res.end("<!doctype html><title>slm-wasm vs wllama</title>");
  }
  if (path === "/model.gguf") file = model;
  else if (path.startsWith("/web/")) file = join(webDir, normalize(path.slice(5)));
  else if (path.startsWith("/wllama/")) file = join(wllamaDir, normalize(path.slice(8)));
  if (!file || file.includes("..") || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404);
    return res.end();
  }
  res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream", "content-length": statSync(file).size });
  createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.SLM_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage();
page.on("pageerror", (e) => console.error("page error:", e.message));
// --wllama-log 1: show llama.cpp's own log (system info: SIMD, threads, backends).
if (args["wllama-log"]) page.on("console", (m) => console.error("[page]", m.text()));
await page.goto(`${base}/bench.html`);

// slm-wasm through its own worker (the page's engine), greedy, ignoring end-of-text.
async function slmLoad() {
  return page.evaluate(async () => {
    const w = new Worker("/web/worker.js", { type: "module" });
    window.__slm = w;
    window.__slmNext = (type) => new Promise((res, rej) => {
      w.onmessage = (e) => {
        if (e.data.type === type) res(e.data);
        else if (e.data.type === "error") rej(new Error(e.data.message));
      };
    });
    const t0 = performance.now();
    const ready = window.__slmNext("ready");
    w.postMessage({ type: "load", url: "/model.gguf", nCtx: 1024 });
    const r = await ready;
    return { load_s: (performance.now() - t0) / 1000, memory: r.memory, simd128: r.simd128 };
  });
}
async function slmRound(prompt, n) {
  return page.evaluate(async ({ prompt, n }) => {
    const done = window.__slmNext("done");
    window.__slm.postMessage({ type: "reset" });
    window.__slm.postMessage({ type: "generate", prompt, settings: { max_tokens: n, temperature: 0, ignore_eos: true } });
    const d = await done;
    return { tg: d.nGen / (d.genMs / 1000), pp: d.nPrompt / (d.promptMs / 1000), n_gen: d.nGen, n_prompt: d.nPrompt, memory: d.memory };
  }, { prompt, n });
}

// wllama from its npm package (local files, no CDN), single thread, no WebGPU.
async function wllamaLoad() {
  return page.evaluate(async (opts) => {
    const verbose = opts.verbose;
    const { Wllama } = await import("/wllama/index.js");
    const w = new Wllama({ default: "/wllama/wasm/wllama.wasm" }, { suppressNativeLog: !verbose });
    w.setCompat(null);
    window.__wllama = w;
    const t0 = performance.now();
    const extra = opts.flashAttn === undefined ? {} : { flash_attn: opts.flashAttn };
    await w.loadModelFromUrl(location.origin + "/model.gguf", { n_threads: 1, n_ctx: 1024, n_gpu_layers: 0, useCache: false, ...extra });
    return { load_s: (performance.now() - t0) / 1000, multithread: w.isMultithread?.() ?? null };
  }, { verbose: !!args["wllama-log"], flashAttn: args["wllama-flash-attn"] === undefined ? undefined : args["wllama-flash-attn"] === "1" });
}
async function wllamaRound(prompt, n) {
  return page.evaluate(async ({ prompt, n }) => {
    const r = await window.__wllama.createCompletion({ prompt, max_tokens: n, temperature: 0, ignore_eos: true, cache_prompt: false });
    const t = r.timings || {};
    return { tg: t.predicted_per_second, pp: t.prompt_per_second, n_gen: t.predicted_n, n_prompt: t.prompt_n };
  }, { prompt, n });
}

function nativeBench(threads) {
  const out = execFileSync(join(repo, "target/release/slm"),
    ["bench", "-m", model, "-p", "0", "-n", String(nTokens), "-t", String(threads), "-r", String(rounds), "-o", "json"],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const row = JSON.parse(out).find((r) => r.n_gen > 0);
  return { tg: row.avg_ts, sd: row.stddev_ts };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
try {
  const slmInfo = await slmLoad();
  const wlInfo = await wllamaLoad();
  // One warm-up each, then alternating measured rounds.
  await slmRound(PROMPT, 16);
  await wllamaRound(PROMPT, 16);
  const slm = [], wl = [];
  for (let i = 0; i < rounds; i++) {
    slm.push(await slmRound(PROMPT, nTokens));
    wl.push(await wllamaRound(PROMPT, nTokens));
  }
  const native1 = nativeBench(1);
  const native2 = nativeBench(2);
  const wasmBytes = statSync(join(webDir, "pkg/slm_wasm_bg.wasm")).size;
  const wllamaBytes = statSync(join(wllamaDir, "wasm/wllama.wasm")).size;
  const result = {
    model, n_tokens: nTokens, rounds, chromium: browser.version(), wllama_version: WLLAMA_VERSION,
    slm_wasm: { ...slmInfo, rounds: slm, tg_median: median(slm.map((r) => r.tg)), pp_median: median(slm.map((r) => r.pp)), wasm_bytes: wasmBytes },
    wllama: { ...wlInfo, rounds: wl, tg_median: median(wl.map((r) => r.tg)), pp_median: median(wl.map((r) => r.pp)), wasm_bytes: wllamaBytes },
    native_1t: native1, native_2t: native2,
  };
  const f = (x) => x.toFixed(1);
  const mib = (b) => (b / 1048576).toFixed(1);
  console.log(`| engine | generation tok/s (tg${nTokens}, median of ${rounds}) | prompt tok/s (${slm[0].n_prompt} tokens) | engine download | memory |`);
  console.log("|---|---:|---:|---:|---:|");
  console.log(`| slm-wasm (SIMD128, 1 thread) | ${f(result.slm_wasm.tg_median)} | ${f(result.slm_wasm.pp_median)} | ${mib(wasmBytes)} MiB | ${mib(slm[slm.length - 1].memory)} MiB wasm memory |`);
  console.log(`| wllama ${WLLAMA_VERSION} (1 thread) | ${f(result.wllama.tg_median)} | ${f(result.wllama.pp_median)} | ${mib(wllamaBytes)} MiB | |`);
  console.log(`| native slm, 1 thread | ${f(native1.tg)} ± ${f(native1.sd)} | | | |`);
  console.log(`| native slm, 2 threads | ${f(native2.tg)} ± ${f(native2.sd)} | | | |`);
  console.log(`\nslm-wasm / wllama generation: ${(result.slm_wasm.tg_median / result.wllama.tg_median).toFixed(2)}x; slm-wasm / native (1 thread): ${(result.slm_wasm.tg_median / native1.tg).toFixed(2)}x`);
  console.log(`each round, tok/s: slm-wasm ${slm.map((r) => f(r.tg)).join(" ")}; wllama ${wl.map((r) => f(r.tg)).join(" ")}`);
  if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
} finally {
  await browser.close();
  server.close();
}
