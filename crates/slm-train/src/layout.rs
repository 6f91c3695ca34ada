//! Where every parameter tensor lives in the one flat `Vec<f32>` that holds a model's weights.
//!
//! Parameters, gradients and both Adam moments share this layout, so the optimizer, gradient
//! clipping and checkpoints work on plain slices. Tensor names and row/column order are GGUF's
//! (`blk.{i}.attn_q.weight` is `[rows = H*Dh][cols = D]`, row-major), so export is a copy.

use crate::error::TrainError;
use serde::{Deserialize, Serialize};
use slm_model::{Arch, ModelConfig};

/// What a parameter tensor is, for weight-decay masks and initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamKind {
    /// The token embedding `[V][D]` (also the output head when tied).
    Embedding,
    /// An RMSNorm gain `[D]`.
    Norm,
    /// A projection matrix `[out][in]`.
    Matrix,
}

/// One named tensor inside the flat parameter vector.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// GGUF tensor name.
    pub name: String,
    /// First element in the flat vector.
    pub offset: usize,
    /// Rows (1 for vectors).
    pub rows: usize,
    /// Columns (the contiguous dimension).
    pub cols: usize,
    /// What the tensor is.
    pub kind: ParamKind,
    /// Whether the tensor is a residual-branch output projection (`attn_output`, `ffn_down`),
    /// initialised smaller so the residual stream does not grow with depth.
    pub residual_out: bool,
}

impl TensorSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether the tensor has no elements (never true for a valid layout).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element range in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Offsets of one block's tensors in the flat vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockOffsets {
    /// `[D]`
    pub attn_norm: usize,
    /// `[H*Dh][D]`
    pub wq: usize,
    /// `[G*Dh][D]`
    pub wk: usize,
    /// `[G*Dh][D]`
    pub wv: usize,
    /// `[D][H*Dh]`
    pub wo: usize,
    /// `[D]`
    pub ffn_norm: usize,
    /// `[F][D]`
    pub w_gate: usize,
    /// `[F][D]`
    pub w_up: usize,
    /// `[D][F]`
    pub w_down: usize,
}

/// Which stored block each layer runs: parameter sharing across layers.
///
/// Layer `i` runs stored block `layers()[i]`; every stored block `0..stored_blocks()` is run by
/// at least one layer. Files carry it as the GGUF key [`slm_model::weights::BLOCK_MAP_KEY`]
/// (`slm.block_map`, an INT32 array of `block_count` entries), with tensors `blk.{j}.*` only for
/// the stored blocks. Specs for [`BlockMap::parse`]:
/// - `none`: every layer its own block (the identity map);
/// - `all`: ALBERT's cross-layer sharing, one block for every layer;
/// - `groups:G`: ALBERT with `G` hidden groups, contiguous runs of layers share a block
///   (layer `i` runs block `⌊i·G/L⌋`);
/// - `repeat:K`: MobileLLM's immediate block-wise sharing, each stored block runs `K` times in
///   a row (layer `i` runs block `⌊i/K⌋`; the same map as `groups:L/K`);
/// - `cycle:S`: MobileLLM's repeat-all-over, the stack of `S` blocks runs `L/S` times
///   (layer `i` runs block `i mod S`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<usize>", into = "Vec<usize>")]
pub struct BlockMap {
    layers: Vec<usize>,
    stored: usize,
}

impl BlockMap {
    /// No sharing: layer `i` runs block `i`.
    pub fn identity(n_layer: usize) -> BlockMap {
        BlockMap {
            layers: (0..n_layer).collect(),
            stored: n_layer,
        }
    }

    /// The map `layers` (layer `i` runs stored block `layers[i]`); every index below the
    /// largest must be used.
    pub fn new(layers: Vec<usize>) -> Result<BlockMap, TrainError> {
        let stored = slm_model::weights::validate_block_map(&layers, layers.len())?;
        Ok(BlockMap { layers, stored })
    }

