// Cargo test runner for wasm32-wasip1 (CARGO_TARGET_WASM32_WASIP1_RUNNER): runs a test binary in
// Node's built-in WASI, so kernel tests compiled with SIMD128 run on a machine without wasmtime.
// Usage: node wasi_runner.mjs TEST.wasm [libtest args...]
import { WASI } from "node:wasi";
import { readFileSync } from "node:fs";

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: "preview1",
  args: [file, ...args],
  env: { RUST_BACKTRACE: "0" },
  preopens: { "/": "/" },
  returnOnExit: true,
});
const module = await WebAssembly.compile(readFileSync(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exit(wasi.start(instance));
