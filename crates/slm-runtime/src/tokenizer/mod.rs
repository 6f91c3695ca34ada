//! Text ⇄ token ids: [`Tokenizer`] (built from GGUF metadata or a Hugging Face `tokenizer.json`)
//! and the streaming detokenizer [`TokenDecoder`].
//!
//! ```text
//!  text ──► special-token partition ──► per text fragment: pre-tokenizer regexes ──► byte-level
//!           (control tokens only when          (per `tokenizer.ggml.pre`)              map ──► BPE
//!            `parse_special` is on)                                                     merges ──► ids
//!  ids ──► token_to_piece (raw bytes) ──► concatenation ──► UTF-8 (lossy in `decode`, held back
//!                                                            at a split character in TokenDecoder)
//! ```
//!
//! Encoding reproduces llama.cpp (`llama_tokenize` with `add_special = false`) for the supported
//! byte-level BPE vocabularies; `tests/golden/tokenizer_smollm2.json` checks it. The BPE merge
//! loop itself is the `tokenizers` crate's; the special-token split and the token → bytes table
//! are this crate's, so both sources (GGUF and `tokenizer.json`) behave the same way.

mod bytes;
mod gguf;
mod hf;
pub(crate) mod json_check;
mod pre;
mod special;
mod stream;

use std::path::Path;

pub use gguf::GgufVocab;
pub use stream::TokenDecoder;

use crate::error::RuntimeError;
use special::{Fragment, SpecialToken};

/// What kind of token an id is; the GGUF `tokenizer.ggml.token_type` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An ordinary vocabulary entry (code 1).
    Normal,
    /// The unknown token (code 2); treated like a control token.
    Unknown,
    /// A control token such as `<|im_start|>` (code 3): only produced from text when special
    /// parsing is on, and omitted by `decode(.., skip_special = true)`.
    Control,
    /// A user-defined token (code 4): always matched in text, decoded verbatim.
    UserDefined,
    /// A reserved, unused slot (code 5); decodes to nothing.
    Unused,
    /// A raw byte token `<0xXX>` (code 6).
    Byte,
    /// Any other code (0 or out of range); decodes to nothing.
    Undefined,
}

impl TokenKind {
    /// Maps a `tokenizer.ggml.token_type` code.
    pub fn from_gguf_code(code: i32) -> TokenKind {
        match code {
            1 => TokenKind::Normal,
            2 => TokenKind::Unknown,
            3 => TokenKind::Control,
            4 => TokenKind::UserDefined,
            5 => TokenKind::Unused,
            6 => TokenKind::Byte,
            _ => TokenKind::Undefined,
        }
    }
}

/// Token texts that end generation when present in a vocabulary (llama.cpp's list).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
    // Fill-in-the-middle markers (llama.cpp's FIM_PAD / FIM_REP / FIM_SEP lists).
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

/// Special token ids of a vocabulary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
}

/// A tokenizer for one model: encoding, decoding, special ids and the model's chat template.
///
/// Cheap to share (`Send + Sync`); every method takes `&self`.
#[derive(Clone)]
pub struct Tokenizer {
    /// The BPE (or other HF) model plus pre-tokenizer. Special tokens are split off before it is
    /// called, so its own special-token matching is switched off.
    inner: tokenizers::Tokenizer,
    /// Kind of each id, `0..vocab_size`.
    kinds: Vec<TokenKind>,
    /// Raw bytes of every token's piece, concatenated; piece `i` is
    /// `piece_bytes[piece_offsets[i]..piece_offsets[i + 1]]`.
    piece_bytes: Vec<u8>,
    piece_offsets: Vec<usize>,
    /// Strings the partitioner splits on, longest first.
    specials: Vec<SpecialToken>,
    ids: SpecialIds,
    /// Every id that ends generation, sorted.
    eog: Vec<u32>,
    add_bos: bool,
    /// SentencePiece-style vocabularies store a leading space on the first word; `decode` and
    /// [`TokenDecoder`] remove it.
    strip_leading_space: bool,
    chat_template: Option<String>,
    /// Where the tokenizer came from, for messages (`"gguf gpt2/smollm"`, `"tokenizer.json"`).
    source: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.ids.bos)
            .field("eos", &self.ids.eos)
            .field("eog", &self.eog)
            .field("add_bos", &self.add_bos)
            .finish_non_exhaustive()
    }
}

