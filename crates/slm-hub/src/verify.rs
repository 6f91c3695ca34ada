//! Size + SHA-256 verification, and [`PartFile`]: the `.part` file a download
//! streams into. The final file name only ever appears through
//! [`PartFile::commit`], which checks size and digest, fsyncs, then renames.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{io_err, src_io, HubError, Result, SourceError};
use crate::progress::Progress;

/// Copy buffer size: large enough to keep syscalls cheap, small enough for
/// smooth progress updates.
const CHUNK: usize = 64 * 1024;

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a whole file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).map_err(io_err("read", path))?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
        hasher.update(chunk);
    }
    Ok(hex(&hasher.finalize()))
}

/// Checks that `path` is exactly `size` bytes (fast, metadata only).
pub fn check_size(path: &Path, size: u64) -> Result<()> {
    let found = fs::metadata(path).map_err(io_err("stat", path))?.len();
    match found == size {
        true => Ok(()),
        false => Err(HubError::SizeMismatch { path: path.to_path_buf(), expected: size, found }),
    }
}

/// Checks size (first, cheaply) and then the full SHA-256 of `path`.
pub fn verify_file(path: &Path, size: u64, sha256: &str) -> Result<()> {
    check_size(path, size)?;
    let found = sha256_file(path)?;
    match found.eq_ignore_ascii_case(sha256) {
        true => Ok(()),
        false => Err(HubError::ShaMismatch { path: path.to_path_buf(), expected: sha256.to_ascii_lowercase(), found }),
    }
}

/// Why [`PartFile::copy_from`] stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// Reading the source failed (network drop, corrupt stream).
    Read(io::Error),
    /// The source produced more bytes than the expected total.
    TooLong,
    /// Writing the `.part` failed.
    Write(SourceError),
}

/// A partially written download with a running SHA-256 of its contents.
pub(crate) struct PartFile {
    path: PathBuf,
    file: File,
    hasher: Sha256,
    len: u64,
}

impl PartFile {
    /// Creates (or truncates) `path` for a fresh download.
    pub(crate) fn create(path: &Path) -> Result<PartFile, SourceError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(src_io("create", path))?;
        Ok(PartFile { path: path.to_path_buf(), file, hasher: Sha256::new(), len: 0 })
    }

    /// Opens `path` to continue a download, re-hashing the bytes already there.
    /// A file longer than `max_len` cannot be a prefix of the target and is
    /// truncated to zero.
    pub(crate) fn resume(path: &Path, max_len: u64, progress: &dyn Progress) -> Result<PartFile, SourceError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(src_io("open", path))?;
        let len = file.metadata().map_err(src_io("stat", path))?.len();
        let mut part = PartFile { path: path.to_path_buf(), file, hasher: Sha256::new(), len: 0 };
        if len > max_len {
            part.restart()?;
            return Ok(part);
        }
        if len > 0 {
            progress.start(&format!("checking {len} bytes already downloaded"), Some(len));
            let mut buf = vec![0u8; CHUNK];
            let mut reader = (&part.file).take(len);
            loop {
                let n = reader.read(&mut buf).map_err(src_io("read", path))?;
                let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
                part.hasher.update(chunk);
                part.len += n as u64;
                progress.advance(n as u64);
            }
            progress.finish();
        }
        part.file.seek(SeekFrom::Start(part.len)).map_err(src_io("seek", path))?;
        Ok(part)
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// True when the bytes so far are exactly `size` long with digest `sha256`.
    pub(crate) fn matches(&self, size: u64, sha256: &str) -> bool {
        self.len == size && hex(&self.hasher.clone().finalize()).eq_ignore_ascii_case(sha256)
    }

    /// Discards the contents (the server sent the whole file instead of a range).
    pub(crate) fn restart(&mut self) -> Result<(), SourceError> {
        self.file.set_len(0).map_err(src_io("truncate", &self.path))?;
        self.file.seek(SeekFrom::Start(0)).map_err(src_io("seek", &self.path))?;
        self.hasher = Sha256::new();
        self.len = 0;
        Ok(())
    }

    /// Appends everything `reader` yields, hashing as it goes. Fails with
    /// [`CopyError::TooLong`] (without writing the excess) once the file would
    /// exceed `max_len`.
    pub(crate) fn copy_from(&mut self, reader: &mut dyn Read, max_len: u64, progress: &dyn Progress) -> Result<(), CopyError> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            };
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { return Ok(()) };
            if self.len.saturating_add(n as u64) > max_len {
                return Err(CopyError::TooLong);
            }
            self.file.write_all(chunk).map_err(|e| CopyError::Write(src_io("write", &self.path)(e)))?;
            self.hasher.update(chunk);
            self.len += n as u64;
            progress.advance(n as u64);
        }
    }

    /// Flushes what was written to disk so a later pull can resume from it.
    pub(crate) fn keep(self) -> Result<(), SourceError> {
        self.file.sync_data().map_err(src_io("fsync", &self.path))
    }

    /// Deletes the `.part` file.
    pub(crate) fn discard(self) {
        drop(self.file);
        // Best effort: a leftover .part is re-validated (and truncated if too long) next time.
        let _ = fs::remove_file(&self.path);
    }

    /// Verifies size and SHA-256; on success fsyncs and renames to `dest`,
    /// on mismatch deletes the `.part` and names expected and found values.
    pub(crate) fn commit(self, size: u64, sha256: &str, dest: &Path) -> Result<(), SourceError> {
        if self.len != size {
            let found = self.len;
            self.discard();
            return Err(SourceError::Size { expected: size, found });
        }
        let found = hex(&self.hasher.clone().finalize());
        if !found.eq_ignore_ascii_case(sha256) {
            self.discard();
            return Err(SourceError::Sha { expected: sha256.to_ascii_lowercase(), found });
        }
        self.file.sync_all().map_err(src_io("fsync", &self.path))?;
        drop(self.file);
        fs::rename(&self.path, dest).map_err(src_io("rename into place", dest))?;
        sync_parent(dest);
        Ok(())
    }
}

