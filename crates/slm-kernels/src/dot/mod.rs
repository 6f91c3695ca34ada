//! Per-dtype dot-product kernels ("vec_dot") and their selection by instruction set.
//!
//! A weight type decides the activation format (ggml's `vec_dot_type`):
//! Q4_0/Q5_0/Q8_0 and Q4_1/Q5_1/Q8_1 take [`Q8Block`] activations, the K-quants take
//! [`Q8KBlock`], and F32/F16/BF16 take the f32 activations as they are. For every pair there is
//! a scalar kernel (module `scalar`) and, where written, SIMD kernels chosen at run time by [`Isa`].

use crate::act::{Group8, Q8Block, Q8KBlock};
use crate::{GgmlType, KernelError};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_k;
#[cfg(target_arch = "x86_64")]
mod avx2_k23;
#[cfg(target_arch = "x86_64")]
mod avx512_rows;
pub(crate) mod scalar;
#[cfg(test)]
mod tests;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm_simd;

/// An instruction-set level a kernel set is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable Rust (the reference; also what wasm32 runs).
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL + VNNI (on top of AVX2).
    Avx512Vnni,
    /// aarch64 NEON (+dotprod where noted).
    Neon,
}

impl Isa {
    /// Every level this build knows, best last.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512Vnni];

    /// Whether this CPU can run kernels for `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.is_available()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best level this CPU supports.
    pub fn detect() -> Isa {
        Isa::ALL.iter().rev().copied().find(|i| i.is_available()).unwrap_or(Isa::Scalar)
    }

    /// All levels this CPU supports, scalar first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.iter().copied().filter(|i| i.is_available()).collect()
    }
}

/// One weight row (raw bytes) · one activation row.
///
/// `unsafe` because SIMD kernels require their CPU features; a [`Tiles`] is only built by
/// [`kernel`] for an [`Isa`] that [`Isa::is_available`] confirmed.
pub(crate) type DotFn<A> = unsafe fn(&[u8], &[A]) -> f32;
/// One weight row · four activation rows (loads and unpacks the weights once).
pub(crate) type Dot4Fn<A> = unsafe fn(&[u8], [&[A]; 4]) -> [f32; 4];

/// One weight row · eight activation rows (tokens `8g..8g+8`), with their scales gathered in
/// `groups` (one [`Group8`] per block; Q8 activations only).
pub(crate) type Dot8Fn<A> = unsafe fn(&[u8], [&[A]; 8], &[Group8]) -> [f32; 8];

/// `4q` weight rows (`w`, rows of `row_bytes`) · one activation row (one token: generation),
/// four rows at a time: steps `j` in a range of `0..q`, each rows `j`, `j + q`, `j + 2q`,
/// `j + 3q`, so that the four walk their quarters front to back. Row `r`'s result, bit for bit
/// what [`DotFn`] gives for it, goes to `out + r`. Arguments: `(w, row_bytes, q, steps, a, out)`.
pub(crate) type QuartersFn<A> = unsafe fn(&[u8], usize, usize, std::ops::Range<usize>, &[A], *mut f32);

/// The kernels for one (weight type, activation type, ISA).
pub(crate) struct Tiles<A: 'static> {
    pub one: DotFn<A>,
    pub four: Option<Dot4Fn<A>>,
    pub eight: Option<Dot8Fn<A>>,
    pub quarters: Option<QuartersFn<A>>,
}

impl<A> Clone for Tiles<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for Tiles<A> {}

impl<A> Tiles<A> {
    /// The tiles for row-invariant mode: the one-token kernel, and `exact4` for four tokens (a
    /// tile that computes each token exactly as `one` does), never the faster 8/4-token tiles
    /// whose per-token sums are ordered differently (`quarters` is exact, so it stays).
    pub(crate) fn row_invariant(self, exact4: Option<Dot4Fn<A>>) -> Self {
        Tiles { one: self.one, four: exact4, eight: None, quarters: self.quarters }
    }
}

/// The 4-token tile of `dtype` at `isa` whose results are bit for bit those of its one-token
/// kernel (Q8 activations), if it has one.
pub(crate) fn exact_four_q8(dtype: GgmlType, isa: Isa) -> Option<Dot4Fn<Q8Block>> {
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512Vnni) {
        use GgmlType::*;
        return match dtype {
            Q4_0 => Some(avx2::q4_0_q8_4x),
            Q4_1 => Some(avx2::q4_1_q8_4x),
            Q5_0 => Some(avx2::q5_0_q8_4x),
            Q5_1 => Some(avx2::q5_1_q8_4x),
            Q8_0 => Some(avx2::q8_0_q8_4x),
            Q8_1 => Some(avx2::q8_1_q8_4x),
            _ => None,
        };
    }
    let _ = (dtype, isa);
    None
}

/// Kernels for a weight type, tagged by the activation format they need.
#[derive(Clone, Copy)]
pub(crate) enum Kernel {
    Q8(Tiles<Q8Block>),
    Q8K(Tiles<Q8KBlock>),
    F32(Tiles<f32>),
}

fn q8(one: DotFn<Q8Block>) -> Kernel {
    Kernel::Q8(Tiles { one, four: None, eight: None, quarters: None })
}
fn q8k(one: DotFn<Q8KBlock>) -> Kernel {
    Kernel::Q8K(Tiles { one, four: None, eight: None, quarters: None })
}
fn f32k(one: DotFn<f32>) -> Kernel {
    Kernel::F32(Tiles { one, four: None, eight: None, quarters: None })
}

