//! Chat templates: the Jinja program shipped with a model that turns a conversation into the
//! prompt text it was trained on, rendered with minijinja the way Hugging Face renders it.
//!
//! Compatibility with `transformers` (`apply_chat_template`): `trim_blocks` and `lstrip_blocks`
//! on, loop controls, `raise_exception(msg)`, `strftime_now(fmt)`, a Python-exact `tojson`,
//! Python string/dict methods (`strip`, `startswith`, `split`, `items`, `get`, ...), and the
//! variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token`.
//!
//! Templates come from model files, so rendering is bounded: [`MAX_TEMPLATE_BYTES`] of source,
//! [`TEMPLATE_FUEL`] of work and [`MAX_OUTPUT_BYTES`] of output. A template that loops forever,
//! writes without end or builds huge values fails with [`RuntimeError::TemplateRender`] instead of
//! hanging or exhausting memory. The engine is minijinja 3 (which charges fuel for the work inside
//! an instruction, not only per instruction) in a patched copy that also bounds lazily merged
//! sequences (third_party/minijinja/SLM-PATCH.md; docs/RELIABILITY.md findings 8 and 9).

mod pycompat;
mod pyjson;
mod strftime;

use std::io;
use std::ops::Range;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{context, Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::tokenizer::Tokenizer;

/// Largest template source accepted (bytes). Real templates are under 20 KiB.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

/// minijinja fuel per render. One fuel pays for one instruction, or for 64 bytes created, copied
/// or written, or for two items visited by a filter, operator or loop; so rendering does at most
/// ~128 MB worth of work (well under a second in release builds). A prompt just under
/// [`MAX_OUTPUT_BYTES`] through ChatML or SmolLM2's template fits (tests).
pub const TEMPLATE_FUEL: u64 = 2_000_000;

/// Largest rendered prompt (bytes).
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// ChatML, used when a model ships no template.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TEMPLATE_NAME: &str = "chat_template";

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` (or whatever roles the template knows).
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// Fixed "now" for `strftime_now` (seconds since the epoch); the clock when `None`.
    now_unix: Option<i64>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("bos", &self.bos).field("eos", &self.eos).finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; `bos` and `eos` are the texts of the model's BOS/EOS tokens (exposed to
    /// the template as `bos_token` / `eos_token`).
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<ChatTemplate, RuntimeError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(RuntimeError::TemplateInvalid {
                reason: format!("template is {} bytes, the limit is {MAX_TEMPLATE_BYTES}", source.len()),
            });
        }
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| RuntimeError::TemplateInvalid { reason: describe(&e) })?;
        env.set_syntax(syntax);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_unknown_method_callback(pycompat::call_method);
        env.set_formatter(bounded_formatter);
        env.add_filter("tojson", pyjson::tojson_filter);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, format!("raise_exception: {msg}")))
        });
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| RuntimeError::TemplateInvalid { reason: describe(&e) })?;
        Ok(ChatTemplate { env, bos: bos.to_string(), eos: eos.to_string(), now_unix: None })
    }

    /// The fallback ChatML template.
    pub fn chatml(bos: &str, eos: &str) -> Result<ChatTemplate, RuntimeError> {
        ChatTemplate::new(CHATML_TEMPLATE, bos, eos)
    }

    /// The model's own template (ChatML when it has none), with its BOS/EOS texts.
    pub fn for_tokenizer(tokenizer: &Tokenizer) -> Result<ChatTemplate, RuntimeError> {
        let bos = tokenizer.special_text(tokenizer.bos_id());
        let eos = tokenizer.special_text(tokenizer.eos_id());
        ChatTemplate::new(tokenizer.chat_template().unwrap_or(CHATML_TEMPLATE), &bos, &eos)
    }

    /// Fixes the time `strftime_now` sees (seconds since the Unix epoch, UTC): for reproducible
    /// prompts, and on platforms without a clock (wasm32).
    pub fn set_now_unix(&mut self, secs: Option<i64>) {
        self.now_unix = secs;
    }

    /// Renders the conversation. With `add_generation_prompt`, the prompt ends with the header
    /// of an assistant turn so the model continues as the assistant.
    ///
    /// Message contents are copied as text, so a `<|im_end|>` typed by a user is in the output
    /// like any other characters (as with transformers and llama.cpp). To keep it from becoming a
    /// control token, tokenize with [`render_prompt`](Self::render_prompt) +
    /// `Tokenizer::encode_protected` rather than `encode(.., parse_special = true)`.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, RuntimeError> {
        self.render_with_context(messages, add_generation_prompt, ())
    }

    /// [`render`](Self::render) with extra template variables: the top-level fields of `extra`
    /// (a struct or map, e.g. `{"tools": [...]}`) are added to the context.
    pub fn render_with_context(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        extra: impl Serialize,
    ) -> Result<String, RuntimeError> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| RuntimeError::TemplateInvalid { reason: describe(&e) })?;
        let now = self.now_unix.unwrap_or_else(strftime::unix_now);
        let extra = Value::from(Serde(extra));
        let ctx = context! {
            messages => Value::from(Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos,
            eos_token => &self.eos,
            strftime_now => Value::from_function(move |fmt: String| -> String {
                strftime::DateTime::from_unix(now).format(&fmt)
            }),
            ..extra
        };
        let mut out = LimitedWriter { buf: Vec::new(), limit: MAX_OUTPUT_BYTES };
        // minijinja 2.24 panics on some hostile templates (e.g. `''[::-1]` indexes an empty string
        // in its value/ops.rs); templates come from model files, so a panic becomes an error instead
        // of taking the process down. Found by fuzz/fuzz_targets/chat_template.rs; test:
        // tests/fuzz_regressions.rs. (Needs panic=unwind, the default; wasm32 aborts.)
        let rendered =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| template.render_captured_to(ctx, &mut out)))
                .map_err(|_| RuntimeError::TemplateRender {
                    reason: "the template engine crashed on this template (a minijinja bug); fix or replace the template"
                        .into(),
                })?;
        rendered.map_err(|e| RuntimeError::TemplateRender { reason: describe(&e) })?;
        String::from_utf8(out.buf).map_err(|e| RuntimeError::TemplateRender { reason: format!("output is not UTF-8: {e}") })
    }

    /// Renders the conversation and finds where each message's content landed in the output, so
    /// the tokenizer can refuse control tokens inside user-supplied text
    /// (`Tokenizer::encode_protected(&p.text, &p.content_ranges)`).
    ///
    /// The template is rendered a second time with every content replaced by a unique marker;
    /// when putting the contents back in place of the markers reproduces the real output exactly,
    /// the marker positions are the ranges (`exact = true`). Templates that transform contents
    /// (slicing, `split`, ...) fall back to protecting every literal occurrence of each content
    /// (`exact = false`).
    pub fn render_prompt(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<RenderedPrompt, RuntimeError> {
        let text = self.render(messages, add_generation_prompt)?;
        let marked: Vec<ChatMessage> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| ChatMessage { role: m.role.clone(), content: marker(i) })
            .collect();
        // A template may reject the markers (e.g. it validates contents); fall back then too.
        if let Ok(marked_text) = self.render(&marked, add_generation_prompt) {
            if let Some((rebuilt, ranges)) = substitute_markers(&marked_text, messages) {
                if rebuilt == text {
                    return Ok(RenderedPrompt { text, content_ranges: ranges, exact: true });
                }
            }
        }
        let mut ranges = Vec::new();
        for m in messages.iter().filter(|m| !m.content.is_empty()) {
            ranges.extend(text.match_indices(m.content.as_str()).map(|(at, s)| at..at + s.len()));
        }
        ranges.sort_by_key(|r| r.start);
        Ok(RenderedPrompt { text, content_ranges: ranges, exact: false })
    }
}

/// A rendered prompt plus the byte ranges that hold message contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// The prompt text (what [`ChatTemplate::render`] returns).
    pub text: String,
    /// Byte ranges of `text` that came from message contents, in order.
    pub content_ranges: Vec<Range<usize>>,
    /// Whether the ranges were located exactly (see [`ChatTemplate::render_prompt`]).
    pub exact: bool,
}

/// Private-use code points that delimit content markers (plane 15, never in real templates).
const MARK_OPEN: char = '\u{F0000}';
const MARK_CLOSE: char = '\u{F0001}';

fn marker(i: usize) -> String {
    format!("{MARK_OPEN}{i}{MARK_CLOSE}")
}

/// Replaces every marker in `marked` by its message's content; returns the text and the ranges
/// the contents occupy. `None` if a marker is malformed or names no message.
fn substitute_markers(marked: &str, messages: &[ChatMessage]) -> Option<(String, Vec<Range<usize>>)> {
    let mut out = String::with_capacity(marked.len() + messages.iter().map(|m| m.content.len()).sum::<usize>());
    let mut ranges = Vec::new();
    let mut rest = marked;
    while let Some(open) = rest.find(MARK_OPEN) {
        out.push_str(rest.get(..open)?);
        let after = rest.get(open + MARK_OPEN.len_utf8()..)?;
        let close = after.find(MARK_CLOSE)?;
        let index: usize = after.get(..close)?.parse().ok()?;
        let content = &messages.get(index)?.content;
        if !content.is_empty() {
            ranges.push(out.len()..out.len() + content.len());
        }
        out.push_str(content);
        rest = after.get(close + MARK_CLOSE.len_utf8()..)?;
    }
    out.push_str(rest);
    Some((out, ranges))
}

/// A `Vec` writer that fails past `limit` bytes (minijinja then stops rendering).
struct LimitedWriter {
    buf: Vec<u8>,
    limit: usize,
}

impl io::Write for LimitedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            return Err(io::Error::other(format!("rendered prompt exceeds {} bytes", self.limit)));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// minijinja's message plus line and the underlying cause.
/// Longest sequence `{{ ... }}` may print. minijinja prints a value in one instruction (no fuel
/// check), and on a sequence it keeps iterating after the output limit has failed the write, so
/// `{{ range(100000) * 1000000 }}` (10^11 lazy items) ran for hours in constant memory (fuzz
/// finding 5, docs/RELIABILITY.md).
pub const MAX_PRINTED_ITEMS: usize = 1 << 20;

/// minijinja's default formatter, refusing sequences longer than [`MAX_PRINTED_ITEMS`].
fn bounded_formatter(out: &mut minijinja::Output, state: &mut minijinja::State, value: &Value) -> Result<(), Error> {
    if value.as_str().is_none() {
        if let Some(n) = value.len().filter(|&n| n > MAX_PRINTED_ITEMS) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("refusing to print a sequence of {n} items (the limit is {MAX_PRINTED_ITEMS})"),
            ));
        }
    }
    minijinja::escape_formatter(out, state, value)
}

fn describe(err: &Error) -> String {
    use std::error::Error as _;
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests;
