//! llama.cpp's GGUF LoRA adapter format (`convert_lora_to_gguf.py` writes it,
//! `llama_adapter_lora_init` reads it).
//!
//! Metadata: `general.type = "adapter"`, `adapter.type = "lora"`, `adapter.lora.alpha` (f32,
//! absent = 0 = no alpha/rank scaling), `general.architecture`. Tensors, per adapted weight
//! `blk.N.attn_q.weight`: `blk.N.attn_q.weight.lora_a` with ggml dims `[n_in, rank]` and
//! `.lora_b` with `[rank, n_out]` — the same bytes as row-major `A: [rank][n_in]` and
//! `B: [n_out][rank]`. As llama.cpp, `*_norm.weight` tensors (mergekit extras) are skipped.

use super::{LoraAdapter, LoraError, LoraPair, LoraTarget, MAX_RANK};
use slm_format::{GgmlType, GgufFile, GgufWriter, TensorInfo};
use std::collections::BTreeMap;
use std::path::Path;

/// Most layers an adapter name may refer to (the model config allows 1024).
const MAX_LAYER: usize = 1 << 16;

/// A pair's key: `(layer, target)`.
type PairKey = (usize, LoraTarget);

/// Which factor of a pair a tensor holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    A,
    B,
}

impl LoraAdapter {
    /// Writes the adapter as a llama.cpp GGUF LoRA adapter (F32 tensors), atomically.
    pub fn save_gguf(&self, path: &Path) -> Result<(), LoraError> {
        self.to_gguf_writer()?.write_file(path)?;
        Ok(())
    }

    /// The adapter as a GGUF writer (for tests and in-memory use).
    pub fn to_gguf_writer(&self) -> Result<GgufWriter, LoraError> {
        self.validate()?;
        let mut w = GgufWriter::new();
        w.add_string("general.architecture", self.arch.as_str())
            .add_string("general.type", "adapter")
            .add_string("adapter.type", "lora")
            .add_f32("adapter.lora.alpha", self.alpha);
        for (&(layer, target), p) in &self.pairs {
            let base = target.weight_name(layer);
            w.add_tensor_f32(format!("{base}.lora_a"), &[p.n_in as u64, p.rank as u64], &p.a)?;
            w.add_tensor_f32(format!("{base}.lora_b"), &[p.rank as u64, p.n_out as u64], &p.b)?;
        }
        Ok(w)
    }

    /// Reads a llama.cpp GGUF LoRA adapter. F32, F16 and BF16 tensors are accepted.
    pub fn load_gguf(path: &Path) -> Result<LoraAdapter, LoraError> {
        LoraAdapter::from_gguf(&GgufFile::open(path)?)
    }

    /// Reads an adapter from an opened GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<LoraAdapter, LoraError> {
        let md = file.metadata();
        let general_type = md.get_str_opt("general.type")?.unwrap_or("");
        if general_type != "adapter" {
            return Err(LoraError::NotAnAdapter {
                what: "general.type",
                found: general_type.into(),
                expected: "adapter",
            });
        }
        let adapter_type = md.get_str_opt("adapter.type")?.unwrap_or("");
        if adapter_type != "lora" {
            return Err(LoraError::NotAnAdapter { what: "adapter.type", found: adapter_type.into(), expected: "lora" });
        }
        let arch = md.get_str("general.architecture")?.to_string();
        let alpha = md.get_f32_opt("adapter.lora.alpha")?.unwrap_or(0.0);

        // Pair up the halves by base name first, checking names before touching any data.
        let mut halves: BTreeMap<PairKey, [Option<&TensorInfo>; 2]> = BTreeMap::new();
        for t in file.tensors() {
            let Some((key, half)) = parse_tensor_name(&t.name)? else {
                continue;
            };
            let slot = &mut halves.entry(key).or_default()[(half == Half::B) as usize];
            if slot.is_some() {
                return Err(LoraError::Duplicate { name: t.name.clone() });
            }
            *slot = Some(t);
        }
        let mut adapter = LoraAdapter::new(arch, 1, alpha);
        for ((layer, target), pair) in halves {
            let name = target.weight_name(layer);
            let (a, b) = match pair {
                [Some(a), Some(b)] => (a, b),
                [None, _] => return Err(LoraError::MissingHalf { name, missing: "lora_a" }),
                [_, None] => return Err(LoraError::MissingHalf { name, missing: "lora_b" }),
            };
            let p = read_pair(file, a, b)?;
            adapter.rank = adapter.rank.max(p.rank);
            adapter.pairs.insert((layer, target), p);
        }
        if adapter.pairs.is_empty() {
            return Err(LoraError::Invalid("the adapter has no LoRA tensors".into()));
        }
        adapter.validate()?;
        Ok(adapter)
    }
}

