//! `slm tokenizer train`: a byte-level BPE tokenizer from text files.

use crate::args::TokenizerTrainArgs;
use anyhow::{Context, Result};
use slm_train::bpe::{self, BpeOptions};
use std::time::Instant;

/// Trains the tokenizer and writes `tokenizer.json` + `tokenizer_config.json`.
pub fn train(a: TokenizerTrainArgs) -> Result<()> {
    let start = Instant::now();
    let docs = slm_train::data::read_documents(&a.data).with_context(|| format!("reading {}", a.data.display()))?;
    let bytes: usize = docs.iter().map(String::len).sum();
    let opts = BpeOptions {
        vocab_size: a.vocab_size,
        min_frequency: a.min_frequency,
        special_tokens: a.special_tokens.iter().map(|s| s.trim().to_string()).collect(),
    };
    let tok = bpe::train_bpe(&docs, &opts)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    bpe::save(&tok, &a.out)?;
    // Check the result loads the way training and `slm run` will use it.
    let md = bpe::tokenizer_metadata(&tok.tokenizer, Some(&tok.config))?;
    let t = slm_runtime::Tokenizer::from_gguf(&md)?;
    let sample: String = docs.iter().flat_map(|d| d.chars()).take(100_000).collect();
    let n = t.encode(&sample, false)?.len().max(1);
    eprintln!(
        "trained a {}-token BPE tokenizer on {} documents ({} bytes) in {:.1}s; {:.2} bytes/token on a sample",
        tok.vocab_size,
        docs.len(),
        bytes,
        start.elapsed().as_secs_f64(),
        sample.len() as f64 / n as f64
    );
    if tok.vocab_size < a.vocab_size {
        eprintln!(
            "note: the text supports only {} tokens (asked for {}); add text or lower --min-frequency",
            tok.vocab_size, a.vocab_size
        );
    }
    outln!("{}", a.out.display());
    Ok(())
}
