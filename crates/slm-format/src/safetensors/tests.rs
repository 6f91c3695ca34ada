//! Reader/writer round trips and hostile inputs.

use super::*;
use std::fs;

fn sample() -> SafetensorsWriter {
    let mut w = SafetensorsWriter::new();
    w.add_metadata("format", "pt");
    w.add_f32("a", Dtype::F32, &[2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-3, 7.0])
        .unwrap();
    w.add_f32("b", Dtype::F16, &[3], &[0.5, -1.0, 2.0]).unwrap();
    w.add_f32("c", Dtype::BF16, &[1, 2], &[1.5, -4.0]).unwrap();
    w
}

/// A file with a hand-written header and `data_len` zero bytes of data.
fn raw(header: &str, data_len: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend(std::iter::repeat_n(0u8, data_len));
    v
}

#[test]
fn round_trip_keeps_names_shapes_values_and_metadata() {
    let bytes = sample().to_bytes();
    // Header padded so data starts 8-aligned.
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(n % 8, 0);
    let f = SafetensorsFile::from_bytes(bytes).unwrap();
    assert_eq!(f.metadata().get("format").map(String::as_str), Some("pt"));
    let names: Vec<_> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let a = f.tensor("a").unwrap();
    assert_eq!(a.shape, vec![2, 3]);
    assert_eq!(
        f.tensor_f32(a).unwrap(),
        vec![1.0, -2.0, 3.5, 0.0, 1e-3, 7.0]
    );
    assert_eq!(
        f.tensor_f32(f.tensor("b").unwrap()).unwrap(),
        vec![0.5, -1.0, 2.0]
    );
    assert_eq!(
        f.tensor_f32(f.tensor("c").unwrap()).unwrap(),
        vec![1.5, -4.0]
    );
}

#[test]
fn file_write_is_atomic_and_mmap_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.safetensors");
    sample().write_file(&p).unwrap();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    let f = SafetensorsFile::open(&p).unwrap();
    assert_eq!(f.tensors().len(), 3);
    let m = SafetensorsModel::open_dir(dir.path()).unwrap();
    assert_eq!(m.n_files(), 1);
    assert_eq!(m.tensor_f32("c").unwrap().unwrap(), vec![1.5, -4.0]);
}

#[test]
fn truncated_file_is_rejected() {
    let bytes = sample().to_bytes();
    assert!(matches!(
        SafetensorsFile::from_bytes(bytes[..5].to_vec()),
        Err(SafetensorsError::TooShort { len: 5 })
    ));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // Cut inside the header.
    let err = SafetensorsFile::from_bytes(bytes[..8 + n / 2].to_vec()).unwrap_err();
    assert!(
        matches!(err, SafetensorsError::HeaderPastEof { .. }),
        "{err}"
    );
    // Cut inside the data: the last tensor no longer fits.
    let err = SafetensorsFile::from_bytes(bytes[..bytes.len() - 1].to_vec()).unwrap_err();
    assert!(
        matches!(err, SafetensorsError::OutOfBounds { ref tensor, .. } if tensor == "c"),
        "{err}"
    );
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn huge_header_length_is_rejected_before_allocation() {
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let err = SafetensorsFile::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(err, SafetensorsError::HeaderTooLarge { len: u64::MAX, .. }),
        "{err}"
    );
}

#[test]
fn offsets_out_of_range_are_rejected() {
    let err = SafetensorsFile::from_bytes(raw(
        r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        4,
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            SafetensorsError::OutOfBounds {
                end: 8,
                data_size: 4,
                ..
            }
        ),
        "{err}"
    );
    let err = SafetensorsFile::from_bytes(raw(
        r#"{"x":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#,
        8,
    ))
    .unwrap_err();
    assert!(matches!(err, SafetensorsError::OutOfBounds { .. }), "{err}");
    let huge = format!(
        r#"{{"x":{{"dtype":"F32","shape":[1],"data_offsets":[{},{}]}}}}"#,
        u64::MAX - 3,
        u64::MAX
    );
    assert!(matches!(
        SafetensorsFile::from_bytes(raw(&huge, 4)),
        Err(SafetensorsError::OutOfBounds { .. })
    ));
}

#[test]
fn dtype_shape_byte_count_mismatch_is_rejected() {
    // F16 [4] needs 8 bytes, offsets give 16.
    let err = SafetensorsFile::from_bytes(raw(
        r#"{"x":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}}"#,
        16,
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            SafetensorsError::ByteCountMismatch {
                expected: 8,
                found: 16,
                ..
            }
        ),
        "{err}"
    );
    let err = SafetensorsFile::from_bytes(raw(
        r#"{"x":{"dtype":"F17","shape":[4],"data_offsets":[0,16]}}"#,
        16,
    ))
    .unwrap_err();
    assert!(
        matches!(err, SafetensorsError::UnknownDtype { ref dtype, .. } if dtype == "F17"),
        "{err}"
    );
    let big = format!(
        r#"{{"x":{{"dtype":"F32","shape":[{0},{0}],"data_offsets":[0,4]}}}}"#,
        u64::MAX
    );
    assert!(matches!(
        SafetensorsFile::from_bytes(raw(&big, 4)),
        Err(SafetensorsError::ShapeOverflow { .. })
    ));
    let err = SafetensorsFile::from_bytes(raw(
        r#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
        4,
    ))
    .unwrap_err();
    assert!(matches!(err, SafetensorsError::BadEntry { .. }), "{err}");
}

