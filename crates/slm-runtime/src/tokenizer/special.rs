//! Splitting text on special-token strings before BPE, as llama.cpp's
//! `tokenizer_st_partition` does.
//!
//! Special tokens are tried longest first; each one splits every remaining text fragment at all
//! its (non-overlapping, left-to-right) occurrences. Control and unknown tokens take part only
//! when the caller asks for special parsing, so user text can never inject `<|im_start|>`;
//! user-defined tokens always do (llama.cpp and Hugging Face agree on that).

use std::ops::Range;

/// A special-token string the partitioner looks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SpecialToken {
    /// The literal text.
    pub content: String,
    /// Its id.
    pub id: u32,
    /// Matched even when special parsing is off (user-defined tokens).
    pub always: bool,
    /// Whitespace before an occurrence is absorbed into it.
    pub lstrip: bool,
    /// Whitespace after an occurrence is absorbed into it.
    pub rstrip: bool,
}

/// A piece of the input: text still to be tokenized, or a token already decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// A byte range of the input text (always on character boundaries, never empty).
    Text(Range<usize>),
    /// A special token.
    Token(u32),
}

/// Orders specials as the partitioner needs them: longest text first (ties by id, for
/// determinism; llama.cpp leaves ties unspecified). Empty strings are dropped.
pub(crate) fn sort_specials(specials: &mut Vec<SpecialToken>) {
    specials.retain(|s| !s.content.is_empty());
    specials.sort_by(|a, b| b.content.len().cmp(&a.content.len()).then(a.id.cmp(&b.id)));
}

/// Splits `text` into fragments. `specials` must be sorted by [`sort_specials`]. Control-token
/// matches that overlap a `protected` byte range (text that came from a user) are left as text.
pub(crate) fn partition(
    text: &str,
    specials: &[SpecialToken],
    parse_special: bool,
    protected: &[Range<usize>],
) -> Vec<Fragment> {
    let mut fragments = Vec::new();
    if text.is_empty() {
        return fragments;
    }
    fragments.push(Fragment::Text(0..text.len()));
    for special in specials.iter().filter(|s| parse_special || s.always) {
        // Cheap pre-check: most prompts contain no special token at all.
        if !text.contains(special.content.as_str()) {
            continue;
        }
        let mut next = Vec::with_capacity(fragments.len() + 2);
        for fragment in fragments {
            match fragment {
                Fragment::Text(range) => split_fragment(text, range, special, protected, &mut next),
                token => next.push(token),
            }
        }
        fragments = next;
    }
    fragments
}

/// Splits one text fragment on every occurrence of `special`, pushing the pieces to `out`.
fn split_fragment(
    text: &str,
    range: Range<usize>,
    special: &SpecialToken,
    protected: &[Range<usize>],
    out: &mut Vec<Fragment>,
) {
    let Some(slice) = text.get(range.clone()) else {
        out.push(Fragment::Text(range));
        return;
    };
    let mut start = range.start;
    for (pos, matched) in slice.match_indices(special.content.as_str()) {
        let match_start = range.start + pos;
        let match_end = match_start + matched.len();
        if !special.always && protected.iter().any(|p| p.start < match_end && match_start < p.end) {
            continue;
        }
        let mut left_end = match_start;
        if special.lstrip {
            left_end = start + trim_end_len(text.get(start..match_start).unwrap_or(""));
        }
        if left_end > start {
            out.push(Fragment::Text(start..left_end));
        }
        out.push(Fragment::Token(special.id));
        start = match_end;
        if special.rstrip {
            let rest = text.get(match_end..range.end).unwrap_or("");
            start = match_end + (rest.len() - rest.trim_start_matches(is_c_space).len());
        }
    }
    if start < range.end {
        out.push(Fragment::Text(start..range.end));
    }
}

/// Length of `s` without its trailing whitespace.
fn trim_end_len(s: &str) -> usize {
    s.trim_end_matches(is_c_space).len()
}

/// C `isspace` on ASCII, which is what llama.cpp strips around `lstrip`/`rstrip` tokens.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one protected range is the common case
mod tests {
    use super::*;

    fn sp(content: &str, id: u32, always: bool) -> SpecialToken {
        SpecialToken { content: content.into(), id, always, lstrip: false, rstrip: false }
    }

    fn render(text: &str, frags: &[Fragment]) -> Vec<String> {
        frags
            .iter()
            .map(|f| match f {
                Fragment::Text(r) => format!("T:{}", &text[r.clone()]),
                Fragment::Token(id) => format!("#{id}"),
            })
            .collect()
    }

    #[test]
    fn splits_on_specials_when_parsing() {
        let mut specials = vec![sp("<|im_start|>", 1, false), sp("<|im_end|>", 2, false)];
        sort_specials(&mut specials);
        let text = "<|im_start|>user\nhi<|im_end|>\n";
        let frags = partition(text, &specials, true, &[]);
        assert_eq!(render(text, &frags), ["#1", "T:user\nhi", "#2", "T:\n"]);
    }

    #[test]
    fn control_tokens_are_text_without_parse_special() {
        let specials = vec![sp("<|im_start|>", 1, false)];
        let text = "a<|im_start|>b";
        assert_eq!(render(text, &partition(text, &specials, false, &[])), ["T:a<|im_start|>b"]);
    }

    #[test]
    fn user_defined_tokens_always_split() {
        let specials = vec![sp("<tool>", 7, true)];
        let text = "x<tool>y<tool>";
        assert_eq!(render(text, &partition(text, &specials, false, &[])), ["T:x", "#7", "T:y", "#7"]);
    }

    #[test]
    fn longest_token_wins() {
        let mut specials = vec![sp("<a>", 1, false), sp("<a><b>", 2, false)];
        sort_specials(&mut specials);
        let text = "<a><b><a>";
        assert_eq!(render(text, &partition(text, &specials, true, &[])), ["#2", "#1"]);
    }

    #[test]
    fn lstrip_and_rstrip_absorb_spaces() {
        let specials = vec![SpecialToken { content: "<m>".into(), id: 3, always: true, lstrip: true, rstrip: true }];
        let text = "a  <m>  b";
        assert_eq!(render(text, &partition(text, &specials, false, &[])), ["T:a", "#3", "T:b"]);
    }

    #[test]
    fn protected_ranges_keep_control_tokens_as_text() {
        let specials = vec![sp("<e>", 2, false), sp("<u>", 9, true)];
        let text = "x<e>y<e><u>z<e>";
        // Bytes 4..12 ("y<e><u>z") came from a user; one control match overlaps the edge.
        let frags = partition(text, &specials, true, &[4..12]);
        assert_eq!(render(text, &frags), ["T:x", "#2", "T:y<e>", "#9", "T:z", "#2"]);
        let frags = partition(text, &specials, true, &[2..5]);
        assert_eq!(render(text, &frags), ["T:x<e>y", "#2", "#9", "T:z", "#2"]);
    }

    #[test]
    fn empty_text_has_no_fragments() {
        assert!(partition("", &[sp("<a>", 1, true)], true, &[]).is_empty());
    }
}
