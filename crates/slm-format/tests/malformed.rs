//! Malformed-GGUF matrix: every hostile or broken file must give a specific `GgufError` — never a
//! panic, never a large allocation. Cases follow llama.cpp's tests/test-gguf.cpp and the CVEs in
//! shared/anchors/reliability.md (S-01 … S-06). A counting allocator records the largest single
//! allocation made while parsing, per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use slm_format::gguf::limits::{self, Limits};
use slm_format::gguf::ALIGNMENT_KEY;
use slm_format::{Array, GgmlType, GgufError, GgufFile, GgufWriter};

struct CountingAlloc;

thread_local! {
    static MAX_ALLOC: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // try_with: the allocator may run during thread teardown.
    let _ = MAX_ALLOC.try_with(|m| m.set(m.get().max(size)));
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Parses `bytes`, returning the result and the largest single allocation made while parsing.
fn parse(bytes: Vec<u8>) -> (Result<GgufFile, GgufError>, usize) {
    parse_with(bytes, &Limits::default())
}

fn parse_with(bytes: Vec<u8>, limits: &Limits) -> (Result<GgufFile, GgufError>, usize) {
    MAX_ALLOC.with(|m| m.set(0));
    let r = GgufFile::from_bytes_with_limits(bytes, limits);
    (r, MAX_ALLOC.with(|m| m.get()))
}

/// Parses a hostile file that must fail; asserts no allocation above 1 MiB happened.
fn fail(bytes: Vec<u8>) -> GgufError {
    let len = bytes.len();
    let (r, max_alloc) = parse(bytes);
    assert!(max_alloc <= (1 << 20).max(4 * len), "allocated {max_alloc} bytes for a {len}-byte file");
    match r {
        Ok(_) => panic!("a malformed file was accepted"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

// ---- a raw builder that can write anything, including nonsense -------------------------------

struct RawTensor {
    name: String,
    dims: Vec<u64>,
    dtype: u32,
    offset: u64,
}

struct Raw {
    version: u32,
    n_tensors: Option<u64>,
    n_kv: Option<u64>,
    kvs: Vec<Vec<u8>>,
    tensors: Vec<RawTensor>,
    alignment: usize,
    data: Vec<u8>,
}

fn raw() -> Raw {
    Raw { version: 3, n_tensors: None, n_kv: None, kvs: vec![], tensors: vec![], alignment: 32, data: vec![] }
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s);
    b
}

/// A key/value entry with the given type id and already-encoded value bytes.
fn kv(key: &str, type_id: u32, value: &[u8]) -> Vec<u8> {
    let mut b = string(key.as_bytes());
    b.extend_from_slice(&type_id.to_le_bytes());
    b.extend_from_slice(value);
    b
}

fn kv_u32(key: &str, v: u32) -> Vec<u8> {
    kv(key, 4, &v.to_le_bytes())
}

/// An array header (element type + count) followed by `body`.
fn array(elem: u32, count: u64, body: &[u8]) -> Vec<u8> {
    let mut b = elem.to_le_bytes().to_vec();
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(body);
    b
}

impl Raw {
    fn kv(mut self, entry: Vec<u8>) -> Raw {
        self.kvs.push(entry);
        self
    }
    fn tensor(mut self, name: &str, dims: &[u64], dtype: GgmlType, offset: u64) -> Raw {
        self.tensors.push(RawTensor { name: name.into(), dims: dims.to_vec(), dtype: dtype.id(), offset });
        self
    }
    fn tensor_raw(mut self, name: &str, dims: &[u64], dtype: u32, offset: u64) -> Raw {
        self.tensors.push(RawTensor { name: name.into(), dims: dims.to_vec(), dtype, offset });
        self
    }
    fn data(mut self, n: usize) -> Raw {
        self.data = vec![0xAB; n];
        self
    }
    fn build(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.n_tensors.unwrap_or(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for e in &self.kvs {
            b.extend_from_slice(e);
        }
        for t in &self.tensors {
            b.extend_from_slice(&string(t.name.as_bytes()));
            b.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&t.dtype.to_le_bytes());
            b.extend_from_slice(&t.offset.to_le_bytes());
        }
        if !self.tensors.is_empty() || !self.data.is_empty() {
            while !b.len().is_multiple_of(self.alignment) {
                b.push(0);
            }
        }
        b.extend_from_slice(&self.data);
        b
    }
}

/// A small valid file exercising most value types, with no padding after the last tensor.
fn valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama").add_u32("llama.block_count", 2).add_bool("b", true);
    w.add_f32("eps", 1e-5).add_u64("big", 1 << 40).add_i8("neg", -3);
    w.add_str_array("tokenizer.ggml.tokens", &["<s>", "</s>", "a", "ü"]);
    w.add_f32_array("tokenizer.ggml.scores", &[0.0, -1.0, -2.0, -3.0]);
    w.add_array("nested", Array::Array(vec![Array::U16(vec![1, 2]), Array::String(vec!["x".into()])]));
    w.add_tensor("q", &[32, 2], GgmlType::Q4_0, vec![1u8; 36]).unwrap();
    w.add_tensor_f32("norm", &[8], &[1.0; 8]).unwrap();
    w.to_bytes().unwrap()
}

// ---- header --------------------------------------------------------------------------------

#[test]
fn bad_magic() {
    let mut b = valid_file();
    b[0..4].copy_from_slice(b"GGML");
    assert!(matches!(fail(b), GgufError::BadMagic { found } if &found == b"GGML"));
    assert!(matches!(fail(b"GGU".to_vec()), GgufError::UnexpectedEof { offset: 0, .. }));
    assert!(matches!(fail(vec![]), GgufError::UnexpectedEof { .. }));
}

#[test]
fn unsupported_versions() {
    for v in [0u32, 1, 4, 1000, u32::MAX] {
        let e = fail(Raw { version: v, ..raw() }.build());
        assert!(matches!(e, GgufError::UnsupportedVersion { version, .. } if version == v), "{v}: {e:?}");
    }
    for v in [2u32, 3] {
        let e = fail(Raw { version: v.swap_bytes(), ..raw() }.build());
        assert!(matches!(e, GgufError::BigEndian { version, .. } if version == v), "{e:?}");
        assert!(e.to_string().contains("big-endian"));
    }
}

#[test]
fn huge_counts() {
    for n in [u64::MAX, 1 << 63, limits::MAX_TENSORS + 1] {
        let e = fail(Raw { n_tensors: Some(n), ..raw() }.build());
        assert!(matches!(e, GgufError::TooMany { what: "tensors", count, .. } if count == n), "{e:?}");
    }
    for n in [u64::MAX, 1 << 63, limits::MAX_METADATA_ENTRIES + 1] {
        let e = fail(Raw { n_kv: Some(n), ..raw() }.build());
        assert!(matches!(e, GgufError::TooMany { what: "metadata entries", count, .. } if count == n), "{e:?}");
    }
    // Under the limit but far more than the file could hold.
    let e = fail(Raw { n_tensors: Some(1000), ..raw() }.build());
    assert!(matches!(e, GgufError::CountPastEof { what: "tensors", count: 1000, .. }), "{e:?}");
    let e = fail(Raw { n_kv: Some(1000), ..raw() }.build());
    assert!(matches!(e, GgufError::CountPastEof { what: "metadata entries", count: 1000, .. }), "{e:?}");
}

// ---- metadata ------------------------------------------------------------------------------

#[test]
fn string_length_past_eof() {
    // Key length past the end of the file (under the key limit, then over it).
    let mut entry = 1000u64.to_le_bytes().to_vec();
    entry.extend_from_slice(b"abc");
    let e = fail(raw().kv(entry).data(64).build());
    assert!(matches!(e, GgufError::UnexpectedEof { what: "metadata key", needed: 1000, .. }), "{e:?}");
    let e = fail(raw().kv((1u64 << 40).to_le_bytes().to_vec()).data(64).build());
    assert!(matches!(e, GgufError::StringTooLong { what: "metadata key", len, .. } if len == 1 << 40), "{e:?}");
    // String value length past the end (but under the string limit).
    let e = fail(raw().kv(kv("k", 8, &1000u64.to_le_bytes())).build());
    assert!(matches!(e, GgufError::UnexpectedEof { what: "string value", ref context, .. } if context.contains("`k`")), "{e:?}");
    // Above the string limit: reported as too long before looking at the bytes.
    let e = fail(raw().kv(kv("k", 8, &u64::MAX.to_le_bytes())).build());
    assert!(matches!(e, GgufError::StringTooLong { len: u64::MAX, .. }), "{e:?}");
}

#[test]
fn array_count_past_eof() {
    for (elem, count) in [(8u32, 1000u64), (0, 1 << 20), (9, 100), (12, 50)] {
        let e = fail(raw().kv(kv("arr", 9, &array(elem, count, &[0; 16]))).build());
        assert!(matches!(e, GgufError::CountPastEof { what: "array elements", count: c, .. } if c == count), "{e:?}");
    }
    // gguf-py PR #27188: a 43-byte file declaring 2^63 elements.
    let e = fail(raw().kv(kv("arr", 9, &array(0, 1 << 63, &[]))).build());
    assert!(matches!(e, GgufError::TooMany { what: "array elements", .. }), "{e:?}");
    // Nested arrays of length 2^62.
    let e = fail(raw().kv(kv("arr", 9, &array(9, 1 << 62, &array(9, 1 << 62, &[])))).build());
    assert!(matches!(e, GgufError::TooMany { .. }), "{e:?}");
}

/// `depth` nested arrays of one element each; the innermost holds one UINT32.
fn nested(depth: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 1..depth {
        v.extend_from_slice(&array(9, 1, &[]));
    }
    v.extend_from_slice(&array(4, 1, &7u32.to_le_bytes()));
    v
}

#[test]
fn nested_arrays_too_deep() {
    let ok = raw().kv(kv("n", 9, &nested(limits::MAX_ARRAY_DEPTH))).build();
    assert!(parse(ok).0.is_ok());
    let e = fail(raw().kv(kv("n", 9, &nested(limits::MAX_ARRAY_DEPTH + 1))).build());
    assert!(matches!(e, GgufError::ArrayTooDeep { max: limits::MAX_ARRAY_DEPTH, .. }), "{e:?}");
    // Deep enough to overflow the stack of a naive recursive parser.
    let e = fail(raw().kv(kv("n", 9, &nested(100_000))).build());
    assert!(matches!(e, GgufError::ArrayTooDeep { .. }), "{e:?}");
}

#[test]
fn duplicate_keys_empty_keys_bad_values() {
    let e = fail(raw().kv(kv_u32("a", 1)).kv(kv_u32("a", 2)).build());
    assert!(matches!(e, GgufError::DuplicateKey { ref key, .. } if key == "a"), "{e:?}");
    let e = fail(raw().kv(kv_u32("", 1)).build());
    assert!(matches!(e, GgufError::EmptyName { what: "metadata key", .. }), "{e:?}");
    let e = fail(raw().kv(kv("k", 13, &[0; 8])).build());
    assert!(matches!(e, GgufError::UnknownValueType { id: 13, .. }), "{e:?}");
    let e = fail(raw().kv(kv("k", 9, &array(u32::MAX, 0, &[]))).build());
    assert!(matches!(e, GgufError::UnknownValueType { id: u32::MAX, .. }), "{e:?}");
    let e = fail(raw().kv(kv("k", 7, &[2])).build());
    assert!(matches!(e, GgufError::InvalidBool { byte: 2, .. }), "{e:?}");
    let e = fail(raw().kv(kv("k", 8, &string(&[0xC3, 0x28]))).build());
    assert!(matches!(e, GgufError::InvalidUtf8 { .. }), "{e:?}");
    let e = fail(raw().kv(kv("k", 9, &array(8, 1, &string(&[0xFF])))).build());
    assert!(matches!(e, GgufError::InvalidUtf8 { what: "string array element", .. }), "{e:?}");
}

#[test]
fn bad_alignment() {
    for a in [0u32, 3, 48, 1 << 21, 0x8000_0000] {
        let b = raw().kv(kv_u32(ALIGNMENT_KEY, a)).tensor("t", &[1], GgmlType::F32, 0).data(4).build();
        let e = fail(b);
        assert!(matches!(e, GgufError::BadAlignment { value, .. } if value == a as u64), "{a}: {e:?}");
    }
    let e = fail(raw().kv(kv(ALIGNMENT_KEY, 10, &32u64.to_le_bytes())).build());
    assert!(matches!(e, GgufError::WrongType { ref key, .. } if key == ALIGNMENT_KEY), "{e:?}");
}

// ---- tensor infos --------------------------------------------------------------------------

#[test]
fn tensor_offsets_out_of_range() {
    let base = || raw().tensor("ok", &[8], GgmlType::F32, 0);
    // Offset far past the end (MLX/gguflib offset 1<<40 SEGV).
    let e = fail(base().tensor("far", &[8], GgmlType::F32, 1 << 40).data(64).build());
    assert!(matches!(e, GgufError::TensorOutOfBounds { ref tensor, .. } if tensor == "far"), "{e:?}");
    // Offset + size wraps around u64.
    let wrap = u64::MAX - 31;
    let e = fail(base().tensor("wrap", &[16], GgmlType::F32, wrap).data(64).build());
    assert!(matches!(e, GgufError::TensorOutOfBounds { ref tensor, offset, .. } if tensor == "wrap" && offset == wrap), "{e:?}");
    // Last tensor one byte short of the data section.
    let e = fail(base().tensor("short", &[8], GgmlType::F32, 32).data(63).build());
    assert!(matches!(e, GgufError::TensorOutOfBounds { ref tensor, data_size: 63, .. } if tensor == "short"), "{e:?}");
    // Misaligned offset.
    let e = fail(base().tensor("mis", &[1], GgmlType::F32, 36).data(64).build());
    assert!(matches!(e, GgufError::MisalignedOffset { offset: 36, alignment: 32, .. }), "{e:?}");
}

#[test]
fn tensors_overlapping() {
    let e = fail(raw().tensor("a", &[16], GgmlType::F32, 0).tensor("b", &[8], GgmlType::F32, 32).data(64).build());
    assert!(matches!(e, GgufError::TensorOverlap { ref first, ref second, first_end: 64, second_start: 32 }
        if first == "a" && second == "b"), "{e:?}");
    // Same offset, listed in reverse order.
    let e = fail(raw().tensor("b", &[8], GgmlType::F32, 0).tensor("a", &[8], GgmlType::F32, 0).data(64).build());
    assert!(matches!(e, GgufError::TensorOverlap { .. }), "{e:?}");
    // Touching is fine.
    let ok = raw().tensor("a", &[8], GgmlType::F32, 0).tensor("b", &[8], GgmlType::F32, 32).data(64).build();
    assert!(parse(ok).0.is_ok());
}

#[test]
fn shape_errors() {
    let one = |dims: &[u64], dtype: GgmlType| fail(raw().tensor("t", dims, dtype, 0).data(64).build());
    // llama.cpp #18674: dim[1] = 2^42+1 so that ne*stride wraps.
    assert!(matches!(one(&[1 << 22, (1 << 42) + 1], GgmlType::F32), GgufError::ShapeOverflow { .. }));
    assert!(matches!(one(&[i64::MAX as u64, 2], GgmlType::I8), GgufError::ShapeOverflow { .. }));
    assert!(matches!(one(&[4, (1 << 30) - 1, (1 << 30) + 1, 1], GgmlType::F32), GgufError::ShapeOverflow { .. }));
    // Element count fits i64, byte size does not.
    assert!(matches!(one(&[1 << 61], GgmlType::F64), GgufError::ShapeOverflow { .. }));
    let e = one(&[4, 0], GgmlType::F32);
    assert!(matches!(e, GgufError::ZeroDim { index: 1, ref tensor, .. } if tensor == "t"), "{e:?}");
    let e = one(&[1, 1, 1, 1, 1], GgmlType::F32);
    assert!(matches!(e, GgufError::BadDimCount { n_dims: 5, .. }), "{e:?}");
    let e = one(&[], GgmlType::F32);
    assert!(matches!(e, GgufError::BadDimCount { n_dims: 0, .. }), "{e:?}");
    let e = one(&[48, 2], GgmlType::Q4_K);
    assert!(matches!(e, GgufError::RowNotMultipleOfBlock { row: 48, block: 256, .. }), "{e:?}");
    // n_dims huge: rejected before reading any dims.
    let mut b = raw().build();
    b[8..16].copy_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&string(b"t"));
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&[0; 64]);
    assert!(matches!(fail(b), GgufError::BadDimCount { n_dims: u32::MAX, .. }));
}

