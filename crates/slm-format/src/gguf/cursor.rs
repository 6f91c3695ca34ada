//! A bounds-checked little-endian reader over a byte slice.
//!
//! Every read checks the bytes left first, and every count is checked against the bytes left
//! *before* anything is allocated for it; nothing here can panic on any input.

use super::error::GgufError;

/// Position in a byte slice. `context` strings are only turned into `String`s on error.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// Current byte offset.
    pub(crate) fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left after the current position.
    pub(crate) fn remaining(&self) -> u64 {
        self.buf.len().saturating_sub(self.pos) as u64
    }

    /// Takes `n` bytes or fails with `UnexpectedEof` naming `what` and `context`.
    pub(crate) fn take(
        &mut self,
        n: u64,
        what: &'static str,
        context: &str,
    ) -> Result<&'a [u8], GgufError> {
        let eof = || GgufError::UnexpectedEof {
            offset: self.offset(),
            what,
            context: context.to_string(),
            needed: n,
            remaining: self.remaining(),
        };
        let n_usize = usize::try_from(n).map_err(|_| eof())?;
        let end = self.pos.checked_add(n_usize).ok_or_else(eof)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(eof)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(
        &mut self,
        what: &'static str,
        context: &str,
    ) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what, context)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str, context: &str) -> Result<u8, GgufError> {
        Ok(self.array::<1>(what, context)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str, context: &str) -> Result<u16, GgufError> {
        self.array(what, context).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, what: &'static str, context: &str) -> Result<u32, GgufError> {
        self.array(what, context).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str, context: &str) -> Result<u64, GgufError> {
        self.array(what, context).map(u64::from_le_bytes)
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit in what is left.
    /// `count_offset` is where the count was read (for the error message).
    pub(crate) fn check_count_fits(
        &self,
        count: u64,
        min_size: u64,
        what: &'static str,
        count_offset: u64,
        context: &str,
    ) -> Result<(), GgufError> {
        let needed = count.checked_mul(min_size);
        match needed {
            Some(n) if n <= self.remaining() => Ok(()),
            _ => Err(GgufError::CountPastEof {
                what,
                offset: count_offset,
                context: context.to_string(),
                count,
                needed: needed.unwrap_or(u64::MAX),
                remaining: self.remaining(),
            }),
        }
    }

    /// Reads a GGUF string (u64 length + UTF-8 bytes) of at most `max_len` bytes.
    pub(crate) fn string(
        &mut self,
        max_len: u64,
        what: &'static str,
        context: &str,
    ) -> Result<String, GgufError> {
        let len_offset = self.offset();
        let len = self.u64("string length", context)?;
        if len > max_len {
            return Err(GgufError::StringTooLong {
                what,
                offset: len_offset,
                context: context.to_string(),
                len,
                max: max_len,
            });
        }
        let start = self.offset();
        let bytes = self.take(len, what, context)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 {
                what,
                offset: start,
                context: context.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_stops_at_eof() {
        let data = [1u8, 0, 0, 0, 2, 0];
        let mut c = Cursor::new(&data);
        assert_eq!(c.u32("x", "t").unwrap(), 1);
        assert_eq!(c.remaining(), 2);
        match c.u32("y", "ctx") {
            Err(GgufError::UnexpectedEof {
                offset: 4,
                needed: 4,
                remaining: 2,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(c.u16("z", "t").unwrap(), 2);
        assert!(c.take(u64::MAX, "huge", "t").is_err());
    }

    #[test]
    fn string_length_is_checked_before_allocating() {
        let mut data = u64::MAX.to_le_bytes().to_vec();
        data.extend_from_slice(b"abc");
        assert!(matches!(
            Cursor::new(&data).string(u64::MAX, "s", "k"),
            Err(GgufError::UnexpectedEof { .. })
        ));
        assert!(matches!(
            Cursor::new(&data).string(10, "s", "k"),
            Err(GgufError::StringTooLong { .. })
        ));
        let mut ok = 2u64.to_le_bytes().to_vec();
        ok.extend_from_slice(&[0xff, 0xfe]);
        assert!(matches!(
            Cursor::new(&ok).string(10, "s", "k"),
            Err(GgufError::InvalidUtf8 { offset: 8, .. })
        ));
    }

    #[test]
    fn count_fits_uses_checked_arithmetic() {
        let data = [0u8; 16];
        let c = Cursor::new(&data);
        assert!(c.check_count_fits(2, 8, "x", 0, "k").is_ok());
        assert!(c.check_count_fits(3, 8, "x", 0, "k").is_err());
        assert!(c.check_count_fits(u64::MAX, 2, "x", 0, "k").is_err());
    }
}