#[test]
fn overlapping_tensors_are_rejected() {
    let h = r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let err = SafetensorsFile::from_bytes(raw(h, 12)).unwrap_err();
    assert!(
        matches!(
            err,
            SafetensorsError::Overlap {
                second_start: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn malformed_headers_are_rejected() {
    for h in [
        "[1,2]",
        "not json",
        r#"{"x":3}"#,
        r#"{"x":{"dtype":"F32","shape":[1]}}"#,
        r#"{"__metadata__":{"a":1}}"#,
    ] {
        assert!(SafetensorsFile::from_bytes(raw(h, 0)).is_err(), "{h}");
    }
}

#[test]
fn writer_rejects_duplicates_and_wrong_sizes() {
    let mut w = SafetensorsWriter::new();
    w.add_tensor("x", Dtype::F32, &[2], vec![0; 8]).unwrap();
    assert!(w.add_tensor("x", Dtype::F32, &[2], vec![0; 8]).is_err());
    assert!(w.add_tensor("y", Dtype::F32, &[3], vec![0; 8]).is_err());
    assert!(w.add_f32("z", Dtype::I32, &[1], &[1.0]).is_err());
}

#[test]
fn sharded_index_is_followed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut s1 = SafetensorsWriter::new();
    s1.add_f32("a", Dtype::F32, &[1], &[1.0]).unwrap();
    s1.write_file(&dir.path().join("model-00001-of-00002.safetensors"))
        .unwrap();
    let mut s2 = SafetensorsWriter::new();
    s2.add_f32("b", Dtype::F32, &[1], &[2.0]).unwrap();
    s2.write_file(&dir.path().join("model-00002-of-00002.safetensors"))
        .unwrap();
    let index = dir.path().join(INDEX_FILE);
    fs::write(&index, r#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#).unwrap();
    let m = SafetensorsModel::open_dir(dir.path()).unwrap();
    assert_eq!(m.n_files(), 2);
    assert_eq!(m.tensor_f32("b").unwrap().unwrap(), vec![2.0]);
    assert!(m.get("zzz").is_none());

    fs::write(
        &index,
        r#"{"weight_map":{"a":"model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let err = SafetensorsModel::open_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("does not contain"), "{err}");
    fs::write(&index, r#"{"weight_map":{"a":"../etc/passwd"}}"#).unwrap();
    let err = SafetensorsModel::open_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("plain file name"), "{err}");
    // A tensor mapped twice is refused, not resolved to "the last one wins".
    fs::write(
        &index,
        r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","a":"model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let err = SafetensorsModel::open_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    fs::write(&index, r#"{"weight_map":{"a":"missing.safetensors"}}"#).unwrap();
    assert!(matches!(
        SafetensorsModel::open_dir(dir.path()),
        Err(SafetensorsError::Io { .. })
    ));
}

#[test]
fn empty_dir_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = SafetensorsModel::open_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn streaming_writer_matches_the_in_memory_one_and_checks_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let specs = vec![
        TensorSpec { name: "a".into(), dtype: Dtype::F32, shape: vec![2, 3] },
        TensorSpec { name: "b".into(), dtype: Dtype::F16, shape: vec![3] },
    ];
    let values: [&[f32]; 2] = [&[1.0, -2.0, 3.5, 0.0, 1e-3, 7.0], &[0.5, -1.0, 2.0]];
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let path = dir.path().join("s.safetensors");
    write_streaming::<SafetensorsError>(&path, &meta, &specs, |i| from_f32("x", specs[i].dtype, values[i])).unwrap();
    let mut w = SafetensorsWriter::new();
    w.add_metadata("format", "pt");
    w.add_f32("a", Dtype::F32, &[2, 3], values[0]).unwrap();
    w.add_f32("b", Dtype::F16, &[3], values[1]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), w.to_bytes());

    // A wrong-sized tensor or a failing producer leaves no file behind.
    let bad = dir.path().join("bad.safetensors");
    let err = write_streaming::<SafetensorsError>(&bad, &meta, &specs, |_| Ok(vec![0u8; 3])).unwrap_err();
    assert!(err.to_string().contains("fill produced 3 bytes"), "{err}");
    let err = write_streaming(&bad, &meta, &specs, |i| {
        if i == 1 {
            Err(SafetensorsError::NotFloat { tensor: "b".into(), dtype: "I8" })
        } else {
            from_f32("a", Dtype::F32, values[0])
        }
    })
    .unwrap_err();
    assert!(matches!(err, SafetensorsError::NotFloat { .. }), "{err}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    let dup = vec![specs[0].clone(), specs[0].clone()];
    assert!(write_streaming::<SafetensorsError>(&bad, &meta, &dup, |_| Ok(vec![])).is_err());
}

#[test]
fn duplicate_header_keys_are_refused() {
    // Two entries for `a` that disagree about its offsets: the file must not be read either way.
    let header = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let err = SafetensorsFile::from_bytes(raw(header, 8)).err().expect("duplicate keys must fail");
    assert!(err.to_string().contains("appears twice"), "{err}");
    let meta_twice = r#"{"__metadata__":{"x":"1"},"__metadata__":{"x":"2"}}"#;
    assert!(SafetensorsFile::from_bytes(raw(meta_twice, 0)).is_err());
}
