//! Constraint tests on the tiny test vocabulary (always) and on the real SmolLM2 vocabulary
//! (`SLM_TEST_MODEL`): masks, forced end of text, random walks that must yield valid JSON, limits.

use super::*;
use crate::tokenizer::test_vocab::tiny_vocab;
use crate::Tokenizer;
use serde_json::{json, Value};
use std::sync::Arc;

fn tiny() -> Arc<Tokenizer> {
    Arc::new(Tokenizer::from_gguf_vocab(&tiny_vocab("smollm")).unwrap())
}

/// The real model's tokenizer, or `None` (with a note) when `SLM_TEST_MODEL` is unset.
fn real() -> Option<Arc<Tokenizer>> {
    let Some(path) = std::env::var_os("SLM_TEST_MODEL") else {
        assert!(
            std::env::var_os("SLM_REQUIRE_MODEL").is_none(),
            "SLM_REQUIRE_MODEL is set but SLM_TEST_MODEL is not"
        );
        eprintln!("note: SLM_TEST_MODEL not set; skipping");
        return None;
    };
    let file = slm_format::GgufFile::open(std::path::Path::new(&path)).unwrap();
    Some(Arc::new(Tokenizer::from_gguf(file.metadata()).unwrap()))
}

fn person_schema() -> Value {
    json!({"type": "object",
           "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
           "required": ["name", "age"], "additionalProperties": false})
}

/// Feeds `text` (tokenized normally) into `c`.
fn feed(tok: &Tokenizer, c: &mut Constraint, text: &str) {
    for id in tok.encode(text, false).unwrap() {
        c.accept(id)
            .unwrap_or_else(|e| panic!("{text:?}: token {id} rejected: {e}"));
    }
}

fn allows(tok: &Tokenizer, c: &mut Constraint, text: &str) -> bool {
    let ids = tok.encode(text, false).unwrap();
    assert_eq!(ids.len(), 1, "{text:?} should be one token");
    c.allowed().unwrap().is_allowed(ids[0])
}

/// Deterministic xorshift, so a failing walk can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random walk over allowed tokens: uniform, except that with probability 1/3 (more as the walk
/// grows) it picks a "closing" token (`"`, `}`, `]`, `,`, EOS) so the walk ends. Returns the text
/// and whether it ended at end of text / a finished grammar.
fn walk(tok: &Tokenizer, env: &TokenEnv, spec: &ConstraintSpec, seed: u64, max_steps: usize) -> (String, bool) {
    let mut c = Constraint::new(env, spec).unwrap();
    let mut rng = Rng(seed | 1);
    let mut out = Vec::new();
    for step in 0..max_steps {
        let allowed = c.allowed().unwrap().to_list();
        assert!(!allowed.is_empty());
        let closers: Vec<u32> = allowed
            .iter()
            .copied()
            .filter(|&id| tok.is_eog(id) || matches!(tok.token_to_piece(id).first(), Some(b'"' | b'}' | b']' | b',')))
            .collect();
        let close_bias = 3 + step / 50;
        let id = if !closers.is_empty() && rng.below(10) < close_bias {
            closers[rng.below(closers.len())]
        } else {
            allowed[rng.below(allowed.len())]
        };
        // Cross-check the mask against the logits path.
        let mut logits = vec![0.0f32; env.n_vocab()];
        c.mask_logits(&mut logits).unwrap();
        assert_eq!(logits.iter().filter(|l| l.is_finite()).count(), allowed.len());
        assert!(logits[id as usize].is_finite());
        c.accept(id).unwrap();
        if tok.is_eog(id) {
            return (String::from_utf8(out).expect("constrained output is UTF-8"), true);
        }
        assert!(!tok.is_special(id), "a special token {id} was allowed as text");
        out.extend_from_slice(tok.token_to_piece(id));
        if c.is_finished() {
            return (String::from_utf8(out).expect("constrained output is UTF-8"), true);
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), false)
}

