//! Which type each tensor gets: a port of llama.cpp's `llama_tensor_get_type` rules
//! (src/llama-quant.cpp at the llama-cpp-python 0.3.36 commit), so that `slm quantize` and
//! `llama-quantize` choose the same mix for the same preset, plus slm's overrides.
//!
//! Order of decisions for one tensor:
//! 1. Only 2-D+ tensors named `*weight` that are not norms, position/token-type embeddings or
//!    MoE routers are quantized ([`allows_quantization`]); the rest keep their type.
//! 2. `--token-embedding-type` / `--output-tensor-type` win for those two tensors.
//! 3. For a quantized preset: the first matching `--tensor-type PATTERN=TYPE` override, else the
//!    preset's mix rules (unless `pure`); then a fallback when the row length is not a multiple
//!    of the type's block (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, Q2_K/Q3_K → Q4_0, else F16).

use super::ftype::FileType;
use slm_format::GgmlType;

/// A `--tensor-type PATTERN=TYPE` rule: tensors whose name matches the regex get `dtype`.
#[derive(Clone, Debug)]
pub struct TensorTypeOverride {
    /// Regex searched (unanchored) in the tensor name, as llama-quantize does.
    pub pattern: regex::Regex,
    /// The type to use.
    pub dtype: GgmlType,
}

impl TensorTypeOverride {
    /// Parses `PATTERN=TYPE` (e.g. `attn_v=q8_0`, `blk\.[0-3]\.ffn_down=Q6_K`). The pattern is
    /// lower-cased like llama-quantize does; tensor names are lower-case.
    pub fn parse(text: &str) -> Result<TensorTypeOverride, String> {
        let (pattern, dtype) = text
            .split_once('=')
            .ok_or_else(|| format!("tensor type override '{text}' must look like PATTERN=TYPE, e.g. attn_v=q8_0"))?;
        if pattern.is_empty() {
            return Err(format!("tensor type override '{text}' has an empty tensor-name pattern"));
        }
        let dtype = parse_tensor_type(dtype)?;
        let pattern = regex::Regex::new(&pattern.to_ascii_lowercase())
            .map_err(|e| format!("tensor type override '{text}': bad pattern: {e}"))?;
        Ok(TensorTypeOverride { pattern, dtype })
    }
}

/// Tensor types `slm quantize` can write.
pub const WRITABLE_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q6_K,
    GgmlType::Q5_1,
    GgmlType::Q5_0,
    GgmlType::Q5_K,
    GgmlType::Q4_1,
    GgmlType::Q4_0,
    GgmlType::Q4_K,
    GgmlType::Q3_K,
    GgmlType::Q2_K,
];

/// Parses a single tensor type name (`q8_0`, `Q6_K`, `f16`) among [`WRITABLE_TYPES`].
pub fn parse_tensor_type(text: &str) -> Result<GgmlType, String> {
    let upper = text.trim().to_ascii_uppercase();
    WRITABLE_TYPES.iter().copied().find(|t| t.name().eq_ignore_ascii_case(&upper)).ok_or_else(|| {
        let names: Vec<&str> = WRITABLE_TYPES.iter().map(|t| t.name()).collect();
        format!("unknown tensor type '{text}'; use one of {}", names.join(", "))
    })
}

/// The parts of the model's hyper-parameters the rules look at.
#[derive(Clone, Copy, Debug)]
pub struct PolicyModel {
    /// `{arch}.block_count`.
    pub n_layer: usize,
    /// Query heads / KV heads (grouped-query factor); 1 when unknown.
    pub n_gqa: usize,
    /// Experts per MoE layer (0 for dense models).
    pub n_expert: usize,
    /// `general.architecture` is falcon (a few rules differ).
    pub is_falcon: bool,
}

/// Everything that decides tensor types.
#[derive(Clone, Debug)]
pub struct PolicyOptions {
    /// The preset.
    pub ftype: FileType,
    /// Use the default type for every quantizable tensor (no mix rules).
    pub pure: bool,
    /// Type for `output.weight` (and a tied `token_embd.weight`).
    pub output_type: Option<GgmlType>,
    /// Type for `token_embd.weight`.
    pub embedding_type: Option<GgmlType>,
    /// Keep `output.weight` as it is.
    pub leave_output: bool,
    /// Per-tensor overrides, first match wins.
    pub overrides: Vec<TensorTypeOverride>,
    /// An importance matrix will be used (changes one Q4_0/Q5_0 rule, as in llama.cpp).
    pub has_imatrix: bool,
}

