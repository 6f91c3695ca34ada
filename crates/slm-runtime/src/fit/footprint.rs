//! What a model costs, independent of the device: file size, bytes of weights by type, and the
//! shape of every matrix product a token goes through.

use crate::error::RuntimeError;
use slm_format::{GgmlType, GgufFile};
use slm_model::quantize::{plan, QuantizeOptions};
use slm_model::ModelConfig;

/// One matrix a forward pass multiplies by.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearShape {
    /// Tensor name.
    pub name: String,
    /// Storage type.
    pub dtype: GgmlType,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// Bytes of the weight.
    pub bytes: u64,
}

/// A model as the predictor sees it.
#[derive(Clone, Debug)]
pub struct Footprint {
    /// Hyper-parameters.
    pub config: ModelConfig,
    /// Size of the GGUF file (download size): header + tensor data.
    pub file_bytes: u64,
    /// Bytes of all tensors (resident once the model has run: weights are memory-mapped).
    pub tensor_bytes: u64,
    /// Block matrices (every token multiplies by each).
    pub block_linears: Vec<LinearShape>,
    /// The output head (only the positions whose logits are wanted multiply by it).
    pub output: LinearShape,
    /// Parameters.
    pub n_params: u64,
}

impl Footprint {
    /// The footprint of `file`, or of `file` converted with `quant` (types from the quantize plan;
    /// the header is assumed unchanged in size).
    pub fn of(file: &GgufFile, quant: Option<&QuantizeOptions>) -> Result<Footprint, RuntimeError> {
        let config = ModelConfig::from_gguf(file)?;
        let types: Vec<(GgmlType, u64)> = match quant {
            Some(opts) => plan(file, opts)
                .map_err(|e| RuntimeError::InvalidRequest(format!("planning the conversion: {e}")))?
                .tensors
                .iter()
                .map(|t| (t.to, t.bytes_out))
                .collect(),
            None => file.tensors().iter().map(|t| (t.dtype, t.n_bytes)).collect(),
        };
        let tensor_bytes: u64 = types.iter().map(|t| t.1).sum();
        let header = file.data_offset();
        let shape = |i: usize| {
            let t = &file.tensors()[i];
            LinearShape {
                name: t.name.clone(),
                dtype: types[i].0,
                rows: t.dims.get(1).copied().unwrap_or(1) as usize,
                cols: t.dims.first().copied().unwrap_or(0) as usize,
                bytes: types[i].1,
            }
        };
        let index = |name: &str| file.tensors().iter().position(|t| t.name == name);
        let block_linears =
            (0..file.tensors().len()).filter(|&i| is_block_linear(&file.tensors()[i].name)).map(shape).collect();
        let out_index = index("output.weight").or_else(|| index("token_embd.weight")).ok_or_else(|| {
            RuntimeError::InvalidRequest("the model has neither output.weight nor token_embd.weight".into())
        })?;
        Ok(Footprint {
            n_params: config.n_params(),
            config,
            file_bytes: header + tensor_bytes,
            tensor_bytes,
            block_linears,
            output: shape(out_index),
        })
    }
}

fn is_block_linear(name: &str) -> bool {
    name.starts_with("blk.")
        && ["attn_q.", "attn_k.", "attn_v.", "attn_output.", "ffn_gate.", "ffn_up.", "ffn_down."]
            .iter()
            .any(|k| name.contains(k))
        && name.ends_with(".weight")
}
