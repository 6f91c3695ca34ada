//! Parsing and validating GGUF v2/v3 files: [`GgufFile`] and [`TensorInfo`].
//!
//! Layout (all little-endian):
//! ```text
//! "GGUF" | version u32 | n_tensors u64 | n_kv u64
//! n_kv      × (key: string | value type u32 | value)
//! n_tensors × (name: string | n_dims u32 | dims u64 × n_dims | ggml type u32 | offset u64)
//! padding to `general.alignment` (default 32)
//! tensor data section; each tensor at `data_offset + offset`
//! ```
//! where `string` is a u64 byte length followed by UTF-8 bytes. Everything is validated at open
//! (see the crate docs and [`super::limits`]), so [`GgufFile::tensor_data`] can be infallible.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use super::cursor::Cursor;
use super::error::GgufError;
use super::limits::{
    Limits, DEFAULT_ALIGNMENT, MAX_ALIGNMENT, MAX_DIMS, MAX_KEY_LEN, MAX_TENSOR_NAME_LEN,
    MIN_KV_BYTES, MIN_TENSOR_INFO_BYTES,
};
use super::metadata::Metadata;
use super::residency::{read_resident, Residency};
use super::value::{Array, Value, ValueType};
use crate::dtype::GgmlType;

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// The metadata key that sets the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// Description of one tensor in a GGUF file. All fields were validated at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the contiguous row length. 1 to 4 entries, all ≥ 1.
    pub dims: Vec<u64>,
    /// Element type.
    pub dtype: GgmlType,
    /// Byte offset relative to the start of the data section ([`GgufFile::data_offset`]).
    pub offset: u64,
    /// Product of `dims` (fits in `i64`).
    pub n_elements: u64,
    /// Size of the tensor's data in bytes.
    pub n_bytes: u64,
}

/// The bytes a [`GgufFile`] owns.
enum Bytes {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A parsed and fully validated GGUF file that owns its bytes (memory map or vector).
pub struct GgufFile {
    bytes: Bytes,
    header: Header,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.header.version)
            .field("file_size", &self.file_size())
            .field("metadata_entries", &self.header.metadata.len())
            .field("tensors", &self.header.tensors.len())
            .field("alignment", &self.header.alignment)
            .field("data_offset", &self.header.data_offset)
            .finish()
    }
}

/// Everything parsed from the header.
struct Header {
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl GgufFile {
    /// Memory-maps `path` read-only and validates it (see [`GgufFile::open_with`] for reading it
    /// into huge-page memory instead, which suits inference).
    ///
    /// A mapped file must not be modified while the returned value is alive (the usual contract
    /// of a memory map). Falls back to reading the file into memory where mapping is unavailable.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        Self::open_with(path, &Limits::default(), Residency::Mapped)
    }

    /// [`GgufFile::open`] with custom [`Limits`].
    pub fn open_with_limits(path: &Path, limits: &Limits) -> Result<GgufFile, GgufError> {
        Self::open_with(path, limits, Residency::Mapped)
    }

    /// Opens `path` with custom [`Limits`], holding its bytes as `residency` says.
    pub fn open_with(
        path: &Path,
        limits: &Limits,
        residency: Residency,
    ) -> Result<GgufFile, GgufError> {
        let mut file = File::open(path).map_err(|e| GgufError::io(path, e))?;
        let len = file.metadata().map_err(|e| GgufError::io(path, e))?.len();
        // Mapping an empty file fails on some platforms; an empty file is simply too short.
        let resident = if len > 0 && residency.reads_into_memory(len) {
            read_resident(&mut file, len).map_err(|e| GgufError::io(path, e))?
        } else {
            None
        };
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else if let Some(mem) = resident {
            Bytes::Mmap(mem)
        } else {
            // SAFETY: the map is read-only and we never hand out mutable access; the remaining
            // hazard (another process truncating or rewriting the file) is documented above and
            // is the standard memory-map contract, as in every mmap-based model loader.
            match unsafe { memmap2::Mmap::map(&file) } {
                Ok(m) => Bytes::Mmap(m),
                Err(_) => Bytes::Owned(std::fs::read(path).map_err(|e| GgufError::io(path, e))?),
            }
        };
        let header = parse(bytes.as_slice(), limits)?;
        Ok(GgufFile { bytes, header })
    }

