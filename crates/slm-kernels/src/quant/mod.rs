//! Block formats: decode any supported ggml type to f32, and encode f32 to it.
//!
//! Both directions work on one row (a whole number of blocks). The encoders follow ggml's
//! reference (`quantize_row_*_ref`) arithmetic, so a tensor quantized here is what llama.cpp
//! would write; the decoders are exact (every quantized value has one f32 meaning).
//! [`quantize_row_weighted`] is the importance-matrix ("imatrix") variant, matching ggml's
//! `ggml_quantize_chunk` with an imatrix byte for byte.

pub(crate) mod float;
pub(crate) mod kquants;
mod kquants_encode;
pub(crate) mod legacy;
#[cfg(test)]
pub(crate) mod tests;
mod weighted;
mod weighted_kquants;
mod weighted_search;
#[cfg(test)]
mod weighted_tests;

pub use weighted::quantize_row_weighted;

use crate::error::{check_len, row_bytes_of};
use crate::{GgmlType, KernelError};

/// Decodes `dst.len()` elements from `src` (exactly `row_bytes(dst.len())` bytes) of type `dtype`.
///
/// # Errors
/// `NotBlockAligned` if `dst.len()` is not a whole number of blocks, `SizeMismatch` if `src` has
/// the wrong length, `Unsupported` for integer and F64 types.
pub fn dequantize_row(dtype: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    use GgmlType::*;
    let f: fn(&[u8], &mut [f32]) = match dtype {
        F32 => float::dequantize_f32,
        F16 => float::dequantize_f16,
        BF16 => float::dequantize_bf16,
        Q4_0 => legacy::dequantize_q4_0,
        Q4_1 => legacy::dequantize_q4_1,
        Q5_0 => legacy::dequantize_q5_0,
        Q5_1 => legacy::dequantize_q5_1,
        Q8_0 => legacy::dequantize_q8_0,
        Q8_1 => legacy::dequantize_q8_1,
        Q2_K => kquants::dequantize_q2_k,
        Q3_K => kquants::dequantize_q3_k,
        Q4_K => kquants::dequantize_q4_k,
        Q5_K => kquants::dequantize_q5_k,
        Q6_K => kquants::dequantize_q6_k,
        Q8_K => kquants::dequantize_q8_k,
        I8 | I16 | I32 | I64 | F64 => return Err(KernelError::Unsupported { dtype, op: "dequantize_row" }),
    };
    let expected = row_bytes_of(dtype, dst.len(), "dequantize_row element count")?;
    check_len("dequantize_row source bytes", expected, src.len())?;
    f(src, dst);
    Ok(())
}

/// Encodes `src` into `dst` (exactly `row_bytes(src.len())` bytes) as `dtype`, with ggml's
/// reference round-to-nearest encoders (no importance matrix).
///
/// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
///
/// # Errors
/// `NotBlockAligned`, `SizeMismatch` as for [`dequantize_row`]; `Unsupported` for integer and F64 types.
pub fn quantize_row(dtype: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    use GgmlType::*;
    let f: fn(&[f32], &mut [u8]) = match dtype {
        F32 => float::quantize_f32,
        F16 => float::quantize_f16,
        BF16 => float::quantize_bf16,
        Q4_0 => legacy::quantize_q4_0,
        Q4_1 => legacy::quantize_q4_1,
        Q5_0 => legacy::quantize_q5_0,
        Q5_1 => legacy::quantize_q5_1,
        Q8_0 => legacy::quantize_q8_0,
        Q8_1 => legacy::quantize_q8_1,
        Q2_K => kquants_encode::quantize_q2_k,
        Q3_K => kquants_encode::quantize_q3_k,
        Q4_K => kquants_encode::quantize_q4_k,
        Q5_K => kquants_encode::quantize_q5_k,
        Q6_K => kquants_encode::quantize_q6_k,
        Q8_K => kquants::quantize_q8_k,
        I8 | I16 | I32 | I64 | F64 => return Err(KernelError::Unsupported { dtype, op: "quantize_row" }),
    };
    let expected = row_bytes_of(dtype, src.len(), "quantize_row element count")?;
    check_len("quantize_row destination bytes", expected, dst.len())?;
    f(src, dst);
    Ok(())
}

/// Types that [`quantize_row`], [`dequantize_row`] and [`crate::matmul`] accept.
pub const SUPPORTED_TYPES: [GgmlType; 15] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
];
