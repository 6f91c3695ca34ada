//! `tojson` as Hugging Face's chat-template environment defines it: Python's
//! `json.dumps(x, ensure_ascii=False, indent=indent)`.
//!
//! minijinja's built-in `tojson` is made for HTML (it escapes `<`, `>`, `&`, `'`) and writes
//! compact separators; Python writes `", "` and `": "` (or `","` + newline with `indent`) and
//! escapes nothing but `"`, `\` and control characters. Tool-calling templates embed JSON in the
//! prompt, so the bytes must match what the model was trained on.

use std::io;

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind, State};
use serde::Serialize;

/// Python-style JSON layout for `serde_json`.
struct PyFormatter {
    indent: Option<usize>,
    level: usize,
    /// Whether the current container has had an element (to close it on its own line).
    has_value: bool,
}

impl PyFormatter {
    fn newline<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        if let Some(n) = self.indent {
            w.write_all(b"\n")?;
            // Saturating: `indent` comes from the template; the writer stops a huge one.
            for _ in 0..self.level.saturating_mul(n) {
                w.write_all(b" ")?;
            }
        }
        Ok(())
    }

    fn separator<W: ?Sized + io::Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        match (first, self.indent) {
            (true, None) => Ok(()),
            (true, Some(_)) => self.newline(w),
            (false, None) => w.write_all(b", "),
            (false, Some(_)) => {
                w.write_all(b",")?;
                self.newline(w)
            }
        }
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level = self.level.saturating_sub(1);
        if self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.separator(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.separator(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// A `Vec` writer that fails past `limit` bytes.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            return Err(io::Error::other(format!("the JSON text exceeds {} bytes", self.limit)));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serializes `value` the way Python's `json.dumps(value, ensure_ascii=False, indent=indent)` does,
/// failing once the text would exceed `limit` bytes.
pub(crate) fn dumps_capped(value: &impl Serialize, indent: Option<usize>, limit: usize) -> Result<String, serde_json::Error> {
    let mut out = Capped { buf: Vec::new(), limit };
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter { indent, level: 0, has_value: false });
    value.serialize(&mut ser)?;
    // serde_json only writes valid UTF-8.
    Ok(String::from_utf8_lossy(&out.buf).into_owned())
}

/// [`dumps_capped`] without a limit.
#[cfg(test)]
pub(crate) fn dumps(value: &impl Serialize, indent: Option<usize>) -> Result<String, serde_json::Error> {
    dumps_capped(value, indent, usize::MAX)
}

/// The `tojson` filter: `x | tojson`, `x | tojson(indent=2)`, `x | tojson(2)`. Other Python
/// keyword arguments (`ensure_ascii`, `sort_keys`, `separators`) are accepted and ignored.
///
/// The text is capped by the fuel left (64 bytes per fuel, as minijinja counts) and by
/// [`MAX_OUTPUT_BYTES`](super::MAX_OUTPUT_BYTES): the value may be a lazy `[x] * 10**8` or the
/// indent huge, and minijinja only charges the result once it exists. Every serialized item
/// writes at least one byte, so the cap bounds the time as well.
pub(crate) fn tojson_filter(state: &State, value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(v) => Some(v),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => Some(
            v.as_usize()
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "tojson: indent must be a non-negative integer"))?,
        ),
    };
    let fuel_bytes = state.fuel_levels().map_or(usize::MAX, |(_, left)| usize::try_from(left.saturating_mul(64)).unwrap_or(usize::MAX));
    dumps_capped(value, indent, fuel_bytes.min(super::MAX_OUTPUT_BYTES))
        .map(Value::from_safe_string)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, "tojson: value cannot be serialized").with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_matches_python() {
        // Keys in sorted order: serde_json keeps insertion order or sorts, depending on its
        // `preserve_order` feature (which another dependency may turn on); both agree here.
        let v = json!({"args": [1, "a<b>&'c'", null, true], "empty": {}, "name": "get_weather", "none": []});
        // Python: json.dumps(v, ensure_ascii=False)
        let expected = r#"{"args": [1, "a<b>&'c'", null, true], "empty": {}, "name": "get_weather", "none": []}"#;
        assert_eq!(dumps(&v, None).unwrap(), expected);
    }

    #[test]
    fn indented_matches_python() {
        let v = json!({"a": [1, 2], "b": {"c": "é"}, "d": []});
        // Python: json.dumps(v, ensure_ascii=False, indent=2)
        let expected = "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {\n    \"c\": \"é\"\n  },\n  \"d\": []\n}";
        assert_eq!(dumps(&v, Some(2)).unwrap(), expected);
    }

    #[test]
    fn escapes_like_python() {
        assert_eq!(dumps(&"q\"\\\n\u{1}", None).unwrap(), r#""q\"\\\n\u0001""#);
    }
}
