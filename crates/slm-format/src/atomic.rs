//! Atomic file replacement: write to a temporary file in the same directory, fsync it, rename it
//! over the destination, then fsync the directory (on Unix).
//!
//! Readers therefore see either the old file or the complete new one, never a half-written file,
//! even if the process or the machine dies mid-write. Used for models, checkpoints and configs.
//!
//! The temporary file is `.<name>.tmp-<pid>-<n>`. A writer killed mid-write (SIGKILL, power loss)
//! leaves it behind; the next atomic write into the same directory removes such leftovers (see
//! [`remove_stale_temps`] for the rule that keeps live writers' files).

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// A temporary file untouched for this long is stale even if a process with its pid exists (the
/// pid may have been reused; a live writer keeps modifying its file).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Distinguishes temp files of concurrent writes from the same process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `path` atomically: `f` receives a buffered writer to a temporary file next to `path`;
/// if `f` succeeds the file is flushed, fsynced and renamed over `path`. On any error the
/// temporary file is removed and `path` is left untouched.
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(path)?;
    // Best effort: leftovers of killed writers must not make this write fail.
    let _ = remove_stale_temps(parent_dir(path));
    let result = write_and_rename(&tmp, path, f);
    if result.is_err() {
        // Best effort: the original error is what the caller needs to see.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Convenience: atomically replaces `path` with `bytes`.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Removes the temporary files of dead writers from `dir` and returns how many it removed.
///
/// Only files named like this module's temporaries (`.<name>.tmp-<pid>-<n>`, a regular file) are
/// considered, and one is removed when its writer cannot be writing any more:
/// - never when `<pid>` is this process (another thread may be writing it);
/// - when no process `<pid>` exists (checked in `/proc` on Linux), or
/// - when it has not been modified for [`STALE_TEMP_AGE`] (where processes cannot be checked, or
///   the pid was reused).
///
/// Pids are per machine: a directory written at the same time from several machines (a network
/// share) could lose a live writer's temporary file, which makes that write fail, never a
/// destination file half-written.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let own = std::process::id();
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_writer_pid) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if pid == own || !meta.is_file() {
            continue;
        }
        // A clock step backwards gives no age: then only a dead pid counts.
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE);
        if (old || process_is_gone(pid)) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The writer's pid if `name` is one of this module's temporary names (`.<name>.tmp-<pid>-<n>`).
fn temp_writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (target, suffix) = rest.rsplit_once(".tmp-")?;
    let (pid, n) = suffix.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if target.is_empty() || !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` certainly does not exist. `false` where that cannot be checked.
fn process_is_gone(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        // Only trust /proc when it is mounted.
        Path::new("/proc/self").exists() && !Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        false
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

fn write_and_rename(
    tmp: &Path,
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    // create_new: never clobber a file we did not create.
    let file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    let mut w = BufWriter::new(file);
    f(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)?;
    sync_parent_dir(path);
    Ok(())
}

/// Makes the rename itself durable. Failure is ignored: some filesystems refuse to fsync a
/// directory, and the data is already safely written.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    {
        if let Ok(dir) = fs::File::open(parent_dir(path)) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.gguf");
        fs::write(&p, b"old").unwrap();
        write_bytes_atomic(&p, b"new contents").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new contents");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.gguf")]);
    }

    #[test]
    fn failure_keeps_old_file_and_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cfg.json");
        fs::write(&p, b"old").unwrap();
        let err = write_atomic(&p, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A pid no process has: above Linux's `pid_max` limit (2^22).
    const DEAD_PID: u32 = 4_999_999;

    #[test]
    fn only_our_temp_names_are_recognized() {
        assert_eq!(temp_writer_pid(".model.gguf.tmp-123-0"), Some(123));
        assert_eq!(temp_writer_pid(".a.tmp-b.tmp-7-12"), Some(7));
        for other in [
            "model.gguf.tmp-123-0",
            ".model.gguf",
            "..tmp-1-2",
            ".x.tmp-1-",
            ".x.tmp--2",
            ".x.tmp-1-2a",
            ".x.tmp-1",
        ] {
            assert_eq!(temp_writer_pid(other), None, "{other}");
        }
    }

    #[test]
    fn stale_temps_of_dead_writers_are_removed_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let dead = d.join(format!(".model.gguf.tmp-{DEAD_PID}-0"));
        let other_file = d.join(format!(".ckpt.gguf.tmp-{DEAD_PID}-3"));
        let own = d.join(format!(".model.gguf.tmp-{}-999999", std::process::id()));
        let live = d.join(".model.gguf.tmp-1-0"); // pid 1 (init) is alive
        let not_ours = d.join(format!(".model.gguf.part-{DEAD_PID}"));
        let user = d.join("notes.tmp-1-2");
        for p in [&dead, &other_file, &own, &live, &not_ours, &user] {
            fs::write(p, b"partial").unwrap();
        }
        // A directory with a temp-like name is never removed.
        fs::create_dir(d.join(format!(".dir.tmp-{DEAD_PID}-0"))).unwrap();
        write_bytes_atomic(&d.join("model.gguf"), b"new").unwrap();
        let mut names: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected = vec![
            format!(".dir.tmp-{DEAD_PID}-0"),
            format!(".model.gguf.part-{DEAD_PID}"),
            ".model.gguf.tmp-1-0".to_string(),
            format!(".model.gguf.tmp-{}-999999", std::process::id()),
            "model.gguf".to_string(),
            "notes.tmp-1-2".to_string(),
        ];
        expected.sort();
        if !cfg!(target_os = "linux") {
            // Without /proc only age counts: the fresh dead writer's files stay too.
            expected.extend([
                format!(".ckpt.gguf.tmp-{DEAD_PID}-3"),
                format!(".model.gguf.tmp-{DEAD_PID}-0"),
            ]);
            expected.sort();
        }
        assert_eq!(names, expected);
    }

    #[test]
    fn old_temps_are_removed_even_if_their_pid_exists() {
        let dir = tempfile::tempdir().unwrap();
        let live_old = dir.path().join(".model.gguf.tmp-1-0");
        let live_fresh = dir.path().join(".model.gguf.tmp-1-1");
        fs::write(&live_old, b"x").unwrap();
        fs::write(&live_fresh, b"x").unwrap();
        let day_ago = SystemTime::now() - STALE_TEMP_AGE - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&live_old)
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(!live_old.exists());
        assert!(live_fresh.exists());
    }

    #[test]
    fn rejects_path_without_file_name() {
        assert!(write_bytes_atomic(Path::new("/"), b"x").is_err());
    }
}