/// Everything a constructor has worked out, assembled by [`Tokenizer::assemble`].
pub(crate) struct Parts {
    pub inner: tokenizers::Tokenizer,
    pub kinds: Vec<TokenKind>,
    /// Piece bytes per id (same length as `kinds`).
    pub pieces: Vec<Vec<u8>>,
    /// Token text per id (same length as `kinds`), used for the EOG text list.
    pub texts: Vec<Option<String>>,
    pub specials: Vec<SpecialToken>,
    pub ids: SpecialIds,
    pub add_bos: bool,
    pub strip_leading_space: bool,
    pub chat_template: Option<String>,
    pub source: String,
}

impl Tokenizer {
    /// Builds a tokenizer from GGUF tokenizer metadata (see [`GgufVocab`]).
    ///
    /// Supports `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the pre-tokenizers listed in
    /// the error for an unknown `tokenizer.ggml.pre`. SentencePiece (`"llama"`) vocabularies are
    /// rejected with [`RuntimeError::UnsupportedTokenizerModel`].
    pub fn from_gguf_vocab(vocab: &GgufVocab) -> Result<Tokenizer, RuntimeError> {
        gguf::build(vocab)
    }

    /// Builds a tokenizer from the metadata of a GGUF file
    /// ([`GgufVocab::from_metadata`] + [`Tokenizer::from_gguf_vocab`]).
    pub fn from_gguf(meta: &slm_format::Metadata) -> Result<Tokenizer, RuntimeError> {
        gguf::build(&GgufVocab::from_metadata(meta)?)
    }