#[test]
fn duplicate_and_unnamed_tensors_and_unknown_dtype() {
    let e = fail(raw().tensor("w", &[8], GgmlType::F32, 0).tensor("w", &[8], GgmlType::F32, 32).data(64).build());
    assert!(matches!(e, GgufError::DuplicateTensor { ref name } if name == "w"), "{e:?}");
    let e = fail(raw().tensor("", &[8], GgmlType::F32, 0).data(32).build());
    assert!(matches!(e, GgufError::EmptyName { what: "tensor name", .. }), "{e:?}");
    for id in [4u32, 5, 16, 29, 39, u32::MAX, 0x8000_0000] {
        let e = fail(raw().tensor_raw("blk.0.attn_q.weight", &[32], id, 0).data(64).build());
        assert!(matches!(e, GgufError::UnknownDtype { ref tensor, id: i } if tensor == "blk.0.attn_q.weight" && i == id), "{e:?}");
        assert!(e.to_string().contains(&id.to_string()));
    }
    let long = "x".repeat(limits::MAX_TENSOR_NAME_LEN as usize + 1);
    let e = fail(raw().tensor(&long, &[8], GgmlType::F32, 0).data(32).build());
    assert!(matches!(e, GgufError::StringTooLong { what: "tensor name", .. }), "{e:?}");
}

