//! Where a [`super::GgufFile`]'s bytes live: memory-mapped from the file, or read into private
//! memory backed by transparent huge pages.
//!
//! Why it matters: generating one token reads every weight once, and with 4 KiB pages a 100 MB
//! model spans 25,000 pages, so the page-table walks of TLB misses become a visible share of the
//! decode time. File mappings get no huge pages on common Linux setups (ext4 without
//! read-only THP for file systems), but anonymous memory does after `madvise(MADV_HUGEPAGE)`:
//! on the development machine (Zen 5, Linux 6.18) that made generation 7–15% faster on
//! SmolLM2-135M Q4_0/Q4_1/Q8_0 (docs/BENCHMARKS.md). The price is reading the whole file up
//! front and memory the kernel cannot evict, so [`Residency::Auto`] keeps large files mapped.

use std::fs::File;
use std::io::Read;

/// How a GGUF file is held in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Residency {
    /// Memory-mapped read-only: opens instantly, shares the page cache with other processes,
    /// and the kernel may evict (and later re-read) pages under memory pressure.
    Mapped,
    /// Read into private memory that asks for transparent huge pages (Linux): fewer TLB misses
    /// on every pass over the weights, at the cost of reading the file at open. Falls back to
    /// [`Residency::Mapped`] where such memory cannot be had.
    Resident,
    /// [`Residency::Resident`] on Linux when the file takes at most half the memory available
    /// now, else [`Residency::Mapped`].
    #[default]
    Auto,
}

impl Residency {
    /// Whether a file of `len` bytes should be read into memory under this policy.
    pub(crate) fn reads_into_memory(self, len: u64) -> bool {
        match self {
            Residency::Mapped => false,
            Residency::Resident => true,
            Residency::Auto => {
                cfg!(target_os = "linux")
                    && available_memory().is_some_and(|avail| len <= avail / 2)
            }
        }
    }
}

/// Reads all `len` bytes of `file` into anonymous memory that asks for huge pages. `Ok(None)`
/// when such memory cannot be allocated (the caller maps the file instead).
pub(crate) fn read_resident(file: &mut File, len: u64) -> std::io::Result<Option<memmap2::Mmap>> {
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    let Ok(mut mem) = memmap2::MmapMut::map_anon(len) else {
        return Ok(None);
    };
    // Advice is a hint: without THP the memory still works, only with small pages.
    #[cfg(target_os = "linux")]
    let _ = mem.advise(memmap2::Advice::HugePage);
    file.read_exact(&mut mem)?;
    Ok(Some(mem.make_read_only()?))
}

/// Memory available to a new process on Linux (`MemAvailable` from `/proc/meminfo`, in bytes),
/// if readable.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
