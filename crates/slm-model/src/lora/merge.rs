//! Merging adapters into a model: `W' = W + Σ s·(alpha/r)·B·A`, computed in f32 and written as
//! a new GGUF (`slm lora merge`).
//!
//! Merged tensors keep the base tensor's type (re-encoded with ggml's encoders) unless a
//! quantization is requested, in which case the merged tensors are written as F32 to a
//! temporary file next to the output and the whole model goes through [`crate::quantize`]
//! (the same rules and encoders as `slm quantize`). Other tensors are copied byte for byte.

use super::gguf::parse_layer;
use super::{LoraAdapter, LoraError, LoraStack, LoraTarget};
use crate::config::ModelConfig;
use crate::quantize::{quantize_gguf, QuantizeOptions, QuantizeReport};
use crate::weights::BLOCK_MAP_KEY;
use slm_format::{GgmlType, GgufFile, GgufWriter, TensorInfo};
use slm_kernels::quant::{dequantize_row, quantize_row};
use std::path::{Path, PathBuf};

/// What [`merge_file`] did.
#[derive(Clone, Debug, Default)]
pub struct MergeReport {
    /// Tensors changed by the adapters.
    pub n_merged: usize,
    /// Tensors in the output.
    pub n_tensors: usize,
    /// Adapters with a non-zero scale.
    pub n_adapters: usize,
    /// The quantization pass, when one was requested.
    pub quantize: Option<QuantizeReport>,
}

/// Merges `adapters` (with user scales) into the model in `base`; merged tensors are encoded
/// in `merged_type` when given (F32 for a later quantization pass), else in their own type.
pub fn merge_gguf(
    base: &GgufFile,
    adapters: &[(LoraAdapter, f32)],
    merged_type: Option<GgmlType>,
) -> Result<(GgufWriter, MergeReport), LoraError> {
    let cfg = ModelConfig::from_gguf(base)?;
    if base.metadata().contains_key(BLOCK_MAP_KEY) {
        return Err(LoraError::Invalid(format!(
            "the model shares blocks between layers ({BLOCK_MAP_KEY}); merging would unshare them: apply the adapter at run time with --lora instead"
        )));
    }
    let stack = LoraStack::new(&cfg, adapters)?;
    let mut w = GgufWriter::new();
    for (key, value) in base.metadata().iter() {
        if !key.starts_with("split.") {
            w.add(key, value.clone());
        }
    }
    let mut report = MergeReport { n_adapters: stack.n_adapters(), ..MergeReport::default() };
    for info in base.tensors() {
        let term = block_weight(&info.name).and_then(|(layer, target)| stack.term(layer, target));
        match term {
            None => {
                w.add_tensor(info.name.clone(), &info.dims, info.dtype, base.tensor_data(info).to_vec())?;
            }
            Some(term) => {
                let to = merged_type.unwrap_or(info.dtype);
                let data = merge_tensor(base, info, term, to)?;
                w.add_tensor(info.name.clone(), &info.dims, to, data)?;
                report.n_merged += 1;
            }
        }
        report.n_tensors += 1;
    }
    Ok((w, report))
}

/// [`merge_gguf`] from `base` to `out` (atomic), then, with `quantize`, re-quantized with the
/// `slm quantize` pipeline (the F32 intermediate lives next to `out` and is removed).
pub fn merge_file(
    base: &Path,
    adapters: &[(LoraAdapter, f32)],
    out: &Path,
    quantize: Option<&QuantizeOptions>,
) -> Result<MergeReport, LoraError> {
    if let (Ok(a), Ok(b)) = (base.canonicalize(), out.canonicalize()) {
        if a == b {
            return Err(LoraError::Invalid(format!("the output {} is the base model; write elsewhere", out.display())));
        }
    }
    let file = GgufFile::open(base)?;
    let Some(opts) = quantize else {
        let (w, report) = merge_gguf(&file, adapters, None)?;
        w.write_file(out)?;
        return Ok(report);
    };
    let tmp = TempFile(temp_name(out)?);
    let (w, mut report) = merge_gguf(&file, adapters, Some(GgmlType::F32))?;
    w.write_file(&tmp.0)?;
    drop(w);
    let merged = GgufFile::open(&tmp.0)?;
    let (qw, qreport) = quantize_gguf(&merged, opts, &mut |_, _, _| {})?;
    qw.write_file(out)?;
    report.quantize = Some(qreport);
    Ok(report)
}

/// Removes the intermediate file however the merge ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: a leftover temporary file is harmless and visibly named.
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_name(out: &Path) -> Result<PathBuf, LoraError> {
    let name = out.file_name().ok_or_else(|| LoraError::Invalid(format!("{} does not name a file", out.display())))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".merge-f32-{}", std::process::id()));
    Ok(out.with_file_name(tmp))
}

/// `blk.N.<target>.weight` → `(N, target)`.
fn block_weight(name: &str) -> Option<(usize, LoraTarget)> {
    let rest = name.strip_prefix("blk.")?.strip_suffix(".weight")?;
    let (n, infix) = rest.split_once('.')?;
    let target = LoraTarget::ALL.into_iter().find(|t| t.gguf_name() == infix)?;
    Some((parse_layer(n)?, target))
}

/// Decodes the base tensor, adds `B·A`, encodes it as `to`.
fn merge_tensor(
    base: &GgufFile,
    info: &TensorInfo,
    term: &super::LoraTerm,
    to: GgmlType,
) -> Result<Vec<u8>, LoraError> {
    if info.dims.as_slice() != [term.n_in as u64, term.n_out as u64] {
        return Err(LoraError::Shape {
            name: info.name.clone(),
            expected: vec![term.n_in as u64, term.n_out as u64],
            found: info.dims.clone(),
            hint: " (the base weight does not fit the adapter)",
        });
    }
    let mut w = vec![0.0f32; term.n_in * term.n_out];
    dequantize_row(info.dtype, base.tensor_data(info), &mut w).map_err(crate::ModelError::from)?;
    term.add_delta_to(&mut w);
    let row_bytes = to
        .row_bytes(term.n_in as u64)
        .ok_or_else(|| LoraError::Invalid(format!("{}: {} columns do not fit {to} blocks", info.name, term.n_in)))?
        as usize;
    let mut out = vec![0u8; row_bytes * term.n_out];
    for (src, dst) in w.chunks_exact(term.n_in).zip(out.chunks_exact_mut(row_bytes)) {
        quantize_row(to, src, dst).map_err(crate::ModelError::from)?;
    }
    Ok(out)
}