#[test]
fn data_section_missing() {
    // Header ends, padding and data are absent, yet a tensor is declared.
    let mut r = raw().tensor("t", &[8], GgmlType::F32, 0);
    r.alignment = 1;
    let e = fail(r.build());
    assert!(matches!(e, GgufError::DataPastEof { .. } | GgufError::TensorOutOfBounds { .. }), "{e:?}");
}

// ---- truncation and limits -----------------------------------------------------------------

#[test]
fn truncated_at_every_offset() {
    let full = valid_file();
    assert!(parse(full.clone()).0.is_ok());
    for len in 0..full.len() {
        let e = fail(full[..len].to_vec());
        assert!(
            matches!(
                e,
                GgufError::UnexpectedEof { .. }
                    | GgufError::CountPastEof { .. }
                    | GgufError::DataPastEof { .. }
                    | GgufError::TensorOutOfBounds { .. }
            ),
            "prefix of {len} bytes: {e:?}"
        );
    }
}

#[test]
fn default_limit_constants_at_their_boundaries() {
    // At the limit: not rejected as "too many" (the tiny file then fails on size instead).
    let at = fail(Raw { n_tensors: Some(limits::MAX_TENSORS), ..raw() }.build());
    assert!(matches!(at, GgufError::CountPastEof { .. }), "{at:?}");
    let at = fail(Raw { n_kv: Some(limits::MAX_METADATA_ENTRIES), ..raw() }.build());
    assert!(matches!(at, GgufError::CountPastEof { .. }), "{at:?}");
    let at = fail(raw().kv(kv("k", 9, &array(0, limits::MAX_ARRAY_LEN, &[]))).build());
    assert!(matches!(at, GgufError::CountPastEof { .. }), "{at:?}");
    let over = fail(raw().kv(kv("k", 9, &array(0, limits::MAX_ARRAY_LEN + 1, &[]))).build());
    assert!(matches!(over, GgufError::TooMany { .. }), "{over:?}");
    let at = fail(raw().kv(kv("k", 8, &limits::MAX_STRING_LEN.to_le_bytes())).build());
    assert!(matches!(at, GgufError::UnexpectedEof { .. }), "{at:?}");
    let over = fail(raw().kv(kv("k", 8, &(limits::MAX_STRING_LEN + 1).to_le_bytes())).build());
    assert!(matches!(over, GgufError::StringTooLong { .. }), "{over:?}");
    // Trailing bytes so that the entry count itself fits and the key length is what fails.
    let key_at = fail(raw().kv(limits::MAX_KEY_LEN.to_le_bytes().to_vec()).data(64).build());
    assert!(matches!(key_at, GgufError::UnexpectedEof { .. }), "{key_at:?}");
    let key_over = fail(raw().kv((limits::MAX_KEY_LEN + 1).to_le_bytes().to_vec()).data(64).build());
    assert!(matches!(key_over, GgufError::StringTooLong { what: "metadata key", .. }), "{key_over:?}");
}