    /// The map of a sharing spec (see the type's documentation) for `n_layer` layers.
    pub fn parse(spec: &str, n_layer: usize) -> Result<BlockMap, TrainError> {
        let spec = spec.trim();
        let (kind, arg) = match spec.split_once(':') {
            Some((k, a)) => {
                let n: usize = a.trim().parse().map_err(|_| {
                    TrainError::Config(format!("sharing \"{spec}\": '{a}' is not a whole number"))
                })?;
                (k.trim(), Some(n))
            }
            None => (spec, None),
        };
        let need = |what: &str, ok: bool| -> Result<usize, TrainError> {
            match arg {
                Some(n) if n >= 1 && n <= n_layer && ok => Ok(n),
                _ => Err(TrainError::Config(format!(
                    "sharing \"{spec}\" with {n_layer} layers: {what}"
                ))),
            }
        };
        let layers: Vec<usize> = match kind {
            "none" if arg.is_none() => (0..n_layer).collect(),
            "all" if arg.is_none() => vec![0; n_layer],
            "groups" => {
                let g = need("write groups:G with G from 1 to n_layer", true)?;
                (0..n_layer).map(|i| i * g / n_layer).collect()
            }
            "repeat" => {
                let divides = arg.is_some_and(|k| k > 0 && n_layer.is_multiple_of(k));
                let k = need("write repeat:K with K dividing n_layer", divides)?;
                (0..n_layer).map(|i| i / k).collect()
            }
            "cycle" => {
                let divides = arg.is_some_and(|s| s > 0 && n_layer.is_multiple_of(s));
                let s = need("write cycle:S with S dividing n_layer", divides)?;
                (0..n_layer).map(|i| i % s).collect()
            }
            _ => {
                return Err(TrainError::Config(format!(
                    "sharing \"{spec}\" is unknown; use \"none\", \"all\", \"groups:G\", \"repeat:K\" or \"cycle:S\""
                )))
            }
        };
        BlockMap::new(layers)
    }

    /// The map stored in a GGUF file's metadata, `None` when the file has no
    /// [`slm_model::weights::BLOCK_MAP_KEY`] (every layer its own block).
    pub fn from_gguf(
        md: &slm_format::Metadata,
        n_layer: usize,
    ) -> Result<Option<BlockMap>, TrainError> {
        Ok(
            slm_model::weights::read_block_map(md, n_layer)?.map(|layers| {
                let stored = layers.iter().max().map_or(0, |m| m + 1);
                BlockMap { layers, stored }
            }),
        )
    }

    /// Stored block of each layer.
    pub fn layers(&self) -> &[usize] {
        &self.layers
    }

    /// Layers (the compute depth).
    pub fn n_layer(&self) -> usize {
        self.layers.len()
    }

    /// Distinct blocks with parameters.
    pub fn stored_blocks(&self) -> usize {
        self.stored
    }

    /// Whether layer `i` runs block `i` for every `i` (no key is written for such a map).
    pub fn is_identity(&self) -> bool {
        self.layers.iter().enumerate().all(|(i, &j)| i == j)
    }

    /// Whether some layers share a block.
    pub fn is_shared(&self) -> bool {
        self.stored < self.layers.len()
    }
}

impl TryFrom<Vec<usize>> for BlockMap {
    type Error = TrainError;
    fn try_from(layers: Vec<usize>) -> Result<BlockMap, TrainError> {
        BlockMap::new(layers)
    }
}

impl From<BlockMap> for Vec<usize> {
    fn from(m: BlockMap) -> Vec<usize> {
        m.layers
    }
}

/// The layout of all parameters of a Llama-family model.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLayout {
    /// Every tensor, in file order.
    pub tensors: Vec<TensorSpec>,
    /// Offset of `token_embd.weight` `[V][D]`.
    pub token_embd: usize,
    /// Per-layer offsets (`n_layer` entries; layers sharing a stored block have equal offsets).
    pub blocks: Vec<BlockOffsets>,
    /// Stored block run by each layer ([`BlockMap::identity`] without sharing).
    pub block_map: BlockMap,
    /// Offset of `output_norm.weight` `[D]`.
    pub output_norm: usize,
    /// Offset of `output.weight` `[V][D]`, or `None` when the output reuses the embedding.
    pub output: Option<usize>,
    len: usize,
}