/// Makes a rename durable by fsyncing the containing directory (Unix only;
/// other platforms cannot open directories as files).
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        // Best effort: the data itself is already synced; this only orders the rename.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    fn sha(data: &[u8]) -> String {
        hex(&Sha256::digest(data))
    }

    #[test]
    fn verify_file_checks_size_then_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"hello").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        verify_file(&p, 5, &sha(b"hello").to_ascii_uppercase()).unwrap();
        match verify_file(&p, 6, &sha(b"hello")) {
            Err(HubError::SizeMismatch { expected: 6, found: 5, .. }) => {}
            other => panic!("{other:?}"),
        }
        match verify_file(&p, 5, &sha(b"world")) {
            Err(HubError::ShaMismatch { expected, found, .. }) => {
                assert_eq!((expected, found), (sha(b"world"), sha(b"hello")));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(verify_file(&dir.path().join("none"), 1, "x"), Err(HubError::Io { .. })));
    }

    #[test]
    fn resume_rehashes_prefix_and_commit_renames() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("m.part");
        let dest = dir.path().join("m");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&part, &data[..70_000]).unwrap();
        let mut p = PartFile::resume(&part, data.len() as u64, &NoProgress).unwrap();
        assert_eq!(p.len(), 70_000);
        p.copy_from(&mut &data[70_000..], data.len() as u64, &NoProgress).unwrap();
        p.commit(data.len() as u64, &sha(&data), &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert!(!part.exists());
    }

    #[test]
    fn too_long_part_is_truncated_and_overflow_refused() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("m.part");
        fs::write(&part, [1u8; 50]).unwrap();
        let mut p = PartFile::resume(&part, 10, &NoProgress).unwrap();
        assert_eq!(p.len(), 0);
        assert!(matches!(p.copy_from(&mut &[0u8; 11][..], 10, &NoProgress), Err(CopyError::TooLong)));
    }

    #[test]
    fn commit_mismatch_deletes_part() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("m.part");
        let dest = dir.path().join("m");
        let mut p = PartFile::create(&part).unwrap();
        p.copy_from(&mut &b"abc"[..], 3, &NoProgress).unwrap();
        match p.commit(3, &sha(b"abd"), &dest) {
            Err(SourceError::Sha { expected, found }) => assert_eq!((expected, found), (sha(b"abd"), sha(b"abc"))),
            other => panic!("{other:?}"),
        }
        assert!(!part.exists() && !dest.exists());
        let mut p = PartFile::create(&part).unwrap();
        p.copy_from(&mut &b"ab"[..], 3, &NoProgress).unwrap();
        assert!(matches!(p.commit(3, &sha(b"ab"), &dest), Err(SourceError::Size { expected: 3, found: 2 })));
        assert!(!part.exists() && !dest.exists());
    }
}
