//! Unit tests of the writer: round trips and input validation.

use super::*;
use crate::gguf::reader::GgufFile;

fn all_values() -> Vec<(&'static str, Value)> {
    vec![
        ("v.u8", Value::U8(200)),
        ("v.i8", Value::I8(-100)),
        ("v.u16", Value::U16(60000)),
        ("v.i16", Value::I16(-30000)),
        ("v.u32", Value::U32(4_000_000_000)),
        ("v.i32", Value::I32(-2_000_000_000)),
        ("v.f32", Value::F32(1.5e-5)),
        ("v.bool", Value::Bool(true)),
        ("v.string", Value::String("héllo <|im_start|>".into())),
        ("v.u64", Value::U64(u64::MAX)),
        ("v.i64", Value::I64(i64::MIN)),
        ("v.f64", Value::F64(-0.25)),
        ("a.u8", Value::Array(Array::U8(vec![0, 255]))),
        ("a.i8", Value::Array(Array::I8(vec![-1, 1]))),
        ("a.u16", Value::Array(Array::U16(vec![1, 65535]))),
        ("a.i16", Value::Array(Array::I16(vec![-2]))),
        ("a.u32", Value::Array(Array::U32(vec![7]))),
        ("a.i32", Value::Array(Array::I32(vec![1, 2, 3]))),
        ("a.f32", Value::Array(Array::F32(vec![0.5, -0.0]))),
        ("a.bool", Value::Array(Array::Bool(vec![true, false]))),
        (
            "a.string",
            Value::Array(Array::String(vec!["".into(), "ä".into()])),
        ),
        ("a.u64", Value::Array(Array::U64(vec![u64::MAX]))),
        ("a.i64", Value::Array(Array::I64(vec![-5]))),
        ("a.f64", Value::Array(Array::F64(vec![1e300]))),
        ("a.empty", Value::Array(Array::String(vec![]))),
        (
            "a.nested",
            Value::Array(Array::Array(vec![
                Array::I32(vec![1]),
                Array::Array(vec![Array::String(vec!["x".into()])]),
            ])),
        ),
    ]
}

#[test]
fn round_trip_every_value_type_and_tensor() {
    let mut w = GgufWriter::new();
    for (k, v) in all_values() {
        w.add(k, v);
    }
    let q = vec![3u8; 20 * 2 * 3];
    w.add_tensor("q", &[64, 3], GgmlType::Q4_1, q.clone())
        .unwrap();
    w.add_tensor_f32("n", &[5], &[1.0, 2.0, 3.0, 4.0, 5.0])
        .unwrap();
    w.add_tensor("i", &[1, 1, 1, 2], GgmlType::I16, vec![1, 2, 3, 4])
        .unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let got: Vec<_> = f
        .metadata()
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let want: Vec<_> = all_values()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(got, want);
    assert_eq!(f.tensors().len(), 3);
    assert_eq!(f.tensor_data(f.tensor("q").unwrap()), &q[..]);
    assert_eq!(f.tensor("q").unwrap().dims, [64, 3]);
    assert_eq!(f.tensor_data(f.tensor("n").unwrap()).len(), 20);
    assert_eq!(f.tensor("i").unwrap().dims, [1, 1, 1, 2]);
    assert_eq!(f.tensor_data(f.tensor("i").unwrap()), &[1, 2, 3, 4]);
    for t in f.tensors() {
        assert_eq!(t.offset % 32, 0);
    }
}

#[test]
fn honours_alignment_and_pads_every_tensor() {
    let mut w = GgufWriter::new();
    w.set_alignment(64);
    w.add_tensor("x", &[3], GgmlType::F32, vec![0; 12]).unwrap();
    w.add_tensor("y", &[1], GgmlType::F32, vec![1; 4]).unwrap();
    let bytes = w.to_bytes().unwrap();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    assert_eq!(f.tensor("y").unwrap().offset, 64);
    assert_eq!(
        bytes.len() as u64,
        f.data_offset() + 128,
        "the last tensor is padded too"
    );
    let mut bad = GgufWriter::new();
    bad.set_alignment(48);
    assert!(matches!(
        bad.to_bytes(),
        Err(GgufError::BadAlignment { value: 48, .. })
    ));
    bad.add_i32(ALIGNMENT_KEY, 32);
    assert!(matches!(bad.to_bytes(), Err(GgufError::WrongType { .. })));
}

#[test]
fn validates_tensor_inputs() {
    let mut w = GgufWriter::new();
    assert!(matches!(
        w.add_tensor("t", &[32], GgmlType::Q8_0, vec![0; 33]),
        Err(GgufError::TensorSizeMismatch {
            expected: 34,
            found: 33,
            ..
        })
    ));
    assert!(matches!(
        w.add_tensor("t", &[31], GgmlType::Q8_0, vec![]),
        Err(GgufError::RowNotMultipleOfBlock { .. })
    ));
    assert!(matches!(
        w.add_tensor("t", &[0], GgmlType::F32, vec![]),
        Err(GgufError::ZeroDim { .. })
    ));
    assert!(matches!(
        w.add_tensor("", &[1], GgmlType::F32, vec![0; 4]),
        Err(GgufError::EmptyName { .. })
    ));
    let long = "x".repeat(64);
    assert!(matches!(
        w.add_tensor(long, &[1], GgmlType::F32, vec![0; 4]),
        Err(GgufError::NameTooLong { len: 64, .. })
    ));
    w.add_tensor("x".repeat(63), &[1], GgmlType::F32, vec![0; 4])
        .unwrap();
    w.add_tensor("t", &[1], GgmlType::F32, vec![0; 4]).unwrap();
    assert!(matches!(
        w.add_tensor("t", &[1], GgmlType::F32, vec![0; 4]),
        Err(GgufError::DuplicateTensor { .. })
    ));
    assert_eq!(w.tensor_count(), 2);
}

#[test]
fn validates_metadata_before_writing() {
    let mut w = GgufWriter::new();
    w.add_u8("", 1);
    let mut out = Vec::new();
    assert!(matches!(
        w.write_to(&mut out),
        Err(GgufError::EmptyName { .. })
    ));
    assert!(out.is_empty(), "nothing is written on a validation error");
    let mut deep = Array::U8(vec![1]);
    for _ in 0..crate::gguf::limits::MAX_ARRAY_DEPTH {
        deep = Array::Array(vec![deep]);
    }
    let mut w = GgufWriter::new();
    w.add_array("deep", deep);
    assert!(matches!(w.to_bytes(), Err(GgufError::ArrayTooDeep { .. })));
}

#[test]
fn setters_replace_in_place() {
    let mut w = GgufWriter::new();
    w.add_u32("a", 1).add_u32("b", 2).add_string("a", "x");
    let keys: Vec<_> = w
        .metadata()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(keys, ["a=\"x\"", "b=2"]);
}

#[test]
fn write_file_is_atomic_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama");
    w.add_tensor_f32("t", &[2], &[1.0, -1.0]).unwrap();
    w.write_file(&p).unwrap();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(
        f.tensor_data(f.tensor("t").unwrap()),
        &[0, 0, 0x80, 0x3f, 0, 0, 0x80, 0xbf]
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
