//! Converting a whole GGUF model: read each tensor, decode rows to f32, encode them in the
//! chosen type (in parallel over rows), and assemble the output file with the source metadata.

use super::error::QuantizeError;
use super::ftype::FileType;
use super::imatrix::ImportanceMatrix;
use super::policy::{choose_types, PolicyModel, PolicyOptions, TensorShape};
use slm_format::{GgmlType, GgufFile, GgufWriter, Value};
use slm_kernels::quant::{dequantize_row, quantize_row, quantize_row_weighted};
use std::path::Path;

/// `general.quantization_version` written by ggml's current block formats.
const QUANTIZATION_VERSION: u32 = 2;

/// Everything `slm quantize` can be asked to do.
#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    /// Preset, mix and overrides.
    pub policy: PolicyOptions,
    /// Allow re-encoding tensors that are already quantized (quality drops twice).
    pub allow_requantize: bool,
    /// Worker threads for encoding (≥ 1).
    pub n_threads: usize,
    /// Activation statistics that weight the encoders' error (llama.cpp's imatrix).
    pub imatrix: Option<ImportanceMatrix>,
}

impl QuantizeOptions {
    /// The preset `ftype` with llama-quantize's default mix (no overrides, no importance matrix,
    /// no re-quantization of already quantized tensors) on `n_threads` threads (at least 1).
    pub fn preset(ftype: FileType, n_threads: usize) -> QuantizeOptions {
        QuantizeOptions {
            policy: PolicyOptions::preset(ftype),
            allow_requantize: false,
            n_threads: n_threads.max(1),
            imatrix: None,
        }
    }
}

/// What happened to one tensor.
#[derive(Clone, Debug)]
pub struct TensorReport {
    /// GGUF name.
    pub name: String,
    /// Dims (ggml order).
    pub dims: Vec<u64>,
    /// Type in the input file.
    pub from: GgmlType,
    /// Type in the output file.
    pub to: GgmlType,
    /// Elements.
    pub n_elements: u64,
    /// Bytes in the input.
    pub bytes_in: u64,
    /// Bytes in the output.
    pub bytes_out: u64,
    /// An importance vector was used for this tensor.
    pub weighted: bool,
}

/// Summary of a conversion (or of a dry run).
#[derive(Clone, Debug, Default)]
pub struct QuantizeReport {
    /// One entry per tensor, in file order.
    pub tensors: Vec<TensorReport>,
    /// Tensors whose row length forced another type than the rules chose.
    pub n_fallback: usize,
}

impl QuantizeReport {
    /// Total tensor bytes in the input.
    pub fn bytes_in(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes_in).sum()
    }

    /// Total tensor bytes in the output.
    pub fn bytes_out(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes_out).sum()
    }

    /// Total elements.
    pub fn n_elements(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements).sum()
    }

    /// Output bits per weight over all tensors.
    pub fn bits_per_weight(&self) -> f64 {
        self.bytes_out() as f64 * 8.0 / (self.n_elements().max(1) as f64)
    }
}

/// Reads the hyper-parameters the mix rules use. Works for any architecture: missing keys
/// fall back to neutral values rather than failing, as only the rules' details depend on them.
fn policy_model(file: &GgufFile) -> Result<PolicyModel, QuantizeError> {
    let md = file.metadata();
    let arch = md.get_str("general.architecture")?.to_string();
    let n_layer = md.get_u64_opt(&format!("{arch}.block_count"))?.unwrap_or(0) as usize;
    // Some architectures store per-layer head counts as arrays; those count as "unknown" (1).
    let n_head = md.get_u64(&format!("{arch}.attention.head_count")).unwrap_or(1).max(1);
    let n_head_kv = md.get_u64(&format!("{arch}.attention.head_count_kv")).unwrap_or(n_head).max(1);
    let n_expert = md.get_u64(&format!("{arch}.expert_count")).unwrap_or(0) as usize;
    Ok(PolicyModel { n_layer, n_gqa: (n_head / n_head_kv) as usize, n_expert, is_falcon: arch == "falcon" })
}

/// Decides every tensor's output type without converting anything (`--dry-run`).
pub fn plan(file: &GgufFile, opts: &QuantizeOptions) -> Result<QuantizeReport, QuantizeError> {
    let model = policy_model(file)?;
    let shapes: Vec<TensorShape<'_>> =
        file.tensors().iter().map(|t| TensorShape { name: &t.name, dims: &t.dims, dtype: t.dtype }).collect();
    let mut policy = opts.policy.clone();
    policy.has_imatrix = opts.imatrix.is_some();
    let (types, n_fallback) = choose_types(&shapes, &model, &policy);
    let mut tensors = Vec::with_capacity(types.len());
    for (t, &to) in file.tensors().iter().zip(&types) {
        let bytes_out = to.bytes_for(&t.dims).ok_or_else(|| QuantizeError::Shape {
            tensor: t.name.clone(),
            dims: t.dims.clone(),
            dtype: to,
        })?;
        let weighted = to != t.dtype && opts.imatrix.as_ref().is_some_and(|m| m.get(&t.name).is_some());
        tensors.push(TensorReport {
            name: t.name.clone(),
            dims: t.dims.clone(),
            from: t.dtype,
            to,
            n_elements: t.n_elements,
            bytes_in: t.n_bytes,
            bytes_out,
            weighted,
        });
    }
    Ok(QuantizeReport { tensors, n_fallback })
}

