//! [`QMatrix`]: a borrowed, size-checked weight matrix in any supported ggml type.

use crate::error::{check_len, row_bytes_of};
use crate::{quant, GgmlType, KernelError};

/// A borrowed weight matrix: `rows` output features, each a row of `cols` input features, stored
/// in `dtype` (ggml layout: a GGUF tensor with dims `[cols, rows]`, rows contiguous).
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    /// Element type of `data`.
    pub dtype: GgmlType,
    /// Number of rows (output features).
    pub rows: usize,
    /// Elements per row (input features); a multiple of `dtype`'s block size.
    pub cols: usize,
    /// `rows * row_bytes` bytes.
    pub data: &'a [u8],
}

impl<'a> QMatrix<'a> {
    /// Wraps `data` after checking that it holds exactly `rows` rows of `cols` elements.
    ///
    /// # Errors
    /// `NotBlockAligned` if `cols` is not a whole number of blocks, `SizeMismatch` if `data` has
    /// the wrong length, `Overflow` for absurd shapes.
    pub fn new(dtype: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, KernelError> {
        let rb = row_bytes_of(dtype, cols, "QMatrix cols")?;
        let total = rb.checked_mul(rows).ok_or(KernelError::Overflow { what: "QMatrix data" })?;
        check_len("QMatrix data bytes", total, data.len())?;
        Ok(QMatrix { dtype, rows, cols, data })
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        // Saturating: the fields are public, so a hand-built QMatrix may hold any values.
        (self.cols / self.dtype.block_size()).saturating_mul(self.dtype.type_size())
    }

    /// The raw bytes of row `i`, or `None` if `i >= rows`.
    #[inline]
    pub fn row(&self, i: usize) -> Option<&'a [u8]> {
        let rb = self.row_bytes();
        if i >= self.rows {
            return None;
        }
        self.data.get(i * rb..(i + 1) * rb)
    }

    /// Decodes row `i` into `dst` (`cols` long), e.g. for an embedding lookup.
    ///
    /// # Errors
    /// `SizeMismatch` if `i >= rows` or `dst.len() != cols`; `Unsupported` for integer types.
    pub fn dequantize_row(&self, i: usize, dst: &mut [f32]) -> Result<(), KernelError> {
        check_len("QMatrix::dequantize_row dst", self.cols, dst.len())?;
        let row = self.row(i).ok_or(KernelError::SizeMismatch {
            what: "QMatrix::dequantize_row row index (must be < rows)",
            expected: self.rows,
            found: i,
        })?;
        quant::dequantize_row(self.dtype, row, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_sizes_and_rows_slice() {
        let data = vec![0u8; 3 * 20 * 2];
        let m = QMatrix::new(GgmlType::Q4_1, 3, 64, &data).unwrap();
        assert_eq!(m.row_bytes(), 40);
        assert_eq!(m.row(2).unwrap().len(), 40);
        assert!(m.row(3).is_none());
        assert!(QMatrix::new(GgmlType::Q4_1, 4, 64, &data).is_err());
        assert!(QMatrix::new(GgmlType::Q4_1, 3, 60, &data).is_err());
        assert!(QMatrix::new(GgmlType::Q4_1, usize::MAX, 64, &data).is_err());
    }

    #[test]
    fn dequantize_row_picks_the_right_row() {
        let vals: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let m = QMatrix::new(GgmlType::F32, 2, 3, &bytes).unwrap();
        let mut out = [0.0; 3];
        m.dequantize_row(1, &mut out).unwrap();
        assert_eq!(out, [3.0, 4.0, 5.0]);
        assert!(m.dequantize_row(2, &mut out).is_err());
        assert!(m.dequantize_row(0, &mut [0.0; 2]).is_err());
    }
}
