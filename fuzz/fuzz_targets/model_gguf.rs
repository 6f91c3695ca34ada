//! Model loading: `Model::from_gguf` on a fuzzed (small) GGUF file must give `Ok` or a typed `Err`,
//! never panic, and never allocate more than the file justifies (scripts/fuzz.sh runs this target
//! with a malloc limit far below what a huge declared shape would need). An accepted tiny model
//! must run one forward step over a 4-token context.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use slm_format::GgufFile;
use slm_kernels::Pool;
use slm_model::{Logits, Model};

fn pool() -> &'static Pool {
    static P: OnceLock<Pool> = OnceLock::new();
    P.get_or_init(|| Pool::new(1).expect("a one-thread pool"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let Ok(model) = Model::from_gguf(Arc::new(file)) else {
        return;
    };
    let cfg = model.config();
    assert!(cfg.n_vocab > 0 && cfg.d_model > 0 && cfg.n_head > 0);
    // Keep the forward pass small: the context's own buffers scale with these sizes.
    if cfg.n_vocab * cfg.d_model > 1 << 20 || cfg.d_ff * cfg.d_model > 1 << 20 || cfg.n_layer > 16 {
        return;
    }
    let Ok(mut ctx) = model.new_context(4, 4) else {
        return;
    };
    let tokens = [0u32, (cfg.n_vocab - 1) as u32];
    if let Ok(logits) = model.forward(&mut ctx, pool(), &tokens, Logits::Last) {
        assert_eq!(logits.len(), cfg.n_vocab);
    }
    // An id outside the vocabulary must be refused, not read out of bounds.
    assert!(model
        .forward(&mut ctx, pool(), &[cfg.n_vocab as u32], Logits::Last)
        .is_err());
});
