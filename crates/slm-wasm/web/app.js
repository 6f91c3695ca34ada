// The page: talks to the engine worker, renders the chat, progress, tokens/s and memory.
const $ = (id) => document.getElementById(id);
let worker = startWorker();
const messages = [];
let current = null; // the assistant message being streamed: { el, text }
let busy = false;

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}
function setBusy(b, loaded = true) {
  busy = b;
  $("send").disabled = b || !loaded;
  $("prompt").disabled = !loaded;
  $("new-chat").disabled = b || !loaded;
  $("stop").disabled = !b || !loaded;
  $("load").disabled = b;
  $("model-file").disabled = b;
}
function addMessage(role, text) {
  const el = document.createElement("div");
  el.className = `msg ${role}`;
  el.textContent = text;
  $("log").append(el);
  $("log").scrollTop = $("log").scrollHeight;
  return el;
}

function startWorker() {
  const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  w.onmessage = onMessage;
  w.onerror = (e) => status(`The engine worker failed: ${e.message}`, true);
  return w;
}

function onMessage(e) {
  const m = e.data;
  switch (m.type) {
    case "progress": {
      const p = $("progress");
      p.hidden = false;
      if (m.total) { p.max = m.total; p.value = m.received; } else p.removeAttribute("value");
      const from = { network: "Downloading", cache: "Reading from the browser cache", file: "Reading the file" }[m.source];
      status(`${from}: ${mib(m.received)}${m.total ? ` of ${mib(m.total)}` : ""}`);
      document.body.dataset.source = m.source;
      break;
    }
    case "ready": {
      $("progress").hidden = true;
      const i = m.info;
      status(`Loaded ${i.architecture} (${(i.n_params / 1e6).toFixed(0)}M parameters, ${mib(i.model_bytes)}), ` +
        `context ${i.n_ctx} tokens, in ${(m.downloadMs / 1000).toFixed(1)} s + ${(m.loadMs / 1000).toFixed(1)} s; ` +
        `WebAssembly memory ${mib(m.memory)}${m.simd128 ? ", SIMD128" : ""}.`);
      document.body.dataset.state = "ready";
      setBusy(false, true);
      $("prompt").focus();
      break;
    }
    case "token":
      if (current) {
        current.text += m.text;
        current.el.textContent = current.text;
        $("log").scrollTop = $("log").scrollHeight;
      }
      break;
    case "done": {
      const tps = m.nGen / Math.max(m.genMs / 1000, 1e-9);
      const pps = m.nPrompt / Math.max(m.promptMs / 1000, 1e-9);
      $("stats").textContent = `${m.nGen} tokens at ${tps.toFixed(1)} tok/s (prompt ${m.nPrompt} tokens at ` +
        `${pps.toFixed(1)} tok/s) · ${m.finish} · WebAssembly memory ${mib(m.memory)}`;
      Object.assign($("stats").dataset, { tps: tps.toFixed(2), ntokens: m.nGen, finish: m.finish, tokens: m.tokens.join(",") });
      if (current) {
        messages.push({ role: "assistant", content: current.text });
        current.el.dataset.done = "1";
        current = null;
      }
      document.body.dataset.state = "ready";
      setBusy(false, true);
      break;
    }
    case "forgotten":
      status("The browser cache of models is empty.");
      break;
    case "error":
      if (m.crashed) {
        // A trapped module is not reusable: start a fresh worker (the model then loads from the cache).
        worker.terminate();
        worker = startWorker();
        document.body.dataset.loaded = "0";
        m.during = "load";
      }
      status(`Error (${m.during}): ${m.message}`, true);
      $("progress").hidden = true;
      document.body.dataset.state = m.during === "load" ? "error" : "ready";
      if (current) { current.el.dataset.done = "1"; current = null; messages.pop(); }
      setBusy(false, m.during !== "load" || document.body.dataset.loaded === "1");
      break;
  }
  if (m.type === "ready") document.body.dataset.loaded = "1";
}

function load(source) {
  setBusy(true, false);
  $("stop").disabled = true;
  document.body.dataset.state = "loading";
  status("Starting…");
  worker.postMessage({ type: "load", ...source });
}
$("load").onclick = () => load({ url: new URL($("model-url").value, location.href).href });
$("model-file").onchange = (e) => { const f = e.target.files[0]; if (f) load({ file: f }); };
$("forget").onclick = () => worker.postMessage({ type: "forget" });
$("stop").onclick = () => worker.postMessage({ type: "stop" });
$("new-chat").onclick = () => {
  messages.length = 0;
  $("log").replaceChildren();
  worker.postMessage({ type: "reset" });
};
$("ask").onsubmit = (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || busy) return;
  $("prompt").value = "";
  messages.push({ role: "user", content: text });
  addMessage("user", text);
  current = { el: addMessage("assistant", ""), text: "" };
  setBusy(true);
  document.body.dataset.state = "generating";
  const settings = {
    temperature: Number($("temperature").value),
    max_tokens: Number($("max-tokens").value),
  };
  worker.postMessage({ type: "generate", messages: messages.slice(), settings });
};
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").requestSubmit(); }
});

// ?model=URL picks the model (and loads it at once with &autoload=1).
const params = new URLSearchParams(location.search);
if (params.get("model")) $("model-url").value = params.get("model");
if (params.get("autoload") === "1") $("load").click();