impl ParamLayout {
    /// The layout for `cfg`, which must be a valid `llama`-architecture config (every layer
    /// has its own block).
    pub fn new(cfg: &ModelConfig) -> Result<ParamLayout, TrainError> {
        ParamLayout::with_block_map(cfg, BlockMap::identity(cfg.n_layer))
    }

    /// The layout for `cfg` with layer `i` running stored block `map[i]`: only the stored
    /// blocks have parameters (`blk.{j}.*` for stored block `j`), so shared layers read the
    /// same values and their gradients add up in the same place.
    pub fn with_block_map(cfg: &ModelConfig, map: BlockMap) -> Result<ParamLayout, TrainError> {
        check_trainable(cfg)?;
        if map.n_layer() != cfg.n_layer {
            return Err(TrainError::Config(format!(
                "the block map has {} layers but the model {}",
                map.n_layer(),
                cfg.n_layer
            )));
        }
        let (d, q, kv, f, v) = (
            cfg.d_model,
            cfg.q_dim(),
            cfg.kv_dim(),
            cfg.d_ff,
            cfg.n_vocab,
        );
        let mut b = Builder {
            tensors: Vec::new(),
            len: 0,
        };
        let token_embd = b.add(
            "token_embd.weight".into(),
            v,
            d,
            ParamKind::Embedding,
            false,
        );
        let mut stored = Vec::with_capacity(map.stored_blocks());
        for i in 0..map.stored_blocks() {
            let n = |s: &str| format!("blk.{i}.{s}");
            stored.push(BlockOffsets {
                attn_norm: b.add(n("attn_norm.weight"), 1, d, ParamKind::Norm, false),
                wq: b.add(n("attn_q.weight"), q, d, ParamKind::Matrix, false),
                wk: b.add(n("attn_k.weight"), kv, d, ParamKind::Matrix, false),
                wv: b.add(n("attn_v.weight"), kv, d, ParamKind::Matrix, false),
                wo: b.add(n("attn_output.weight"), d, q, ParamKind::Matrix, true),
                ffn_norm: b.add(n("ffn_norm.weight"), 1, d, ParamKind::Norm, false),
                w_gate: b.add(n("ffn_gate.weight"), f, d, ParamKind::Matrix, false),
                w_up: b.add(n("ffn_up.weight"), f, d, ParamKind::Matrix, false),
                w_down: b.add(n("ffn_down.weight"), d, f, ParamKind::Matrix, true),
            });
        }
        let output_norm = b.add("output_norm.weight".into(), 1, d, ParamKind::Norm, false);
        let output = if cfg.tied_output {
            None
        } else {
            Some(b.add("output.weight".into(), v, d, ParamKind::Matrix, false))
        };
        let blocks = map.layers().iter().map(|&j| stored[j]).collect();
        Ok(ParamLayout {
            tensors: b.tensors,
            token_embd,
            blocks,
            block_map: map,
            output_norm,
            output,
            len: b.len,
        })
    }

