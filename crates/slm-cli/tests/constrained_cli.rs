//! `slm run` / `slm chat` with `--json` and `--json-schema FILE` (constrained decoding) on the
//! real model: every answer parses and matches the schema; bad schema files are clear errors.

mod common;

use common::{slm, slm_stdin};
use serde_json::Value;

const PERSON: &str = r#"{"type": "object",
  "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
  "required": ["name", "age"], "additionalProperties": false}"#;

fn check_person(text: &str) {
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
    let obj = v.as_object().unwrap_or_else(|| panic!("{text:?} is not an object"));
    assert!(obj.get("name").is_some_and(Value::is_string), "{text:?}");
    assert!(
        obj.get("age")
            .is_some_and(|a| a.as_f64().is_some_and(|f| f.fract() == 0.0)),
        "{text:?}"
    );
    assert_eq!(obj.len(), 2, "{text:?}");
}

#[test]
fn run_with_a_json_schema_answers_valid_json() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("person.json");
    std::fs::write(&schema, PERSON).unwrap();
    let s = schema.to_string_lossy();
    let ask = "Invent a person and describe them.";
    for extra in [
        &["--temp", "0"][..],
        &["--temp", "1", "--seed", "5"][..],
        &["--temp", "1", "--seed", "6"][..],
    ] {
        let mut args = vec!["run", "-m", &m, "-c", "512", "-n", "200", "--json-schema", &s];
        args.extend_from_slice(extra);
        args.push(ask);
        let out = slm(&args).ok();
        check_person(&out.stdout);
    }
    // --json: any object, even when the prompt does not ask for JSON.
    let out = slm(&["run", "-m", &m, "-c", "512", "-n", "200", "--temp", "0", "--json", ask]).ok();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{:?}: {e}", out.stdout));
    assert!(v.is_object(), "{v}");
}

#[test]
fn chat_with_json_answers_each_turn_with_an_object() {
    let m = model_or_skip!();
    let out = slm_stdin(
        &["chat", "-m", &m, "-c", "1024", "-n", "150", "--temp", "0", "--json"],
        "Describe a cat.\nNow describe a dog.\n",
    )
    .ok();
    let answers: Vec<&str> = out.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(answers.len(), 2, "{:?}", out.stdout);
    for a in answers {
        let v: Value = serde_json::from_str(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        assert!(v.is_object(), "{v}");
    }
}

#[test]
fn bad_schema_files_are_clear_errors() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"type": "no-such-type"}"#).unwrap();
    let b = bad.to_string_lossy();
    slm(&["run", "-m", &m, "--json-schema", &b, "hi"])
        .fails()
        .stderr_has(&["bad.json", "JSON schema"]);
    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "{ nope").unwrap();
    slm(&["run", "-m", &m, "--json-schema", &not_json.to_string_lossy(), "hi"])
        .fails()
        .stderr_has(&["not JSON"]);
    let missing = dir.path().join("missing.json");
    slm(&["run", "-m", &m, "--json-schema", &missing.to_string_lossy(), "hi"])
        .fails()
        .stderr_has(&["missing.json"]);
    slm(&["run", "-m", &m, "--json", "--json-schema", &b, "hi"])
        .fails()
        .stderr_has(&["cannot be used with"]);
}
