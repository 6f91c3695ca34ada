//! GPT-2 byte-level alphabet: the reversible map between the 256 byte values and 256 printable
//! Unicode characters that byte-level BPE vocabularies are written in (`Ġ` = space, `Ċ` = newline).
//!
//! Printable Latin-1 bytes (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) map to themselves; the other 68 bytes map
//! to U+0100.. in increasing byte order — the table of OpenAI's `bytes_to_unicode()`.

/// Whether `b` is one of the 188 bytes that map to the character with the same code point.
const fn is_self_mapped(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// `BYTE_TO_CHAR[b]` is the code point that byte `b` is written as.
const BYTE_TO_CHAR: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut next = 256u32;
    let mut b = 0usize;
    while b < 256 {
        if is_self_mapped(b as u8) {
            table[b] = b as u32;
        } else {
            table[b] = next;
            next += 1;
        }
        b += 1;
    }
    table
};

/// Highest code point used by the alphabet (U+0143) plus one.
const CHAR_LIMIT: usize = 256 + 68;

/// `CHAR_TO_BYTE[c]` is the byte written as code point `c`, or -1 when `c` is not in the alphabet.
const CHAR_TO_BYTE: [i16; CHAR_LIMIT] = {
    let mut table = [-1i16; CHAR_LIMIT];
    let mut b = 0usize;
    while b < 256 {
        table[BYTE_TO_CHAR[b] as usize] = b as i16;
        b += 1;
    }
    table
};

/// The character byte `b` is written as in a byte-level vocabulary.
#[cfg(test)]
pub(crate) fn byte_to_char(b: u8) -> char {
    // Every table entry is below U+0144, so the conversion cannot fail.
    char::from_u32(BYTE_TO_CHAR[usize::from(b)]).unwrap_or('\u{FFFD}')
}

/// The byte that character `c` stands for, or `None` if `c` is not in the byte-level alphabet.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let i = c as usize;
    let v = *CHAR_TO_BYTE.get(i)?;
    u8::try_from(v).ok()
}

/// Decodes a byte-level token string into raw bytes. Characters outside the alphabet (which a
/// well-formed vocabulary never contains) are kept as their UTF-8 encoding, so nothing is lost.
pub(crate) fn decode_byte_level(token: &str, out: &mut Vec<u8>) {
    for c in token.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// Encodes raw bytes as a byte-level token string (the inverse of [`decode_byte_level`]).
#[cfg(test)]
pub(crate) fn encode_byte_level(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_characters() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'\t'), 'ĉ');
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(0x00), '\u{100}');
        assert_eq!(byte_to_char(0xAD), '\u{143}');
        assert_eq!(char_to_byte('Ġ'), Some(b' '));
        assert_eq!(char_to_byte('€'), None);
        assert_eq!(char_to_byte(' '), None, "space itself is not in the alphabet");
    }

    #[test]
    fn bijection_over_all_bytes() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = byte_to_char(b);
            assert!(seen.insert(c), "duplicate char for byte {b}");
            assert_eq!(char_to_byte(c), Some(b));
        }
    }

    #[test]
    fn round_trip_utf8() {
        let text = "héllo 👋\r\n\t";
        let enc = encode_byte_level(text.as_bytes());
        let mut dec = Vec::new();
        decode_byte_level(&enc, &mut dec);
        assert_eq!(dec, text.as_bytes());
    }
}