    /// Parses and validates a GGUF file held in memory (for wasm and tests).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::from_bytes_with_limits(bytes, &Limits::default())
    }

    /// [`GgufFile::from_bytes`] with custom [`Limits`].
    pub fn from_bytes_with_limits(bytes: Vec<u8>, limits: &Limits) -> Result<GgufFile, GgufError> {
        let header = parse(&bytes, limits)?;
        Ok(GgufFile {
            bytes: Bytes::Owned(bytes),
            header,
        })
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.header
            .index
            .get(name)
            .and_then(|&i| self.header.tensors.get(i))
    }

    /// The raw bytes of `t` (in its own dtype). `t` must come from this file: bounds were
    /// validated at open, so for such a `t` this never fails; for a foreign `TensorInfo` whose
    /// range lies outside this file it returns an empty slice rather than panicking.
    ///
    /// The slice starts `alignment`-aligned relative to the file start; its address is aligned
    /// only as far as the buffer is (page-aligned for [`GgufFile::open`]), so check alignment
    /// before reinterpreting it as wider types.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let range = self
            .header
            .data_offset
            .checked_add(t.offset)
            .and_then(|start| Some((start, start.checked_add(t.n_bytes)?)))
            .and_then(|(s, e)| Some((usize::try_from(s).ok()?, usize::try_from(e).ok()?)));
        match range {
            Some((s, e)) => self.bytes.as_slice().get(s..e).unwrap_or(&[]),
            None => &[],
        }
    }

    /// Size of the whole file in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    /// Alignment of the data section and of every tensor offset.
    pub fn alignment(&self) -> u64 {
        self.header.alignment
    }

    /// Absolute byte offset where the tensor data section starts.
    pub fn data_offset(&self) -> u64 {
        self.header.data_offset
    }
}

/// Parses and validates the whole file.
fn parse(bytes: &[u8], limits: &Limits) -> Result<Header, GgufError> {
    let mut c = Cursor::new(bytes);
    let magic = c.take(4, "magic", "file header")?;
    if magic != GGUF_MAGIC {
        let mut found = [0u8; 4];
        found.copy_from_slice(magic);
        return Err(GgufError::BadMagic { found });
    }
    let version = read_version(&mut c)?;

    let counts_offset = c.offset();
    let n_tensors = c.u64("tensor count", "file header")?;
    let n_kv = c.u64("metadata entry count", "file header")?;
    check_limit(
        n_tensors,
        limits.max_tensors,
        "tensors",
        counts_offset,
        "the file header",
    )?;
    check_limit(
        n_kv,
        limits.max_metadata_entries,
        "metadata entries",
        counts_offset + 8,
        "the file header",
    )?;
    c.check_count_fits(
        n_kv,
        MIN_KV_BYTES,
        "metadata entries",
        counts_offset + 8,
        "the file header",
    )?;
    let kv_bytes = n_kv.saturating_mul(MIN_KV_BYTES);
    let tensor_room = c.remaining().saturating_sub(kv_bytes);
    if n_tensors
        .checked_mul(MIN_TENSOR_INFO_BYTES)
        .is_none_or(|n| n > tensor_room)
    {
        return Err(GgufError::CountPastEof {
            what: "tensors",
            offset: counts_offset,
            context: "the file header".to_string(),
            count: n_tensors,
            needed: n_tensors
                .saturating_mul(MIN_TENSOR_INFO_BYTES)
                .saturating_add(kv_bytes),
            remaining: c.remaining(),
        });
    }

    let metadata = read_metadata(&mut c, n_kv, limits)?;
    let alignment = read_alignment(&metadata)?;
    let (tensors, index) = read_tensor_infos(&mut c, n_tensors, alignment)?;

    let header_end = c.offset();
    let file_size = bytes.len() as u64;
    let data_offset = align_up(header_end, alignment).ok_or(GgufError::DataPastEof {
        data_offset: u64::MAX,
        file_size,
    })?;
    let data_size = match file_size.checked_sub(data_offset) {
        Some(n) => n,
        // A file without tensors may omit the padding after its header.
        None if tensors.is_empty() => 0,
        None => {
            return Err(GgufError::DataPastEof {
                data_offset,
                file_size,
            })
        }
    };
    check_tensor_ranges(&tensors, data_size)?;
    Ok(Header {
        version,
        metadata,
        tensors,
        index,
        alignment,
        data_offset,
    })
}

