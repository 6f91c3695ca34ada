//! Writes the committed seed corpora of slm's fuzz targets: small valid files from slm's own
//! writers (so the fuzzer starts from deep inside each parser) and the malformed-file matrices of
//! the tests (each a byte pattern the parser must reject with a typed error).

mod encoder;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use slm_format::safetensors::{Dtype, SafetensorsWriter};
use slm_format::{GgmlType, GgufWriter, Value};
use slm_model::quantize::imatrix::ImatrixEntry;
use slm_model::quantize::ImportanceMatrix;
use slm_model::random_init::{random_imatrix, random_llama_gguf};
use slm_model::{Arch, ModelConfig};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn corpus(target: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn put(target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::write(corpus(target)?.join(format!("seed-{name}")), bytes)?;
    Ok(())
}

// ---- raw GGUF bytes (for files no writer would produce) ------------------------------------

fn s(v: &[u8]) -> Vec<u8> {
    let mut b = (v.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(v);
    b
}

fn kv(key: &str, ty: u32, value: &[u8]) -> Vec<u8> {
    let mut b = s(key.as_bytes());
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(value);
    b
}

fn tinfo(name: &str, dims: &[u64], ty: u32, offset: u64) -> Vec<u8> {
    let mut b = s(name.as_bytes());
    b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        b.extend_from_slice(&d.to_le_bytes());
    }
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    b
}

/// A GGUF v3 file with the given metadata entries, tensor infos and data (padded to 32).
fn raw(version: u32, n_tensors: u64, n_kv: u64, kvs: &[Vec<u8>], infos: &[Vec<u8>], data: &[u8]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    kvs.iter().chain(infos).for_each(|x| b.extend_from_slice(x));
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend_from_slice(data);
    b
}

fn raw_one(kvs: &[Vec<u8>], info: Vec<u8>, data_len: usize) -> Vec<u8> {
    raw(3, 1, kvs.len() as u64, kvs, &[info], &vec![0u8; data_len])
}

fn u32v(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn gguf_seeds() -> Result<Vec<(String, Vec<u8>)>> {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_u8("t.u8", 7)
        .add_i8("t.i8", -7)
        .add_u16("t.u16", 700)
        .add_i16("t.i16", -700)
        .add_u32("t.u32", 70_000)
        .add_i32("t.i32", -70_000)
        .add_u64("t.u64", 1 << 40)
        .add_i64("t.i64", -(1 << 40))
        .add_f32("t.f32", 0.5)
        .add_f64("t.f64", -0.25)
        .add_bool("t.bool", true)
        .add_str_array("t.strs", &["a", "bc", ""])
        .add_f32_array("t.f32s", &[1.0, 2.0])
        .add_i32_array("t.i32s", &[1, -2, 3])
        .add_array(
            "t.nested",
            slm_format::Array::Array(vec![
                slm_format::Array::U8(vec![1, 2]),
                slm_format::Array::Bool(vec![true]),
            ]),
        );
    w.add("t.value", Value::String("x".into()));
    w.add_tensor_f32("a", &[4], &[1.0, -2.0, 3.5, 0.0])?;
    w.add_tensor("b", &[2, 2], GgmlType::F16, vec![0u8; 8])?;
    w.add_tensor("c", &[32], GgmlType::Q8_0, vec![1u8; 34])?;
    w.add_tensor("d", &[256], GgmlType::Q4_K, vec![2u8; 144])?;
    let valid = w.to_bytes()?;

    let mut out = vec![("valid".to_string(), valid.clone())];
    for cut in [3, 8, 23, 40, valid.len() / 2, valid.len() - 1] {
        out.push((format!("truncated-{cut}"), valid[..cut].to_vec()));
    }
    let mut empty = GgufWriter::new();
    empty.set_alignment(64);
    out.push(("empty-align64".into(), empty.to_bytes()?));

    let align = |ty: u32, v: &[u8]| kv("general.alignment", ty, v);
    let info = || tinfo("w", &[8], 0, 0);
    out.push(("alignment-0".into(), raw_one(&[align(4, &u32v(0))], info(), 32)));
    out.push(("alignment-3".into(), raw_one(&[align(4, &u32v(3))], info(), 32)));
    out.push(("alignment-2M".into(), raw_one(&[align(4, &u32v(1 << 21))], info(), 32)));
    out.push(("alignment-int32".into(), raw_one(&[align(5, &u32v(32))], info(), 32)));
    out.push(("alignment-string".into(), raw_one(&[align(8, &s(b"32"))], info(), 32)));
    out.push(("version-1".into(), raw(1, 0, 0, &[], &[], &[])));
    out.push(("version-4".into(), raw(4, 0, 0, &[], &[], &[])));
    out.push(("big-endian".into(), raw(3u32.swap_bytes(), 0, 0, &[], &[], &[])));
    out.push(("huge-tensor-count".into(), raw(3, u64::MAX, 0, &[], &[], &[])));
    out.push(("huge-kv-count".into(), raw(3, 0, 1 << 63, &[], &[], &[])));
    let mut huge_str = s(b"k");
    huge_str.extend_from_slice(&8u32.to_le_bytes());
    huge_str.extend_from_slice(&(1u64 << 62).to_le_bytes());
    out.push(("huge-string".into(), raw(3, 0, 1, &[huge_str], &[], &[])));
    let mut huge_arr = 4u32.to_le_bytes().to_vec();
    huge_arr.extend_from_slice(&(1u64 << 63).to_le_bytes());
    out.push(("huge-array".into(), raw(3, 0, 1, &[kv("k", 9, &huge_arr)], &[], &[])));
    let mut nested = 9u32.to_le_bytes().to_vec();
    nested.extend_from_slice(&1u64.to_le_bytes());
    for _ in 0..6 {
        nested.extend_from_slice(&9u32.to_le_bytes());
        nested.extend_from_slice(&1u64.to_le_bytes());
    }
    nested.extend_from_slice(&0u32.to_le_bytes());
    nested.extend_from_slice(&0u64.to_le_bytes());
    out.push(("deep-array".into(), raw(3, 0, 1, &[kv("k", 9, &nested)], &[], &[])));
    out.push((
        "bad-value-type".into(),
        raw(3, 0, 1, &[kv("k", 13, &u32v(0))], &[], &[]),
    ));
    out.push(("bad-bool".into(), raw(3, 0, 1, &[kv("k", 7, &[2])], &[], &[])));
    out.push((
        "bad-utf8-key".into(),
        raw(3, 0, 1, &[kv("\u{fffd}", 0, &[1])], &[], &[]),
    ));
    out.push((
        "duplicate-key".into(),
        raw(3, 0, 2, &[kv("k", 0, &[1]), kv("k", 0, &[2])], &[], &[]),
    ));
    out.push((
        "duplicate-tensor".into(),
        raw(
            3,
            2,
            0,
            &[],
            &[tinfo("w", &[8], 0, 0), tinfo("w", &[8], 0, 32)],
            &[0u8; 64],
        ),
    ));
    out.push(("dims-5".into(), raw_one(&[], tinfo("w", &[1, 1, 1, 1, 1], 0, 0), 32)));
    out.push(("dims-0".into(), raw_one(&[], tinfo("w", &[], 0, 0), 32)));
    out.push(("dim-zero".into(), raw_one(&[], tinfo("w", &[0], 0, 0), 32)));
    out.push((
        "dim-2^42+1".into(),
        raw_one(&[], tinfo("w", &[1, (1 << 42) + 1], 0, 0), 32),
    ));
    out.push((
        "nbytes-wrap".into(),
        raw_one(&[], tinfo("w", &[4, (1 << 30) - 1, (1 << 30) + 1, 1], 0, 0), 32),
    ));
    out.push((
        "nelements-i64max".into(),
        raw_one(&[], tinfo("w", &[i64::MAX as u64, 2, 1, 1], 24, 0), 32),
    ));
    out.push(("offset-beyond".into(), raw_one(&[], tinfo("w", &[8], 0, 1 << 40), 32)));
    out.push((
        "offset-wrap".into(),
        raw_one(&[], tinfo("w", &[8], 0, u64::MAX - 7), 32),
    ));
    out.push(("offset-misaligned".into(), raw_one(&[], tinfo("w", &[4], 0, 4), 32)));
    out.push(("type-1000".into(), raw_one(&[], tinfo("w", &[8], 1000, 0), 32)));
    out.push(("type-negative".into(), raw_one(&[], tinfo("w", &[8], u32::MAX, 0), 32)));
    out.push(("type-removed-q4_2".into(), raw_one(&[], tinfo("w", &[32], 4, 0), 32)));
    out.push(("q8-bad-row".into(), raw_one(&[], tinfo("w", &[31], 8, 0), 64)));
    out.push(("data-short".into(), raw_one(&[], tinfo("w", &[64], 0, 0), 32)));
    Ok(out)
}

// ---- models and tokenizers -----------------------------------------------------------------

fn tiny_config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 48,
        d_model: 32,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 8,
        d_ff: 64,
        n_ctx_train: 64,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        tied_output: true,
    }
}

