//! [`Progress`]: how long operations (downloads, hashing) report to a front end.
//! The CLI drives an indicatif bar with it; libraries and tests use [`NoProgress`].

/// Receives progress of a pull. Implementations must be cheap: `advance` is
/// called once per network read (tens of KiB).
pub trait Progress {
    /// A new phase begins (e.g. "download X from hub"); `total` in bytes when known.
    fn start(&self, what: &str, total: Option<u64>);
    /// `bytes` more bytes of the current phase are done.
    fn advance(&self, bytes: u64);
    /// The current phase ended (successfully or not).
    fn finish(&self);
    /// A one-line status message (e.g. why a source failed and what is tried next).
    fn message(&self, msg: &str);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
    fn message(&self, _msg: &str) {}
}
