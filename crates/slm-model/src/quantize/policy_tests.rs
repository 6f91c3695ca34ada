use super::*;

/// SmolLM2-135M's shapes: d 576 (not a multiple of 256), FFN 1536, 30 layers, 9/3 heads, tied output.
fn smollm2_like() -> (Vec<(String, Vec<u64>)>, PolicyModel) {
    let mut t = vec![("token_embd.weight".to_string(), vec![576, 49152]), ("output_norm.weight".into(), vec![576])];
    for i in 0..30 {
        for (n, dims) in [
            ("attn_norm.weight", vec![576]),
            ("attn_q.weight", vec![576, 576]),
            ("attn_k.weight", vec![576, 192]),
            ("attn_v.weight", vec![576, 192]),
            ("attn_output.weight", vec![576, 576]),
            ("ffn_norm.weight", vec![576]),
            ("ffn_gate.weight", vec![576, 1536]),
            ("ffn_up.weight", vec![576, 1536]),
            ("ffn_down.weight", vec![1536, 576]),
        ] {
            t.push((format!("blk.{i}.{n}"), dims));
        }
    }
    (t, PolicyModel { n_layer: 30, n_gqa: 3, n_expert: 0, is_falcon: false })
}

fn opts(ftype: FileType) -> PolicyOptions {
    PolicyOptions::preset(ftype)
}

fn types_of(tensors: &[(String, Vec<u64>)], model: &PolicyModel, o: &PolicyOptions) -> Vec<(String, GgmlType)> {
    let shapes: Vec<TensorShape<'_>> =
        tensors.iter().map(|(n, d)| TensorShape { name: n, dims: d, dtype: GgmlType::F32 }).collect();
    let (types, _) = choose_types(&shapes, model, o);
    tensors.iter().map(|(n, _)| n.clone()).zip(types).collect()
}

fn type_of(types: &[(String, GgmlType)], name: &str) -> GgmlType {
    types.iter().find(|(n, _)| n == name).map(|(_, t)| *t).expect("tensor present")
}

#[test]
fn norms_and_vectors_are_never_quantized() {
    let (t, m) = smollm2_like();
    let types = types_of(&t, &m, &opts(FileType::Q4_0));
    assert_eq!(type_of(&types, "output_norm.weight"), GgmlType::F32);
    assert_eq!(type_of(&types, "blk.3.attn_norm.weight"), GgmlType::F32);
}

#[test]
fn tied_embeddings_get_the_output_rule() {
    let (t, m) = smollm2_like();
    // Q6_K cannot hold rows of 576, so the output rule's Q6_K falls back to Q8_0 (as in the
    // published SmolLM2 GGUFs); Q4_0 layers stay Q4_0.
    let types = types_of(&t, &m, &opts(FileType::Q4_0));
    assert_eq!(type_of(&types, "token_embd.weight"), GgmlType::Q8_0);
    assert_eq!(type_of(&types, "blk.0.attn_q.weight"), GgmlType::Q4_0);
    assert_eq!(type_of(&types, "blk.0.ffn_down.weight"), GgmlType::Q4_0);
}

#[test]
fn k_quant_mix_with_fallbacks_for_576_wide_rows() {
    let (t, m) = smollm2_like();
    let types = types_of(&t, &m, &opts(FileType::Q4_K_M));
    // 576-wide rows cannot be K-quants: Q4_K → Q5_0, Q6_K → Q8_0.
    assert_eq!(type_of(&types, "blk.5.attn_q.weight"), GgmlType::Q5_0);
    // attn_v in "more bits" layers wants Q6_K → falls back to Q8_0; others Q4_K → Q5_0.
    assert_eq!(type_of(&types, "blk.0.attn_v.weight"), GgmlType::Q8_0);
    assert_eq!(type_of(&types, "blk.4.attn_v.weight"), GgmlType::Q5_0);
    assert_eq!(type_of(&types, "blk.5.attn_v.weight"), GgmlType::Q8_0, "(5 - 30/8) % 3 == 2");
    // ffn_down rows are 1536 = 6 × 256 wide: real K-quants.
    assert_eq!(type_of(&types, "blk.0.ffn_down.weight"), GgmlType::Q6_K);
    assert_eq!(type_of(&types, "blk.4.ffn_down.weight"), GgmlType::Q4_K);
    assert_eq!(type_of(&types, "blk.29.ffn_down.weight"), GgmlType::Q6_K);
}

#[test]
fn pure_overrides_and_output_options() {
    let (t, m) = smollm2_like();
    let mut o = opts(FileType::Q4_K_M);
    o.pure = true;
    let types = types_of(&t, &m, &o);
    assert_eq!(type_of(&types, "blk.0.ffn_down.weight"), GgmlType::Q4_K);
    assert_eq!(type_of(&types, "blk.0.attn_v.weight"), GgmlType::Q5_0, "still falls back");

    let mut o = opts(FileType::Q4_0);
    o.overrides =
        vec![TensorTypeOverride::parse("attn_v=q8_0").unwrap(), TensorTypeOverride::parse("blk\\.1\\.=f16").unwrap()];
    o.embedding_type = Some(GgmlType::F16);
    let types = types_of(&t, &m, &o);
    assert_eq!(type_of(&types, "blk.7.attn_v.weight"), GgmlType::Q8_0);
    assert_eq!(type_of(&types, "blk.1.attn_v.weight"), GgmlType::Q8_0, "first match wins");
    assert_eq!(type_of(&types, "blk.1.ffn_up.weight"), GgmlType::F16);
    assert_eq!(type_of(&types, "token_embd.weight"), GgmlType::F16);
}

#[test]
fn float_presets_convert_every_matrix() {
    let (t, m) = smollm2_like();
    let types = types_of(&t, &m, &opts(FileType::F16));
    assert_eq!(type_of(&types, "token_embd.weight"), GgmlType::F16);
    assert_eq!(type_of(&types, "blk.2.ffn_down.weight"), GgmlType::F16);
    assert_eq!(type_of(&types, "blk.2.ffn_norm.weight"), GgmlType::F32);
}

#[test]
fn override_parsing_errors_are_clear() {
    assert!(TensorTypeOverride::parse("attn_v").unwrap_err().contains("PATTERN=TYPE"));
    assert!(TensorTypeOverride::parse("=q8_0").unwrap_err().contains("empty"));
    assert!(TensorTypeOverride::parse("attn_v=q9_9").unwrap_err().contains("unknown tensor type"));
    assert!(TensorTypeOverride::parse("attn_(v=q8_0").unwrap_err().contains("bad pattern"));
}

#[test]
fn llama_cpp_tensor_order_is_by_layer_then_name() {
    let names = ["blk.10.a", "blk.2.b", "token_embd.weight", "blk.2.a", "output.weight"];
    let order: Vec<&str> = llama_cpp_order(&names).into_iter().map(|i| names[i]).collect();
    assert_eq!(order, ["output.weight", "token_embd.weight", "blk.2.a", "blk.2.b", "blk.10.a"]);
}
