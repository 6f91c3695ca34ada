//! [`ModelBytes`]: receives a model download chunk by chunk into one buffer.
//!
//! A browser fetch delivers the file as a stream of `Uint8Array` chunks. Collecting them in
//! JavaScript and then copying the whole file into WebAssembly memory would need the model's size
//! twice; instead each chunk is copied straight into this buffer, reserved once up front when the
//! size is known (Content-Length / File.size), so the peak is the model plus one chunk.

use crate::error::WasmError;

/// Largest model this engine accepts: WebAssembly (wasm32) memory is at most 4 GiB, and the KV
/// cache, buffers and the tokenizer need room next to the weights.
pub const MAX_MODEL_BYTES: u64 = 3 << 30;

/// A model file being received.
#[derive(Debug, Default)]
pub struct ModelBytes {
    bytes: Vec<u8>,
    expected: Option<u64>,
}

impl ModelBytes {
    /// A receiver for a file of `expected` bytes (`None` when the size is unknown).
    ///
    /// # Errors
    /// `TooLarge` when the announced size exceeds [`MAX_MODEL_BYTES`]; `OutOfMemory` when the
    /// buffer cannot be reserved.
    pub fn new(expected: Option<u64>) -> Result<ModelBytes, WasmError> {
        let mut bytes = Vec::new();
        if let Some(n) = expected {
            if n > MAX_MODEL_BYTES {
                return Err(WasmError::TooLarge {
                    needed: n,
                    limit: MAX_MODEL_BYTES,
                });
            }
            let n_usize = usize::try_from(n).map_err(|_| WasmError::TooLarge {
                needed: n,
                limit: MAX_MODEL_BYTES,
            })?;
            bytes
                .try_reserve_exact(n_usize)
                .map_err(|e| WasmError::OutOfMemory {
                    bytes: n,
                    reason: e.to_string(),
                })?;
        }
        Ok(ModelBytes { bytes, expected })
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether nothing has been received yet.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The announced size, if any.
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// Makes room for `n` more bytes and returns that (zeroed) room, for the caller to fill.
    ///
    /// # Errors
    /// `SizeMismatch` when the file would grow past its announced size, `TooLarge` past
    /// [`MAX_MODEL_BYTES`], `OutOfMemory` when the buffer cannot grow.
    pub fn append_slot(&mut self, n: usize) -> Result<&mut [u8], WasmError> {
        let old = self.bytes.len();
        let new_len = old as u64 + n as u64;
        if let Some(expected) = self.expected {
            if new_len > expected {
                return Err(WasmError::SizeMismatch {
                    received: new_len,
                    expected,
                });
            }
        }
        if new_len > MAX_MODEL_BYTES {
            return Err(WasmError::TooLarge {
                needed: new_len,
                limit: MAX_MODEL_BYTES,
            });
        }
        self.bytes
            .try_reserve(n)
            .map_err(|e| WasmError::OutOfMemory {
                bytes: new_len,
                reason: e.to_string(),
            })?;
        self.bytes.resize(old + n, 0);
        Ok(&mut self.bytes[old..])
    }

    /// Appends `chunk` (the host-side form of [`ModelBytes::append_slot`]).
    ///
    /// # Errors
    /// As [`ModelBytes::append_slot`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), WasmError> {
        self.append_slot(chunk.len())?.copy_from_slice(chunk);
        Ok(())
    }

    /// The complete file.
    ///
    /// # Errors
    /// `SizeMismatch` when fewer bytes arrived than were announced.
    pub fn finish(self) -> Result<Vec<u8>, WasmError> {
        if let Some(expected) = self.expected {
            if self.len() != expected {
                return Err(WasmError::SizeMismatch {
                    received: self.len(),
                    expected,
                });
            }
        }
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_chunks_up_to_the_announced_size() {
        let mut m = ModelBytes::new(Some(5)).unwrap();
        m.push(b"ab").unwrap();
        m.push(b"cde").unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m.finish().unwrap(), b"abcde");
    }

    #[test]
    fn refuses_more_or_fewer_bytes_than_announced() {
        let mut m = ModelBytes::new(Some(3)).unwrap();
        m.push(b"ab").unwrap();
        assert!(matches!(
            m.push(b"cd"),
            Err(WasmError::SizeMismatch {
                received: 4,
                expected: 3
            })
        ));
        assert!(matches!(
            m.finish(),
            Err(WasmError::SizeMismatch {
                received: 2,
                expected: 3
            })
        ));
    }

    #[test]
    fn refuses_models_beyond_wasm_memory() {
        assert!(matches!(
            ModelBytes::new(Some(5 << 30)),
            Err(WasmError::TooLarge { .. })
        ));
        let mut unknown = ModelBytes::new(None).unwrap();
        unknown.push(b"xyz").unwrap();
        assert_eq!(unknown.finish().unwrap(), b"xyz");
    }
}