impl PolicyOptions {
    /// The preset `ftype` with llama-quantize's default mix: no overrides, no importance matrix.
    pub fn preset(ftype: FileType) -> PolicyOptions {
        PolicyOptions {
            ftype,
            pure: false,
            output_type: None,
            embedding_type: None,
            leave_output: false,
            overrides: Vec::new(),
            has_imatrix: false,
        }
    }
}

/// The role of a tensor, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

fn category(name: &str) -> Category {
    use Category::*;
    if name == "output.weight" {
        Output
    } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        TokenEmbd
    } else if name.contains("attn_qkv.weight") || name.contains("attn_kv_b.weight") || name.contains("attn_v.weight") {
        AttnV
    } else if name.contains("attn_k.weight") {
        AttnK
    } else if name.contains("attn_q.weight") {
        AttnQ
    } else if name.contains("attn_output.weight") {
        AttnOutput
    } else if name.contains("ffn_up") {
        FfnUp
    } else if name.contains("ffn_gate") {
        FfnGate
    } else if name.contains("ffn_down") {
        FfnDown
    } else {
        Other
    }
}

/// llama.cpp's `tensor_allows_quantization` for the tensor families slm knows.
pub fn allows_quantization(name: &str, n_dims: usize, leave_output: bool) -> bool {
    const NEVER: [&str; 8] = [
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "attn_rel_b.weight",
        ".position_embd",
        ".rel_pos",
        ".patch_embd",
    ];
    n_dims >= 2
        && name.ends_with("weight")
        && !(leave_output && name == "output.weight")
        && name != "position_embd.weight"
        && name != "token_types.weight"
        && !NEVER.iter().any(|n| name.contains(n))
}

/// Layer number from a `blk.N.` prefix; `-1` for tensors outside the blocks.
pub fn layer_of(name: &str) -> i64 {
    name.strip_prefix("blk.").and_then(|rest| rest.split('.').next()).and_then(|n| n.parse::<i64>().ok()).unwrap_or(-1)
}

/// llama.cpp's tensor order (`weight_name_comparer`): by layer (non-layer tensors first), then name.
/// The mix rules count tensors in this order.
pub fn llama_cpp_order(names: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| layer_of(names[a]).cmp(&layer_of(names[b])).then_with(|| names[a].cmp(names[b])));
    order
}

fn use_more_bits(i_layer: i64, n_layers: i64) -> bool {
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

/// One tensor as the rules see it.
#[derive(Clone, Debug)]
pub struct TensorShape<'a> {
    /// GGUF name.
    pub name: &'a str,
    /// Dims in ggml order (`dims[0]` = row length).
    pub dims: &'a [u64],
    /// Current type.
    pub dtype: GgmlType,
}

