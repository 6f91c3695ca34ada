//! Integration tests of the `slm` binary: each test runs the real executable in a fresh cache
//! directory (`SLM_CACHE_DIR`) with downloads disabled (`SLM_OFFLINE=1`, a failing `SLM_PIP`).
//! Model-backed tests use `SLM_TEST_MODEL` (SmolLM2-135M-Instruct Q4_1) and compare with the
//! llama.cpp figures in `tests/golden`; they skip with a note when it is unset, and fail when
//! `SLM_REQUIRE_MODEL` is set without it.

mod common;

#[path = "cli/usage.rs"]
mod usage;

#[path = "cli/generate.rs"]
mod generate;

#[path = "cli/inspect.rs"]
mod inspect;

#[path = "cli/bad_input.rs"]
mod bad_input;

#[path = "cli/regressions.rs"]
mod regressions;

#[path = "cli/quantize.rs"]
mod quantize;

#[path = "cli/fit.rs"]
mod fit;

#[path = "cli/convert.rs"]
mod convert;

#[path = "cli/train.rs"]
mod train;

#[path = "cli/complete.rs"]
mod complete;

#[path = "cli/embed.rs"]
mod embed;