fn read_version(c: &mut Cursor<'_>) -> Result<u32, GgufError> {
    let raw = c.u32("version", "file header")?;
    match raw {
        2 | 3 => Ok(raw),
        1 => Err(GgufError::UnsupportedVersion {
            version: 1,
            hint: " (GGUF v1 is obsolete: re-convert the model with a current llama.cpp)",
        }),
        // A big-endian file stores a small version byte-swapped: 3 reads as 0x03000000.
        _ if raw > 0xFFFF && raw.swap_bytes() <= 0xFFFF => Err(GgufError::BigEndian {
            raw,
            version: raw.swap_bytes(),
        }),
        _ => Err(GgufError::UnsupportedVersion {
            version: raw,
            hint: "",
        }),
    }
}

fn check_limit(
    count: u64,
    max: u64,
    what: &'static str,
    offset: u64,
    context: &str,
) -> Result<(), GgufError> {
    if count > max {
        return Err(GgufError::TooMany {
            what,
            offset,
            context: context.to_string(),
            count,
            max,
        });
    }
    Ok(())
}

fn read_metadata(c: &mut Cursor<'_>, n_kv: u64, limits: &Limits) -> Result<Metadata, GgufError> {
    let mut metadata = Metadata::new();
    for i in 0..n_kv {
        let key_offset = c.offset();
        let key = c.string(MAX_KEY_LEN, "metadata key", &format!("metadata entry #{i}"))?;
        if key.is_empty() {
            return Err(GgufError::EmptyName {
                what: "metadata key",
                offset: key_offset,
            });
        }
        let context = format!("metadata key `{key}`");
        let type_offset = c.offset();
        let type_id = c.u32("value type", &context)?;
        let ty = ValueType::from_id(type_id).ok_or(GgufError::UnknownValueType {
            offset: type_offset,
            context: context.clone(),
            id: type_id,
        })?;
        let value = read_value(c, ty, &context, limits)?;
        if metadata.contains_key(&key) {
            return Err(GgufError::DuplicateKey {
                key,
                offset: key_offset,
            });
        }
        metadata.insert(key, value)?;
    }
    Ok(metadata)
}

fn read_value(
    c: &mut Cursor<'_>,
    ty: ValueType,
    context: &str,
    limits: &Limits,
) -> Result<Value, GgufError> {
    Ok(match ty {
        ValueType::U8 => Value::U8(c.u8("UINT8 value", context)?),
        ValueType::I8 => Value::I8(c.u8("INT8 value", context)? as i8),
        ValueType::U16 => Value::U16(c.u16("UINT16 value", context)?),
        ValueType::I16 => Value::I16(c.u16("INT16 value", context)? as i16),
        ValueType::U32 => Value::U32(c.u32("UINT32 value", context)?),
        ValueType::I32 => Value::I32(c.u32("INT32 value", context)? as i32),
        ValueType::F32 => Value::F32(f32::from_bits(c.u32("FLOAT32 value", context)?)),
        ValueType::Bool => Value::Bool(read_bool(c, context)?),
        ValueType::String => {
            Value::String(c.string(limits.max_string_len, "string value", context)?)
        }
        ValueType::Array => Value::Array(read_array(c, context, limits, 1)?),
        ValueType::U64 => Value::U64(c.u64("UINT64 value", context)?),
        ValueType::I64 => Value::I64(c.u64("INT64 value", context)? as i64),
        ValueType::F64 => Value::F64(f64::from_bits(c.u64("FLOAT64 value", context)?)),
    })
}

fn read_bool(c: &mut Cursor<'_>, context: &str) -> Result<bool, GgufError> {
    let offset = c.offset();
    match c.u8("BOOL value", context)? {
        0 => Ok(false),
        1 => Ok(true),
        byte => Err(GgufError::InvalidBool {
            offset,
            context: context.to_string(),
            byte,
        }),
    }
}