fn byte_chars() -> Vec<char> {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut extra = 0u32;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

/// GGUF tokenizer metadata of a small byte-level BPE vocabulary.
fn add_vocab(w: &mut GgufWriter) {
    let merges = ["Ġ t", "h e", "Ġt he", "l l", "he ll", "hell o"];
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut types = vec![3, 3, 3];
    for c in byte_chars() {
        tokens.push(c.to_string());
        types.push(1);
    }
    for m in merges {
        tokens.push(m.replace(' ', ""));
        types.push(1);
    }
    w.add_string("tokenizer.ggml.model", "gpt2")
        .add_string("tokenizer.ggml.pre", "smollm")
        .add_str_array("tokenizer.ggml.tokens", &tokens)
        .add_i32_array("tokenizer.ggml.token_type", &types)
        .add_str_array("tokenizer.ggml.merges", &merges)
        .add_u32("tokenizer.ggml.bos_token_id", 1)
        .add_u32("tokenizer.ggml.eos_token_id", 2)
        .add_u32("tokenizer.ggml.padding_token_id", 2)
        .add_bool("tokenizer.ggml.add_bos_token", false)
        .add_string(
            "tokenizer.chat_template",
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
        );
}

fn vocab_gguf(model: &str, pre: &str) -> Result<Vec<u8>> {
    let mut w = GgufWriter::new();
    add_vocab(&mut w);
    w.add("tokenizer.ggml.model", Value::String(model.into()));
    w.add("tokenizer.ggml.pre", Value::String(pre.into()));
    Ok(w.to_bytes()?)
}

fn model_with_vocab(dtype: GgmlType, seed: u64) -> Result<Vec<u8>> {
    let bytes = random_llama_gguf(&tiny_config(), dtype, seed)?;
    Ok(bytes)
}

fn main() -> Result<()> {
    for (name, bytes) in gguf_seeds()? {
        put("gguf", &name, &bytes)?;
    }
    for (i, dtype) in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0]
        .into_iter()
        .enumerate()
    {
        let bytes = model_with_vocab(dtype, i as u64)?;
        put("model_gguf", &format!("tiny-{dtype:?}"), &bytes)?;
        if i == 0 {
            put("gguf", "tiny-model", &bytes)?;
        }
    }
    for (model, pre) in [
        ("gpt2", "smollm"),
        ("gpt2", "llama3"),
        ("gpt2", "qwen2"),
        ("llama", "default"),
        ("gpt2", "unknown-pre"),
    ] {
        put("tokenizer_gguf", &format!("{model}-{pre}"), &vocab_gguf(model, pre)?)?;
    }

    // imatrix: GGUF (slm's own writer) and llama.cpp's legacy layout.
    let dir = std::env::temp_dir().join("slm-fuzz-seedgen");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("m.imatrix");
    random_imatrix(&tiny_config(), 7)?.save(&path)?;
    put("imatrix", "gguf", &std::fs::read(&path)?)?;
    let mut entries = BTreeMap::new();
    entries.insert(
        "blk.0.ffn_up.weight".to_string(),
        ImatrixEntry {
            sums: vec![1.0, 2.0, 0.5, 4.0],
            counts: vec![2.0, 2.0],
        },
    );
    ImportanceMatrix::from_entries(entries, vec!["wiki.txt".into()], 3, 512)?.save(&path)?;
    put("imatrix", "gguf-2experts", &std::fs::read(&path)?)?;
    let mut legacy = 2i32.to_le_bytes().to_vec();
    for (name, vals) in [
        ("blk.0.attn_q.weight", &[1.0f32, 2.0][..]),
        ("output.weight", &[0.5f32][..]),
    ] {
        legacy.extend_from_slice(&(name.len() as i32).to_le_bytes());
        legacy.extend_from_slice(name.as_bytes());
        legacy.extend_from_slice(&10i32.to_le_bytes());
        legacy.extend_from_slice(&(vals.len() as i32).to_le_bytes());
        vals.iter().for_each(|v| legacy.extend_from_slice(&v.to_le_bytes()));
    }
    put("imatrix", "legacy-no-dataset", &legacy)?;
    legacy.extend_from_slice(&5i32.to_le_bytes());
    legacy.extend_from_slice(&8i32.to_le_bytes());
    legacy.extend_from_slice(b"wiki.txt");
    put("imatrix", "legacy", &legacy)?;
    put(
        "imatrix",
        "legacy-huge-count",
        &[0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, b'a'],
    )?;

    safetensors_seeds()?;
    json_seeds()?;
    encoder::encoder_seeds()?;
    Ok(())
}

