//! Summaries of texts longer than the context window (`slm summarize`): map-reduce. The text is cut
//! at paragraph, then sentence, then token boundaries into chunks that fit the window next to the
//! instruction and the answer; each chunk is summarized ("map"), the partial summaries are joined
//! and summarized again ("reduce") until one summary remains, which is streamed.

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::RuntimeError;
use crate::session::{encode_chat, GenerateOptions, Session, StringSink, TokenSink};
use crate::tokenizer::Tokenizer;
use std::time::Instant;

/// Most reduce rounds before giving up (each round shrinks the text several-fold).
const MAX_ROUNDS: usize = 6;
/// Tokens kept free for the chat template and the instruction around a chunk.
const INSTRUCTION_TOKENS: usize = 64;

/// How long a summary should be and how to generate it.
#[derive(Clone, Debug)]
pub struct SummarizeOptions {
    /// Target length in sentences (1..=20).
    pub sentences: usize,
    /// Upper bound on tokens of each summary.
    pub max_tokens: usize,
    /// Sampling and stop settings (`max_tokens` here is overridden by the field above).
    pub generate: GenerateOptions,
}

/// What a summary run did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SummaryReport {
    /// The final summary.
    pub summary: String,
    /// Tokens in the input text.
    pub n_input_tokens: usize,
    /// Chunks of the first (map) round.
    pub n_chunks: usize,
    /// Rounds, including the final one (1 = the text fit at once).
    pub rounds: usize,
    /// Wall-clock seconds.
    pub secs: f64,
}

/// Cuts `text` into pieces of at most `budget` tokens, preferring paragraph, then sentence, then
/// word boundaries. Every character of `text` ends up in exactly one piece, in order.
pub fn split_to_fit(tokenizer: &Tokenizer, text: &str, budget: usize) -> Result<Vec<String>, RuntimeError> {
    let budget = budget.max(1);
    let count = |s: &str| tokenizer.encode(s, false).map(|ids| ids.len());
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for unit in units(text, &["\n\n", "\n"]) {
        let fits = |s: &str| -> Result<bool, RuntimeError> { Ok(count(s)? <= budget) };
        if fits(&format!("{current}{unit}"))? {
            current.push_str(unit);
            continue;
        }
        if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if fits(unit)? {
            current.push_str(unit);
            continue;
        }
        // A paragraph longer than the budget: by sentences, then words.
        for piece in units(unit, &[". ", "! ", "? ", " "]) {
            if fits(&format!("{current}{piece}"))? {
                current.push_str(piece);
            } else {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                if fits(piece)? {
                    current.push_str(piece);
                } else {
                    // One enormous "word": cut by characters.
                    let mut part = String::new();
                    for ch in piece.chars() {
                        part.push(ch);
                        if !fits(&part)? {
                            part.pop();
                            out.push(std::mem::take(&mut part));
                            part.push(ch);
                        }
                    }
                    current = part;
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// Splits `text` after each occurrence of the first separator that occurs in it (keeping the
/// separator with the piece before it); the whole text if none does.
fn units<'a>(text: &'a str, seps: &[&str]) -> Vec<&'a str> {
    let Some(sep) = seps.iter().find(|s| text.contains(**s)) else { return vec![text] };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(sep) {
        let (head, tail) = rest.split_at(i + sep.len());
        out.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn instruction(sentences: usize, text: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new("system", "You write short, faithful summaries. Use only facts from the text."),
        ChatMessage::new(
            "user",
            format!(
                "Summarize the following text in at most {sentences} sentence{}.\n\n{text}",
                if sentences == 1 { "" } else { "s" }
            ),
        ),
    ]
}

/// Summarizes `text` with `session`'s model, streaming the final summary into `sink`.
/// `on_round(round, chunks)` reports progress before each round.
pub fn summarize(
    session: &mut Session,
    template: &ChatTemplate,
    text: &str,
    opts: &SummarizeOptions,
    sink: &mut dyn TokenSink,
    on_round: &mut dyn FnMut(usize, usize),
) -> Result<SummaryReport, RuntimeError> {
    let start = Instant::now();
    if text.trim().is_empty() {
        return Err(RuntimeError::InvalidRequest("there is no text to summarize".into()));
    }
    if !(1..=20).contains(&opts.sentences) {
        return Err(RuntimeError::InvalidRequest(format!("ask for 1..=20 sentences (got {})", opts.sentences)));
    }
    let n_ctx = session.n_ctx();
    let budget = n_ctx.checked_sub(INSTRUCTION_TOKENS + opts.max_tokens).filter(|b| *b >= 64).ok_or_else(|| {
        RuntimeError::InvalidRequest(format!(
            "a context of {n_ctx} tokens leaves no room for text next to a {}-token summary; raise the context or lower --max-tokens",
            opts.max_tokens
        ))
    })?;
    let tokenizer = session.tokenizer().clone();
    let n_input_tokens = tokenizer.encode(text, false)?.len();
    let mut gen = opts.generate.clone();
    gen.max_tokens = opts.max_tokens;
    let mut current = text.to_string();
    let mut n_chunks = 0;
    for round in 1..=MAX_ROUNDS {
        let chunks = split_to_fit(&tokenizer, &current, budget)?;
        if round == 1 {
            n_chunks = chunks.len();
        }
        on_round(round, chunks.len());
        if chunks.len() == 1 {
            let ids = encode_chat(&tokenizer, template, &instruction(opts.sentences, &chunks[0]), true)?;
            let mut collected = Tee { inner: sink, text: String::new() };
            session.generate(&ids, &gen, &mut collected)?;
            return Ok(SummaryReport {
                summary: collected.text.trim().to_string(),
                n_input_tokens,
                n_chunks,
                rounds: round,
                secs: start.elapsed().as_secs_f64(),
            });
        }
        let mut partial = Vec::with_capacity(chunks.len());
        for chunk in &chunks {
            let ids = encode_chat(&tokenizer, template, &instruction(opts.sentences, chunk), true)?;
            let mut s = StringSink::default();
            session.generate(&ids, &gen, &mut s)?;
            partial.push(s.text.trim().to_string());
        }
        let next = partial.join("\n\n");
        if tokenizer.encode(&next, false)?.len() >= tokenizer.encode(&current, false)?.len() {
            return Err(RuntimeError::InvalidRequest(
                "the partial summaries are not shorter than the text; lower --max-tokens or --sentences".into(),
            ));
        }
        current = next;
    }
    Err(RuntimeError::InvalidRequest(format!("the text did not shrink to one context in {MAX_ROUNDS} rounds")))
}

/// Forwards text to another sink and keeps a copy.
struct Tee<'a> {
    inner: &'a mut dyn TokenSink,
    text: String,
}

impl TokenSink for Tee<'_> {
    fn on_token(&mut self, text: &str) -> Result<bool, RuntimeError> {
        self.text.push_str(text);
        self.inner.on_token(text)
    }
}
