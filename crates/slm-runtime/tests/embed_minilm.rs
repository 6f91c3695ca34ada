//! all-MiniLM-L6-v2 against sentence-transformers: token ids and normalised sentence vectors of
//! 24 texts (tests/golden/minilm_embeddings.json, from reference/gen_bert_golden.py), pair
//! similarities (minilm_similarity.json), and the same through a GGUF without the original
//! tokenizer.json (llama.cpp's vocabulary spelling).
//!
//! Needs `SLM_TEST_BERT_DIR` (see scripts/test.sh); skips with a note when unset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use slm_format::GgufFile;
use slm_runtime::embed::{cosine, EmbedOptions, Embedder};

fn bert_dir() -> Option<PathBuf> {
    match std::env::var_os("SLM_TEST_BERT_DIR") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("note: SLM_TEST_BERT_DIR not set; skipping the all-MiniLM-L6-v2 golden test");
            None
        }
    }
}

fn golden(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

struct Case {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn cases() -> Vec<Case> {
    golden("minilm_embeddings.json")["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Case {
            text: t["text"].as_str().unwrap().to_string(),
            ids: t["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect(),
            embedding: floats(&t["embedding"]),
        })
        .collect()
}

/// Checks ids exactly and every vector's cosine to the golden one; returns the worst cosine.
fn check(embedder: &mut Embedder, batch: usize) -> f32 {
    let cases = cases();
    for c in &cases {
        assert_eq!(embedder.tokenizer().encode(&c.text).unwrap(), c.ids, "ids of {:?}", c.text);
    }
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let opts = EmbedOptions { batch, ..EmbedOptions::default() };
    let out = embedder.embed(&texts, &opts, &mut |_| {}).unwrap();
    assert_eq!(out.vectors.len(), cases.len());
    assert_eq!(out.n_tokens, cases.iter().map(|c| c.ids.len()).sum::<usize>());
    let mut worst = 1.0f32;
    for (c, v) in cases.iter().zip(&out.vectors) {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{:?} is not normalised ({norm})", c.text);
        worst = worst.min(cosine(v, &c.embedding));
    }
    worst
}

#[test]
fn minilm_matches_sentence_transformers() {
    let Some(dir) = bert_dir() else { return };
    let mut embedder = Embedder::open(&dir, 2).unwrap();
    assert_eq!(embedder.dim(), 384);
    assert_eq!(embedder.tokenizer().max_len(), 256);
    for batch in [1, 7, 32] {
        let worst = check(&mut embedder, batch);
        eprintln!("batch {batch}: worst cosine to sentence-transformers {worst:.7}");
        assert!(worst >= 0.9999, "batch {batch}: worst cosine to sentence-transformers {worst}");
    }

    // Pair similarities as sentence-transformers' util.cos_sim computed them.
    let sims = golden("minilm_similarity.json");
    let pairs = sims["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 5);
    for p in pairs {
        let (a, b) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
        let out = embedder.embed(&[a, b], &EmbedOptions::default(), &mut |_| {}).unwrap();
        let got = cosine(&out.vectors[0], &out.vectors[1]);
        let want = p["cosine"].as_f64().unwrap() as f32;
        assert!((got - want).abs() < 2e-4, "{a:?} ~ {b:?}: {got} vs {want}");
    }
}

#[test]
fn llama_cpp_style_vocabulary_tokenizes_the_same() {
    let Some(dir) = bert_dir() else { return };
    let (writer, _) =
        slm_model::hf::build_gguf(&dir, &slm_model::hf::ImportOptions::default(), &mut |_| {}).unwrap();
    // Drop the original tokenizer.json: the WordPiece model is rebuilt from llama.cpp's keys.
    let full = GgufFile::from_bytes(writer.to_bytes().unwrap()).unwrap();
    let mut w = slm_format::GgufWriter::new();
    for (k, v) in full.metadata().iter().filter(|(k, _)| *k != "tokenizer.huggingface.json") {
        w.add(k, v.clone());
    }
    for t in full.tensors() {
        w.add_tensor(&t.name, &t.dims, t.dtype, full.tensor_data(t).to_vec()).unwrap();
    }
    let stripped = Arc::new(GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap());
    assert!(stripped.metadata().get("tokenizer.huggingface.json").is_none());
    let mut embedder = Embedder::from_gguf(stripped, 2).unwrap();
    let worst = check(&mut embedder, 32);
    assert!(worst >= 0.9999, "worst cosine {worst}");
}
