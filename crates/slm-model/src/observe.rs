//! Hooks that let a caller see the activations entering the linear layers during a forward
//! pass (for importance matrices, activation statistics, pruning scores).

/// Which linear layers of a block read the observed activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// The normalised input of the Q, K and V projections, `[T][D]`.
    AttnIn,
    /// The attention output entering `attn_output`, `[T][H*Dh]`.
    AttnOutIn,
    /// The normalised input of the gate and up projections, `[T][D]`.
    FfnIn,
    /// The gated activation entering `ffn_down`, `[T][F]`.
    FfnDownIn,
}

impl Site {
    /// Every site, in forward order.
    pub const ALL: [Site; 4] = [Site::AttnIn, Site::AttnOutIn, Site::FfnIn, Site::FfnDownIn];

    /// GGUF names (within `blk.N.`) of the weights that read this activation.
    pub fn weight_names(self) -> &'static [&'static str] {
        match self {
            Site::AttnIn => &["attn_q.weight", "attn_k.weight", "attn_v.weight"],
            Site::AttnOutIn => &["attn_output.weight"],
            Site::FfnIn => &["ffn_gate.weight", "ffn_up.weight"],
            Site::FfnDownIn => &["ffn_down.weight"],
        }
    }
}

/// Receives activations during [`crate::Model::forward_observed`].
pub trait ActivationObserver {
    /// `x` is `[n_tokens][cols]`, row-major, for block `layer` at `site`.
    fn observe(&mut self, layer: usize, site: Site, x: &[f32], n_tokens: usize);
}
