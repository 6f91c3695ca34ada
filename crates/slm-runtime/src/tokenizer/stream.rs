//! [`TokenDecoder`]: turns a stream of token ids into text as soon as it is complete UTF-8.
//!
//! Byte-level tokens often cut a character in two (an emoji is 4 bytes and may span 2–4 tokens).
//! The decoder keeps the unfinished tail of a character until the next token completes it, so a
//! front end never prints half a character or a U+FFFD that later turns out to be wrong.

use super::Tokenizer;

/// Streaming detokenizer. Holds at most 3 pending bytes between calls.
#[derive(Clone, Debug, Default)]
pub struct TokenDecoder {
    pending: Vec<u8>,
    skip_special: bool,
    /// Nothing has been emitted yet (for SentencePiece's leading-space removal).
    at_start: bool,
}

impl TokenDecoder {
    /// A decoder; with `skip_special`, control tokens produce no text.
    pub fn new(skip_special: bool) -> TokenDecoder {
        TokenDecoder { pending: Vec::with_capacity(8), skip_special, at_start: true }
    }

    /// Adds one token; returns the text that became complete, if any.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Option<String> {
        if self.skip_special && tokenizer.is_special(id) {
            return None;
        }
        let mut piece = tokenizer.token_to_piece(id);
        if self.at_start && tokenizer.strips_leading_space() && self.pending.is_empty() {
            if let Some(rest) = piece.strip_prefix(b" ") {
                piece = rest;
            }
        }
        self.push_bytes(piece)
    }

    /// Adds raw bytes; returns the text that became complete, if any.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Option<String> {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // `valid` is a char boundary by definition of `valid_up_to`.
                    out.push_str(std::str::from_utf8(self.pending.get(..valid).unwrap_or(&[])).unwrap_or(""));
                    match e.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        // Bytes that can never become valid: replace them and go on.
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            None
        } else {
            self.at_start = false;
            Some(out)
        }
    }

    /// Ends the stream: returns the held-back bytes (an unfinished character) as U+FFFD.
    pub fn flush(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(text)
    }

    /// Forgets pending bytes and starts over (new generation).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.at_start = true;
    }

    /// Number of bytes held back waiting for the rest of a character.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_split_characters() {
        let mut d = TokenDecoder::new(true);
        let emoji = "👋".as_bytes(); // F0 9F 91 8B
        assert_eq!(d.push_bytes(b"hi "), Some("hi ".to_string()));
        assert_eq!(d.push_bytes(&emoji[..1]), None);
        assert_eq!(d.push_bytes(&emoji[1..3]), None);
        assert_eq!(d.pending_len(), 3);
        assert_eq!(d.push_bytes(&emoji[3..]), Some("👋".to_string()));
        assert_eq!(d.flush(), None);
    }

    #[test]
    fn emits_valid_prefix_and_keeps_tail() {
        let mut d = TokenDecoder::new(true);
        let mut bytes = b"ab".to_vec();
        bytes.extend_from_slice(&"é".as_bytes()[..1]);
        assert_eq!(d.push_bytes(&bytes), Some("ab".to_string()));
        assert_eq!(d.push_bytes(&"é".as_bytes()[1..]), Some("é".to_string()));
    }

    #[test]
    fn invalid_bytes_become_replacement_char() {
        let mut d = TokenDecoder::new(true);
        assert_eq!(d.push_bytes(&[b'a', 0xFF, b'b']), Some("a\u{FFFD}b".to_string()));
        // A lone continuation byte can never start a character.
        assert_eq!(d.push_bytes(&[0x80]), Some("\u{FFFD}".to_string()));
    }

    #[test]
    fn flush_returns_unfinished_tail() {
        let mut d = TokenDecoder::new(true);
        assert_eq!(d.push_bytes(&"€".as_bytes()[..2]), None);
        assert_eq!(d.flush(), Some("\u{FFFD}".to_string()));
        assert_eq!(d.pending_len(), 0);
    }
}