    /// Total number of parameters (length of the flat vector).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the layout is empty (never true for a valid config).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the output head `[V][D]`: `output.weight`, or the embedding when tied.
    pub fn output_head(&self) -> usize {
        self.output.unwrap_or(self.token_embd)
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorSpec> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

struct Builder {
    tensors: Vec<TensorSpec>,
    len: usize,
}

impl Builder {
    fn add(
        &mut self,
        name: String,
        rows: usize,
        cols: usize,
        kind: ParamKind,
        residual_out: bool,
    ) -> usize {
        let offset = self.len;
        self.len += rows * cols;
        self.tensors.push(TensorSpec {
            name,
            offset,
            rows,
            cols,
            kind,
            residual_out,
        });
        offset
    }
}

/// Checks that `cfg` is valid and a variant this trainer implements.
pub fn check_trainable(cfg: &ModelConfig) -> Result<(), TrainError> {
    cfg.validate()?;
    if cfg.arch != Arch::Llama {
        return Err(TrainError::Config(format!(
            "architecture '{}' is not trainable yet (only 'llama': adjacent-pair RoPE, no Q/K/V biases)",
            cfg.arch.gguf_name()
        )));
    }
    // Activations are `[tokens][width]` vectors; keep the largest well inside memory.
    let params = cfg.n_params();
    if params > 4_000_000_000 {
        return Err(TrainError::Config(format!(
            "{params} parameters is far beyond what CPU training can handle"
        )));
    }
    Ok(())
}

/// Serializable mirror of [`ModelConfig`] (the model section of a training config or checkpoint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// GGUF architecture name (only `llama` is trainable).
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Residual width.
    pub d_model: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (defaults to `n_head`).
    #[serde(default)]
    pub n_kv_head: Option<usize>,
    /// Head width (defaults to `d_model / n_head`).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Context length written to the exported model.
    pub n_ctx_train: usize,
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub rms_eps: f32,
    /// RoPE base.
    #[serde(default = "default_theta")]
    pub rope_theta: f32,
    /// Output head tied to the embedding.
    #[serde(default = "default_tied")]
    pub tied_output: bool,
}

fn default_arch() -> String {
    "llama".into()
}
fn default_eps() -> f32 {
    1e-5
}
fn default_theta() -> f32 {
    10_000.0
}
fn default_tied() -> bool {
    true
}

impl ModelSpec {
    /// Resolves defaults and validates into a [`ModelConfig`].
    pub fn resolve(&self) -> Result<ModelConfig, TrainError> {
        let arch = Arch::from_gguf_name(&self.arch)?;
        if self.n_head == 0 {
            return Err(TrainError::Config("n_head is 0".into()));
        }
        let cfg = ModelConfig {
            arch,
            n_vocab: self.n_vocab,
            d_model: self.d_model,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_kv_head: self.n_kv_head.unwrap_or(self.n_head),
            head_dim: self.head_dim.unwrap_or(self.d_model / self.n_head),
            d_ff: self.d_ff,
            n_ctx_train: self.n_ctx_train,
            rms_eps: self.rms_eps,
            rope_theta: self.rope_theta,
            tied_output: self.tied_output,
        };
        check_trainable(&cfg)?;
        Ok(cfg)
    }

    /// The spec of a resolved config (every field explicit).
    pub fn from_config(cfg: &ModelConfig) -> ModelSpec {
        ModelSpec {
            arch: cfg.arch.gguf_name().into(),
            n_vocab: cfg.n_vocab,
            d_model: cfg.d_model,
            n_layer: cfg.n_layer,
            n_head: cfg.n_head,
            n_kv_head: Some(cfg.n_kv_head),
            head_dim: Some(cfg.head_dim),
            d_ff: cfg.d_ff,
            n_ctx_train: cfg.n_ctx_train,
            rms_eps: cfg.rms_eps,
            rope_theta: cfg.rope_theta,
            tied_output: cfg.tied_output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_specs() {
        let p = |s: &str, n| BlockMap::parse(s, n).map(|m| m.layers().to_vec());
        assert_eq!(p("none", 3).unwrap(), [0, 1, 2]);
        assert_eq!(p("all", 3).unwrap(), [0, 0, 0]);
        assert_eq!(p("groups:2", 6).unwrap(), [0, 0, 0, 1, 1, 1]);
        assert_eq!(p("groups:2", 5).unwrap(), [0, 0, 0, 1, 1]);
        assert_eq!(p("repeat:3", 6).unwrap(), [0, 0, 0, 1, 1, 1]);
        assert_eq!(p("cycle:3", 6).unwrap(), [0, 1, 2, 0, 1, 2]);
        for bad in [
            "groups:0", "groups:7", "repeat:4", "cycle:x", "all:2", "tied",
        ] {
            assert!(p(bad, 6).is_err(), "{bad}");
        }
        let m = BlockMap::parse("repeat:2", 4).unwrap();
        assert_eq!(
            (m.n_layer(), m.stored_blocks(), m.is_shared()),
            (4, 2, true)
        );
        assert!(!m.is_identity() && BlockMap::identity(4).is_identity());
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "[0,0,1,1]");
        assert_eq!(serde_json::from_str::<BlockMap>(&json).unwrap(), m);
        assert!(serde_json::from_str::<BlockMap>("[1,1]").is_err());
    }
}
