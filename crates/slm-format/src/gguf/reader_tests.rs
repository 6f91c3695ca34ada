//! Unit tests of the reader on small hand-built files.

use super::*;
use crate::gguf::writer::GgufWriter;

/// A small valid file: two metadata entries, two tensors (F32 and Q8_0).
fn small_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_u32("llama.block_count", 2);
    w.add_str_array("tokenizer.ggml.tokens", &["<s>", "</s>", "hi"]);
    w.add_tensor_f32("a", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .unwrap();
    w.add_tensor("b", &[32], GgmlType::Q8_0, vec![7u8; 34])
        .unwrap();
    w.to_bytes().unwrap()
}

/// Raw header: magic, version, counts.
fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

#[test]
fn reads_what_the_writer_wrote() {
    let f = GgufFile::from_bytes(small_file()).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.data_offset() % 32, 0);
    assert_eq!(
        f.metadata().get_str("general.architecture").unwrap(),
        "llama"
    );
    assert_eq!(f.metadata().get_u32("llama.block_count").unwrap(), 2);
    assert_eq!(
        f.metadata()
            .get_str_array("tokenizer.ggml.tokens")
            .unwrap()
            .len(),
        3
    );
    let names: Vec<_> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let a = f.tensor("a").unwrap();
    assert_eq!(
        (
            a.dims.as_slice(),
            a.dtype,
            a.n_elements,
            a.n_bytes,
            a.offset
        ),
        (&[3, 2][..], GgmlType::F32, 6, 24, 0)
    );
    assert_eq!(&f.tensor_data(a)[4..8], &2.0f32.to_le_bytes());
    let b = f.tensor("b").unwrap();
    assert_eq!((b.offset, b.n_bytes), (32, 34));
    assert_eq!(f.tensor_data(b), &[7u8; 34][..]);
    assert!(f.tensor("c").is_none());
}

#[test]
fn foreign_tensor_info_gives_empty_slice_not_panic() {
    let f = GgufFile::from_bytes(small_file()).unwrap();
    let mut t = f.tensor("b").unwrap().clone();
    t.offset = u64::MAX - 3;
    assert!(f.tensor_data(&t).is_empty());
}

#[test]
fn open_maps_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, small_file()).unwrap();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.file_size(), small_file().len() as u64);
    assert_eq!(f.tensor_data(f.tensor("b").unwrap()), &[7u8; 34][..]);
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        GgufFile::open(&empty),
        Err(GgufError::UnexpectedEof { .. })
    ));
    assert!(matches!(
        GgufFile::open(&dir.path().join("nope")),
        Err(GgufError::Io { .. })
    ));
}

#[test]
fn every_residency_holds_the_same_bytes_and_validates_alike() {
    use crate::gguf::{Limits, Residency};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, small_file()).unwrap();
    let mapped = GgufFile::open(&p).unwrap();
    for residency in [Residency::Mapped, Residency::Resident, Residency::Auto] {
        let f = GgufFile::open_with(&p, &Limits::default(), residency).unwrap();
        assert_eq!(f.file_size(), mapped.file_size(), "{residency:?}");
        for t in mapped.tensors() {
            assert_eq!(
                f.tensor_data(t),
                mapped.tensor_data(t),
                "{residency:?} {}",
                t.name
            );
        }
        // A resident copy is validated like a mapped file: a truncated file is refused alike.
        let cut = dir.path().join("cut.gguf");
        std::fs::write(&cut, &small_file()[..small_file().len() - 40]).unwrap();
        let (got, want) = (
            GgufFile::open_with(&cut, &Limits::default(), residency),
            GgufFile::open(&cut),
        );
        assert_eq!(got.unwrap_err().to_string(), want.unwrap_err().to_string());
        let empty = dir.path().join("empty.gguf");
        std::fs::write(&empty, b"").unwrap();
        assert!(GgufFile::open_with(&empty, &Limits::default(), residency).is_err());
    }
}

