//! Importance matrices: per input column of each weight matrix, the mean of the squared
//! activation entering it on calibration text (llama.cpp's `imatrix`). Encoders weight their
//! rounding error by it, so the columns that carry large activations are kept most precisely.
//!
//! Files use llama.cpp's GGUF imatrix layout, so `llama-imatrix` output can be used by
//! `slm quantize` and slm's output by `llama-quantize`: per weight `W`, tensors
//! `W.in_sum2` (F32 `[cols, n_expert]`, Σ x²) and `W.counts` (F32 `[1, n_expert]`, tokens seen),
//! plus `imatrix.datasets`, `imatrix.chunk_count`, `imatrix.chunk_size`. The older binary
//! `.dat` layout is read too.

use super::error::QuantizeError;
use crate::observe::{ActivationObserver, Site};
use slm_format::{GgmlType, GgufFile, GgufWriter};
use std::collections::BTreeMap;
use std::path::Path;

/// Largest legacy `.dat` entry count accepted (far above any model).
pub const LEGACY_MAX_ENTRIES: usize = 1 << 20;
/// Longest legacy `.dat` entry (or dataset) name accepted, in bytes.
pub const LEGACY_MAX_NAME: usize = 4096;
/// Longest legacy `.dat` vector accepted, in values.
pub const LEGACY_MAX_VALUES: usize = 1 << 28;

/// Accumulated statistics for one weight.
#[derive(Clone, Debug, PartialEq)]
pub struct ImatrixEntry {
    /// Σ x² per input column, per expert (`[n_expert][cols]`).
    pub sums: Vec<f32>,
    /// Tokens accumulated, per expert.
    pub counts: Vec<f32>,
}

/// Importance vectors for a model's weights, ready to use by the encoders.
#[derive(Clone, Debug, Default)]
pub struct ImportanceMatrix {
    entries: BTreeMap<String, ImatrixEntry>,
    /// Mean squared activation per column (`sums / counts`; 1 where nothing was seen).
    normalized: BTreeMap<String, Vec<f32>>,
    /// Names of the calibration texts.
    pub datasets: Vec<String>,
    /// Chunks of calibration text processed.
    pub chunk_count: u32,
    /// Tokens per chunk.
    pub chunk_size: u32,
}

impl ImportanceMatrix {
    /// Builds a matrix from raw entries (checks shapes and finiteness).
    pub fn from_entries(
        entries: BTreeMap<String, ImatrixEntry>,
        datasets: Vec<String>,
        chunk_count: u32,
        chunk_size: u32,
    ) -> Result<ImportanceMatrix, QuantizeError> {
        let mut normalized = BTreeMap::new();
        for (name, e) in &entries {
            let n_mat = e.counts.len();
            if n_mat == 0 || e.sums.is_empty() || e.sums.len() % n_mat != 0 {
                return Err(QuantizeError::Imatrix(format!(
                    "entry '{name}' has {} sums for {n_mat} counts; the file is malformed",
                    e.sums.len()
                )));
            }
            if let Some(v) = e.sums.iter().chain(&e.counts).find(|v| !v.is_finite() || **v < 0.0) {
                return Err(QuantizeError::Imatrix(format!("entry '{name}' contains the invalid value {v}")));
            }
            let cols = e.sums.len() / n_mat;
            let mut values = vec![1.0f32; e.sums.len()];
            for (j, &count) in e.counts.iter().enumerate() {
                if count > 0.0 {
                    for i in 0..cols {
                        values[j * cols + i] = e.sums[j * cols + i] / count;
                    }
                }
            }
            // A tiny (subnormal) count makes sums / count overflow to infinity, which would poison
            // the quantizer's weighting. Found by fuzz/fuzz_targets/imatrix.rs; test:
            // tests/fuzz_regressions.rs.
            if values.iter().any(|v| !v.is_finite()) {
                return Err(QuantizeError::Imatrix(format!(
                    "entry '{name}': a sum divided by its count overflows (a count is too small); the file is malformed"
                )));
            }
            normalized.insert(name.clone(), values);
        }
        Ok(ImportanceMatrix { entries, normalized, datasets, chunk_count, chunk_size })
    }

