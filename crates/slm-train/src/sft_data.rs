//! Instruction-tuning data: JSON Lines of conversations or prompt/completion pairs, tokenized
//! with the model's tokenizer and chat template, with the loss on the answer tokens only.
//!
//! One JSON object per line, in one of three shapes:
//! - `{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}, ...]}`:
//!   rendered with the chat template; every assistant turn (with its end-of-turn tokens) is
//!   trained, everything else is context.
//! - `{"prompt": ..., "completion": ...}`: raw text; the completion plus an end-of-text token is
//!   trained.
//! - `{"text": ...}`: raw text plus end-of-text, all trained.
//!
//! Assistant turns are located by rendering the conversation up to each turn (with and without
//! the generation prompt) and checking that every partial rendering is a prefix of the whole:
//! a template that rewrites earlier turns (some strip reasoning) cannot be masked exactly and is
//! refused with a clear error.

use crate::error::TrainError;
use crate::ops::IGNORE_TARGET;
use slm_runtime::chat_template::{ChatMessage, ChatTemplate};
use slm_runtime::tokenizer::Tokenizer;
use std::ops::Range;
use std::path::Path;

/// One tokenized example: the model reads `tokens`, and `targets[i]` is the token it must
/// predict after `tokens[..=i]`, or [`IGNORE_TARGET`] where nothing is trained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftExample {
    /// Input tokens.
    pub tokens: Vec<u32>,
    /// Next-token targets (same length).
    pub targets: Vec<u32>,
}

impl SftExample {
    /// Number of trained positions.
    pub fn n_trained(&self) -> usize {
        self.targets.iter().filter(|&&t| t != IGNORE_TARGET).count()
    }
}

/// What [`load_sft_jsonl`] read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SftStats {
    /// Examples kept.
    pub examples: usize,
    /// Examples cut to the length limit (the end is kept for conversations and prompt/completion
    /// pairs, where the answers are; the start for plain text).
    pub truncated: usize,
    /// Examples dropped because no trained token was left.
    pub dropped: usize,
    /// Tokens over all kept examples.
    pub tokens: usize,
    /// Trained positions over all kept examples.
    pub trained: usize,
}

/// Reads and tokenizes a JSON Lines file (see the module docs), cutting every example to at most
/// `max_len` tokens.
pub fn load_sft_jsonl(
    path: &Path,
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
    max_len: usize,
) -> Result<(Vec<SftExample>, SftStats), TrainError> {
    let content = std::fs::read_to_string(path).map_err(|e| TrainError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let bad = |line: usize, reason: String| {
        TrainError::Data(format!("{}:{line}: {reason}", path.display()))
    };
    let mut examples = Vec::new();
    let mut stats = SftStats::default();
    for (i, line) in content
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(i + 1, format!("not JSON: {e}")))?;
        let (pieces, keep_end) = pieces_of(&v, tokenizer, template).map_err(|e| bad(i + 1, e))?;
        let (mut ids, mut trained) =
            tokenize_pieces(tokenizer, &pieces).map_err(|e| bad(i + 1, e.to_string()))?;
        if ids.len() > max_len + 1 {
            stats.truncated += 1;
            let cut = ids.len() - (max_len + 1);
            if keep_end {
                ids.drain(..cut);
                trained.drain(..cut);
            } else {
                ids.truncate(max_len + 1);
                trained.truncate(max_len + 1);
            }
        }
        let Some(example) = to_example(&ids, &trained) else {
            stats.dropped += 1;
            continue;
        };
        stats.examples += 1;
        stats.tokens += example.tokens.len();
        stats.trained += example.n_trained();
        examples.push(example);
    }
    if examples.is_empty() {
        return Err(TrainError::Data(format!(
            "{}: no example with a trained token ({} dropped)",
            path.display(),
            stats.dropped
        )));
    }
    Ok((examples, stats))
}

/// A piece of an example's text: whether it is trained, and which byte ranges are message
/// contents (control tokens in them stay text).
struct Piece {
    text: String,
    trained: bool,
    protected: Vec<Range<usize>>,
    /// An end-of-text token follows (trained like the piece).
    eos_after: bool,
}

