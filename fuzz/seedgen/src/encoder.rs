//! Seeds of the encoder targets: small random `bert` GGUF files (with and without a WordPiece
//! vocabulary), WordPiece `tokenizer.json` files, and `tokenizer_config.json` variants.

use slm_format::{GgmlType, GgufWriter};
use slm_kernels::quant::quantize_row;

use crate::{put, Result};

const D: u64 = 32;
const FF: u64 = 64;
const POS: u64 = 16;

/// WordPiece vocabulary in llama.cpp's spelling (`▁word` starts a word, control tokens as is).
const VOCAB: [&str; 12] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "▁hello", "▁world", "▁un", "aff", "able", "s", "▁!", "▁the",
];

/// Deterministic values in [-scale, scale).
fn values(seed: &mut u64, n: u64, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A 2-layer random encoder (d = 32, FFN 64, 16 positions); matrices as `dtype`.
fn bert_gguf(dtype: GgmlType, pooling: u32, vocab: Vocab) -> Result<Vec<u8>> {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "bert")
        .add_u32("bert.context_length", POS as u32)
        .add_u32("bert.embedding_length", D as u32)
        .add_u32("bert.feed_forward_length", FF as u32)
        .add_u32("bert.block_count", 2)
        .add_u32("bert.attention.head_count", 4)
        .add_f32("bert.attention.layer_norm_epsilon", 1e-12)
        .add_bool("bert.attention.causal", false)
        .add_u32("bert.pooling_type", pooling);
    match vocab {
        Vocab::None => {}
        Vocab::Gguf => {
            let types: Vec<i32> = VOCAB.iter().map(|t| if t.starts_with('[') { 3 } else { 1 }).collect();
            w.add_string("tokenizer.ggml.model", "bert")
                .add_str_array("tokenizer.ggml.tokens", &VOCAB)
                .add_i32_array("tokenizer.ggml.token_type", &types)
                .add_u32("tokenizer.ggml.unknown_token_id", 1)
                .add_u32("tokenizer.ggml.cls_token_id", 2)
                .add_u32("tokenizer.ggml.seperator_token_id", 3);
        }
        Vocab::Json => {
            w.add_string("tokenizer.huggingface.json", WORDPIECE);
        }
    }
    let mut seed = 11u64;
    let mut add = |w: &mut GgufWriter, name: &str, dims: &[u64], scale: f32, offset: f32, ty: GgmlType| -> Result<()> {
        let n: u64 = dims.iter().product();
        let v: Vec<f32> = values(&mut seed, n, scale).into_iter().map(|x| x + offset).collect();
        if ty == GgmlType::F32 {
            w.add_tensor_f32(name, dims, &v)?;
        } else {
            let cols = dims[0] as usize;
            let row = ty.row_bytes(cols as u64).ok_or("row size")? as usize;
            let mut bytes = vec![0u8; row * v.len() / cols];
            for (src, dst) in v.chunks_exact(cols).zip(bytes.chunks_exact_mut(row)) {
                quantize_row(ty, src, dst)?;
            }
            w.add_tensor(name, dims, ty, bytes)?;
        }
        Ok(())
    };
    let f32 = GgmlType::F32;
    add(&mut w, "token_embd.weight", &[D, VOCAB.len() as u64], 1.0, 0.0, dtype)?;
    add(&mut w, "position_embd.weight", &[D, POS], 0.5, 0.0, dtype)?;
    add(&mut w, "token_types.weight", &[D, 2], 0.5, 0.0, f32)?;
    add(&mut w, "token_embd_norm.weight", &[D], 0.2, 1.0, f32)?;
    add(&mut w, "token_embd_norm.bias", &[D], 0.1, 0.0, f32)?;
    for i in 0..2 {
        for (part, rows, cols) in [
            ("attn_q", D, D),
            ("attn_k", D, D),
            ("attn_v", D, D),
            ("attn_output", D, D),
            ("ffn_up", FF, D),
            ("ffn_down", D, FF),
        ] {
            add(&mut w, &format!("blk.{i}.{part}.weight"), &[cols, rows], 0.3, 0.0, dtype)?;
            add(&mut w, &format!("blk.{i}.{part}.bias"), &[rows], 0.1, 0.0, f32)?;
        }
        for norm in ["attn_output_norm", "layer_output_norm"] {
            add(&mut w, &format!("blk.{i}.{norm}.weight"), &[D], 0.2, 1.0, f32)?;
            add(&mut w, &format!("blk.{i}.{norm}.bias"), &[D], 0.1, 0.0, f32)?;
        }
    }
    Ok(w.to_bytes()?)
}

