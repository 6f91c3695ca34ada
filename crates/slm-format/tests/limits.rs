//! Boundary tests of slm-format's size limits (issue 11, docs/RELIABILITY.md "Limits as code"):
//! each limit is accepted exactly at its value and refused one above, with a typed error that
//! names the limit. (The GGUF reader's limits are in `malformed.rs`.)

use std::fmt::Write as _;

use slm_format::gguf::limits::MAX_WRITER_TENSOR_NAME_LEN;
use slm_format::hf_config::{HfConfig, HfConfigError, MAX_CONFIG_BYTES};
use slm_format::safetensors::{
    Dtype, SafetensorsError, SafetensorsFile, SafetensorsModel, SafetensorsWriter, MAX_DIMS,
    MAX_HEADER_LEN, MAX_INDEX_BYTES, MAX_TENSORS,
};
use slm_format::{GgmlType, GgufError, GgufWriter};

/// A safetensors file from a header text and data bytes.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

/// `n` one-byte U8 tensors, back to back.
fn many_tensors(n: usize) -> Vec<u8> {
    let mut h = String::with_capacity(n * 64);
    h.push('{');
    for i in 0..n {
        if i > 0 {
            h.push(',');
        }
        write!(
            h,
            r#""t{i}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{}]}}"#,
            i + 1
        )
        .unwrap();
    }
    h.push('}');
    safetensors(&h, &vec![7u8; n])
}

#[test]
fn safetensors_tensor_count_limit() {
    let f = SafetensorsFile::from_bytes(many_tensors(MAX_TENSORS))
        .expect("exactly MAX_TENSORS tensors load");
    assert_eq!(f.tensors().len(), MAX_TENSORS);
    drop(f);
    match SafetensorsFile::from_bytes(many_tensors(MAX_TENSORS + 1)) {
        Err(e @ SafetensorsError::TooManyTensors { count, max }) => {
            assert_eq!((count, max), (MAX_TENSORS + 1, MAX_TENSORS));
            assert!(e.to_string().contains(&MAX_TENSORS.to_string()), "{e}");
        }
        other => panic!("expected TooManyTensors, got {other:?}"),
    }
}

#[test]
fn safetensors_dimension_limit() {
    let shape = |n: usize| vec!["1"; n].join(",");
    let ok = format!(
        r#"{{"x":{{"dtype":"F32","shape":[{}],"data_offsets":[0,4]}}}}"#,
        shape(MAX_DIMS)
    );
    let f =
        SafetensorsFile::from_bytes(safetensors(&ok, &[0; 4])).expect("MAX_DIMS dimensions load");
    assert_eq!(f.tensor("x").unwrap().shape.len(), MAX_DIMS);
    let bad = format!(
        r#"{{"x":{{"dtype":"F32","shape":[{}],"data_offsets":[0,4]}}}}"#,
        shape(MAX_DIMS + 1)
    );
    match SafetensorsFile::from_bytes(safetensors(&bad, &[0; 4])) {
        Err(e @ SafetensorsError::BadEntry { .. }) => {
            assert!(
                e.to_string().contains(&format!("limit of {MAX_DIMS}")),
                "{e}"
            );
        }
        other => panic!("expected BadEntry, got {other:?}"),
    }
}

#[test]
fn safetensors_header_length_limit() {
    // A header of exactly MAX_HEADER_LEN bytes (an empty object padded with spaces) loads.
    let mut header = String::from("{}");
    header.push_str(&" ".repeat(MAX_HEADER_LEN as usize - 2));
    let f = SafetensorsFile::from_bytes(safetensors(&header, &[]))
        .expect("a header of MAX_HEADER_LEN bytes loads");
    assert!(f.tensors().is_empty());
    drop(f);
    header.push(' ');
    match SafetensorsFile::from_bytes(safetensors(&header, &[])) {
        Err(SafetensorsError::HeaderTooLarge { len, max }) => {
            assert_eq!((len, max), (MAX_HEADER_LEN + 1, MAX_HEADER_LEN))
        }
        other => panic!("expected HeaderTooLarge, got {other:?}"),
    }
}

#[test]
fn shard_index_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SafetensorsWriter::new();
    w.add_f32("w", Dtype::F32, &[2], &[1.0, 2.0]).unwrap();
    w.write_file(&dir.path().join("model-00001-of-00001.safetensors"))
        .unwrap();
    let index = dir.path().join("model.safetensors.index.json");
    let json = r#"{"metadata":{},"weight_map":{"w":"model-00001-of-00001.safetensors"}}"#;
    let padded = |len: u64| format!("{json}{}", " ".repeat(len as usize - json.len()));
    std::fs::write(&index, padded(MAX_INDEX_BYTES)).unwrap();
    let m = SafetensorsModel::open_index(&index).expect("an index of MAX_INDEX_BYTES bytes loads");
    assert_eq!(m.tensor_f32("w").unwrap().unwrap(), vec![1.0, 2.0]);
    std::fs::write(&index, padded(MAX_INDEX_BYTES + 1)).unwrap();
    match SafetensorsModel::open_index(&index) {
        Err(e @ SafetensorsError::BadIndex { .. }) => {
            assert!(
                e.to_string()
                    .contains(&format!("limit of {MAX_INDEX_BYTES}")),
                "{e}"
            );
        }
        other => panic!("expected BadIndex, got {other:?}"),
    }
}

#[test]
fn config_json_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let json = r#"{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":100,"rms_norm_eps":1e-5,"max_position_embeddings":64}"#;
    let padded = |len: u64| format!("{json}{}", " ".repeat(len as usize - json.len()));
    std::fs::write(&path, padded(MAX_CONFIG_BYTES)).unwrap();
    let read = HfConfig::read(&path);
    assert!(
        matches!(read, Ok(HfConfig::Llama(_))),
        "a config of MAX_CONFIG_BYTES bytes loads: {read:?}"
    );
    std::fs::write(&path, padded(MAX_CONFIG_BYTES + 1)).unwrap();
    match HfConfig::read(&path) {
        Err(e @ HfConfigError::Json { .. }) => {
            assert!(
                e.to_string()
                    .contains(&format!("limit of {MAX_CONFIG_BYTES}")),
                "{e}"
            );
        }
        other => panic!("expected a size error, got {other:?}"),
    }
}

#[test]
fn gguf_writer_tensor_name_limit() {
    let mut w = GgufWriter::new();
    let ok = "n".repeat(MAX_WRITER_TENSOR_NAME_LEN);
    w.add_tensor(ok.clone(), &[1], GgmlType::F32, vec![0u8; 4])
        .expect("a name of the limit's length is written");
    let long = "n".repeat(MAX_WRITER_TENSOR_NAME_LEN + 1);
    match w.add_tensor(long, &[1], GgmlType::F32, vec![0u8; 4]) {
        Err(GgufError::NameTooLong { len, max, .. }) => {
            assert_eq!(
                (len, max),
                (MAX_WRITER_TENSOR_NAME_LEN + 1, MAX_WRITER_TENSOR_NAME_LEN)
            )
        }
        other => panic!("expected NameTooLong, got {:?}", other.map(|_| ())),
    }
    // The accepted name reads back.
    let f = slm_format::GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert!(f.tensor(&ok).is_some());
}