#[test]
fn custom_limits_accept_at_and_reject_above() {
    let small = Limits { max_metadata_entries: 3, max_tensors: 2, max_string_len: 5, max_array_len: 4, max_array_depth: 2 };
    let file = |n_kv: usize, n_t: usize, s: &str, arr: usize, depth: u32| {
        let mut r = raw();
        for i in 0..n_kv {
            r = r.kv(kv_u32(&format!("k{i}"), 1));
        }
        r = r.kv(kv("s", 8, &string(s.as_bytes())));
        r = r.kv(kv("a", 9, &array(0, arr as u64, &vec![1; arr])));
        r = r.kv(kv("n", 9, &nested(depth)));
        for i in 0..n_t {
            r = r.tensor(&format!("t{i}"), &[8], GgmlType::F32, 32 * i as u64);
        }
        r.data(32 * n_t).build()
    };
    // 3 fixed entries (s, a, n): n_kv extra = 0 puts metadata exactly at the limit of 3.
    assert!(parse_with(file(0, 2, "12345", 4, 2), &small).0.is_ok());
    let cases = [file(1, 2, "12345", 4, 2), file(0, 3, "12345", 4, 2), file(0, 2, "123456", 4, 2), file(0, 2, "12345", 5, 2), file(0, 2, "12345", 4, 3)];
    for (i, bytes) in cases.into_iter().enumerate() {
        let e = parse_with(bytes, &small).0.unwrap_err();
        let ok = match i {
            0 => matches!(e, GgufError::TooMany { what: "metadata entries", count: 4, max: 3, .. }),
            1 => matches!(e, GgufError::TooMany { what: "tensors", count: 3, max: 2, .. }),
            2 => matches!(e, GgufError::StringTooLong { len: 6, max: 5, .. }),
            3 => matches!(e, GgufError::TooMany { what: "array elements", count: 5, max: 4, .. }),
            _ => matches!(e, GgufError::ArrayTooDeep { max: 2, .. }),
        };
        assert!(ok, "case {i}: {e:?}");
    }
}

