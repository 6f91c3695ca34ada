//! The crate's one error type.

use slm_format::GgmlType;

/// Everything a kernel can refuse. Kernels never panic on bad sizes; they return one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A buffer or dimension does not have the size the operation needs.
    #[error("{what}: expected {expected}, found {found} (the caller's buffers or the tensor shape are inconsistent)")]
    SizeMismatch {
        /// Which buffer or dimension (e.g. `"matmul x"`).
        what: &'static str,
        /// The size the operation needs.
        expected: usize,
        /// The size it was given.
        found: usize,
    },
    /// A row length is not a whole number of quantization blocks.
    #[error("{what} = {value} is not a multiple of the {dtype} block size {block_size}")]
    NotBlockAligned {
        /// Which dimension.
        what: &'static str,
        /// The element type whose block size applies.
        dtype: GgmlType,
        /// The offending length.
        value: usize,
        /// The block size of `dtype`.
        block_size: usize,
    },
    /// The operation is not implemented for this element type.
    #[error("{op} is not supported for {dtype}; convert the tensor to a supported type (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, or a K-quant)")]
    Unsupported {
        /// The element type.
        dtype: GgmlType,
        /// The operation (e.g. `"quantize_row"`).
        op: &'static str,
    },
    /// A size computation overflowed `usize`.
    #[error("size of {what} overflows usize")]
    Overflow {
        /// What was being sized.
        what: &'static str,
    },
    /// The thread pool could not be created.
    #[error("cannot start the kernel thread pool with {n_threads} threads: {reason}")]
    ThreadPool {
        /// Requested number of threads.
        n_threads: usize,
        /// Why it failed.
        reason: String,
    },
}

/// Returns `SizeMismatch` unless `found == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), KernelError> {
    if expected == found {
        Ok(())
    } else {
        Err(KernelError::SizeMismatch { what, expected, found })
    }
}

/// Bytes for one row of `n` elements of `dtype`, with the error the caller should report.
pub(crate) fn row_bytes_of(dtype: GgmlType, n: usize, what: &'static str) -> Result<usize, KernelError> {
    let bs = dtype.block_size();
    if !n.is_multiple_of(bs) {
        return Err(KernelError::NotBlockAligned { what, dtype, value: n, block_size: bs });
    }
    (n / bs).checked_mul(dtype.type_size()).ok_or(KernelError::Overflow { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_and_descriptive() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KernelError>();
        let e = row_bytes_of(GgmlType::Q4_0, 33, "cols").unwrap_err();
        assert!(e.to_string().contains("33"), "{e}");
        assert_eq!(row_bytes_of(GgmlType::Q4_1, 64, "cols").unwrap(), 40);
        assert!(check_len("x", 3, 4).unwrap_err().to_string().contains("expected 3, found 4"));
    }
}