/// Reads `count` fixed-size little-endian elements in one bounds check.
fn read_fixed<const N: usize, T>(
    c: &mut Cursor<'_>,
    count: u64,
    context: &str,
    conv: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, GgufError> {
    let n_bytes = count.saturating_mul(N as u64);
    let bytes = c.take(n_bytes, "array elements", context)?;
    Ok(bytes
        .chunks_exact(N)
        .map(|ch| {
            let mut a = [0u8; N];
            a.copy_from_slice(ch);
            conv(a)
        })
        .collect())
}

/// Reads an array whose nesting level is `depth` (1 for an array directly under a key).
fn read_array(
    c: &mut Cursor<'_>,
    context: &str,
    limits: &Limits,
    depth: u32,
) -> Result<Array, GgufError> {
    let start = c.offset();
    if depth > limits.max_array_depth {
        return Err(GgufError::ArrayTooDeep {
            offset: start,
            context: context.to_string(),
            max: limits.max_array_depth,
        });
    }
    let elem_id = c.u32("array element type", context)?;
    let elem = ValueType::from_id(elem_id).ok_or(GgufError::UnknownValueType {
        offset: start,
        context: context.to_string(),
        id: elem_id,
    })?;
    let count_offset = c.offset();
    let count = c.u64("array length", context)?;
    check_limit(
        count,
        limits.max_array_len,
        "array elements",
        count_offset,
        context,
    )?;
    // The check that makes a tiny file unable to request a huge allocation.
    c.check_count_fits(
        count,
        elem.min_encoded_size(),
        "array elements",
        count_offset,
        context,
    )?;
    Ok(match elem {
        ValueType::U8 => Array::U8(read_fixed(c, count, context, |[b]| b)?),
        ValueType::I8 => Array::I8(read_fixed(c, count, context, |[b]| b as i8)?),
        ValueType::U16 => Array::U16(read_fixed(c, count, context, u16::from_le_bytes)?),
        ValueType::I16 => Array::I16(read_fixed(c, count, context, i16::from_le_bytes)?),
        ValueType::U32 => Array::U32(read_fixed(c, count, context, u32::from_le_bytes)?),
        ValueType::I32 => Array::I32(read_fixed(c, count, context, i32::from_le_bytes)?),
        ValueType::F32 => Array::F32(read_fixed(c, count, context, f32::from_le_bytes)?),
        ValueType::U64 => Array::U64(read_fixed(c, count, context, u64::from_le_bytes)?),
        ValueType::I64 => Array::I64(read_fixed(c, count, context, i64::from_le_bytes)?),
        ValueType::F64 => Array::F64(read_fixed(c, count, context, f64::from_le_bytes)?),
        ValueType::Bool => {
            let mut v = Vec::with_capacity(count as usize);
            for _ in 0..count {
                v.push(read_bool(c, context)?);
            }
            Array::Bool(v)
        }
        ValueType::String => {
            let mut v = Vec::with_capacity(count as usize);
            for _ in 0..count {
                v.push(c.string(limits.max_string_len, "string array element", context)?);
            }
            Array::String(v)
        }
        ValueType::Array => {
            let mut v = Vec::with_capacity(count as usize);
            for _ in 0..count {
                v.push(read_array(c, context, limits, depth + 1)?);
            }
            Array::Array(v)
        }
    })
}

fn read_alignment(metadata: &Metadata) -> Result<u64, GgufError> {
    let value = match metadata.get(ALIGNMENT_KEY) {
        None => return Ok(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) => u64::from(*a),
        Some(other) => {
            return Err(GgufError::WrongType {
                key: ALIGNMENT_KEY.to_string(),
                expected: "UINT32".to_string(),
                found: other.type_description(),
            })
        }
    };
    validate_alignment(value)
}

/// Checks an alignment value: a power of two in `1..=MAX_ALIGNMENT`.
pub(crate) fn validate_alignment(value: u64) -> Result<u64, GgufError> {
    if value == 0 || !value.is_power_of_two() || value > MAX_ALIGNMENT {
        return Err(GgufError::BadAlignment {
            value,
            max: MAX_ALIGNMENT,
        });
    }
    Ok(value)
}

/// Rounds `x` up to a multiple of `alignment` (nonzero), or `None` on overflow.
pub(crate) fn align_up(x: u64, alignment: u64) -> Option<u64> {
    let rem = x.checked_rem(alignment)?;
    if rem == 0 {
        Some(x)
    } else {
        x.checked_add(alignment - rem)
    }
}

type TensorIndex = HashMap<String, usize>;

fn read_tensor_infos(
    c: &mut Cursor<'_>,
    n_tensors: u64,
    alignment: u64,
) -> Result<(Vec<TensorInfo>, TensorIndex), GgufError> {
    // n_tensors was checked against the bytes left, so this allocation is bounded by the file.
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    let mut index = HashMap::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let info = read_tensor_info(c, i, alignment)?;
        if index.contains_key(&info.name) {
            return Err(GgufError::DuplicateTensor { name: info.name });
        }
        index.insert(info.name.clone(), tensors.len());
        tensors.push(info);
    }
    Ok((tensors, index))
}