// ---- random mutations ----------------------------------------------------------------------

/// xorshift64*: a tiny deterministic PRNG so failures reproduce from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    let n_mutations = 1 + rng.below(3);
    for _ in 0..n_mutations {
        let len = b.len();
        let at = rng.below(len);
        match rng.below(6) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 | 3 => {
                let huge = [u64::MAX, 1 << 63, 1 << 62, 1 << 40, 1 << 32, len as u64 + 1, 0, rng.next()];
                let v = huge[rng.below(huge.len())].to_le_bytes();
                let width = if rng.below(2) == 0 { 8 } else { 4 };
                for (i, byte) in v.iter().take(width).enumerate() {
                    if let Some(slot) = b.get_mut(at + i) {
                        *slot = *byte;
                    }
                }
            }
            4 => b.truncate(at),
            _ => {
                let extra = rng.below(16);
                let pos = rng.below(len);
                b.splice(pos..pos, std::iter::repeat_n(rng.next() as u8, extra));
            }
        }
    }
    b
}

#[test]
fn random_mutations_never_panic() {
    let base = valid_file();
    let seed = 0x0005_EED6_u64;
    let mut rng = Rng(seed);
    let (mut ok, mut err) = (0, 0);
    for i in 0..5000 {
        let m = mutate(&mut rng, &base);
        let len = m.len();
        let (r, max_alloc) = parse(m.clone());
        assert!(
            max_alloc <= 64 * 1024 + 4 * len,
            "mutation {i} (seed {seed:#x}): allocated {max_alloc} bytes for a {len}-byte file"
        );
        match r {
            Ok(f) => {
                ok += 1;
                // Everything an accepted file reports must be usable without panicking.
                for t in f.tensors() {
                    assert_eq!(f.tensor_data(t).len() as u64, t.n_bytes, "mutation {i}");
                }
                for (_, v) in f.metadata().iter() {
                    let _ = v.to_string();
                }
            }
            Err(e) => {
                err += 1;
                let _ = e.to_string();
            }
        }
    }
    eprintln!("mutations: {ok} accepted, {err} rejected");
    assert!(err > 1000 && ok > 10, "mutations should produce both outcomes: ok={ok} err={err}");
}
