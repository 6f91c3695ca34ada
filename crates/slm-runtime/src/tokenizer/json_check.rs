//! Checks on a `tokenizer.json` that the `tokenizers` crate (0.22) skips when it deserializes one,
//! and then panics on while encoding (fuzz finding 6, docs/RELIABILITY.md): a `TemplateProcessing`
//! post-processor whose template names a special token missing from its `special_tokens` map
//! (`self.special_tokens.0[id]` in processors/template.rs), or a special token whose `ids` and
//! `tokens` differ in length, or a `single` template that uses sequence `B` (fuzz finding 7:
//! `encodings[1]` out of bounds). The builder API validates these; the serde path does not.

use serde_json::Value;

/// Checks every `TemplateProcessing` post-processor in `tokenizer` (also inside a `Sequence`).
/// Shapes other than the ones checked here are left to `tokenizers`' own deserializer.
pub(crate) fn check_post_processor(tokenizer: &Value) -> Result<(), String> {
    match tokenizer.get("post_processor") {
        Some(p) => check_processor(p, 0),
        None => Ok(()),
    }
}

/// Nesting depth of `Sequence` processors followed (serde_json itself stops at 128 levels).
const MAX_DEPTH: usize = 64;

fn check_processor(p: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("post_processor: Sequence processors nested deeper than {MAX_DEPTH}"));
    }
    // Recognized by shape, not by "type": tokenizers also accepts an object without a (correct)
    // "type" tag when its fields match a processor (fuzz: `"tyqe":"TemplateProcessing"` loaded).
    if let Some(processors) = p.get("processors").and_then(Value::as_array) {
        processors.iter().try_for_each(|q| check_processor(q, depth + 1))?;
    }
    if ["single", "pair", "special_tokens"].iter().any(|k| p.get(*k).is_some()) {
        check_template(p)?;
    }
    Ok(())
}

fn check_template(p: &Value) -> Result<(), String> {
    let empty = serde_json::Map::new();
    let specials = p.get("special_tokens").and_then(Value::as_object).unwrap_or(&empty);
    for (key, token) in specials {
        let len = |field: &str| token.get(field).and_then(Value::as_array).map(Vec::len);
        if let (Some(ids), Some(tokens)) = (len("ids"), len("tokens")) {
            if ids != tokens {
                return Err(format!(
                    "post_processor: special token {key:?} has {ids} ids but {tokens} tokens; they must pair up"
                ));
            }
        }
    }
    for template in ["single", "pair"] {
        let pieces = p.get(template).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for piece in pieces {
            // A single sequence is A; `$B` there indexes a second encoding that does not exist.
            if template == "single" && piece.pointer("/Sequence/id").and_then(Value::as_str).is_some_and(|id| id != "A") {
                return Err("post_processor: the single template uses sequence B; only A exists there".into());
            }
            let Some(id) = piece.pointer("/SpecialToken/id").and_then(Value::as_str) else { continue };
            if !specials.contains_key(id) {
                return Err(format!(
                    "post_processor: the {template} template uses special token {id:?}, which is not in its special_tokens"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(single_id: &str, ids: Value) -> Value {
        json!({"post_processor": {"type": "Sequence", "processors": [{"type": "ByteLevel"}, {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": single_id, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": ids, "tokens": ["[CLS]"]}}
        }]}})
    }

    #[test]
    fn consistent_templates_pass() {
        assert_eq!(check_post_processor(&template("[CLS]", json!([2]))), Ok(()));
        assert_eq!(check_post_processor(&json!({"post_processor": null})), Ok(()));
        assert_eq!(check_post_processor(&json!({})), Ok(()));
    }

    #[test]
    fn missing_special_tokens_and_unpaired_ids_are_errors() {
        let e = check_post_processor(&template("{CLS]", json!([2]))).unwrap_err();
        assert!(e.contains("\"{CLS]\"") && e.contains("single"), "{e}");
        let e = check_post_processor(&template("[CLS]", json!([2, 3]))).unwrap_err();
        assert!(e.contains("2 ids but 1 tokens"), "{e}");
        let mut b = template("[CLS]", json!([2]));
        b["post_processor"]["processors"][1]["single"][1] = json!({"Sequence": {"id": "B", "type_id": 0}});
        let e = check_post_processor(&b).unwrap_err();
        assert!(e.contains("sequence B"), "{e}");
        // Without (or with a misspelt) "type" tag, tokenizers still loads the template.
        let mut untagged = template("{CLS]", json!([2]));
        untagged["post_processor"]["processors"][1]["tyqe"] = json!("TemplateProcessing");
        untagged["post_processor"]["processors"][1].as_object_mut().unwrap().remove("type");
        assert!(check_post_processor(&untagged).unwrap_err().contains("{CLS]"));
    }
}
