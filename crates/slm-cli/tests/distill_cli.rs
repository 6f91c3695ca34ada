//! `slm train --teacher` (alias `slm distill`) end to end on the real model as the teacher
//! (SLM_TEST_MODEL, skipped when unset): a tiny student trains on the teacher's vocabulary, the
//! teacher's predictions are cached and reused, the report names the teacher.

mod common;

use common::slm;
use serde_json::Value;

const STUDENT: &str = "[model]\nd_model = 32\nn_layer = 1\nn_head = 2\nd_ff = 64\ncontext = 32\n\n[train]\nsteps = 3\nbatch_size = 2\neval_every = 3\ncheckpoint_every = 3\n\n[optim]\nlr = 1e-3\n";

#[test]
fn a_student_distils_from_the_real_model_and_reuses_the_teacher_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("student.toml");
    std::fs::write(&cfg, STUDENT).unwrap();
    let data = dir.path().join("text.txt");
    let text = std::fs::read_to_string("/usr/share/common-licenses/Apache-2.0").unwrap();
    std::fs::write(&data, &text[..6000]).unwrap();
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let out = dir.path().join("run");
    // Clean refusal of a teacher together with another tokenizer, before any work.
    slm(&[
        "distill",
        "--config",
        &s(&cfg),
        "--data",
        &s(&data),
        "--out",
        &s(&out),
        "--teacher",
        "x.gguf",
        "--tokenizer",
        "t.json",
    ])
    .fails();
    let teacher = model_or_skip!();
    let args = |out: &std::path::Path| {
        vec![
            "distill".to_string(),
            "--config".into(),
            s(&cfg),
            "--data".into(),
            s(&data),
            "--out".into(),
            s(out),
            "--teacher".into(),
            teacher.clone(),
            "--distill-temperature".into(),
            "1".into(),
            "--distill-top-k".into(),
            "8".into(),
            "-t".into(),
            "2".into(),
        ]
    };
    let a1 = args(&out);
    let r = slm(&a1.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    r.stderr_has(&["teacher:", "windows", "validation loss"]);
    assert!(out.join("teacher-cache.gguf").is_file() && out.join("model.gguf").is_file());
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["teacher"]["top_k"], 8);
    assert_eq!(report["steps"], 3);
    // A second run on the same data reuses the cached teacher pass.
    let out2 = dir.path().join("run2");
    std::fs::create_dir_all(&out2).unwrap();
    std::fs::copy(out.join("teacher-cache.gguf"), out2.join("teacher-cache.gguf")).unwrap();
    let a2 = args(&out2);
    slm(&a2.iter().map(String::as_str).collect::<Vec<_>>()).ok().stderr_has(&["teacher predictions from"]);
    // Same data, order and seed: both runs end with the same model.
    assert_eq!(std::fs::read(out.join("model.gguf")).unwrap(), std::fs::read(out2.join("model.gguf")).unwrap());
}