#[derive(Clone, Copy)]
enum Vocab {
    None,
    Gguf,
    Json,
}

/// An uncased BERT `tokenizer.json` (what `BertTokenizerFast` saves), small vocabulary.
const WORDPIECE: &str = r###"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":0,"content":"[PAD]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":1,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":2,"content":"[CLS]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":3,"content":"[SEP]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"BertProcessing","sep":["[SEP]",3],"cls":["[CLS]",2]},"decoder":{"type":"WordPiece","prefix":"##","cleanup":true},"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"hello":4,"world":5,"un":6,"##aff":7,"##able":8,"##s":9,"!":10,"the":11}}}"###;

/// Writes the seeds of `bert_gguf`, `wordpiece_json` and `tokenizer_config`.
pub fn encoder_seeds() -> Result<()> {
    put("bert_gguf", "f32-cls-vocab", &bert_gguf(GgmlType::F32, 2, Vocab::Gguf)?)?;
    put("bert_gguf", "q8_0-mean-json", &bert_gguf(GgmlType::Q8_0, 1, Vocab::Json)?)?;
    put("bert_gguf", "f32-mean-no-vocab", &bert_gguf(GgmlType::F32, 1, Vocab::None)?)?;

    put("wordpiece_json", "bert", WORDPIECE.as_bytes())?;
    let template = WORDPIECE.replace(
        r#"{"type":"BertProcessing","sep":["[SEP]",3],"cls":["[CLS]",2]}"#,
        r#"{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"[CLS]":{"id":"[CLS]","ids":[2],"tokens":["[CLS]"]},"[SEP]":{"id":"[SEP]","ids":[3],"tokens":["[SEP]"]}}}"#,
    );
    put("wordpiece_json", "template-processing", template.as_bytes())?;
    put("wordpiece_json", "bpe-refused", br#"{"model":{"type":"BPE","vocab":{},"merges":[]}}"#)?;
    put("wordpiece_json", "truncated", &WORDPIECE.as_bytes()[..WORDPIECE.len() / 2])?;

    for (name, text) in [
        (
            "smollm",
            r#"{"add_prefix_space":false,"bos_token":"<|im_start|>","eos_token":"<|im_end|>","pad_token":"<|im_end|>","unk_token":"<|endoftext|>","model_max_length":8192,"chat_template":"{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"}"#,
        ),
        (
            "token-objects",
            r#"{"add_bos_token":true,"add_eos_token":false,"bos_token":{"__type":"AddedToken","content":"<|endoftext|>","lstrip":false,"normalized":false,"rstrip":false,"single_word":false},"eos_token":{"content":"<|im_start|>"}}"#,
        ),
        (
            "named-templates",
            r#"{"chat_template":[{"name":"default","template":"{{ messages[0]['content'] }}"},{"name":"tool_use","template":"{{ tools }}"}],"eos_token":"hello"}"#,
        ),
        ("unknown-tokens", r#"{"bos_token":"<s>","eos_token":"</s>","add_bos_token":"yes"}"#),
        ("empty", "{}"),
        ("not-object", "[1,2]"),
    ] {
        put("tokenizer_config", name, text.as_bytes())?;
    }
    Ok(())
}
