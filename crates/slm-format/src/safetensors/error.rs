//! The error type of the safetensors reader and writer.
//!
//! Every variant names the file or tensor and, where it applies, what was expected and what was
//! found, so a truncated download can be told apart from a hostile or mis-converted file.

use std::path::PathBuf;

/// Errors from reading, validating or writing safetensors files and shard indexes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafetensorsError {
    /// The file could not be opened, mapped, read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Fewer than the 8 bytes of the header length.
    #[error("safetensors file is {len} bytes long, too short for the 8-byte header length; the file is truncated (re-download it)")]
    TooShort {
        /// The file size.
        len: u64,
    },

    /// The declared header length is above the limit.
    #[error("safetensors header length {len} is more than the limit of {max} bytes; the file is corrupt or not a safetensors file")]
    HeaderTooLarge {
        /// The declared length.
        len: u64,
        /// The limit.
        max: u64,
    },

    /// The header would extend past the end of the file.
    #[error("safetensors header of {len} bytes does not fit in the {file_size}-byte file; the file is truncated (re-download it)")]
    HeaderPastEof {
        /// The declared length.
        len: u64,
        /// The file size.
        file_size: u64,
    },

    /// The header is not a JSON object of the expected form.
    #[error("safetensors header is invalid: {reason}")]
    BadHeader {
        /// What is wrong.
        reason: String,
    },

    /// One tensor entry of the header is malformed.
    #[error("safetensors tensor `{tensor}`: {reason}")]
    BadEntry {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// A dtype string this crate does not know.
    #[error("safetensors tensor `{tensor}` has unknown dtype \"{dtype}\" (known: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2)")]
    UnknownDtype {
        /// The tensor.
        tensor: String,
        /// The dtype string found.
        dtype: String,
    },

    /// The byte range does not match shape × dtype size.
    #[error("safetensors tensor `{tensor}` with dtype {dtype} and shape {shape:?} needs {expected} bytes but its data_offsets span {found}")]
    ByteCountMismatch {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: &'static str,
        /// Its shape.
        shape: Vec<u64>,
        /// Bytes the shape needs (`None` printed as overflow).
        expected: u64,
        /// Bytes the offsets span.
        found: u64,
    },

    /// The element count or byte size overflows.
    #[error("safetensors tensor `{tensor}` with shape {shape:?} is too large: its element count or byte size overflows")]
    ShapeOverflow {
        /// The tensor.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
    },

    /// The data range lies outside the data section.
    #[error("safetensors tensor `{tensor}` data [{begin}, {end}) lies outside the data section of {data_size} bytes; the file is truncated or corrupt")]
    OutOfBounds {
        /// The tensor.
        tensor: String,
        /// Start offset (relative to the data section).
        begin: u64,
        /// End offset.
        end: u64,
        /// Size of the data section.
        data_size: u64,
    },

    /// Two tensors share bytes.
    #[error("safetensors tensors `{first}` and `{second}` overlap (`{first}` ends at {first_end}, `{second}` starts at {second_start})")]
    Overlap {
        /// The tensor that starts first.
        first: String,
        /// Where it ends.
        first_end: u64,
        /// The tensor that starts inside it.
        second: String,
        /// Where that one starts.
        second_start: u64,
    },

    /// More tensors than the limit.
    #[error("safetensors header lists {count} tensors, more than the limit of {max}")]
    TooManyTensors {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// A shard index (`model.safetensors.index.json`) is malformed or inconsistent.
    #[error("shard index {path}: {reason}")]
    BadIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The directory holds neither `model.safetensors` nor `model.safetensors.index.json`.
    #[error("{dir} holds neither model.safetensors nor model.safetensors.index.json; is it a Hugging Face model directory?")]
    NoWeights {
        /// The directory.
        dir: PathBuf,
    },

    /// A tensor handed to the writer is inconsistent or a duplicate.
    #[error("cannot write safetensors tensor `{tensor}`: {reason}")]
    Write {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// A conversion to f32 that is not supported for this dtype.
    #[error("safetensors tensor `{tensor}` has dtype {dtype}; only F32, F16 and BF16 can be converted to f32")]
    NotFloat {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: &'static str,
    },
}

impl SafetensorsError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> SafetensorsError {
        SafetensorsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