fn check_person(text: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
    let obj = v.as_object().unwrap_or_else(|| panic!("{text:?} is not an object"));
    assert!(obj.get("name").is_some_and(Value::is_string), "{text:?}: name");
    // serde_json reads `-0` as a float; it is still an integer.
    let int = |a: &Value| a.is_i64() || a.is_u64() || a.as_f64().is_some_and(|f| f.fract() == 0.0);
    assert!(obj.get("age").is_some_and(int), "{text:?}: age");
    assert_eq!(obj.len(), 2, "{text:?}: additionalProperties is false");
}

fn walks_stay_valid(tok: &Arc<Tokenizer>, n_walks: u64) {
    let env = TokenEnv::new(tok.clone(), tok.vocab_size()).unwrap();
    let schema = ConstraintSpec::JsonSchema(person_schema());
    for seed in 1..=n_walks {
        let (text, done) = walk(tok, &env, &schema, seed * 7919, 3000);
        assert!(done, "seed {seed}: walk did not finish: {text:?}");
        check_person(&text);
        let (text, done) = walk(tok, &env, &ConstraintSpec::JsonObject, seed * 104_729, 3000);
        assert!(done, "seed {seed}: walk did not finish: {text:?}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("seed {seed}: {text:?}: {e}"));
        assert!(v.is_object(), "{text:?}");
    }
}

#[test]
fn random_walks_yield_valid_json_tiny_vocab() {
    walks_stay_valid(&tiny(), 30);
}

#[test]
fn random_walks_yield_valid_json_real_vocab() {
    let Some(tok) = real() else { return };
    walks_stay_valid(&tok, 10);
}

#[test]
fn mask_follows_the_schema_and_forces_the_end() {
    let Some(tok) = real() else { return };
    let env = TokenEnv::new(tok.clone(), tok.vocab_size()).unwrap();
    let mut c = Constraint::new(&env, &ConstraintSpec::JsonSchema(person_schema())).unwrap();
    let eos = tok.eos_id().unwrap();
    let pieces = |c: &mut Constraint| -> Vec<Vec<u8>> {
        c.allowed()
            .unwrap()
            .to_list()
            .into_iter()
            .map(|id| tok.token_to_piece(id).to_vec())
            .collect()
    };
    // The layout is fixed, so the opening is forced: only (canonical) pieces of it are allowed.
    let opening = br#"{"name": ""#;
    let start = pieces(&mut c);
    assert!(!start.is_empty());
    for p in &start {
        assert!(
            !p.is_empty() && opening.starts_with(p),
            "{:?} allowed at the start",
            String::from_utf8_lossy(p)
        );
    }
    assert!(!c.allowed().unwrap().is_allowed(eos));
    feed(&tok, &mut c, "{\"name\": \"Ann\", \"age\": ");
    let at_age = pieces(&mut c);
    assert!(
        at_age.iter().any(|p| p == b"4"),
        "digits must be allowed for an integer"
    );
    for p in &at_age {
        assert!(
            matches!(p.first(), Some(b'0'..=b'9' | b'-')),
            "{:?} allowed for an integer",
            String::from_utf8_lossy(p)
        );
    }
    assert!(!c.allowed().unwrap().is_allowed(eos));
    feed(&tok, &mut c, "42");
    assert!(!c.is_finished());
    assert!(!c.allowed().unwrap().is_allowed(eos), "the object is still open");
    let after = pieces(&mut c);
    assert!(after.iter().any(|p| p.first() == Some(&b'}')));
    assert!(
        after.iter().all(|p| matches!(p.first(), Some(b'0'..=b'9' | b'}'))),
        "no other property may follow"
    );
    feed(&tok, &mut c, "}");
    // Complete: only end of text is left, and the caller is told to stop.
    assert!(c.is_finished());
    let allowed = c.allowed().unwrap().to_list();
    assert!(
        !allowed.is_empty() && allowed.iter().all(|&id| tok.is_eog(id)),
        "{allowed:?}"
    );
}

#[test]
fn json_object_allows_eos_only_when_complete() {
    let tok = tiny();
    let env = TokenEnv::new(tok.clone(), tok.vocab_size()).unwrap();
    let mut c = Constraint::new(&env, &ConstraintSpec::JsonObject).unwrap();
    let eos = tok.eos_id().unwrap();
    feed(&tok, &mut c, "{\"a\": [1, ");
    assert!(!c.allowed().unwrap().is_allowed(eos));
    assert!(!c.is_accepting());
    feed(&tok, &mut c, "2]}");
    assert!(c.is_accepting());
    assert!(c.is_finished());
    // A token the mask forbids is an error, not silently accepted.
    let mut c = Constraint::new(&env, &ConstraintSpec::JsonObject).unwrap();
    assert!(matches!(
        c.accept(crate::tokenizer::test_vocab::byte_id(b'x')),
        Err(ConstraintError::Step(_))
    ));
}

#[test]
fn regex_and_lark_specs_work() {
    let tok = tiny();
    let env = TokenEnv::new(tok.clone(), tok.vocab_size()).unwrap();
    let mut c = Constraint::new(&env, &ConstraintSpec::Regex("(yes|no)".into())).unwrap();
    assert!(!allows(&tok, &mut c, "x"));
    feed(&tok, &mut c, "yes");
    assert!(c.is_finished());
    let mut c = Constraint::new(&env, &ConstraintSpec::Lark("start: \"a\" \"b\"+".into())).unwrap();
    feed(&tok, &mut c, "abb");
    assert!(c.is_accepting() && !c.is_finished(), "more b's may follow");
}

#[test]
fn mask_application_matches_the_bitmask() {
    // 70 logits: word 0 all allowed, word 1 none, word 2 (6 ids) partly; ids past the mask -inf.
    let bits = [u32::MAX, 0, 0b101];
    let mut logits = vec![1.0f32; 100];
    apply_mask(&bits, &mut logits);
    for (i, l) in logits.iter().enumerate() {
        let allowed = i < 32 || i == 64 || i == 66;
        assert_eq!(l.is_finite(), allowed, "id {i}");
    }
}

#[test]
fn bad_and_hostile_specs_are_typed_errors() {
    let tok = tiny();
    let env = TokenEnv::new(tok.clone(), tok.vocab_size()).unwrap();
    let invalid = [
        json!({"type": "no-such-type"}),
        json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}),
        json!({"type": "string", "pattern": "(unclosed"}),
        json!([1, 2]),
    ];
    for schema in invalid {
        let spec = ConstraintSpec::JsonSchema(schema.clone());
        assert!(
            matches!(spec.validate(), Err(ConstraintError::InvalidSpec { .. })),
            "{schema}"
        );
        assert!(
            matches!(Constraint::new(&env, &spec), Err(ConstraintError::InvalidSpec { .. })),
            "{schema}"
        );
    }
    // Too deep: 40 nested arrays-of schemas.
    let mut deep = json!({"type": "integer"});
    for _ in 0..40 {
        deep = json!({"type": "array", "items": deep});
    }
    let spec = ConstraintSpec::JsonSchema(deep);
    assert!(matches!(spec.validate(), Err(ConstraintError::SpecTooDeep { .. })));
    // Too large.
    let big: serde_json::Map<String, Value> = (0..5000)
        .map(|i| (format!("property_{i}"), json!({"type": "string"})))
        .collect();
    let spec = ConstraintSpec::JsonSchema(json!({"type": "object", "properties": big}));
    assert!(matches!(spec.validate(), Err(ConstraintError::SpecTooLarge { .. })));
    assert!(matches!(
        ConstraintSpec::json_schema_str(&"x".repeat(MAX_SPEC_BYTES + 1)),
        Err(ConstraintError::SpecTooLarge { .. })
    ));
    // A regex whose automaton explodes hits the engine's fuel instead of running on.
    let start = std::time::Instant::now();
    let spec = ConstraintSpec::Regex("(a|b)*a(a|b){40}".into());
    let r = Constraint::new(&env, &spec).and_then(|mut c| {
        for _ in 0..60 {
            c.allowed()?;
            c.accept(crate::tokenizer::test_vocab::byte_id(b'a'))?;
        }
        Ok(())
    });
    assert!(start.elapsed().as_secs() < 10, "took {:?} ({r:?})", start.elapsed());
}