// ---- safetensors ---------------------------------------------------------------------------

fn st_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

fn safetensors_seeds() -> Result<()> {
    let mut w = SafetensorsWriter::new();
    w.add_metadata("format", "pt");
    w.add_f32(
        "model.embed_tokens.weight",
        Dtype::F32,
        &[2, 3],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    )?;
    w.add_f32("model.norm.weight", Dtype::F16, &[3], &[1.0, 0.5, -2.0])?;
    w.add_f32("lm_head.weight", Dtype::BF16, &[1, 2], &[0.25, 8.0])?;
    w.add_f32("scalar", Dtype::F32, &[], &[42.0])?;
    w.add_tensor("empty", Dtype::F32, &[0, 4], vec![])?;
    put("safetensors", "valid", &w.to_bytes())?;
    put("safetensors", "empty", &SafetensorsWriter::new().to_bytes())?;
    let cases: &[(&str, Vec<u8>)] = &[
        ("header-len-huge", {
            let mut b = u64::MAX.to_le_bytes().to_vec();
            b.extend_from_slice(b"{}");
            b
        }),
        ("header-len-short", vec![2, 0, 0, 0]),
        ("header-not-json", st_raw("{nope", &[])),
        ("header-not-object", st_raw("[1,2]", &[])),
        ("header-no-brace", st_raw(" {}", &[])),
        ("padded", st_raw("{}      ", &[])),
        (
            "offsets-overlap",
            st_raw(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                &[0; 12],
            ),
        ),
        (
            "offsets-hole",
            st_raw(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, &[0; 8]),
        ),
        (
            "offsets-reversed",
            st_raw(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, &[0; 8]),
        ),
        (
            "size-mismatch",
            st_raw(r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &[0; 8]),
        ),
        (
            "shape-overflow",
            st_raw(
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#,
                &[],
            ),
        ),
        (
            "trailing-bytes",
            st_raw(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, &[0; 9]),
        ),
        (
            "bad-dtype",
            st_raw(r#"{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}"#, &[0; 4]),
        ),
        (
            "duplicate-key",
            st_raw(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                &[0; 8],
            ),
        ),
        ("metadata-not-string", st_raw(r#"{"__metadata__":{"k":1}}"#, &[])),
        (
            "all-dtypes",
            st_raw(
                r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"I64","shape":[1],"data_offsets":[1,9]},"c":{"dtype":"F64","shape":[1],"data_offsets":[9,17]},"d":{"dtype":"BOOL","shape":[1],"data_offsets":[17,18]},"e":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[18,19]}}"#,
                &[1; 19],
            ),
        ),
    ];
    for (name, bytes) in cases {
        put("safetensors", name, bytes)?;
    }
    let index = |map: &str| format!(r#"{{"metadata":{{"total_size":20}},"weight_map":{map}}}"#);
    let one = "model-00001-of-00002.safetensors";
    let two = "model-00002-of-00002.safetensors";
    let idx: &[(&str, String)] = &[
        ("valid", index(&format!(r#"{{"a":"{one}","b":"{one}","c":"{two}"}}"#))),
        ("one-shard", index(&format!(r#"{{"a":"{one}"}}"#))),
        ("missing-tensor", index(&format!(r#"{{"zz":"{one}"}}"#))),
        ("missing-shard", index(r#"{"a":"model-00009-of-00009.safetensors"}"#)),
        ("path-escape", index(r#"{"a":"../model-00001-of-00002.safetensors"}"#)),
        ("absolute-path", index(r#"{"a":"/etc/passwd"}"#)),
        ("dot-dot", index(r#"{"a":".."}"#)),
        ("not-string", index(r#"{"a":1}"#)),
        ("no-weight-map", r#"{"metadata":{}}"#.to_string()),
        ("not-json", "{".to_string()),
    ];
    for (name, text) in idx {
        put("safetensors_index", name, text.as_bytes())?;
    }
    Ok(())
}

// ---- JSON: configs, tokenizer.json, requests; templates -------------------------------------

fn json_seeds() -> Result<()> {
    let llama = r#"{"architectures":["LlamaForCausalLM"],"attention_bias":false,"bos_token_id":1,"eos_token_id":2,"hidden_act":"silu","hidden_size":576,"initializer_range":0.041666666666666664,"intermediate_size":1536,"max_position_embeddings":8192,"model_type":"llama","num_attention_heads":9,"num_hidden_layers":30,"num_key_value_heads":3,"pretraining_tp":1,"rms_norm_eps":1e-05,"rope_scaling":null,"rope_theta":100000,"tie_word_embeddings":true,"torch_dtype":"bfloat16","vocab_size":49152}"#;
    let qwen = r#"{"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,"num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"vocab_size":151936,"eos_token_id":[151645,151643],"tie_word_embeddings":true}"#;
    let bert = r#"{"architectures":["BertModel"],"attention_probs_dropout_prob":0.1,"hidden_act":"gelu","hidden_size":384,"intermediate_size":1536,"layer_norm_eps":1e-12,"max_position_embeddings":512,"model_type":"bert","num_attention_heads":12,"num_hidden_layers":6,"pad_token_id":0,"type_vocab_size":2,"vocab_size":30522}"#;
    let generation = r#"{"bos_token_id":1,"eos_token_id":[2,3],"temperature":0.6,"top_p":0.9,"do_sample":true}"#;
    for (name, text) in [
        ("llama", llama),
        ("qwen2", qwen),
        ("bert", bert),
        ("generation", generation),
        ("unknown-type", r#"{"model_type":"gpt_neox"}"#),
        (
            "wrong-types",
            r#"{"model_type":"llama","hidden_size":"576","num_hidden_layers":-1}"#,
        ),
        (
            "huge-numbers",
            r#"{"model_type":"llama","hidden_size":1e300,"num_hidden_layers":18446744073709551616}"#,
        ),
        ("deep", &format!("{}1{}", "[".repeat(200), "]".repeat(200))),
    ] {
        put("hf_config", name, text.as_bytes())?;
    }

    let bpe = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":0,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":1,"content":"<|im_start|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},"post_processor":null,"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"vocab":{"<|endoftext|>":0,"<|im_start|>":1,"h":2,"e":3,"l":4,"o":5,"Ġ":6,"he":7,"ll":8,"hell":9,"hello":10},"merges":["h e","l l","he ll","hell o"]}}"#;
    let wordpiece = r###"{"version":"1.0","added_tokens":[{"id":0,"content":"[PAD]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":1,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":null,"decoder":{"type":"WordPiece","prefix":"##","cleanup":true},"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{"[PAD]":0,"[UNK]":1,"hello":2,"world":3,"##s":4}}}"###;
    put("tokenizer_json", "bpe", bpe.as_bytes())?;
    put("tokenizer_json", "wordpiece", wordpiece.as_bytes())?;
    put("tokenizer_json", "not-json", b"{\"model\":")?;

    for (name, text) in [
        ("ascii", &b"\x00\x00Hello world! It's 12 o'clock."[..]),
        ("special", &b"\x01\x01<|im_start|>user\nhi<|im_end|><tool>"[..]),
        ("unicode", "\x02\x00héllo wörld 日本語 🦀\r\n\t  x".as_bytes()),
        ("invalid-utf8", &b"\x03\x02\xff\xfe\xc3\x28 abc"[..]),
        ("spaces", &b"\x04\x00    \n\n\n   a  b"[..]),
    ] {
        put("tokenizer", name, text)?;
    }

    let chatml = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    let templates = [
        ("chatml", format!("{chatml}\0system\u{1}Be brief.\0user\u{1}Hi <|im_end|> there")),
        ("default-template", "\0user\u{1}hello\0assistant\u{1}world".to_string()),
        ("loop", "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\0user\u{1}a".to_string()),
        ("recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}\0user\u{1}a".to_string()),
        ("big-string", "{{ 'x' * 100000000 }}\0user\u{1}a".to_string()),
        ("slice", "{% for m in messages %}{{ m.content[::-1] | upper }}{{ m.content.split('a') | join('-') }}{% endfor %}\0user\u{1}banana".to_string()),
        ("raise", "{{ raise_exception('no') }}\0".to_string()),
        ("tools", "{% if tools %}{{ tools | tojson }}{% endif %}{{ strftime_now('%Y-%m-%d') }}{{ messages | length }}\0user\u{1}a".to_string()),
        ("syntax-error", "{% for %}\0user\u{1}a".to_string()),
        ("namespace", "{% set ns = namespace(x=0) %}{% for m in messages %}{% set ns.x = ns.x + 1 %}{% endfor %}{{ ns.x }}{{ bos_token }}{{ eos_token }}\0user\u{1}a\0user\u{1}b".to_string()),
    ];
    for (name, text) in templates {
        put("chat_template", name, text.as_bytes())?;
    }

    let requests = [
        (
            "chat",
            r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":16,"temperature":0.7,"top_p":0.9,"stop":["\n"],"stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3,"seed":1}"#,
        ),
        (
            "chat-parts",
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"}]}],"max_completion_tokens":4,"response_format":{"type":"json_object"}}"#,
        ),
        (
            "chat-bad",
            r#"{"messages":[],"temperature":-1,"top_logprobs":99,"n":2,"tools":[{}],"stop":"xxxxxxxxx"}"#,
        ),
        (
            "completion",
            r#"{"model":"m","prompt":"Once upon","max_tokens":8,"logprobs":2,"echo":false,"best_of":1,"presence_penalty":0.5,"frequency_penalty":-0.5}"#,
        ),
        (
            "completion-tokens",
            r#"{"prompt":[[1,2,3]],"max_tokens":18446744073709551615,"ignore_eos":true}"#,
        ),
        (
            "completion-bad",
            r#"{"prompt":["a","b"],"suffix":"x","echo":true,"logprobs":6}"#,
        ),
    ];
    for (name, text) in requests {
        put("server_request", name, text.as_bytes())?;
    }
    Ok(())
}