fn read_tensor_info(c: &mut Cursor<'_>, i: u64, alignment: u64) -> Result<TensorInfo, GgufError> {
    let name_offset = c.offset();
    let name = c.string(
        MAX_TENSOR_NAME_LEN,
        "tensor name",
        &format!("tensor info #{i}"),
    )?;
    if name.is_empty() {
        return Err(GgufError::EmptyName {
            what: "tensor name",
            offset: name_offset,
        });
    }
    let context = format!("tensor `{name}`");
    let n_dims = c.u32("dimension count", &context)?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::BadDimCount {
            tensor: name,
            n_dims,
            max: MAX_DIMS,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64("dimension", &context)?);
    }
    let type_id = c.u32("ggml type", &context)?;
    let offset = c.u64("data offset", &context)?;
    let dtype = GgmlType::from_id(type_id).ok_or(GgufError::UnknownDtype {
        tensor: name.clone(),
        id: type_id,
    })?;
    let (n_elements, n_bytes) = tensor_size(&name, &dims, dtype)?;
    if offset % alignment != 0 {
        return Err(GgufError::MisalignedOffset {
            tensor: name,
            offset,
            alignment,
        });
    }
    Ok(TensorInfo {
        name,
        dims,
        dtype,
        offset,
        n_elements,
        n_bytes,
    })
}

/// Validates a shape for `dtype` and returns `(n_elements, n_bytes)`.
pub(crate) fn tensor_size(
    name: &str,
    dims: &[u64],
    dtype: GgmlType,
) -> Result<(u64, u64), GgufError> {
    if dims.is_empty() || dims.len() > MAX_DIMS as usize {
        return Err(GgufError::BadDimCount {
            tensor: name.to_string(),
            n_dims: dims.len() as u32,
            max: MAX_DIMS,
        });
    }
    if let Some(index) = dims.iter().position(|&d| d == 0) {
        return Err(GgufError::ZeroDim {
            tensor: name.to_string(),
            index,
            dims: dims.to_vec(),
        });
    }
    let block = dtype.block_size() as u64;
    let row = dims.first().copied().unwrap_or(1);
    if row % block != 0 {
        return Err(GgufError::RowNotMultipleOfBlock {
            tensor: name.to_string(),
            row,
            dims: dims.to_vec(),
            dtype,
            block,
        });
    }
    let overflow = || GgufError::ShapeOverflow {
        tensor: name.to_string(),
        dims: dims.to_vec(),
        dtype,
    };
    // ggml stores element counts as int64_t, so the count must fit there too.
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(overflow)?;
    let n_bytes = dtype
        .bytes_for(dims)
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(overflow)?;
    Ok((n_elements, n_bytes))
}

/// Checks that every tensor lies inside the data section and that no two overlap.
fn check_tensor_ranges(tensors: &[TensorInfo], data_size: u64) -> Result<(), GgufError> {
    let mut ranges = Vec::with_capacity(tensors.len());
    for t in tensors {
        let end = t
            .offset
            .checked_add(t.n_bytes)
            .filter(|&e| e <= data_size)
            .ok_or_else(|| GgufError::TensorOutOfBounds {
                tensor: t.name.clone(),
                offset: t.offset,
                n_bytes: t.n_bytes,
                data_size,
            })?;
        ranges.push((t.offset, end, t.name.as_str()));
    }
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        if let [(_, first_end, first), (second_start, _, second)] = pair {
            if second_start < first_end {
                return Err(GgufError::TensorOverlap {
                    first: first.to_string(),
                    first_end: *first_end,
                    second: second.to_string(),
                    second_start: *second_start,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