#[test]
fn logits_of_the_wrong_length_are_refused() {
    let tok = tiny();
    let env = TokenEnv::new(tok.clone(), tok.vocab_size() + 7).unwrap();
    assert_eq!(env.n_vocab(), tok.vocab_size() + 7);
    let mut c = Constraint::new(&env, &ConstraintSpec::JsonObject).unwrap();
    let mut short = vec![0.0; tok.vocab_size()];
    assert!(matches!(
        c.mask_logits(&mut short),
        Err(ConstraintError::VocabMismatch { .. })
    ));
    // Padding ids past the tokenizer are never allowed.
    let mut logits = vec![0.0; env.n_vocab()];
    c.mask_logits(&mut logits).unwrap();
    assert!(logits[tok.vocab_size()..].iter().all(|l| *l == f32::NEG_INFINITY));
}

#[test]
fn spec_limits_at_their_boundaries() {
    // Depth: `n` array wrappers around `{"type": "integer"}` nest `n + 1` levels.
    let nested = |n: usize| {
        let mut s = json!({"type": "integer"});
        for _ in 0..n {
            s = json!({"type": "array", "items": s});
        }
        ConstraintSpec::JsonSchema(s)
    };
    nested(MAX_SCHEMA_DEPTH - 1).validate().unwrap();
    assert!(matches!(
        nested(MAX_SCHEMA_DEPTH).validate(),
        Err(ConstraintError::SpecTooDeep { depth, max: MAX_SCHEMA_DEPTH }) if depth == MAX_SCHEMA_DEPTH + 1
    ));
    // Size: a description padded to exactly MAX_SPEC_BYTES serialized bytes, then one more.
    let sized = |n: usize| {
        let base = serde_json::to_vec(&json!({"type": "string", "description": ""}))
            .unwrap()
            .len();
        ConstraintSpec::JsonSchema(json!({"type": "string", "description": "d".repeat(n - base)}))
    };
    sized(MAX_SPEC_BYTES).validate().unwrap();
    assert!(matches!(
        sized(MAX_SPEC_BYTES + 1).validate(),
        Err(ConstraintError::SpecTooLarge { .. })
    ));
    let tok = tiny();
    let env = TokenEnv::new(tok.clone(), tok.vocab_size()).unwrap();
    Constraint::new(&env, &sized(MAX_SPEC_BYTES)).unwrap();
    Constraint::new(&env, &nested(MAX_SCHEMA_DEPTH - 1)).unwrap();
}

