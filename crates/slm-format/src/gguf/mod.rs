//! GGUF, the native container of slm (llama.cpp-compatible): reader, writer and metadata types.
//!
//! The reader ([`GgufFile`]) treats every file as hostile: each count, length, offset and shape is
//! checked with checked arithmetic against the bytes actually left in the file before anything is
//! allocated, against the documented [`limits`], and for consistency (alignment, bounds, overlap,
//! duplicates). Any malformed input gives a [`GgufError`] naming the offset, key or tensor; none
//! panics. The writer ([`GgufWriter`]) produces v3 files that llama.cpp and gguf-py read.
//!
//! ```
//! use slm_format::{GgufFile, GgufWriter, GgmlType};
//! let mut w = GgufWriter::new();
//! w.add_string("general.architecture", "llama").add_u32("llama.block_count", 2);
//! w.add_tensor_f32("output_norm.weight", &[4], &[1.0, 1.0, 1.0, 1.0])?;
//! let file = GgufFile::from_bytes(w.to_bytes()?)?;
//! assert_eq!(file.metadata().get_str("general.architecture")?, "llama");
//! let t = file.tensor("output_norm.weight").unwrap();
//! assert_eq!((t.dtype, t.n_bytes), (GgmlType::F32, 16));
//! # Ok::<(), slm_format::GgufError>(())
//! ```

mod cursor;
mod error;
pub mod limits;
mod metadata;
mod reader;
mod residency;
mod value;
mod writer;

pub use error::GgufError;
pub use limits::Limits;
pub use metadata::Metadata;
pub use reader::{GgufFile, TensorInfo, ALIGNMENT_KEY, GGUF_MAGIC};
pub use residency::{available_memory, Residency};
pub use value::{Array, Value, ValueType};
pub use writer::GgufWriter;
