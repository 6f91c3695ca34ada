// The engine's worker: downloads (or reads from the browser cache) the model, loads it into the
// WebAssembly module and generates, posting each token to the page. Generation runs in short
// bursts with a zero-delay yield between them, so a "stop" message is handled within a few tokens.
import init, { ModelBytes, SlmEngine, memoryBytes, hasSimd128 } from "./pkg/slm_wasm.js";

const CACHE = "slm-models-v1";
const BURST = 4; // tokens per burst between yields
let engine = null;
let stopRequested = false;
const ready = init();

const post = (msg) => self.postMessage(msg);
const message = (e) => (e && e.message) || String(e);

// A macrotask without setTimeout's 4 ms clamp: lets queued messages (stop) run.
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
const yieldNow = () => new Promise((r) => { waiting.push(r); channel.port2.postMessage(0); });

// Copies a stream into the module chunk by chunk (no full copy in JavaScript), with progress.
async function receive(stream, total, source) {
  const bytes = new ModelBytes(total || 0);
  const reader = stream.getReader();
  let last = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const received = bytes.push(value);
    const now = performance.now();
    if (now - last > 100) { last = now; post({ type: "progress", received, total, source }); }
  }
  post({ type: "progress", received: bytes.received(), total, source });
  return bytes;
}

async function openModel(url) {
  const cache = "caches" in self ? await caches.open(CACHE).catch(() => null) : null;
  const cached = cache ? await cache.match(url) : null;
  if (cached) {
    return receive(cached.body, Number(cached.headers.get("content-length")) || 0, "cache");
  }
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`downloading ${url} failed: HTTP ${resp.status} ${resp.statusText}`);
  const total = Number(resp.headers.get("content-length")) || 0;
  let body = resp.body;
  let stored = null;
  if (cache) {
    // One branch streams into the cache, the other into the module.
    const [a, b] = body.tee();
    body = a;
    const headers = new Headers({ "content-type": "application/octet-stream" });
    if (total) headers.set("content-length", String(total));
    stored = cache.put(url, new Response(b, { headers })).then(() => true, (e) => {
      console.warn("could not cache the model:", e);
      return false;
    });
  }
  const bytes = await receive(body, total, "network");
  const cachedOk = stored ? await stored : false;
  if (cachedOk && total && bytes.received() !== total) await cache.delete(url);
  return bytes;
}

async function load({ url, file, nCtx }) {
  await ready;
  engine?.free();
  engine = null;
  const t0 = performance.now();
  const bytes = file ? await receive(file.stream(), file.size, "file") : await openModel(url);
  const t1 = performance.now();
  try {
    engine = SlmEngine.load(bytes, nCtx || 2048);
  } catch (err) {
    // Not a usable model: do not keep it in the cache either.
    if (url && "caches" in self) await caches.open(CACHE).then((c) => c.delete(url)).catch(() => {});
    throw err;
  }
  const t2 = performance.now();
  post({
    type: "ready",
    info: JSON.parse(engine.info()),
    downloadMs: t1 - t0,
    loadMs: t2 - t1,
    memory: memoryBytes(),
    simd128: hasSimd128(),
  });
}

async function generate({ messages, prompt, settings }) {
  if (!engine) throw new Error("no model loaded");
  stopRequested = false;
  const s = JSON.stringify(settings || {});
  const t0 = performance.now();
  const nPrompt = messages ? engine.chat(JSON.stringify(messages), s) : engine.complete(prompt, s);
  const t1 = performance.now();
  let nGen = 0;
  const tokens = [];
  let finish;
  const onToken = (text, id) => {
    if (id !== undefined) { nGen++; tokens.push(id); }
    if (text) post({ type: "token", text });
    return true;
  };
  for (;;) {
    finish = engine.step(BURST, onToken);
    if (finish) break;
    await yieldNow();
    if (stopRequested) { engine.cancel(); finish = "cancelled"; break; }
  }
  const t2 = performance.now();
  post({
    type: "done", finish, nPrompt, nGen, tokens,
    promptMs: t1 - t0, genMs: t2 - t1, memory: memoryBytes(),
  });
}

self.onmessage = async (e) => {
  const msg = e.data;
  try {
    switch (msg.type) {
      case "load": await load(msg); break;
      case "generate": await generate(msg); break;
      case "stop": stopRequested = true; break;
      case "reset": engine?.reset(); break;
      case "forget": await caches.delete(CACHE); post({ type: "forgotten" }); break;
      default: throw new Error(`unknown message ${msg.type}`);
    }
  } catch (err) {
    // A trap (a bug, or memory exhausted) leaves the module unusable: drop the engine.
    const crashed = err instanceof WebAssembly.RuntimeError;
    if (crashed) engine = null;
    const text = crashed ? `the engine crashed (${message(err)}); load the model again` : message(err);
    post({ type: "error", message: text, during: msg.type, crashed });
  }
};
