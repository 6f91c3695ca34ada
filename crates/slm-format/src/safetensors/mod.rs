//! safetensors, the interchange format of Hugging Face models: reader ([`SafetensorsFile`],
//! memory-mapped and validated at open), writer ([`SafetensorsWriter`], atomic), and the
//! multi-file view of a model directory ([`SafetensorsModel`], `model.safetensors.index.json`).
//!
//! Own code rather than the `safetensors` crate: the format is ~100 lines to parse, and owning it
//! lets every error name the tensor and say what to do, like the GGUF reader, without a second
//! error vocabulary (the crate's `SafeTensorError` carries no file context).
//!
//! ```
//! use slm_format::safetensors::{Dtype, SafetensorsFile, SafetensorsWriter};
//! let mut w = SafetensorsWriter::new();
//! w.add_f32("w", Dtype::BF16, &[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
//! let f = SafetensorsFile::from_bytes(w.to_bytes())?;
//! let t = f.tensor("w").unwrap();
//! assert_eq!((t.dtype, t.shape.as_slice()), (Dtype::BF16, &[2u64, 2][..]));
//! assert_eq!(f.tensor_f32(t)?, vec![1.0, 2.0, 3.0, 4.0]);
//! # Ok::<(), slm_format::safetensors::SafetensorsError>(())
//! ```

mod error;
mod json;
mod reader;
mod shards;
mod writer;

#[cfg(test)]
mod tests;

pub use error::SafetensorsError;
pub use reader::{
    to_f32, Dtype, SafetensorsFile, TensorEntry, MAX_DIMS, MAX_HEADER_LEN, MAX_TENSORS,
};
pub use shards::{SafetensorsModel, INDEX_FILE, MAX_INDEX_BYTES, SINGLE_FILE};
pub use writer::{from_f32, write_streaming, SafetensorsWriter, TensorSpec};