#[test]
fn hostile_specs_end_quickly_on_the_real_vocabulary() {
    let Some(tok) = real() else { return };
    let env = TokenEnv::new(tok.clone(), tok.vocab_size()).unwrap();
    let many: serde_json::Map<String, Value> = (0..300)
        .map(|i| {
            (
                format!("p{i}"),
                json!({"type": "string", "pattern": format!("(a|b)*a(a|b){{{}}}", i % 20)}),
            )
        })
        .collect();
    let specs = [
        ConstraintSpec::Regex("(a|b)*a(a|b){60}".into()),
        ConstraintSpec::JsonSchema(json!({"type": "string", "pattern": "((a+)+)+b(.*){30}x"})),
        ConstraintSpec::JsonSchema(json!({"type": "object", "properties": many, "required": ["p1", "p2", "p3"]})),
        ConstraintSpec::JsonSchema(
            json!({"anyOf": (0..200).map(|i| json!({"const": format!("v{i}")})).collect::<Vec<_>>()}),
        ),
        ConstraintSpec::JsonSchema(json!({"type": "array", "minItems": 100000, "items": {"type": "integer"}})),
    ];
    for spec in specs {
        let start = std::time::Instant::now();
        let outcome = Constraint::new(&env, &spec).and_then(|mut c| {
            let mut logits = vec![0.0; env.n_vocab()];
            for _ in 0..40 {
                c.mask_logits(&mut logits)?;
                let id = logits.iter().position(|l| l.is_finite()).unwrap_or(0) as u32;
                c.accept(id)?;
                if c.is_finished() {
                    break;
                }
                logits.fill(0.0);
            }
            Ok(())
        });
        let took = start.elapsed();
        eprintln!("{:?}: {took:?} {:?}", spec.kind(), outcome.as_ref().err());
        assert!(took.as_secs() < 10, "{spec:?} took {took:?}");
    }
}
