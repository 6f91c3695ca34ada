//! Zero-shot classification (`slm classify`): each label is scored by the log-probability the
//! model gives to it as the answer of a chat prompt, then calibrated ("contextual calibration",
//! Zhao et al. 2021: divide by the probabilities the model gives each label for a content-free
//! input, which removes its bias toward some labels) and normalized over the labels.

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::RuntimeError;
use crate::session::encode_chat;
use crate::tokenizer::Tokenizer;
use slm_kernels::Pool;
use slm_model::{Context, Logits, Model};

/// Most labels one classifier may have.
pub const MAX_LABELS: usize = 64;

/// A zero-shot classifier over a fixed label set.
pub struct ZeroShot<'a> {
    model: &'a Model,
    tokenizer: &'a Tokenizer,
    template: &'a ChatTemplate,
    labels: Vec<String>,
    label_ids: Vec<Vec<u32>>,
    instruction: String,
    /// Per-label log-probabilities for the content-free input (subtracted when calibrating).
    prior: Vec<f64>,
}

/// Scores of one text.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Classification {
    /// The most probable label.
    pub label: String,
    /// Calibrated probability of each label (same order as the labels; sums to 1).
    pub probabilities: Vec<f64>,
    /// Raw log-probability of each label's tokens as the answer.
    pub log_probs: Vec<f64>,
}

fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let mut out = vec![0.0; logits.len()];
    crate::compare::log_softmax(logits, &mut out);
    out
}

impl<'a> ZeroShot<'a> {
    /// A classifier for `labels` with the task described by `instruction` (e.g. "Is this e-mail
    /// spam or ham?"). Calibrates on a content-free input at once.
    pub fn new(
        model: &'a Model,
        tokenizer: &'a Tokenizer,
        template: &'a ChatTemplate,
        labels: &[String],
        instruction: &str,
        pool: &Pool,
        ctx: &mut Context,
    ) -> Result<ZeroShot<'a>, RuntimeError> {
        if labels.len() < 2 || labels.len() > MAX_LABELS {
            return Err(RuntimeError::InvalidRequest(format!("give 2..={MAX_LABELS} labels (got {})", labels.len())));
        }
        let mut label_ids = Vec::new();
        for l in labels {
            let ids = tokenizer.encode(l.trim(), false)?;
            if ids.is_empty() {
                return Err(RuntimeError::InvalidRequest("a label is empty".into()));
            }
            label_ids.push(ids);
        }
        let mut zs = ZeroShot {
            model,
            tokenizer,
            template,
            labels: labels.iter().map(|l| l.trim().to_string()).collect(),
            label_ids,
            instruction: instruction.to_string(),
            prior: vec![0.0; labels.len()],
        };
        zs.prior = zs.label_log_probs("N/A", pool, ctx)?;
        Ok(zs)
    }

    /// The labels.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    fn prompt(&self, text: &str) -> Result<Vec<u32>, RuntimeError> {
        let options = self.labels.join(", ");
        let messages = [ChatMessage::new(
            "user",
            format!("{}\nAnswer with exactly one of: {options}.\n\nText:\n{text}", self.instruction),
        )];
        encode_chat(self.tokenizer, self.template, &messages, true)
    }

    /// Log-probability of each label's tokens as the answer to `text`; the prompt is processed once
    /// and the cache rewound for each label.
    fn label_log_probs(&self, text: &str, pool: &Pool, ctx: &mut Context) -> Result<Vec<f64>, RuntimeError> {
        let longest = self.label_ids.iter().map(Vec::len).max().unwrap_or(1);
        // Texts longer than the context keep their beginning (for e-mails, the informative part).
        let overhead = self.prompt("")?.len() + longest + 1;
        let budget = ctx.n_ctx().checked_sub(overhead).filter(|b| *b >= 16).ok_or_else(|| {
            RuntimeError::InvalidRequest(format!("a context of {} tokens is too small for this prompt", ctx.n_ctx()))
        })?;
        let ids = self.tokenizer.encode(text, false)?;
        let prompt = if ids.len() > budget {
            self.prompt(&self.tokenizer.decode(&ids[..budget], false))?
        } else {
            self.prompt(text)?
        };
        if prompt.len() + longest > ctx.n_ctx() {
            return Err(RuntimeError::InvalidRequest("the prompt does not fit the context".into()));
        }
        ctx.clear();
        let first = log_softmax(self.model.forward(ctx, pool, &prompt, Logits::Last)?);
        let mut out = Vec::with_capacity(self.label_ids.len());
        for ids in &self.label_ids {
            ctx.truncate(prompt.len());
            let mut lp = first.get(ids[0] as usize).copied().unwrap_or(f64::NEG_INFINITY);
            for w in ids.windows(2) {
                let next = log_softmax(self.model.forward(ctx, pool, &[w[0]], Logits::Last)?);
                lp += next.get(w[1] as usize).copied().unwrap_or(f64::NEG_INFINITY);
            }
            out.push(lp);
        }
        Ok(out)
    }

    /// Classifies `text`.
    pub fn classify(&self, text: &str, pool: &Pool, ctx: &mut Context) -> Result<Classification, RuntimeError> {
        let log_probs = self.label_log_probs(text, pool, ctx)?;
        let calibrated: Vec<f64> = log_probs.iter().zip(&self.prior).map(|(lp, p)| lp - p).collect();
        let max = calibrated.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = calibrated.iter().map(|c| (c - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        let probabilities: Vec<f64> = exp.iter().map(|e| e / sum).collect();
        let best = probabilities.iter().enumerate().fold(0, |b, (i, p)| if *p > probabilities[b] { i } else { b });
        Ok(Classification { label: self.labels[best].clone(), probabilities, log_probs })
    }
}