/// Converts `file` into a new model held in a [`GgufWriter`]. `progress` is called after each
/// tensor with its report, its index and the tensor count.
pub fn quantize_gguf(
    file: &GgufFile,
    opts: &QuantizeOptions,
    progress: &mut dyn FnMut(&TensorReport, usize, usize),
) -> Result<(GgufWriter, QuantizeReport), QuantizeError> {
    let report = plan(file, opts)?;
    let mut writer = GgufWriter::new();
    for (key, value) in file.metadata().iter() {
        if !key.starts_with("split.") {
            writer.add(key, value.clone());
        }
    }
    writer.add("general.quantization_version", Value::U32(QUANTIZATION_VERSION));
    writer.add("general.file_type", Value::U32(opts.policy.ftype.id()));
    let n = report.tensors.len();
    for (i, (info, rep)) in file.tensors().iter().zip(&report.tensors).enumerate() {
        let src = file.tensor_data(info);
        let data = if rep.to == rep.from {
            src.to_vec()
        } else {
            if rep.from.is_quantized() && !opts.allow_requantize {
                return Err(QuantizeError::RequantizeDisabled { tensor: rep.name.clone(), dtype: rep.from });
            }
            let importance = match &opts.imatrix {
                Some(m) => m.for_tensor(&rep.name, &rep.dims)?,
                None => None,
            };
            convert_tensor(rep, src, importance, opts.n_threads)?
        };
        writer.add_tensor(rep.name.clone(), &rep.dims, rep.to, data)?;
        progress(rep, i, n);
    }
    Ok((writer, report))
}

/// [`quantize_gguf`] from `input` to `output`; the output appears atomically (never half-written).
pub fn quantize_file(
    input: &Path,
    output: &Path,
    opts: &QuantizeOptions,
    progress: &mut dyn FnMut(&TensorReport, usize, usize),
) -> Result<QuantizeReport, QuantizeError> {
    if same_file(input, output) {
        return Err(QuantizeError::SameFile(output.to_path_buf()));
    }
    let file = GgufFile::open(input)?;
    let (writer, report) = quantize_gguf(&file, opts, progress)?;
    writer.write_file(output)?;
    Ok(report)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Re-encodes every row of one tensor, splitting rows across `n_threads` scoped threads.
fn convert_tensor(
    rep: &TensorReport,
    src: &[u8],
    importance: Option<&[f32]>,
    n_threads: usize,
) -> Result<Vec<u8>, QuantizeError> {
    let shape_err = || QuantizeError::Shape { tensor: rep.name.clone(), dims: rep.dims.clone(), dtype: rep.to };
    let n_per_row = *rep.dims.first().ok_or_else(shape_err)? as usize;
    let n_rows = (rep.n_elements / n_per_row.max(1) as u64) as usize;
    let row_in = rep.from.row_bytes(n_per_row as u64).ok_or_else(shape_err)? as usize;
    let row_out = rep.to.row_bytes(n_per_row as u64).ok_or_else(shape_err)? as usize;
    // Importance vectors are per expert: rows of expert e (dims[1] rows each) use slice e.
    let rows_per_expert = rep.dims.get(1).copied().unwrap_or(1).max(1) as usize;
    let mut out = vec![0u8; n_rows * row_out];
    let threads = n_threads.clamp(1, n_rows.max(1));
    let rows_per_thread = n_rows.div_ceil(threads).max(1);
    let results: Vec<Result<(), QuantizeError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = out
            .chunks_mut(rows_per_thread * row_out)
            .enumerate()
            .map(|(chunk, dst)| {
                scope.spawn(move || -> Result<(), QuantizeError> {
                    let mut row = vec![0f32; n_per_row];
                    let first = chunk * rows_per_thread;
                    for (k, dst_row) in dst.chunks_mut(row_out).enumerate() {
                        let r = first + k;
                        dequantize_row(rep.from, &src[r * row_in..(r + 1) * row_in], &mut row)?;
                        match importance {
                            Some(w) => {
                                let e = r / rows_per_expert;
                                quantize_row_weighted(rep.to, &row, &w[e * n_per_row..(e + 1) * n_per_row], dst_row)?
                            }
                            None => quantize_row(rep.to, &row, dst_row)?,
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(QuantizeError::WorkerPanicked))).collect()
    });
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(out)
}