#[test]
fn version_two_is_accepted_and_versions_are_checked() {
    let mut v2 = small_file();
    v2[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(GgufFile::from_bytes(v2).unwrap().version(), 2);
    for (v, big_endian) in [
        (1u32, false),
        (0, false),
        (4, false),
        (0x0300_0000, true),
        (0x0200_0000, true),
    ] {
        let err = GgufFile::from_bytes(header(v, 0, 0)).unwrap_err();
        match (big_endian, &err) {
            (false, GgufError::UnsupportedVersion { version, .. }) => assert_eq!(*version, v),
            (true, GgufError::BigEndian { version, .. }) => assert_eq!(*version, v.swap_bytes()),
            _ => panic!("version {v:#x}: {err:?}"),
        }
    }
}

#[test]
fn empty_file_without_tensors_or_padding_is_valid() {
    let f = GgufFile::from_bytes(header(3, 0, 0)).unwrap();
    assert_eq!(
        (f.tensors().len(), f.metadata().len(), f.data_offset()),
        (0, 0, 32)
    );
}

#[test]
fn alignment_is_validated() {
    for (a, ok) in [
        (1u32, true),
        (64, true),
        (1 << 20, true),
        (0, false),
        (48, false),
        (1 << 21, false),
    ] {
        let mut b = header(3, 0, 1);
        put_str(&mut b, ALIGNMENT_KEY);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&a.to_le_bytes());
        let r = GgufFile::from_bytes(b);
        if ok {
            assert_eq!(r.unwrap().alignment(), a as u64);
        } else {
            assert!(matches!(r, Err(GgufError::BadAlignment { value, .. }) if value == a as u64));
        }
    }
    // Stored as INT32: the llama.cpp assert crash of PR #26318 is a typed error here.
    let mut b = header(3, 0, 1);
    put_str(&mut b, ALIGNMENT_KEY);
    b.extend_from_slice(&5u32.to_le_bytes());
    b.extend_from_slice(&32i32.to_le_bytes());
    assert!(matches!(
        GgufFile::from_bytes(b),
        Err(GgufError::WrongType { .. })
    ));
}

#[test]
fn tensor_size_checks() {
    assert_eq!(
        tensor_size("t", &[32, 3], GgmlType::Q4_1).unwrap(),
        (96, 60)
    );
    assert!(matches!(
        tensor_size("t", &[], GgmlType::F32),
        Err(GgufError::BadDimCount { .. })
    ));
    assert!(matches!(
        tensor_size("t", &[1; 5], GgmlType::F32),
        Err(GgufError::BadDimCount { .. })
    ));
    assert!(matches!(
        tensor_size("t", &[4, 0], GgmlType::F32),
        Err(GgufError::ZeroDim { index: 1, .. })
    ));
    assert!(matches!(
        tensor_size("t", &[33], GgmlType::Q8_0),
        Err(GgufError::RowNotMultipleOfBlock { .. })
    ));
    // llama.cpp issue #27203: ne = (INT64_MAX, 2) with I8.
    assert!(matches!(
        tensor_size("t", &[i64::MAX as u64, 2], GgmlType::I8),
        Err(GgufError::ShapeOverflow { .. })
    ));
    // Issue #26978: ne = [4, 2^30-1, 2^30+1, 1] F32 wraps after padding in C.
    assert!(matches!(
        tensor_size("t", &[4, (1 << 30) - 1, (1 << 30) + 1, 1], GgmlType::F32),
        Err(GgufError::ShapeOverflow { .. })
    ));
    // Element count fits but bytes do not: I64 with 2^61 elements.
    assert!(matches!(
        tensor_size("t", &[1 << 61], GgmlType::I64),
        Err(GgufError::ShapeOverflow { .. })
    ));
}

#[test]
fn align_up_works_and_does_not_overflow() {
    assert_eq!(align_up(0, 32), Some(0));
    assert_eq!(align_up(33, 32), Some(64));
    assert_eq!(align_up(u64::MAX, 32), None);
    assert_eq!(align_up(5, 0), None);
}
