//! The local model cache: `<root>/models/<name>/<file>`, with `<file>.part`
//! (download in progress, resumable) and `<file>.lock` (see `lock.rs`) beside it.
//! A model is present only when the final file exists with the right size; that
//! name is only ever created by a rename after full verification.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::HubConfig;
use crate::error::{io_err, HubError, Result};
use crate::registry::{ModelSpec, Registry};
use crate::verify::sha256_file;

/// Handle on a cache root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

/// How far a cached file was checked against the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyStatus {
    /// The directory/file pair is not in the registry, so there is nothing to check against.
    Unregistered,
    /// Size matches; SHA-256 not computed (pass `full = true` to [`Cache::list`]).
    SizeOk,
    /// Size and SHA-256 match.
    Verified,
    /// Size differs from the registry.
    SizeMismatch {
        /// Registry size.
        expected: u64,
    },
    /// Size matches but the digest differs.
    ShaMismatch {
        /// Digest on disk.
        found: String,
    },
}

/// One file found in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    /// Directory name (the registry name for known models).
    pub name: String,
    /// File name.
    pub file: String,
    /// Full path.
    pub path: PathBuf,
    /// Size on disk in bytes.
    pub size: u64,
    /// Registry entry, when the name and file match one.
    pub spec: Option<ModelSpec>,
    /// Result of the check.
    pub status: VerifyStatus,
}

/// A `.part` file left by an interrupted download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialDownload {
    /// Directory name.
    pub name: String,
    /// Path of the `.part` file.
    pub path: PathBuf,
    /// Bytes downloaded so far.
    pub size: u64,
}

/// Everything [`Cache::list`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheListing {
    /// Complete files, sorted by name then file.
    pub models: Vec<CachedModel>,
    /// Interrupted downloads (resumed by the next pull).
    pub partial: Vec<PartialDownload>,
}

impl Cache {
    /// The cache of `cfg`.
    pub fn new(cfg: &HubConfig) -> Cache {
        Cache::at(&cfg.cache_root)
    }

    /// A cache rooted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/models/<name>`.
    pub fn model_dir(&self, spec: &ModelSpec) -> PathBuf {
        self.root.join("models").join(&spec.name)
    }

    /// Where the verified file lives: `<root>/models/<name>/<file>`.
    pub fn model_path(&self, spec: &ModelSpec) -> PathBuf {
        self.model_dir(spec).join(&spec.file)
    }

    /// The resumable download: `<file>.part`.
    pub fn part_path(&self, spec: &ModelSpec) -> PathBuf {
        self.model_dir(spec).join(format!("{}.part", spec.file))
    }

    /// The download lock: `<file>.lock`.
    pub fn lock_path(&self, spec: &ModelSpec) -> PathBuf {
        self.model_dir(spec).join(format!("{}.lock", spec.file))
    }

    /// Scratch space for wheel downloads; inside the cache so renames stay on one filesystem.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The model's path when its final file exists with the registry size.
    pub fn present(&self, spec: &ModelSpec) -> Option<PathBuf> {
        let path = self.model_path(spec);
        let meta = fs::metadata(&path).ok()?;
        (meta.is_file() && meta.len() == spec.size).then_some(path)
    }

