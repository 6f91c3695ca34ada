//! Documented hard limits of the GGUF reader.
//!
//! Every count read from a file is checked twice: against one of these limits (so the error
//! says "too many" rather than "out of memory") and against the bytes actually left in the file
//! (so a tiny file can never make the reader allocate more than a small multiple of its size).
//! The limits are generous for any real model; [`Limits`] lets tests and tools lower them.

/// Maximum number of metadata key/value pairs. Real files have tens to a few hundred.
pub const MAX_METADATA_ENTRIES: u64 = 65_536;

/// Maximum number of tensors. Real files have hundreds to a few thousand (merged MoE experts).
pub const MAX_TENSORS: u64 = 1 << 20;

/// Maximum length in bytes of any string (metadata value or array element).
/// Chat templates, the longest real strings, are tens of KiB.
pub const MAX_STRING_LEN: u64 = 16 << 20;

/// Maximum length in bytes of a metadata key (the GGUF spec caps keys at 65 535 bytes).
pub const MAX_KEY_LEN: u64 = 65_535;

/// Maximum length in bytes of a tensor name read from a file. llama.cpp itself refuses names of
/// 64 bytes or more (`GGML_MAX_NAME`); the reader is more lenient, the writer is not.
pub const MAX_TENSOR_NAME_LEN: u64 = 1024;

/// Longest tensor name the writer emits: llama.cpp rejects names of `GGML_MAX_NAME` (64) bytes
/// or more, so files we write stay loadable there.
pub const MAX_WRITER_TENSOR_NAME_LEN: usize = 63;

/// Maximum number of elements in one metadata array. The largest real arrays are vocabularies
/// (about 256 Ki tokens) and merge lists.
pub const MAX_ARRAY_LEN: u64 = 1 << 24;

/// Maximum nesting of arrays: 1 = a plain array, 2 = an array of arrays, ...
pub const MAX_ARRAY_DEPTH: u32 = 4;

/// Maximum number of dimensions of a tensor (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// Largest accepted `general.alignment` (1 MiB, as proposed upstream in llama.cpp PR #24997).
pub const MAX_ALIGNMENT: u64 = 1 << 20;

/// Alignment of the tensor data section when `general.alignment` is absent (GGUF default).
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Smallest possible encoded metadata entry: key length (8) + a 1-byte key + value type (4) +
/// a 1-byte value.
pub(crate) const MIN_KV_BYTES: u64 = 8 + 1 + 4 + 1;

/// Smallest possible encoded tensor info: name length (8) + a 1-byte name + n_dims (4) + one
/// dimension (8) + type (4) + offset (8).
pub(crate) const MIN_TENSOR_INFO_BYTES: u64 = 8 + 1 + 4 + 8 + 4 + 8;

/// The limits a parse runs under. [`Limits::default`] uses the constants of this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// See [`MAX_METADATA_ENTRIES`].
    pub max_metadata_entries: u64,
    /// See [`MAX_TENSORS`].
    pub max_tensors: u64,
    /// See [`MAX_STRING_LEN`].
    pub max_string_len: u64,
    /// See [`MAX_ARRAY_LEN`].
    pub max_array_len: u64,
    /// See [`MAX_ARRAY_DEPTH`].
    pub max_array_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_metadata_entries: MAX_METADATA_ENTRIES,
            max_tensors: MAX_TENSORS,
            max_string_len: MAX_STRING_LEN,
            max_array_len: MAX_ARRAY_LEN,
            max_array_depth: MAX_ARRAY_DEPTH,
        }
    }
}
