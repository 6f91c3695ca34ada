//! The JavaScript API (wasm-bindgen). Every fallible call returns `Result<_, JsError>`, so errors
//! arrive in JavaScript as exceptions whose message is the [`WasmError`] text; nothing here
//! unwraps or indexes unchecked, and a panic hook sends any remaining bug's message to the
//! console before the module traps.

use crate::engine::{Engine, GenerateSettings};
use crate::error::WasmError;
use crate::loader::ModelBytes;
use slm_runtime::ChatMessage;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// Runs once when the module is instantiated: panic messages go to the console.
#[wasm_bindgen(start)]
pub fn init() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("slm-wasm bug (please report): {info}"))
    }));
}

/// A model file being downloaded: feed it the fetch stream's chunks, then [`SlmEngine::load`].
#[wasm_bindgen(js_name = ModelBytes)]
pub struct JsModelBytes {
    inner: ModelBytes,
}

#[wasm_bindgen(js_class = ModelBytes)]
impl JsModelBytes {
    /// A receiver for a file of `size` bytes (0 or negative when unknown); the buffer is reserved
    /// once up front so chunks are copied straight into place.
    #[wasm_bindgen(constructor)]
    pub fn new(size: f64) -> Result<JsModelBytes, JsError> {
        let expected = (size.is_finite() && size >= 1.0).then_some(size as u64);
        Ok(JsModelBytes {
            inner: ModelBytes::new(expected)?,
        })
    }

    /// Copies one chunk of the download into the buffer; returns the bytes received so far.
    pub fn push(&mut self, chunk: &js_sys::Uint8Array) -> Result<f64, JsError> {
        let n = chunk.length() as usize;
        chunk.copy_to(self.inner.append_slot(n)?);
        Ok(self.inner.len() as f64)
    }

    /// Bytes received so far.
    pub fn received(&self) -> f64 {
        self.inner.len() as f64
    }
}

/// A loaded model with one conversation context.
#[wasm_bindgen]
pub struct SlmEngine {
    engine: Engine,
    model_bytes: u64,
}

#[wasm_bindgen]
impl SlmEngine {
    /// Parses and loads the downloaded model (the buffer is consumed, not copied) with a context
    /// of `n_ctx` tokens (capped at the model's training context).
    pub fn load(bytes: JsModelBytes, n_ctx: u32) -> Result<SlmEngine, JsError> {
        let bytes = bytes.inner.finish()?;
        let model_bytes = bytes.len() as u64;
        Ok(SlmEngine {
            engine: Engine::from_gguf_bytes(bytes, n_ctx as usize)?,
            model_bytes,
        })
    }

    /// Facts about the model as JSON: architecture, parameters, context, sizes.
    pub fn info(&self) -> String {
        let c = self.engine.model().config();
        serde_json::json!({
            "architecture": c.arch.gguf_name(),
            "n_params": c.n_params(),
            "n_layer": c.n_layer,
            "n_vocab": c.n_vocab,
            "n_ctx": self.engine.n_ctx(),
            "model_bytes": self.model_bytes,
            "kv_bytes": self.engine.kv_bytes(),
            "simd128": cfg!(target_feature = "simd128"),
        })
        .to_string()
    }

    /// Starts an answer to a chat (`messages_json`: `[{"role": "user", "content": "..."}]`) with
    /// `settings_json` (`{"max_tokens", "temperature", "top_k", "top_p", "min_p",
    /// "repeat_penalty", "seed", "stop", "ignore_eos"}`, all optional). Processes the prompt and returns its
    /// token count; then call [`SlmEngine::step`] until it reports the end.
    pub fn chat(&mut self, messages_json: &str, settings_json: &str) -> Result<u32, JsError> {
        let messages: Vec<ChatMessage> =
            serde_json::from_str(messages_json).map_err(|e| WasmError::BadArgument {
                what: "messages",
                reason: e.to_string(),
            })?;
        let ids = self.engine.encode_chat(&messages)?;
        self.engine.start(&ids, &parse_settings(settings_json)?)?;
        Ok(ids.len() as u32)
    }

    /// Starts a plain completion of `prompt` (no chat template); as [`SlmEngine::chat`].
    pub fn complete(&mut self, prompt: &str, settings_json: &str) -> Result<u32, JsError> {
        let ids = self.engine.encode_raw(prompt)?;
        self.engine.start(&ids, &parse_settings(settings_json)?)?;
        Ok(ids.len() as u32)
    }

    /// Generates up to `max_steps` tokens, calling `on_token(text, token_id)` for each (text may
    /// be empty while a character or stop string is incomplete). Returns the finish reason
    /// (`"end"`, `"stop"`, `"length"`, `"context"`, `"cancelled"`) once the answer has ended, or
    /// `undefined` while it goes on; a callback returning `false` cancels.
    pub fn step(
        &mut self,
        max_steps: u32,
        on_token: &js_sys::Function,
    ) -> Result<Option<String>, JsError> {
        for _ in 0..max_steps {
            let s = self.engine.step()?;
            let token = s.token.map_or(JsValue::UNDEFINED, JsValue::from);
            let keep = on_token
                .call2(&JsValue::NULL, &JsValue::from_str(&s.text), &token)
                .map_err(|e| {
                    JsError::new(&format!(
                        "the on_token callback threw: {}",
                        e.as_string().unwrap_or_else(|| format!("{e:?}"))
                    ))
                })?;
            if let Some(reason) = s.finish {
                return Ok(Some(finish_name(reason).to_string()));
            }
            if keep.as_bool() == Some(false) {
                self.engine.cancel();
                return Ok(Some("cancelled".to_string()));
            }
        }
        Ok(None)
    }

    /// The next-token logits of the answer in progress (empty when none), for tests comparing
    /// this build with the native one.
    pub fn next_logits(&self) -> Vec<f32> {
        self.engine
            .next_logits()
            .map(<[f32]>::to_vec)
            .unwrap_or_default()
    }

    /// Ends the answer in progress (the Stop button); the conversation so far stays cached.
    pub fn cancel(&mut self) {
        self.engine.cancel();
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.engine.reset();
    }

    /// Token ids of `text` (no template), for tests and token counting.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, JsError> {
        Ok(self.engine.encode_raw(text)?)
    }

    /// Bytes of WebAssembly memory this module holds now (weights, KV cache, buffers).
    pub fn memory_bytes(&self) -> f64 {
        wasm_memory_bytes()
    }
}

/// Bytes of WebAssembly linear memory (0 outside wasm32).
#[wasm_bindgen(js_name = memoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as f64) * 65536.0
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.0
    }
}

/// Whether this build uses WebAssembly SIMD128 kernels.
#[wasm_bindgen(js_name = hasSimd128)]
pub fn has_simd128() -> bool {
    cfg!(target_feature = "simd128")
}

fn parse_settings(json: &str) -> Result<GenerateSettings, WasmError> {
    if json.trim().is_empty() {
        return Ok(GenerateSettings::default());
    }
    serde_json::from_str(json).map_err(|e| WasmError::BadArgument {
        what: "settings",
        reason: e.to_string(),
    })
}

fn finish_name(reason: slm_runtime::FinishReason) -> &'static str {
    use slm_runtime::FinishReason::*;
    match reason {
        EndOfText => "end",
        StopString => "stop",
        MaxTokens => "length",
        ContextFull => "context",
        Cancelled => "cancelled",
    }
}