/// Splits one JSON example into pieces; also says whether truncation keeps the end.
fn pieces_of(
    v: &serde_json::Value,
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
) -> Result<(Vec<Piece>, bool), String> {
    let text_field = |k: &str| v.get(k).and_then(|t| t.as_str());
    if let Some(messages) = v.get("messages") {
        let messages: Vec<ChatMessage> = serde_json::from_value(messages.clone()).map_err(|e| {
            format!("\"messages\" must be a list of {{role, content}} objects: {e}")
        })?;
        return Ok((conversation_pieces(&messages, template)?, true));
    }
    let plain = |text: &str, trained: bool, eos_after: bool| Piece {
        text: text.to_string(),
        trained,
        protected: Vec::new(),
        eos_after,
    };
    let has_eos = tokenizer.eos_id().is_some();
    if let (Some(prompt), Some(completion)) = (text_field("prompt"), text_field("completion")) {
        return Ok((
            vec![
                plain(prompt, false, false),
                plain(completion, true, has_eos),
            ],
            true,
        ));
    }
    if let Some(text) = text_field("text") {
        return Ok((vec![plain(text, true, has_eos)], false));
    }
    Err("expected \"messages\", \"prompt\" + \"completion\", or \"text\"".into())
}

/// The rendered conversation cut at the start and end of every assistant turn.
fn conversation_pieces(
    messages: &[ChatMessage],
    template: &ChatTemplate,
) -> Result<Vec<Piece>, String> {
    if !messages.iter().any(|m| m.role == "assistant") {
        return Err("the conversation has no assistant message to train on".into());
    }
    let full = template
        .render_prompt(messages, false)
        .map_err(|e| e.to_string())?;
    let mut cuts = Vec::new(); // (start, end) of each assistant turn in full.text
    for (i, m) in messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == "assistant")
    {
        let before = template
            .render(&messages[..i], true)
            .map_err(|e| e.to_string())?;
        let through = template
            .render(&messages[..=i], false)
            .map_err(|e| e.to_string())?;
        let ok = full.text.starts_with(&before)
            && full.text.starts_with(&through)
            && before.len() <= through.len();
        if !ok {
            return Err(format!(
                "the chat template does not render turn {i} ({}) as a prefix of the whole conversation, \
                 so the assistant's tokens cannot be located; use prompt/completion lines instead",
                m.role
            ));
        }
        cuts.push((before.len(), through.len()));
    }
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut piece = |from: usize, to: usize, trained: bool| {
        if to > from {
            let protected = full
                .content_ranges
                .iter()
                .filter(|r| r.start < to && r.end > from)
                .map(|r| r.start.max(from) - from..r.end.min(to) - from)
                .collect();
            pieces.push(Piece {
                text: full.text[from..to].to_string(),
                trained,
                protected,
                eos_after: false,
            });
        }
    };
    for (start, end) in cuts {
        let start = start.max(at);
        piece(at, start, false);
        piece(start, end, true);
        at = end.max(start);
    }
    piece(at, full.text.len(), false);
    Ok(pieces)
}

/// Token ids and, per id, whether predicting it is trained. A BOS is prepended when the
/// tokenizer asks for one.
fn tokenize_pieces(
    tokenizer: &Tokenizer,
    pieces: &[Piece],
) -> Result<(Vec<u32>, Vec<bool>), TrainError> {
    let mut ids = Vec::new();
    let mut trained = Vec::new();
    if tokenizer.add_bos() {
        if let Some(bos) = tokenizer.bos_id() {
            ids.push(bos);
            trained.push(false);
        }
    }
    for p in pieces {
        let piece_ids = tokenizer.encode_protected(&p.text, &p.protected)?;
        trained.extend(std::iter::repeat_n(p.trained, piece_ids.len()));
        ids.extend(piece_ids);
        if let (true, Some(eos)) = (p.eos_after, tokenizer.eos_id()) {
            ids.push(eos);
            trained.push(p.trained);
        }
    }
    Ok((ids, trained))
}

/// Shifts ids into inputs and next-token targets; `None` when nothing is trained.
fn to_example(ids: &[u32], trained: &[bool]) -> Option<SftExample> {
    if ids.len() < 2 {
        return None;
    }
    let tokens = ids[..ids.len() - 1].to_vec();
    let targets: Vec<u32> = ids[1..]
        .iter()
        .zip(&trained[1..])
        .map(|(&id, &t)| if t { id } else { IGNORE_TARGET })
        .collect();
    let example = SftExample { tokens, targets };
    (example.n_trained() > 0).then_some(example)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_marks_only_trained_targets() {
        let ex = to_example(&[1, 2, 3, 4], &[false, false, true, true]).expect("trained");
        assert_eq!(ex.tokens, vec![1, 2, 3]);
        assert_eq!(ex.targets, vec![IGNORE_TARGET, 3, 4]);
        assert!(to_example(&[1, 2], &[true, false]).is_none());
        assert!(to_example(&[1], &[true]).is_none());
    }
}
