// The WebAssembly build (target/web/pkg, run here in Node's V8, the engine Chromium uses) against
// llama.cpp's logits for the golden chat prompt (tests/golden/logits_smollm2.json, case "chat"):
// same prompt length, same top-1 token, KL(llama.cpp || slm-wasm) of the next-token distribution
// below 0.02 (the native engine's is ~0.01 on this position). Run by tests/wasm_golden.rs:
//   node golden_logits.mjs PKG_DIR MODEL.gguf GOLDEN_DIR
// Prints one JSON line; exits non-zero on a failed check.
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [pkg, modelPath, goldenDir] = process.argv.slice(2);
const { default: init, ModelBytes, SlmEngine } = await import(join(pkg, "slm_wasm.js"));
await init({ module_or_path: readFileSync(join(pkg, "slm_wasm_bg.wasm")) });

const golden = JSON.parse(readFileSync(join(goldenDir, "logits_smollm2.json"), "utf8"));
const chat = golden.cases.find((c) => c.name === "chat");
const nVocab = golden.n_vocab;
const raw = readFileSync(join(goldenDir, chat.logits_file));
const last = (chat.ids.length - 1) * nVocab;
const f16 = (h) => {
  const e = (h >> 10) & 31, m = h & 1023;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
};
const want = Float64Array.from({ length: nVocab }, (_, i) => f16(raw.readUInt16LE((last + i) * 2)));

const file = readFileSync(modelPath);
const bytes = new ModelBytes(file.length);
for (let i = 0; i < file.length; i += 1 << 20) bytes.push(file.subarray(i, i + (1 << 20)));
const engine = SlmEngine.load(bytes, 512);
// The golden prompt is SmolLM2's template with its default system message and this user turn.
const user = chat.text.match(/<\|im_start\|>user\n([\s\S]*?)<\|im_end\|>/)[1];
const nPrompt = engine.chat(JSON.stringify([{ role: "user", content: user }]), JSON.stringify({ temperature: 0, max_tokens: 1 }));
const got = engine.next_logits();

const logSoftmax = (x) => {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  let z = 0;
  for (const v of x) z += Math.exp(v - m);
  return Array.from(x, (v) => v - m - Math.log(z));
};
const argmax = (x) => x.reduce((best, v, i) => (v > x[best] ? i : best), 0);
const [lp, lq] = [logSoftmax(want), logSoftmax(got)];
let kl = 0;
for (let i = 0; i < nVocab; i++) kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
const result = { n_prompt: nPrompt, top1: argmax(got), llama_cpp_top1: argmax(want), kl };
console.log(JSON.stringify(result));
const fail = (why) => { console.error(`check failed: ${why}`); process.exit(1); };
if (got.length !== nVocab) fail(`logits have ${got.length} entries, want ${nVocab}`);
if (nPrompt !== chat.ids.length) fail(`prompt has ${nPrompt} tokens, llama.cpp's ${chat.ids.length}`);
if (result.top1 !== result.llama_cpp_top1) fail(`top-1 ${result.top1} vs llama.cpp ${result.llama_cpp_top1}`);
if (!(kl < 0.02)) fail(`KL divergence ${kl} >= 0.02`);
