//! `slm quantize` against llama-quantize: for every preset (and with an importance matrix for
//! some), the tensor types and the SHA-256 of every tensor's data must equal llama-quantize's
//! output on the same random F32 model. Golden data: tests/golden/quantize_llamacpp.json,
//! written by reference/gen_quantize_golden.sh (llama.cpp at the llama-cpp-python 0.3.36 commit).

use sha2::{Digest, Sha256};
use slm_format::GgufFile;
use slm_model::quantize::{quantize_gguf, FileType, PolicyOptions, QuantizeOptions};
use slm_model::random_init::{golden_config, random_imatrix, random_llama_gguf, GOLDEN_SEED};
use std::collections::BTreeMap;

type Golden = BTreeMap<String, BTreeMap<String, (String, String)>>;

fn golden() -> Golden {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/quantize_llamacpp.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden file")).expect("golden JSON")
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn tensor_data_is_byte_identical_to_llama_quantize() {
    let cfg = golden_config();
    let src = GgufFile::from_bytes(random_llama_gguf(&cfg, slm_format::GgmlType::F32, GOLDEN_SEED).unwrap()).unwrap();
    let imatrix = random_imatrix(&cfg, GOLDEN_SEED).unwrap();
    let golden = golden();
    assert!(golden.len() >= 20, "golden file covers the presets");
    let mut mismatches = Vec::new();
    for (key, tensors) in &golden {
        let (preset, with_imatrix) = match key.strip_prefix("imatrix-") {
            Some(p) => (p, true),
            None => (key.as_str(), false),
        };
        let ftype = FileType::parse(preset).unwrap_or_else(|| panic!("unknown preset {preset}"));
        let opts = QuantizeOptions {
            policy: PolicyOptions { has_imatrix: with_imatrix, ..PolicyOptions::preset(ftype) },
            imatrix: with_imatrix.then(|| imatrix.clone()),
            ..QuantizeOptions::preset(ftype, 2)
        };
        let (writer, _) = quantize_gguf(&src, &opts, &mut |_, _, _| {}).unwrap();
        let out = GgufFile::from_bytes(writer.to_bytes().unwrap()).unwrap();
        assert_eq!(out.tensors().len(), tensors.len(), "{key}: tensor count");
        for (name, (dtype, sha)) in tensors {
            let t = out.tensor(name).unwrap_or_else(|| panic!("{key}: {name} missing"));
            if t.dtype.name() != dtype {
                mismatches.push(format!("{key} {name}: type {} vs llama.cpp {dtype}", t.dtype));
            } else if &hex(out.tensor_data(t)) != sha {
                mismatches.push(format!("{key} {name}: {} data differs", t.dtype));
            }
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}
