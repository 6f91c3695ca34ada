//! Boundary test of the sampler's `repeat_last_n` limit (issue 11, docs/RELIABILITY.md "Limits
//! as code"): the window is accepted at `MAX_REPEAT_LAST_N` and refused one above, by
//! `SamplerConfig::validate` and by `Sampler::new`.

use slm_runtime::sampler::MAX_REPEAT_LAST_N;
use slm_runtime::{RuntimeError, Sampler, SamplerConfig};

#[test]
fn repeat_last_n_limit() {
    let at = SamplerConfig::default().with_repeat_penalty(1.1, MAX_REPEAT_LAST_N);
    at.validate().expect("repeat_last_n = 65536 is accepted");
    Sampler::new(at).expect("a sampler with the largest window");
    let above = SamplerConfig::default().with_repeat_penalty(1.1, MAX_REPEAT_LAST_N + 1);
    for result in [above.validate().map(|_| ()), Sampler::new(above).map(|_| ())] {
        let err = result.expect_err("repeat_last_n = 65537 is refused");
        assert!(matches!(err, RuntimeError::InvalidSamplerConfig { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("repeat_last_n") && msg.contains(&MAX_REPEAT_LAST_N.to_string()), "{msg}");
    }
}
