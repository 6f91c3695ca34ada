//! [`ConstraintError`]: what can go wrong building or running a constraint.

/// A constraint that cannot be built or cannot go on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConstraintError {
    /// The spec (schema, regex or grammar text) is larger than [`MAX_SPEC_BYTES`](super::MAX_SPEC_BYTES).
    #[error("the {kind} is {bytes} bytes; at most {max} are accepted (send a smaller schema)")]
    SpecTooLarge {
        /// What the spec is (`"JSON schema"`, `"regex"`, ...).
        kind: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The JSON schema nests deeper than [`MAX_SCHEMA_DEPTH`](super::MAX_SCHEMA_DEPTH).
    #[error("the JSON schema nests {depth} levels deep; at most {max} are accepted (flatten it, or use $defs)")]
    SpecTooDeep {
        /// The depth found (counted up to `max + 1`).
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// The grammar engine rejected the spec: invalid, unsupported, or over its compile limits.
    #[error("invalid or unsupported {kind}: {message}")]
    InvalidSpec {
        /// What the spec is (`"JSON schema"`, `"regex"`, ...).
        kind: &'static str,
        /// The engine's explanation.
        message: String,
    },
    /// The tokenizer could not be turned into the grammar engine's token table.
    #[error("cannot build the token table for constrained decoding: {0}")]
    TokenEnv(String),
    /// The logits slice does not have one entry per token.
    #[error("{got} logits given for a vocabulary of {expected} tokens")]
    VocabMismatch {
        /// Entries given.
        got: usize,
        /// Tokens in the constraint's vocabulary.
        expected: usize,
    },
    /// A generation step failed: the grammar engine hit its per-step limits, or a token the
    /// mask did not allow was fed in.
    #[error("constrained decoding stopped: {0}")]
    Step(String),
}