/// `blk.N.<target>.weight.lora_{a,b}` → `((N, target), half)`; `None` for skipped norm tensors.
fn parse_tensor_name(name: &str) -> Result<Option<(PairKey, Half)>, LoraError> {
    let unknown = |reason: &str| LoraError::UnknownTensor { name: name.into(), reason: reason.into() };
    let (base, half) = if let Some(b) = name.strip_suffix(".lora_a") {
        (b, Half::A)
    } else if let Some(b) = name.strip_suffix(".lora_b") {
        (b, Half::B)
    } else if name.ends_with("_norm.weight") {
        // llama.cpp ignores the norm vectors mergekit adds; so do we.
        return Ok(None);
    } else {
        return Err(unknown("the name does not end in .lora_a or .lora_b"));
    };
    let rest = base.strip_prefix("blk.").ok_or_else(|| unknown("only block projections (blk.N.…) are supported"))?;
    let (n, suffix) = rest.split_once('.').ok_or_else(|| unknown("no layer number"))?;
    let layer = parse_layer(n).ok_or_else(|| unknown("the layer number is not a small integer"))?;
    let infix = suffix.strip_suffix(".weight").ok_or_else(|| unknown("not a .weight tensor"))?;
    let target =
        LoraTarget::ALL.into_iter().find(|t| t.gguf_name() == infix).ok_or_else(|| unknown("unknown projection"))?;
    Ok(Some(((layer, target), half)))
}

/// A decimal layer index below [`MAX_LAYER`] (digits only, no sign).
pub(super) fn parse_layer(n: &str) -> Option<usize> {
    if n.is_empty() || n.len() > 6 || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|&l| l < MAX_LAYER)
}

/// Checks the ggml dims of A `[n_in, rank]` and B `[rank, n_out]`, then decodes both.
fn read_pair(file: &GgufFile, a: &TensorInfo, b: &TensorInfo) -> Result<LoraPair, LoraError> {
    let (n_in, rank) = match a.dims.as_slice() {
        [n_in, rank] => (*n_in, *rank),
        _ => return Err(shape(a, vec![0, 0], " (A must be 2-D, ggml dims [n_in, rank])")),
    };
    let n_out = match b.dims.as_slice() {
        [r, n_out] if *r == rank => *n_out,
        _ => {
            return Err(shape(
                b,
                vec![rank, 0],
                " (B must be ggml dims [rank, n_out], rank from A; a non-transposed lora_a is not supported)",
            ))
        }
    };
    if rank == 0 || rank > MAX_RANK as u64 || n_in == 0 || n_out == 0 {
        return Err(LoraError::Invalid(format!("'{}': rank {rank}, n_in {n_in}, n_out {n_out}", a.name)));
    }
    // The reader has checked that the data lies inside the file, so these sizes are bounded by it.
    Ok(LoraPair {
        n_in: n_in as usize,
        n_out: n_out as usize,
        rank: rank as usize,
        a: decode(file, a)?,
        b: decode(file, b)?,
    })
}

fn shape(t: &TensorInfo, expected: Vec<u64>, hint: &'static str) -> LoraError {
    LoraError::Shape { name: t.name.clone(), expected, found: t.dims.clone(), hint }
}

fn decode(file: &GgufFile, t: &TensorInfo) -> Result<Vec<f32>, LoraError> {
    if !matches!(t.dtype, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
        return Err(LoraError::TensorType { name: t.name.clone(), dtype: t.dtype });
    }
    let n = usize::try_from(t.dims.iter().product::<u64>())
        .map_err(|_| LoraError::Invalid(format!("'{}' is too large", t.name)))?;
    let mut out = vec![0.0f32; n];
    slm_kernels::quant::dequantize_row(t.dtype, file.tensor_data(t), &mut out).map_err(crate::ModelError::from)?;
    Ok(out)
}
