//! [`TokenEnv`]: slm's tokenizer seen by the grammar engine — every token's bytes (special
//! tokens marked, so a grammar never produces them as text), the end-of-generation ids, and the
//! compiled per-vocabulary tables. Built once per tokenizer (tens of milliseconds for a 49k
//! vocabulary) and shared by every request.

use super::error::ConstraintError;
use crate::tokenizer::{TokenKind, Tokenizer};
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::ParserFactory;
use std::sync::Arc;

/// The tokenizer as the grammar engine needs it. Cheap to clone (shared tables).
#[derive(Clone)]
pub struct TokenEnv {
    pub(super) factory: Arc<ParserFactory>,
    pub(super) n_vocab: usize,
}

impl std::fmt::Debug for TokenEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEnv")
            .field("n_vocab", &self.n_vocab)
            .finish_non_exhaustive()
    }
}

/// The `toktrie` view of a [`Tokenizer`]: the trie plus real tokenization (used by the engine
/// for forced text).
struct SlmTokEnv {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerEnv for SlmTokEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        // Byte-level BPE: valid UTF-8 goes through the real tokenizer (canonical ids); anything
        // else (a cut character) is spelled greedily from the trie.
        match std::str::from_utf8(s)
            .ok()
            .and_then(|t| self.tokenizer.encode(t, false).ok())
        {
            Some(ids) => ids,
            None => self.trie.greedy_tokenize(s),
        }
    }
}

impl TokenEnv {
    /// Builds the token table of `tokenizer` for a model with `n_vocab` logits (at least the
    /// tokenizer's vocabulary; ids past it are never allowed).
    ///
    /// Control and unknown tokens are marked special (a grammar never spells text with them);
    /// the tokenizer's end-of-generation ids are the grammar's end of text.
    pub fn new(tokenizer: Arc<Tokenizer>, n_vocab: usize) -> Result<TokenEnv, ConstraintError> {
        let n_vocab = n_vocab.max(tokenizer.vocab_size());
        let vocab_u32 = u32::try_from(n_vocab)
            .map_err(|_| ConstraintError::TokenEnv(format!("vocabulary of {n_vocab} tokens is too large")))?;
        let eos: Vec<u32> = tokenizer
            .eos_ids()
            .iter()
            .copied()
            .filter(|&id| id < vocab_u32)
            .collect();
        let Some(&first_eos) = eos.first() else {
            return Err(ConstraintError::TokenEnv(
                "the tokenizer has no end-of-text token, so a constrained answer could never end".into(),
            ));
        };
        let words = token_words(&tokenizer, n_vocab);
        let info = TokRxInfo {
            tok_bos: tokenizer.bos_id(),
            tok_pad: tokenizer.pad_id(),
            tok_unk: tokenizer.unk_id(),
            ..TokRxInfo::new(vocab_u32, first_eos)
        };
        // The trie builder asserts on malformed input; ours is well-formed by construction
        // (one entry per id, lengths within u32), and a panic becomes an error all the same.
        let trie = std::panic::catch_unwind(|| TokTrie::from(&info, &words).with_eos_tokens(&eos))
            .map_err(|_| ConstraintError::TokenEnv("the token trie builder rejected the vocabulary".into()))?;
        let env: TokEnv = Arc::new(SlmTokEnv { trie, tokenizer });
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| ConstraintError::TokenEnv(e.to_string()))?;
        factory.quiet();
        *factory.limits_mut() = super::parser_limits();
        Ok(TokenEnv {
            factory: Arc::new(factory),
            n_vocab,
        })
    }

    /// Number of logits a [`Constraint`](super::Constraint) of this table masks.
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }
}

/// Every id's bytes as the trie wants them: normal/byte/user-defined tokens as their piece,
/// control/unknown tokens as `0xFF` + their text (the engine's special-token marker), unused
/// and missing ids empty (never allowed).
fn token_words(tokenizer: &Tokenizer, n_vocab: usize) -> Vec<Vec<u8>> {
    (0..n_vocab)
        .map(|i| {
            let Ok(id) = u32::try_from(i) else { return Vec::new() };
            let piece = tokenizer.token_to_piece(id);
            match tokenizer.token_kind(id) {
                Some(TokenKind::Normal | TokenKind::Byte | TokenKind::UserDefined) => piece.to_vec(),
                Some(TokenKind::Control | TokenKind::Unknown) => {
                    let mut w = Vec::with_capacity(piece.len() + 1);
                    w.push(TokTrie::SPECIAL_TOKEN_MARKER);
                    w.extend_from_slice(piece);
                    w
                }
                Some(TokenKind::Unused | TokenKind::Undefined) | None => Vec::new(),
            }
        })
        .collect()
}