/// The scalar kernel for `dtype`.
pub(crate) fn scalar_kernel(dtype: GgmlType) -> Result<Kernel, KernelError> {
    use GgmlType::*;
    Ok(match dtype {
        Q4_0 => q8(scalar::q4_0_q8),
        Q4_1 => q8(scalar::q4_1_q8),
        Q5_0 => q8(scalar::q5_0_q8),
        Q5_1 => q8(scalar::q5_1_q8),
        Q8_0 => q8(scalar::q8_0_q8),
        Q8_1 => q8(scalar::q8_1_q8),
        Q2_K => q8k(scalar::q2_k_q8k),
        Q3_K => q8k(scalar::q3_k_q8k),
        Q4_K => q8k(scalar::q4_k_q8k),
        Q5_K => q8k(scalar::q5_k_q8k),
        Q6_K => q8k(scalar::q6_k_q8k),
        Q8_K => q8k(scalar::q8_k_q8k),
        F32 => f32k(scalar::f32_f32),
        F16 => f32k(scalar::f16_f32),
        BF16 => f32k(scalar::bf16_f32),
        I8 | I16 | I32 | I64 | F64 => return Err(KernelError::Unsupported { dtype, op: "matmul" }),
    })
}

/// The best kernel for `dtype` at level `isa` (falling back to lower levels for pairs that have
/// no kernel at `isa`). Callers must pass an `isa` that [`Isa::is_available`].
pub(crate) fn kernel(dtype: GgmlType, isa: Isa) -> Result<Kernel, KernelError> {
    let base = scalar_kernel(dtype)?;
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512Vnni) {
        if let Some(mut k) = avx2_kernel(dtype) {
            if let (Kernel::Q8(t), true) = (&mut k, isa == Isa::Avx512Vnni) {
                t.quarters = vnni_quarters(dtype);
            }
            return Ok(k);
        }
    }
    // SIMD128 is fixed when the wasm module is compiled, so it needs no run-time check.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use GgmlType::*;
        let tiles: Option<(DotFn<Q8Block>, Dot4Fn<Q8Block>)> = match dtype {
            Q4_0 => Some((wasm_simd::q4_0_q8, wasm_simd::q4_0_q8_4)),
            Q4_1 => Some((wasm_simd::q4_1_q8, wasm_simd::q4_1_q8_4)),
            Q8_0 => Some((wasm_simd::q8_0_q8, wasm_simd::q8_0_q8_4)),
            _ => None,
        };
        if let Some((one, four)) = tiles {
            return Ok(Kernel::Q8(Tiles { one, four: Some(four), eight: None, quarters: None }));
        }
    }
    let _ = isa;
    Ok(base)
}

#[cfg(target_arch = "x86_64")]
fn avx2_kernel(dtype: GgmlType) -> Option<Kernel> {
    use GgmlType::*;
    let q8 = |one: DotFn<Q8Block>, four: Dot4Fn<Q8Block>, eight: Dot8Fn<Q8Block>| {
        Kernel::Q8(Tiles { one, four: Some(four), eight: Some(eight), quarters: None })
    };
    let q8k_4 = |one: DotFn<Q8KBlock>, four: Dot4Fn<Q8KBlock>| {
        Kernel::Q8K(Tiles { one, four: Some(four), eight: None, quarters: None })
    };
    let f32_4 =
        |one: DotFn<f32>, four: Dot4Fn<f32>| Kernel::F32(Tiles { one, four: Some(four), eight: None, quarters: None });
    Some(match dtype {
        Q4_0 => q8(avx2::q4_0_q8, avx2::q4_0_q8_4, avx2::q4_0_q8_8),
        Q4_1 => q8(avx2::q4_1_q8, avx2::q4_1_q8_4, avx2::q4_1_q8_8),
        Q5_0 => q8(avx2::q5_0_q8, avx2::q5_0_q8_4, avx2::q5_0_q8_8),
        Q5_1 => q8(avx2::q5_1_q8, avx2::q5_1_q8_4, avx2::q5_1_q8_8),
        Q8_0 => q8(avx2::q8_0_q8, avx2::q8_0_q8_4, avx2::q8_0_q8_8),
        Q8_1 => q8(avx2::q8_1_q8, avx2::q8_1_q8_4, avx2::q8_1_q8_8),
        Q2_K => q8k_4(avx2_k23::q2_k_q8k, avx2_k23::q2_k_q8k_4),
        Q3_K => q8k_4(avx2_k23::q3_k_q8k, avx2_k23::q3_k_q8k_4),
        Q4_K => q8k_4(avx2_k::q4_k_q8k, avx2_k::q4_k_q8k_4),
        Q5_K => q8k_4(avx2_k::q5_k_q8k, avx2_k::q5_k_q8k_4),
        Q6_K => q8k_4(avx2_k::q6_k_q8k, avx2_k::q6_k_q8k_4),
        F32 => f32_4(avx2::f32_f32, avx2::f32_f32_4),
        F16 => f32_4(avx2::f16_f32, avx2::f16_f32_4),
        BF16 => f32_4(avx2::bf16_f32, avx2::bf16_f32_4),
        _ => return None,
    })
}

/// The four-row generation kernel of `dtype` at [`Isa::Avx512Vnni`], if it has one.
#[cfg(target_arch = "x86_64")]
fn vnni_quarters(dtype: GgmlType) -> Option<QuartersFn<Q8Block>> {
    use GgmlType::*;
    Some(match dtype {
        Q4_0 => avx512_rows::q4_0_q8_quarters,
        Q4_1 => avx512_rows::q4_1_q8_quarters,
        Q5_0 => avx512_rows::q5_0_q8_quarters,
        Q5_1 => avx512_rows::q5_1_q8_quarters,
        Q8_0 => avx512_rows::q8_0_q8_quarters,
        Q8_1 => avx512_rows::q8_1_q8_quarters,
        _ => return None,
    })
}
