//! Encoder loading: a fuzzed `bert` GGUF file through `BertModel::load` and
//! `EncoderTokenizer::from_gguf` must give `Ok` or a typed `Err`, never panic, and never allocate
//! more than the file justifies (scripts/fuzz.sh runs it with a malloc limit). An accepted tiny
//! encoder must embed short sequences into vectors of its width and refuse an id outside its
//! vocabulary and a sequence longer than its position table.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use slm_format::GgufFile;
use slm_kernels::Pool;
use slm_model::bert::{BertModel, EncoderState, Pooling};
use slm_runtime::embed::EncoderTokenizer;

fn pool() -> &'static Pool {
    static P: OnceLock<Pool> = OnceLock::new();
    P.get_or_init(|| Pool::new(1).expect("a one-thread pool"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let file = Arc::new(file);
    // The tokenizer is read from the same metadata; it is independent of the weights.
    if let Ok(tok) = EncoderTokenizer::from_gguf(file.metadata(), 16) {
        for text in ["Hello world!", "\u{0}é\u{10FFFF}\r\n\t ##x [CLS]", ""] {
            if let Ok(ids) = tok.encode(text) {
                assert!(ids.len() <= 16, "{} ids over the limit of 16", ids.len());
            }
        }
    }
    let Ok(model) = BertModel::load(file) else {
        return;
    };
    let cfg = model.config().clone();
    assert!(cfg.n_vocab > 0 && cfg.d_model > 0 && cfg.max_seq_len > 0);
    // Keep the forward pass small: its buffers scale with these sizes.
    if cfg.d_model * cfg.d_ff > 1 << 20 || cfg.n_layer > 16 || cfg.n_positions > 4096 {
        return;
    }
    let mut state = EncoderState::new();
    let last = (cfg.n_vocab - 1) as u32;
    let seqs: [&[u32]; 2] = [&[0, last], &[last]];
    if let Ok(vectors) = model.embed(pool(), &seqs, Pooling::Mean, true, &mut state) {
        assert_eq!(vectors.len(), 2);
        assert!(vectors.iter().all(|v| v.len() == cfg.d_model));
    }
    // An id outside the vocabulary and an over-long sequence must be refused, not read out of
    // bounds.
    assert!(model.encode(pool(), &[&[cfg.n_vocab as u32]], &mut state).is_err());
    let long = vec![0u32; cfg.n_positions + 1];
    assert!(model.encode(pool(), &[&long], &mut state).is_err());
    assert!(model.encode(pool(), &[&[]], &mut state).is_err());
});