    /// Loads a Hugging Face `tokenizer.json`, plus `tokenizer_config.json` (BOS/EOS, `add_bos_token`,
    /// `chat_template`) and `chat_template.jinja` from the same directory when they exist.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer, RuntimeError> {
        hf::from_file(path.as_ref())
    }

    /// Builds a tokenizer from the bytes of a `tokenizer.json` and, optionally, of its
    /// `tokenizer_config.json` (for callers without a file system, e.g. WebAssembly).
    pub fn from_hf_bytes(tokenizer_json: &[u8], tokenizer_config: Option<&[u8]>) -> Result<Tokenizer, RuntimeError> {
        hf::from_bytes(tokenizer_json, tokenizer_config, None, "tokenizer.json")
    }

    pub(crate) fn assemble(parts: Parts) -> Result<Tokenizer, RuntimeError> {
        let n = parts.kinds.len();
        if parts.pieces.len() != n || parts.texts.len() != n {
            return Err(RuntimeError::vocab("vocabulary", "internal: per-token tables have different lengths"));
        }
        let mut piece_bytes = Vec::with_capacity(parts.pieces.iter().map(Vec::len).sum());
        let mut piece_offsets = Vec::with_capacity(n + 1);
        piece_offsets.push(0);
        for piece in &parts.pieces {
            piece_bytes.extend_from_slice(piece);
            piece_offsets.push(piece_bytes.len());
        }

        let mut eog: Vec<u32> = [parts.ids.eos, parts.ids.eot, parts.ids.eom].into_iter().flatten().collect();
        for (id, text) in parts.texts.iter().enumerate() {
            if let (Some(t), Ok(id)) = (text, u32::try_from(id)) {
                if EOG_TEXTS.contains(&t.as_str()) {
                    eog.push(id);
                }
            }
        }
        eog.sort_unstable();
        eog.dedup();

        let mut specials = parts.specials;
        special::sort_specials(&mut specials);
        Ok(Tokenizer {
            inner: parts.inner,
            kinds: parts.kinds,
            piece_bytes,
            piece_offsets,
            specials,
            ids: parts.ids,
            eog,
            add_bos: parts.add_bos,
            strip_leading_space: parts.strip_leading_space,
            chat_template: parts.chat_template,
            source: parts.source,
        })
    }

    /// Tokenizes `text` without adding BOS/EOS.
    ///
    /// With `parse_special` on, control-token strings in `text` (e.g. `<|im_start|>`) become their
    /// ids — use it for text rendered by a chat template. With it off, they are tokenized as plain
    /// text, so user-supplied text cannot inject control tokens.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, RuntimeError> {
        self.encode_partitioned(text, parse_special, &[])
    }

    /// Tokenizes a rendered chat prompt: control tokens are parsed (as with
    /// `parse_special = true`) except where they overlap a `protected` byte range — the message
    /// contents (see `ChatTemplate::render_prompt`) — so a user who types `<|im_end|>` gets text,
    /// not a turn boundary. Tokens are otherwise identical to [`encode`](Self::encode).
    pub fn encode_protected(&self, text: &str, protected: &[std::ops::Range<usize>]) -> Result<Vec<u32>, RuntimeError> {
        self.encode_partitioned(text, true, protected)
    }

    fn encode_partitioned(
        &self,
        text: &str,
        parse_special: bool,
        protected: &[std::ops::Range<usize>],
    ) -> Result<Vec<u32>, RuntimeError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        for fragment in special::partition(text, &self.specials, parse_special, protected) {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(range) => {
                    let Some(piece) = text.get(range) else { continue };
                    let encoding = self
                        .inner
                        .encode_fast(piece, false)
                        .map_err(|e| RuntimeError::tokenizers(format!("encoding {} bytes of text", piece.len()), e))?;
                    out.extend_from_slice(encoding.get_ids());
                }
            }
        }
        Ok(out)
    }

    /// [`encode`](Self::encode), with the BOS token in front when the model wants one
    /// ([`add_bos`](Self::add_bos)).
    pub fn encode_prompt(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, RuntimeError> {
        let mut ids = self.encode(text, parse_special)?;
        if let (true, Some(bos)) = (self.add_bos, self.ids.bos) {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Whether a prompt should start with the BOS token (`tokenizer.ggml.add_bos_token`,
    /// `add_bos_token` in tokenizer_config.json, or the tokenizer's post-processor).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// The beginning-of-sequence token, if the vocabulary has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.ids.bos
    }

    /// The end-of-sequence token, if the vocabulary has one.
    pub fn eos_id(&self) -> Option<u32> {
        self.ids.eos
    }

    /// The padding token, if declared.
    pub fn pad_id(&self) -> Option<u32> {
        self.ids.pad
    }

    /// The unknown token, if declared.
    pub fn unk_id(&self) -> Option<u32> {
        self.ids.unk
    }

    /// Every token that ends generation, sorted: EOS, EOT/EOM when declared, and tokens such as
    /// `<|im_end|>`, `<|endoftext|>`, `<|eot_id|>` present in the vocabulary.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Whether `id` ends generation (one of [`eos_ids`](Self::eos_ids)).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// Number of token ids (`0..vocab_size`).
    pub fn vocab_size(&self) -> usize {
        self.kinds.len()
    }

    /// The kind of `id`, or `None` when it is out of range.
    pub fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }

    /// Whether `id` is a control (or unknown) token: hidden by `decode(.., skip_special = true)`.
    pub fn is_special(&self, id: u32) -> bool {
        matches!(self.token_kind(id), Some(TokenKind::Control | TokenKind::Unknown))
    }

    /// The raw bytes `id` stands for: byte-level decoded for normal tokens, the literal text for
    /// control and user-defined tokens, empty for unused slots and out-of-range ids. A piece may
    /// end in the middle of a UTF-8 character.
    pub fn token_to_piece(&self, id: u32) -> &[u8] {
        let i = id as usize;
        match (self.piece_offsets.get(i), self.piece_offsets.get(i + 1)) {
            (Some(&start), Some(&end)) => self.piece_bytes.get(start..end).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The vocabulary string of `id` as stored in the model (byte-level form, e.g. `Ġthe`).
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a vocabulary string (byte-level form for normal tokens, literal for specials).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The text of a special token such as BOS/EOS, for chat templates (empty when absent).
    pub fn special_text(&self, id: Option<u32>) -> String {
        id.map(|id| String::from_utf8_lossy(self.token_to_piece(id)).into_owned()).unwrap_or_default()
    }

    /// Decodes ids to text. Control tokens are left out when `skip_special` is set; invalid
    /// UTF-8 (e.g. a character cut at the end) becomes U+FFFD; out-of-range ids are ignored.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            if skip_special && self.is_special(id) {
                continue;
            }
            bytes.extend_from_slice(self.token_to_piece(id));
        }
        let start = usize::from(self.strip_leading_space && bytes.first() == Some(&b' '));
        String::from_utf8_lossy(bytes.get(start..).unwrap_or(&[])).into_owned()
    }

    /// The chat template shipped with the model (`tokenizer.chat_template` or
    /// tokenizer_config.json), if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Where this tokenizer came from, e.g. `"gguf gpt2 (pre: smollm)"`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the first decoded space is dropped (SentencePiece-style vocabularies).
    pub(crate) fn strips_leading_space(&self) -> bool {
        self.strip_leading_space
    }
}

#[cfg(test)]
pub(crate) mod test_vocab;

#[cfg(test)]
mod tests;