    /// Lists cached files and partial downloads. Sizes are always checked
    /// against `registry`; `full` also hashes every known file (slow: reads it all).
    pub fn list(&self, registry: &Registry, full: bool) -> Result<CacheListing> {
        let models_dir = self.root.join("models");
        let mut out = CacheListing::default();
        for dir in read_dir_sorted(&models_dir)? {
            if !dir.is_dir() {
                continue;
            }
            let name = file_name(&dir);
            for path in read_dir_sorted(&dir)? {
                let meta = fs::metadata(&path).map_err(io_err("stat", &path))?;
                if !meta.is_file() {
                    continue;
                }
                let file = file_name(&path);
                if file.ends_with(".lock") {
                    continue;
                }
                if file.ends_with(".part") {
                    out.partial.push(PartialDownload { name: name.clone(), path, size: meta.len() });
                    continue;
                }
                let spec = registry.models().iter().find(|m| m.name == name && m.file == file).cloned();
                let status = match &spec {
                    None => VerifyStatus::Unregistered,
                    Some(s) if s.size != meta.len() => VerifyStatus::SizeMismatch { expected: s.size },
                    Some(_) if !full => VerifyStatus::SizeOk,
                    Some(s) => match sha256_file(&path)? {
                        found if found == s.sha256 => VerifyStatus::Verified,
                        found => VerifyStatus::ShaMismatch { found },
                    },
                };
                out.models.push(CachedModel { name: name.clone(), file, path, size: meta.len(), spec, status });
            }
        }
        Ok(out)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Entries of `dir`, sorted; a missing directory is an empty cache, not an error.
fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(HubError::Io { op: "list", path: dir.to_path_buf(), source: e }),
    };
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(io_err("list", dir))?.path());
    }
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::hex;
    use sha2::{Digest, Sha256};

    fn registry(sha: &str) -> Registry {
        Registry::from_json(&format!(
            r#"{{"version":1,"models":[{{"name":"tiny","description":"d","architecture":"llama","params":"1M",
            "license":"MIT","file":"tiny.gguf","size":5,"sha256":"{sha}","quant":"F32",
            "sources":[{{"kind":"hub","repo":"a/b","path":"tiny.gguf"}}]}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn paths_and_presence() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(&hex(&Sha256::digest(b"hello")));
        let spec = &reg.models()[0];
        let cache = Cache::at(dir.path());
        assert_eq!(cache.model_path(spec), dir.path().join("models/tiny/tiny.gguf"));
        assert_eq!(cache.part_path(spec), dir.path().join("models/tiny/tiny.gguf.part"));
        assert_eq!(cache.lock_path(spec), dir.path().join("models/tiny/tiny.gguf.lock"));
        assert_eq!(cache.present(spec), None);
        fs::create_dir_all(cache.model_dir(spec)).unwrap();
        fs::write(cache.part_path(spec), b"hello").unwrap();
        assert_eq!(cache.present(spec), None, "a .part never counts as present");
        fs::write(cache.model_path(spec), b"hell").unwrap();
        assert_eq!(cache.present(spec), None, "wrong size is not present");
        fs::write(cache.model_path(spec), b"hello").unwrap();
        assert_eq!(cache.present(spec), Some(cache.model_path(spec)));
    }

    #[test]
    fn list_reports_status_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let good = registry(&hex(&Sha256::digest(b"hello")));
        assert_eq!(cache.list(&good, true).unwrap(), CacheListing::default(), "missing root = empty");

        let spec = &good.models()[0];
        fs::create_dir_all(cache.model_dir(spec)).unwrap();
        fs::write(cache.model_path(spec), b"hello").unwrap();
        fs::write(cache.lock_path(spec), b"").unwrap();
        fs::write(cache.model_dir(spec).join("other.bin"), b"xy").unwrap();
        fs::create_dir_all(dir.path().join("models/half")).unwrap();
        fs::write(dir.path().join("models/half/h.gguf.part"), b"abc").unwrap();

        let l = cache.list(&good, false).unwrap();
        let statuses: Vec<_> = l.models.iter().map(|m| (m.file.as_str(), m.status.clone())).collect();
        assert_eq!(statuses, [("other.bin", VerifyStatus::Unregistered), ("tiny.gguf", VerifyStatus::SizeOk)]);
        assert_eq!(l.partial, [PartialDownload { name: "half".into(), path: dir.path().join("models/half/h.gguf.part"), size: 3 }]);
        assert_eq!(cache.list(&good, true).unwrap().models[1].status, VerifyStatus::Verified);

        let bad = registry(&hex(&Sha256::digest(b"world")));
        let found = hex(&Sha256::digest(b"hello"));
        assert_eq!(cache.list(&bad, true).unwrap().models[1].status, VerifyStatus::ShaMismatch { found });
        fs::write(cache.model_path(spec), b"hi").unwrap();
        assert_eq!(cache.list(&good, true).unwrap().models[1].status, VerifyStatus::SizeMismatch { expected: 5 });
    }
}
