//! What a forward/backward pass reads and where its gradients go.
//!
//! [`crate::TrainModel`] runs the same block code for two kinds of training:
//! - full training: every tensor is trainable and lives in one flat `Vec<f32>`
//!   ([`FullWeights`]; gradients share its [`ParamLayout`](crate::layout::ParamLayout));
//! - adapter training (LoRA, [`crate::lora`]): the base model is frozen (possibly quantized) and
//!   only small adapter matrices have gradients.
//!
//! The pass asks a [`Weights`] for the non-projection tensors (norm gains, embedding, output head)
//! by their layout offset and hands it every projection product, so each kind decides how the
//! product is computed and which gradients exist.

use crate::matmul::{matmul_nn, matmul_nt, matmul_tn};

pub use slm_model::lora::LoraTarget;

/// A projection of block `layer`: `W` is `[rows = out][cols = in]`, at `offset` in the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mat {
    /// Block index.
    pub layer: usize,
    /// Which projection.
    pub proj: LoraTarget,
    /// Offset of `W` in the model's [`ParamLayout`](crate::layout::ParamLayout).
    pub offset: usize,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
}

/// The weights of one forward/backward pass.
pub trait Weights: Sync {
    /// Values of a non-projection tensor (norm gain, embedding, output head) at layout `offset`.
    fn tensor(&self, offset: usize, len: usize) -> &[f32];

    /// `y (+)= x·Wᵀ` for `n` tokens, plus any adapter's contribution.
    /// Shapes: `x [n][m.cols]`, `y [n][m.rows]`.
    fn linear(&self, m: Mat, x: &[f32], y: &mut [f32], n: usize, accumulate: bool);

    /// Backward of [`linear`](Self::linear) given its input `x` and output gradient `dy`:
    /// `dx (+)= dy·W` (plus the adapter's term), and adds the gradients of whatever in the
    /// product is trainable into `grads`.
    #[allow(clippy::too_many_arguments)]
    fn linear_backward(
        &self,
        m: Mat,
        x: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        n: usize,
        accumulate: bool,
        grads: &mut [f32],
    );

    /// The gradient slot of a non-projection tensor, or `None` when it is frozen.
    fn tensor_grad<'g>(
        &self,
        grads: &'g mut [f32],
        offset: usize,
        len: usize,
    ) -> Option<&'g mut [f32]>;

    /// Length of the gradient vector this pass writes.
    fn n_grads(&self) -> usize;
}

/// Full training: every tensor is trainable and sits in one flat vector laid out by the model's
/// [`ParamLayout`](crate::layout::ParamLayout); gradients use the same layout.
#[derive(Clone, Copy, Debug)]
pub struct FullWeights<'a> {
    /// The flat parameter vector.
    pub params: &'a [f32],
}

impl Weights for FullWeights<'_> {
    fn tensor(&self, offset: usize, len: usize) -> &[f32] {
        &self.params[offset..offset + len]
    }

    fn linear(&self, m: Mat, x: &[f32], y: &mut [f32], n: usize, accumulate: bool) {
        let w = self.tensor(m.offset, m.rows * m.cols);
        matmul_nt(y, x, w, n, m.rows, m.cols, accumulate);
    }

    fn linear_backward(
        &self,
        m: Mat,
        x: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        n: usize,
        accumulate: bool,
        grads: &mut [f32],
    ) {
        let len = m.rows * m.cols;
        matmul_nn(
            dx,
            dy,
            self.tensor(m.offset, len),
            n,
            m.cols,
            m.rows,
            accumulate,
        );
        matmul_tn(
            &mut grads[m.offset..m.offset + len],
            dy,
            x,
            m.rows,
            m.cols,
            n,
            true,
        );
    }

    fn tensor_grad<'g>(
        &self,
        grads: &'g mut [f32],
        offset: usize,
        len: usize,
    ) -> Option<&'g mut [f32]> {
        Some(&mut grads[offset..offset + len])
    }

    fn n_grads(&self) -> usize {
        self.params.len()
    }
}
