//! Per-model download lock, so two concurrent pulls of one model never write
//! the same `.part` file (the running SHA-256 of one writer would not describe
//! the bytes the other wrote).
//!
//! Choice: an OS advisory lock (`File::try_lock`: `flock` on Unix, `LockFileEx`
//! on Windows) on `<file>.lock`. The kernel drops it when the holder exits or
//! crashes, so there are no stale locks to age out and no heartbeat. The lock
//! file itself is never deleted: deleting it would let a waiter lock the old,
//! unlinked inode while a newcomer locks a fresh one, and both would proceed.
//! It is empty and ignored by the cache listing.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{io_err, HubError, Result};
use crate::progress::Progress;

const POLL: Duration = Duration::from_millis(200);

/// Held while downloading; released when dropped (closing the file unlocks it).
#[derive(Debug)]
pub(crate) struct DownloadLock {
    _file: Option<File>,
}

/// Takes the lock at `path`, waiting up to `timeout` for another holder.
pub(crate) fn acquire(path: &Path, timeout: Duration, progress: &dyn Progress) -> Result<DownloadLock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("create lock file", path))?;
    let started = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(DownloadLock { _file: Some(file) }),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                // Some filesystems (or platforms) have no advisory locks: carry on
                // unlocked; a collision then fails verification, never corrupts the cache.
                progress.message(&format!("file locking unsupported for {}; continuing without a lock", path.display()));
                return Ok(DownloadLock { _file: None });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock", path)(e)),
        }
        if !told {
            progress.message("another slm process is downloading this model; waiting for it to finish");
            told = true;
        }
        if started.elapsed() >= timeout {
            return Err(HubError::LockTimeout { path: PathBuf::from(path), waited_s: started.elapsed().as_secs() });
        }
        thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn second_holder_waits_and_times_out_then_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.lock");
        let first = acquire(&path, Duration::from_secs(1), &NoProgress).unwrap();
        let t = Instant::now();
        match acquire(&path, Duration::from_millis(300), &NoProgress) {
            Err(HubError::LockTimeout { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
        assert!(t.elapsed() >= Duration::from_millis(300));
        drop(first);
        let _again = acquire(&path, Duration::from_millis(300), &NoProgress).unwrap();
        assert!(path.exists(), "the lock file is never deleted");
    }
}