/// Chooses the target type of every tensor (same order as `tensors`). Also returns how many
/// tensors fell back to another type because of their row length.
pub fn choose_types(tensors: &[TensorShape<'_>], model: &PolicyModel, opts: &PolicyOptions) -> (Vec<GgmlType>, usize) {
    let names: Vec<&str> = tensors.iter().map(|t| t.name).collect();
    let n_attention_wv = tensors.iter().filter(|t| category(t.name) == Category::AttnV).count() as i64;
    let has_output = names.contains(&"output.weight");
    let mut counters = Counters { n_attention_wv, n_layer: model.n_layer as i64, ..Counters::default() };
    let mut out: Vec<GgmlType> = tensors.iter().map(|t| t.dtype).collect();
    let mut n_fallback = 0;
    for i in llama_cpp_order(&names) {
        let t = &tensors[i];
        if !allows_quantization(t.name, t.dims.len(), opts.leave_output) {
            continue;
        }
        let cat = category(t.name);
        let tied = !has_output && cat == Category::TokenEmbd;
        let default = opts.ftype.default_type();
        let ty = if let (Some(ty), Category::TokenEmbd) = (opts.embedding_type, cat) {
            ty
        } else if let (Some(ty), Category::Output) = (opts.output_type, cat) {
            ty
        } else if let Some(o) = opts.overrides.iter().find(|o| o.pattern.is_match(t.name)) {
            o.dtype
        } else if opts.pure || !default.is_quantized() {
            default
        } else {
            mix_rule(default, t, cat, tied, model, opts, &mut counters)
        };
        // llama.cpp only falls back for quantized presets; a type whose block does not divide
        // the row could not be written at all, so slm always falls back.
        let (ty, fell_back) = fallback_type(t.dims[0], ty);
        n_fallback += usize::from(fell_back);
        out[i] = ty;
    }
    (out, n_fallback)
}

#[derive(Default)]
struct Counters {
    n_attention_wv: i64,
    n_layer: i64,
    i_attention_wv: i64,
    i_ffn_down: i64,
}

/// llama.cpp's `llama_tensor_get_type_impl` for the presets slm writes (no IQ/TQ/MXFP4 types).
fn mix_rule(
    mut new_type: GgmlType,
    t: &TensorShape<'_>,
    cat: Category,
    tied: bool,
    model: &PolicyModel,
    opts: &PolicyOptions,
    c: &mut Counters,
) -> GgmlType {
    use FileType as F;
    use GgmlType as G;
    let ftype = opts.ftype;
    if cat == Category::Output || tied {
        if let Some(ty) = opts.output_type {
            return ty;
        }
        let nx = t.dims[0];
        if model.is_falcon || !nx.is_multiple_of(new_type.block_size() as u64) {
            return G::Q8_0;
        }
        return if new_type != G::Q8_0 { G::Q6_K } else { new_type };
    }
    match cat {
        Category::TokenEmbd => {}
        Category::AttnV => {
            let i = c.i_attention_wv;
            new_type = match ftype {
                F::Q2_K => {
                    if model.n_gqa >= 4 {
                        G::Q4_K
                    } else {
                        G::Q3_K
                    }
                }
                F::Q2_K_S if model.n_gqa >= 4 => G::Q4_K,
                F::Q3_K_M => {
                    if i < 2 {
                        G::Q5_K
                    } else {
                        G::Q4_K
                    }
                }
                F::Q3_K_L => G::Q5_K,
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i, c.n_attention_wv) => G::Q6_K,
                F::Q4_K_S if i < 4 => G::Q5_K,
                _ => new_type,
            };
            if model.n_expert == 8 {
                new_type = G::Q8_0;
            }
            c.i_attention_wv += 1;
        }
        Category::AttnK if model.n_expert == 8 => new_type = G::Q8_0,
        Category::FfnDown => {
            // Dense models count occurrences; MoE models read the layer from the name.
            let i_layer = if model.n_expert > 1 { layer_of(t.name).max(0) } else { c.i_ffn_down };
            let n_layer = c.n_layer;
            new_type = match ftype {
                F::Q2_K => G::Q3_K,
                F::Q2_K_S if i_layer < n_layer / 8 => G::Q4_K,
                F::Q3_K_M => {
                    if i_layer < n_layer / 16 {
                        G::Q5_K
                    } else if !model.is_falcon || use_more_bits(i_layer, n_layer) {
                        G::Q4_K
                    } else {
                        G::Q3_K
                    }
                }
                F::Q3_K_L => {
                    if model.is_falcon {
                        G::Q4_K
                    } else {
                        G::Q5_K
                    }
                }
                F::Q4_K_M if model.is_falcon => {
                    if i_layer < n_layer / 16 {
                        G::Q6_K
                    } else if use_more_bits(i_layer, n_layer) {
                        G::Q5_K
                    } else {
                        G::Q4_K
                    }
                }
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i_layer, n_layer) => G::Q6_K,
                F::Q4_K_S if !model.is_falcon && i_layer < n_layer / 8 => G::Q5_K,
                F::Q4_0 if opts.has_imatrix && i_layer < n_layer / 8 => G::Q4_1,
                F::Q5_0 if opts.has_imatrix && i_layer < n_layer / 8 => G::Q5_1,
                _ => new_type,
            };
            c.i_ffn_down += 1;
        }
        Category::AttnOutput => {
            if !model.is_falcon {
                if model.n_expert == 8 {
                    if matches!(ftype, F::Q2_K | F::Q3_K_S | F::Q3_K_M | F::Q4_K_S | F::Q4_K_M) {
                        new_type = G::Q5_K;
                    }
                } else {
                    new_type = match ftype {
                        F::Q2_K => G::Q3_K,
                        F::Q3_K_M => G::Q4_K,
                        F::Q3_K_L => G::Q5_K,
                        _ => new_type,
                    };
                }
            } else if ftype == F::Q3_K_L {
                new_type = G::Q4_K;
            }
        }
        _ => {}
    }
    new_type
}

/// llama.cpp's `tensor_type_fallback`: a type whose block divides the row length.
fn fallback_type(ncols: u64, target: GgmlType) -> (GgmlType, bool) {
    use GgmlType as G;
    if ncols.is_multiple_of(target.block_size() as u64) {
        return (target, false);
    }
    let ty = match target {
        G::Q2_K | G::Q3_K => G::Q4_0,
        G::Q4_K => G::Q5_0,
        G::Q5_K => G::Q5_1,
        G::Q6_K => G::Q8_0,
        other => other,
    };
    let ty = if !ncols.is_multiple_of(ty.block_size() as u64) { G::F16 } else { ty };
    (ty, true)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
