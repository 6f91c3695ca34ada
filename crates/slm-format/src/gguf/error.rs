//! The one error type of the GGUF reader and writer.
//!
//! Every variant names where the problem is (byte offset, metadata key or tensor name) and, where
//! it applies, what was expected and what was found, so a user can tell a truncated download from
//! a hostile file from a converter bug.

use std::path::PathBuf;

use crate::dtype::GgmlType;

/// Errors from reading, validating or writing GGUF files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file could not be opened, mapped, read or written.
    #[error("I/O error on GGUF file {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file does not start with the bytes `GGUF`.
    #[error("not a GGUF file: the first 4 bytes are {found:02x?}, expected \"GGUF\" (47 47 55 46); check the path or re-download the model")]
    BadMagic {
        /// The first four bytes of the file.
        found: [u8; 4],
    },

    /// A version this reader does not handle (only 2 and 3 are supported).
    #[error("unsupported GGUF version {version}: only versions 2 and 3 are supported{hint}")]
    UnsupportedVersion {
        /// The version read from the file.
        version: u32,
        /// Extra advice (e.g. "re-convert with a current llama.cpp").
        hint: &'static str,
    },

    /// The file is a big-endian GGUF; only little-endian files are supported.
    #[error("big-endian GGUF file (version field reads 0x{raw:08x}, i.e. version {version} byte-swapped); only little-endian files are supported: re-convert the model without --bigendian")]
    BigEndian {
        /// The version field as read little-endian.
        raw: u32,
        /// The version it encodes when read big-endian.
        version: u32,
    },

    /// The file ends before a field that must be there.
    #[error("GGUF file truncated: at offset {offset}, reading {what} of {context} needs {needed} bytes but only {remaining} remain; the file is incomplete or corrupt (re-download it)")]
    UnexpectedEof {
        /// Byte offset of the field.
        offset: u64,
        /// The field being read.
        what: &'static str,
        /// The key, tensor or header part it belongs to.
        context: String,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the file.
        remaining: u64,
    },

    /// A count (entries, tensors, array elements) above a documented limit.
    #[error("at offset {offset}, {context} declares {count} {what}, more than the limit of {max} (see slm_format::gguf::limits)")]
    TooMany {
        /// What is being counted.
        what: &'static str,
        /// Where the count was read.
        offset: u64,
        /// The key, tensor or header part it belongs to.
        context: String,
        /// The declared count.
        count: u64,
        /// The limit.
        max: u64,
    },

    /// A declared length or count cannot fit in the rest of the file.
    #[error("at offset {offset}, {context} declares {count} {what} needing at least {needed} bytes, but only {remaining} bytes remain in the file")]
    CountPastEof {
        /// What is being counted.
        what: &'static str,
        /// Where the count was read.
        offset: u64,
        /// The key, tensor or header part it belongs to.
        context: String,
        /// The declared count.
        count: u64,
        /// Minimum bytes the declared items need (saturating).
        needed: u64,
        /// Bytes left in the file.
        remaining: u64,
    },

    /// A string longer than a documented limit.
    #[error("at offset {offset}, a {what} in {context} is {len} bytes long, more than the limit of {max}")]
    StringTooLong {
        /// Which kind of string.
        what: &'static str,
        /// Where its length was read.
        offset: u64,
        /// The key, tensor or header part it belongs to.
        context: String,
        /// The declared length.
        len: u64,
        /// The limit.
        max: u64,
    },

    /// A string that is not valid UTF-8.
    #[error("at offset {offset}, a {what} in {context} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which kind of string.
        what: &'static str,
        /// Where the string bytes start.
        offset: u64,
        /// The key, tensor or header part it belongs to.
        context: String,
    },

    /// An empty metadata key or tensor name.
    #[error("at offset {offset}, {what} is empty")]
    EmptyName {
        /// "metadata key" or "tensor name".
        what: &'static str,
        /// Where it was read.
        offset: u64,
    },

    /// A boolean stored as a byte other than 0 or 1.
    #[error("at offset {offset}, a BOOL in {context} has byte value {byte}, expected 0 or 1")]
    InvalidBool {
        /// Where it was read.
        offset: u64,
        /// The key it belongs to.
        context: String,
        /// The byte found.
        byte: u8,
    },

    /// A metadata value type id outside 0..=12.
    #[error("at offset {offset}, {context} has unknown value type id {id} (known: 0..=12)")]
    UnknownValueType {
        /// Where the id was read.
        offset: u64,
        /// The key it belongs to.
        context: String,
        /// The id found.
        id: u32,
    },

    /// Arrays nested deeper than the limit.
    #[error("at offset {offset}, arrays in {context} are nested more than {max} deep")]
    ArrayTooDeep {
        /// Where the too-deep array starts.
        offset: u64,
        /// The key it belongs to.
        context: String,
        /// The limit.
        max: u32,
    },

    /// The same metadata key appears twice.
    #[error("duplicate metadata key `{key}` (second occurrence at offset {offset})")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Offset of the second occurrence (0 when building a file).
        offset: u64,
    },

    /// A metadata key required by the caller is absent.
    #[error("metadata key `{key}` is missing")]
    MissingKey {
        /// The key.
        key: String,
    },

    /// A metadata value has another type than the caller (or the format) requires.
    #[error("metadata key `{key}` has type {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// The type(s) accepted.
        expected: String,
        /// The type found.
        found: String,
    },

    /// A numeric metadata value does not fit the requested type.
    #[error("metadata key `{key}` has value {value}, which does not fit in {target}")]
    ValueOutOfRange {
        /// The key (with `[index]` for array elements).
        key: String,
        /// The value, printed.
        value: String,
        /// The requested type.
        target: &'static str,
    },

    /// `general.alignment` is zero, not a power of two, or too large.
    #[error(
        "general.alignment = {value} is invalid: it must be a power of two between 1 and {max}"
    )]
    BadAlignment {
        /// The value found.
        value: u64,
        /// The largest accepted value.
        max: u64,
    },

    /// Two tensors with the same name.
    #[error("duplicate tensor name `{name}`")]
    DuplicateTensor {
        /// The name.
        name: String,
    },

    /// A tensor with zero or more than the maximum number of dimensions.
    #[error("tensor `{tensor}` has {n_dims} dimensions; expected 1..={max}")]
    BadDimCount {
        /// The tensor.
        tensor: String,
        /// The count found.
        n_dims: u32,
        /// The maximum.
        max: u32,
    },

    /// A tensor dimension of zero.
    #[error("tensor `{tensor}` has dimension {index} equal to 0 (dims {dims:?}); empty tensors are not allowed")]
    ZeroDim {
        /// The tensor.
        tensor: String,
        /// Which dimension.
        index: usize,
        /// All dimensions.
        dims: Vec<u64>,
    },

    /// The element count or byte size of a tensor overflows.
    #[error("tensor `{tensor}` with dims {dims:?} and type {dtype} is too large: its element count or byte size overflows")]
    ShapeOverflow {
        /// The tensor.
        tensor: String,
        /// Its dimensions.
        dims: Vec<u64>,
        /// Its type.
        dtype: GgmlType,
    },

    /// A row length that is not a whole number of quantization blocks.
    #[error("tensor `{tensor}` has row length {row} (dims {dims:?}), which is not a multiple of the {dtype} block size {block}")]
    RowNotMultipleOfBlock {
        /// The tensor.
        tensor: String,
        /// `dims[0]`.
        row: u64,
        /// All dimensions.
        dims: Vec<u64>,
        /// Its type.
        dtype: GgmlType,
        /// The block size.
        block: u64,
    },

    /// A tensor type id this crate does not know.
    #[error("tensor `{tensor}` has unknown ggml type id {id}; this file may need a newer slm")]
    UnknownDtype {
        /// The tensor.
        tensor: String,
        /// The id found.
        id: u32,
    },

    /// A tensor offset that is not a multiple of the alignment.
    #[error("tensor `{tensor}` has offset {offset}, which is not a multiple of the alignment {alignment}")]
    MisalignedOffset {
        /// The tensor.
        tensor: String,
        /// Its offset within the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },

    /// A tensor whose bytes do not lie inside the data section.
    #[error("tensor `{tensor}` data [{offset}, {offset}+{n_bytes}) lies outside the data section of {data_size} bytes; the file is truncated or corrupt")]
    TensorOutOfBounds {
        /// The tensor.
        tensor: String,
        /// Its offset within the data section.
        offset: u64,
        /// Its size in bytes.
        n_bytes: u64,
        /// The size of the data section.
        data_size: u64,
    },

    /// Two tensors whose byte ranges overlap.
    #[error("tensors `{first}` and `{second}` overlap: `{first}` ends at data offset {first_end}, `{second}` starts at {second_start}")]
    TensorOverlap {
        /// The tensor that starts first.
        first: String,
        /// Where it ends.
        first_end: u64,
        /// The tensor that starts inside it.
        second: String,
        /// Where that one starts.
        second_start: u64,
    },

    /// The data section would start past the end of the file.
    #[error("the tensor data section starts at offset {data_offset}, past the end of the {file_size}-byte file")]
    DataPastEof {
        /// Where the data section starts.
        data_offset: u64,
        /// The file size.
        file_size: u64,
    },

    /// A tensor handed to the writer whose byte length does not match its dims and type.
    #[error(
        "tensor `{tensor}` with dims {dims:?} and type {dtype} needs {expected} bytes, got {found}"
    )]
    TensorSizeMismatch {
        /// The tensor.
        tensor: String,
        /// Its dimensions.
        dims: Vec<u64>,
        /// Its type.
        dtype: GgmlType,
        /// Bytes the shape needs.
        expected: u64,
        /// Bytes supplied.
        found: u64,
    },

    /// A name the writer refuses (too long for llama.cpp).
    #[error("tensor name `{name}` is {len} bytes; llama.cpp accepts at most {max}")]
    NameTooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
}

impl GgufError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> GgufError {
        GgufError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_static<T: Send + Sync + 'static>() {}

    #[test]
    fn error_is_send_sync_static_and_readable() {
        assert_send_sync_static::<GgufError>();
        let e = GgufError::UnknownDtype {
            tensor: "blk.0.attn_q.weight".into(),
            id: 99,
        };
        let msg = e.to_string();
        assert!(
            msg.contains("blk.0.attn_q.weight") && msg.contains("99"),
            "{msg}"
        );
    }
}
