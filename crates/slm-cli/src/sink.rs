//! Streaming generated text to the terminal.

use slm_runtime::{RuntimeError, TokenSink};
use std::io::Write;

/// Writes each piece to stdout as soon as it arrives.
pub struct StdoutSink {
    out: std::io::Stdout,
}

impl StdoutSink {
    /// A sink on this process's stdout.
    pub fn new() -> Self {
        StdoutSink { out: std::io::stdout() }
    }
}

impl TokenSink for StdoutSink {
    fn on_token(&mut self, text: &str) -> Result<bool, RuntimeError> {
        let mut lock = self.out.lock();
        // A closed pipe (e.g. `slm run ... | head`) just ends generation.
        if lock.write_all(text.as_bytes()).and_then(|_| lock.flush()).is_err() {
            return Ok(false);
        }
        Ok(true)
    }
}