    /// Number of weights with statistics.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no statistics at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The raw entries.
    pub fn entries(&self) -> &BTreeMap<String, ImatrixEntry> {
        &self.entries
    }

    /// Mean squared activations for `name`, if present.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.normalized.get(name).map(Vec::as_slice)
    }

    /// The importance vector(s) for a tensor of `dims`, checked against its shape: `None` when the
    /// matrix has no entry for it (llama.cpp then quantizes it without).
    pub fn for_tensor(&self, name: &str, dims: &[u64]) -> Result<Option<&[f32]>, QuantizeError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let cols = dims.first().copied().unwrap_or(0);
        let n_expert = dims.get(2).copied().unwrap_or(1) * dims.get(3).copied().unwrap_or(1);
        if v.len() as u64 != cols.saturating_mul(n_expert) {
            return Err(QuantizeError::Imatrix(format!(
                "entry '{name}' has {} values but the tensor has {cols} columns × {n_expert} experts; the imatrix was computed for another model",
                v.len()
            )));
        }
        Ok(Some(v))
    }

    /// Reads a GGUF imatrix (llama.cpp ≥ b5942 / slm) or a legacy `.dat` file.
    pub fn load(path: &Path) -> Result<ImportanceMatrix, QuantizeError> {
        let bytes =
            std::fs::read(path).map_err(|e| QuantizeError::Imatrix(format!("cannot read {}: {e}", path.display())))?;
        if bytes.starts_with(b"GGUF") {
            Self::from_gguf(&GgufFile::from_bytes(bytes)?)
        } else {
            Self::from_legacy(&bytes).map_err(|e| QuantizeError::Imatrix(format!("{}: {e}", path.display())))
        }
    }

    fn from_gguf(file: &GgufFile) -> Result<ImportanceMatrix, QuantizeError> {
        let md = file.metadata();
        let datasets = md.get_str_array("imatrix.datasets").map(<[String]>::to_vec).unwrap_or_default();
        let chunk_count = md.get_u32_opt("imatrix.chunk_count")?.unwrap_or(0);
        let chunk_size = md.get_u32_opt("imatrix.chunk_size")?.unwrap_or(0);
        let mut entries = BTreeMap::new();
        for t in file.tensors() {
            let Some(name) = t.name.strip_suffix(".in_sum2") else { continue };
            let counts = file.tensor(&format!("{name}.counts")).ok_or_else(|| {
                QuantizeError::Imatrix(format!("'{}' has no matching '{name}.counts' tensor", t.name))
            })?;
            let sums = f32_values(file, t)?;
            let counts = f32_values(file, counts)?;
            entries.insert(name.to_string(), ImatrixEntry { sums, counts });
        }
        if entries.is_empty() {
            return Err(QuantizeError::Imatrix(
                "the GGUF file holds no '*.in_sum2' tensors; it is not an imatrix".into(),
            ));
        }
        Self::from_entries(entries, datasets, chunk_count, chunk_size)
    }

    /// llama.cpp's original binary layout: i32 n; n × (i32 len, name, i32 ncall, i32 nval,
    /// f32[nval] (already divided by ncall… then multiplied back: sums/ncall is the mean)); then
    /// optionally i32 chunk count, i32 len, dataset name.
    fn from_legacy(bytes: &[u8]) -> Result<ImportanceMatrix, String> {
        let mut r = Reader { bytes, pos: 0 };
        let n = r.count(LEGACY_MAX_ENTRIES, "entry count")?;
        if n == 0 {
            return Err("not a GGUF or legacy imatrix file (no entries)".into());
        }
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let len = r.count(LEGACY_MAX_NAME, "name length")?;
            let name = String::from_utf8(r.take(len)?.to_vec()).map_err(|_| "an entry name is not UTF-8")?;
            let ncall = r.i32()?;
            let nval = r.count(LEGACY_MAX_VALUES, "value count")?;
            if nval == 0 {
                return Err(format!("entry '{name}' has no values"));
            }
            let sums: Vec<f32> =
                r.take(nval * 4)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            // Stored values are sum/ncall·ncall-scaled means; the loader divides by ncall.
            entries.insert(name, ImatrixEntry { sums, counts: vec![ncall.max(0) as f32] });
        }
        let (mut chunk_count, mut datasets) = (0, Vec::new());
        if r.pos < bytes.len() {
            chunk_count = r.i32()?.max(0) as u32;
            if let Ok(len) = r.count(LEGACY_MAX_NAME, "dataset name length") {
                if let Ok(name) = r.take(len) {
                    datasets.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
        Self::from_entries(entries, datasets, chunk_count, 0).map_err(|e| e.to_string())
    }

    /// Writes the matrix in llama.cpp's GGUF imatrix layout, atomically.
    pub fn save(&self, path: &Path) -> Result<(), QuantizeError> {
        let mut w = GgufWriter::new();
        w.add_string("general.type", "imatrix");
        w.add_str_array("imatrix.datasets", &self.datasets);
        w.add_u32("imatrix.chunk_count", self.chunk_count);
        w.add_u32("imatrix.chunk_size", self.chunk_size);
        for (name, e) in &self.entries {
            let n_mat = e.counts.len() as u64;
            w.add_tensor_f32(format!("{name}.in_sum2"), &[e.sums.len() as u64 / n_mat, n_mat], &e.sums)?;
            w.add_tensor_f32(format!("{name}.counts"), &[1, n_mat], &e.counts)?;
        }
        w.write_file(path)?;
        Ok(())
    }
}

fn f32_values(file: &GgufFile, t: &slm_format::TensorInfo) -> Result<Vec<f32>, QuantizeError> {
    if t.dtype != GgmlType::F32 {
        return Err(QuantizeError::Imatrix(format!("tensor '{}' is {}, expected F32", t.name, t.dtype)));
    }
    Ok(file.tensor_data(t).chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Bounds-checked little-endian reader for the legacy format.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("the file is truncated")?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn count(&mut self, max: usize, what: &str) -> Result<usize, String> {
        let v = self.i32()?;
        usize::try_from(v).ok().filter(|&n| n <= max).ok_or_else(|| format!("{what} {v} is out of range (0..={max})"))
    }
}

/// Accumulates Σ x² per input column of every block linear during forward passes.
#[derive(Debug, Default)]
pub struct ImatrixCollector {
    /// Per (layer, site): Σ x² per column (f64 to keep long sums exact enough) and tokens seen.
    sums: BTreeMap<(usize, SiteKey), (Vec<f64>, u64)>,
}

/// `Site` ordered for the map.
type SiteKey = u8;

fn site_key(site: Site) -> SiteKey {
    Site::ALL.iter().position(|&s| s == site).unwrap_or(0) as u8
}

impl ImatrixCollector {
    /// An empty collector.
    pub fn new() -> ImatrixCollector {
        ImatrixCollector::default()
    }

    /// Tokens observed so far (at the first site of block 0).
    pub fn n_tokens(&self) -> u64 {
        self.sums.get(&(0, site_key(Site::AttnIn))).map_or(0, |e| e.1)
    }

    /// The statistics as an importance matrix with llama.cpp's weight names.
    pub fn finish(
        &self,
        datasets: Vec<String>,
        chunk_count: u32,
        chunk_size: u32,
    ) -> Result<ImportanceMatrix, QuantizeError> {
        let mut entries = BTreeMap::new();
        for (&(layer, key), (sums, count)) in &self.sums {
            let site = Site::ALL[key as usize];
            let sums32: Vec<f32> = sums.iter().map(|&s| s as f32).collect();
            for w in site.weight_names() {
                let e = ImatrixEntry { sums: sums32.clone(), counts: vec![*count as f32] };
                entries.insert(format!("blk.{layer}.{w}"), e);
            }
        }
        ImportanceMatrix::from_entries(entries, datasets, chunk_count, chunk_size)
    }
}

impl ActivationObserver for ImatrixCollector {
    fn observe(&mut self, layer: usize, site: Site, x: &[f32], n_tokens: usize) {
        if n_tokens == 0 {
            return;
        }
        let cols = x.len() / n_tokens;
        let (sums, count) = self.sums.entry((layer, site_key(site))).or_insert_with(|| (vec![0.0; cols], 0));
        if sums.len() != cols {
            return; // shapes never change within a model; ignore rather than corrupt
        }
        for row in x.chunks_exact(cols) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += f64::from(v) * f64::from(v);
            }
        }
        *count += n_tokens as u64;
    }
}
