//! [`ConstraintSpec`]: what the output must match, before it is compiled for a vocabulary.

use super::{ConstraintError, MAX_SCHEMA_DEPTH, MAX_SPEC_BYTES};
use llguidance::api::{GrammarInit, TopLevelGrammar};
use serde_json::{json, Value};

/// What the output must match.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstraintSpec {
    /// Any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    JsonObject,
    /// JSON valid under this JSON schema (OpenAI's `json_schema`). Supported keywords are
    /// llguidance's (types, properties/required/additionalProperties, items, enum/const,
    /// anyOf/oneOf/allOf, local `$ref`/`$defs`, string/number/array bounds, pattern, format).
    JsonSchema(Value),
    /// Text matching a regular expression (Rust `regex` syntax, anchored at both ends).
    Regex(String),
    /// Text derived from a Lark-style grammar (llguidance's dialect).
    Lark(String),
}

/// How generated JSON is laid out: fixed `", "` / `": "` separators and no free whitespace, so
/// a small model cannot spend its budget on blank lines. Replaces any `x-guidance` options in
/// the client's schema (those tune the engine, not the client's answer).
fn layout() -> Value {
    json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "})
}

impl ConstraintSpec {
    /// A JSON-schema spec from schema text.
    pub fn json_schema_str(schema: &str) -> Result<ConstraintSpec, ConstraintError> {
        check_size("JSON schema", schema.len())?;
        let value = serde_json::from_str(schema).map_err(|e| ConstraintError::InvalidSpec {
            kind: "JSON schema",
            message: format!("not JSON: {e}"),
        })?;
        Ok(ConstraintSpec::JsonSchema(value))
    }

    /// What the spec is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ConstraintSpec::JsonObject => "JSON object",
            ConstraintSpec::JsonSchema(_) => "JSON schema",
            ConstraintSpec::Regex(_) => "regex",
            ConstraintSpec::Lark(_) => "Lark grammar",
        }
    }

    /// Checks the spec without a vocabulary: size, nesting, and a full grammar compile (within
    /// the engine's limits). A spec that passes compiles for any vocabulary except when the
    /// token-level limits are hit, which is rare.
    pub fn validate(&self) -> Result<(), ConstraintError> {
        let grammar = self.to_grammar()?;
        match GrammarInit::Serialized(grammar).validate(None, super::parser_limits()) {
            llguidance::api::ValidationResult::Error(e) => Err(self.invalid(e)),
            _ => Ok(()),
        }
    }

    /// The engine's grammar, after the size and nesting checks.
    pub(super) fn to_grammar(&self) -> Result<TopLevelGrammar, ConstraintError> {
        Ok(match self {
            ConstraintSpec::JsonObject => TopLevelGrammar::from_json_schema(with_layout(json!({"type": "object"}))),
            ConstraintSpec::JsonSchema(schema) => {
                let size = serde_json::to_vec(schema).map(|v| v.len()).unwrap_or(usize::MAX);
                check_size("JSON schema", size)?;
                let depth = depth_capped(schema, MAX_SCHEMA_DEPTH + 1);
                if depth > MAX_SCHEMA_DEPTH {
                    return Err(ConstraintError::SpecTooDeep {
                        depth,
                        max: MAX_SCHEMA_DEPTH,
                    });
                }
                match schema {
                    Value::Object(_) | Value::Bool(_) => TopLevelGrammar::from_json_schema(with_layout(schema.clone())),
                    _ => return Err(self.invalid("a JSON schema is an object (or true/false)")),
                }
            }
            ConstraintSpec::Regex(rx) => {
                check_size("regex", rx.len())?;
                TopLevelGrammar::from_regex(rx)
            }
            ConstraintSpec::Lark(g) => {
                check_size("Lark grammar", g.len())?;
                TopLevelGrammar::from_lark(g.clone())
            }
        })
    }

    pub(super) fn invalid(&self, message: impl std::fmt::Display) -> ConstraintError {
        ConstraintError::InvalidSpec {
            kind: self.kind(),
            message: message.to_string(),
        }
    }
}

fn check_size(kind: &'static str, bytes: usize) -> Result<(), ConstraintError> {
    if bytes > MAX_SPEC_BYTES {
        return Err(ConstraintError::SpecTooLarge {
            kind,
            bytes,
            max: MAX_SPEC_BYTES,
        });
    }
    Ok(())
}

/// The schema with slm's JSON layout options (`true`/`false` schemas are wrapped in `allOf`).
fn with_layout(schema: Value) -> Value {
    match schema {
        Value::Object(mut map) => {
            map.insert("x-guidance".into(), layout());
            Value::Object(map)
        }
        other => json!({"allOf": [other], "x-guidance": layout()}),
    }
}

/// Nesting depth of `v` (a scalar is 0), counted no further than `cap` and without recursion,
/// so a hostile value cannot exhaust the stack.
fn depth_capped(v: &Value, cap: usize) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        if deepest >= cap {
            return deepest;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|x| (x, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}
