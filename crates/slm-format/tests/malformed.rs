//! Malformed-GGUF matrix: every hostile or broken file must give a specific `GgufError` — never a
//! panic, never a large allocation. Cases follow llama.cpp's tests/test-gguf.cpp and the CVEs in
//! shared/anchors/reliability.md (S-01 … S-06); also the documented limits at their boundaries.

mod support;

use slm_format::gguf::limits::{self, Limits};
use slm_format::gguf::ALIGNMENT_KEY;
use slm_format::{GgmlType, GgufError};
use support::*;

// ---- header --------------------------------------------------------------------------------

#[test]
fn bad_magic() {
    let mut b = valid_file();
    b[0..4].copy_from_slice(b"GGML");
    assert!(matches!(fail(b), GgufError::BadMagic { found } if &found == b"GGML"));
    assert!(matches!(
        fail(b"GGU".to_vec()),
        GgufError::UnexpectedEof { offset: 0, .. }
    ));
    assert!(matches!(fail(vec![]), GgufError::UnexpectedEof { .. }));
}

#[test]
fn unsupported_versions() {
    for v in [0u32, 1, 4, 1000, u32::MAX] {
        let e = fail(
            Raw {
                version: v,
                ..raw()
            }
            .build(),
        );
        assert!(
            matches!(e, GgufError::UnsupportedVersion { version, .. } if version == v),
            "{v}: {e:?}"
        );
    }
    for v in [2u32, 3] {
        let e = fail(
            Raw {
                version: v.swap_bytes(),
                ..raw()
            }
            .build(),
        );
        assert!(
            matches!(e, GgufError::BigEndian { version, .. } if version == v),
            "{e:?}"
        );
        assert!(e.to_string().contains("big-endian"));
    }
}

#[test]
fn huge_counts() {
    for n in [u64::MAX, 1 << 63, limits::MAX_TENSORS + 1] {
        let e = fail(
            Raw {
                n_tensors: Some(n),
                ..raw()
            }
            .build(),
        );
        assert!(
            matches!(e, GgufError::TooMany { what: "tensors", count, .. } if count == n),
            "{e:?}"
        );
    }
    for n in [u64::MAX, 1 << 63, limits::MAX_METADATA_ENTRIES + 1] {
        let e = fail(
            Raw {
                n_kv: Some(n),
                ..raw()
            }
            .build(),
        );
        assert!(
            matches!(e, GgufError::TooMany { what: "metadata entries", count, .. } if count == n),
            "{e:?}"
        );
    }
    // Under the limit but far more than the file could hold.
    let e = fail(
        Raw {
            n_tensors: Some(1000),
            ..raw()
        }
        .build(),
    );
    assert!(
        matches!(
            e,
            GgufError::CountPastEof {
                what: "tensors",
                count: 1000,
                ..
            }
        ),
        "{e:?}"
    );
    let e = fail(
        Raw {
            n_kv: Some(1000),
            ..raw()
        }
        .build(),
    );
    assert!(
        matches!(
            e,
            GgufError::CountPastEof {
                what: "metadata entries",
                count: 1000,
                ..
            }
        ),
        "{e:?}"
    );
}

// ---- metadata ------------------------------------------------------------------------------

#[test]
fn string_length_past_eof() {
    // Key length past the end of the file (under the key limit, then over it).
    let mut entry = 1000u64.to_le_bytes().to_vec();
    entry.extend_from_slice(b"abc");
    let e = fail(raw().kv(entry).data(64).build());
    assert!(
        matches!(
            e,
            GgufError::UnexpectedEof {
                what: "metadata key",
                needed: 1000,
                ..
            }
        ),
        "{e:?}"
    );
    let e = fail(
        raw()
            .kv((1u64 << 40).to_le_bytes().to_vec())
            .data(64)
            .build(),
    );
    assert!(
        matches!(e, GgufError::StringTooLong { what: "metadata key", len, .. } if len == 1 << 40),
        "{e:?}"
    );
    // String value length past the end (but under the string limit).
    let e = fail(raw().kv(kv("k", 8, &1000u64.to_le_bytes())).build());
    assert!(
        matches!(e, GgufError::UnexpectedEof { what: "string value", ref context, .. } if context.contains("`k`")),
        "{e:?}"
    );
    // Above the string limit: reported as too long before looking at the bytes.
    let e = fail(raw().kv(kv("k", 8, &u64::MAX.to_le_bytes())).build());
    assert!(
        matches!(e, GgufError::StringTooLong { len: u64::MAX, .. }),
        "{e:?}"
    );
}

#[test]
fn array_count_past_eof() {
    for (elem, count) in [(8u32, 1000u64), (0, 1 << 20), (9, 100), (12, 50)] {
        let e = fail(
            raw()
                .kv(kv("arr", 9, &array(elem, count, &[0; 16])))
                .build(),
        );
        assert!(
            matches!(e, GgufError::CountPastEof { what: "array elements", count: c, .. } if c == count),
            "{e:?}"
        );
    }
    // gguf-py PR #27188: a 43-byte file declaring 2^63 elements.
    let e = fail(raw().kv(kv("arr", 9, &array(0, 1 << 63, &[]))).build());
    assert!(
        matches!(
            e,
            GgufError::TooMany {
                what: "array elements",
                ..
            }
        ),
        "{e:?}"
    );
    // Nested arrays of length 2^62.
    let e = fail(
        raw()
            .kv(kv("arr", 9, &array(9, 1 << 62, &array(9, 1 << 62, &[]))))
            .build(),
    );
    assert!(matches!(e, GgufError::TooMany { .. }), "{e:?}");
}

/// `depth` nested arrays of one element each; the innermost holds one UINT32.
#[test]
fn nested_arrays_too_deep() {
    let ok = raw()
        .kv(kv("n", 9, &nested(limits::MAX_ARRAY_DEPTH)))
        .build();
    assert!(parse(ok).0.is_ok());
    let e = fail(
        raw()
            .kv(kv("n", 9, &nested(limits::MAX_ARRAY_DEPTH + 1)))
            .build(),
    );
    assert!(
        matches!(
            e,
            GgufError::ArrayTooDeep {
                max: limits::MAX_ARRAY_DEPTH,
                ..
            }
        ),
        "{e:?}"
    );
    // Deep enough to overflow the stack of a naive recursive parser.
    let e = fail(raw().kv(kv("n", 9, &nested(100_000))).build());
    assert!(matches!(e, GgufError::ArrayTooDeep { .. }), "{e:?}");
}

#[test]
fn duplicate_keys_empty_keys_bad_values() {
    let e = fail(raw().kv(kv_u32("a", 1)).kv(kv_u32("a", 2)).build());
    assert!(
        matches!(e, GgufError::DuplicateKey { ref key, .. } if key == "a"),
        "{e:?}"
    );
    let e = fail(raw().kv(kv_u32("", 1)).build());
    assert!(
        matches!(
            e,
            GgufError::EmptyName {
                what: "metadata key",
                ..
            }
        ),
        "{e:?}"
    );
    let e = fail(raw().kv(kv("k", 13, &[0; 8])).build());
    assert!(
        matches!(e, GgufError::UnknownValueType { id: 13, .. }),
        "{e:?}"
    );
    let e = fail(raw().kv(kv("k", 9, &array(u32::MAX, 0, &[]))).build());
    assert!(
        matches!(e, GgufError::UnknownValueType { id: u32::MAX, .. }),
        "{e:?}"
    );
    let e = fail(raw().kv(kv("k", 7, &[2])).build());
    assert!(matches!(e, GgufError::InvalidBool { byte: 2, .. }), "{e:?}");
    let e = fail(raw().kv(kv("k", 8, &string(&[0xC3, 0x28]))).build());
    assert!(matches!(e, GgufError::InvalidUtf8 { .. }), "{e:?}");
    let e = fail(raw().kv(kv("k", 9, &array(8, 1, &string(&[0xFF])))).build());
    assert!(
        matches!(
            e,
            GgufError::InvalidUtf8 {
                what: "string array element",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn bad_alignment() {
    for a in [0u32, 3, 48, 1 << 21, 0x8000_0000] {
        let b = raw()
            .kv(kv_u32(ALIGNMENT_KEY, a))
            .tensor("t", &[1], GgmlType::F32, 0)
            .data(4)
            .build();
        let e = fail(b);
        assert!(
            matches!(e, GgufError::BadAlignment { value, .. } if value == a as u64),
            "{a}: {e:?}"
        );
    }
    let e = fail(
        raw()
            .kv(kv(ALIGNMENT_KEY, 10, &32u64.to_le_bytes()))
            .build(),
    );
    assert!(
        matches!(e, GgufError::WrongType { ref key, .. } if key == ALIGNMENT_KEY),
        "{e:?}"
    );
}

// ---- tensor infos --------------------------------------------------------------------------

#[test]
fn tensor_offsets_out_of_range() {
    let base = || raw().tensor("ok", &[8], GgmlType::F32, 0);
    // Offset far past the end (MLX/gguflib offset 1<<40 SEGV).
    let e = fail(
        base()
            .tensor("far", &[8], GgmlType::F32, 1 << 40)
            .data(64)
            .build(),
    );
    assert!(
        matches!(e, GgufError::TensorOutOfBounds { ref tensor, .. } if tensor == "far"),
        "{e:?}"
    );
    // Offset + size wraps around u64.
    let wrap = u64::MAX - 31;
    let e = fail(
        base()
            .tensor("wrap", &[16], GgmlType::F32, wrap)
            .data(64)
            .build(),
    );
    assert!(
        matches!(e, GgufError::TensorOutOfBounds { ref tensor, offset, .. } if tensor == "wrap" && offset == wrap),
        "{e:?}"
    );
    // Last tensor one byte short of the data section.
    let e = fail(
        base()
            .tensor("short", &[8], GgmlType::F32, 32)
            .data(63)
            .build(),
    );
    assert!(
        matches!(e, GgufError::TensorOutOfBounds { ref tensor, data_size: 63, .. } if tensor == "short"),
        "{e:?}"
    );
    // Misaligned offset.
    let e = fail(
        base()
            .tensor("mis", &[1], GgmlType::F32, 36)
            .data(64)
            .build(),
    );
    assert!(
        matches!(
            e,
            GgufError::MisalignedOffset {
                offset: 36,
                alignment: 32,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn tensors_overlapping() {
    let e = fail(
        raw()
            .tensor("a", &[16], GgmlType::F32, 0)
            .tensor("b", &[8], GgmlType::F32, 32)
            .data(64)
            .build(),
    );
    assert!(
        matches!(e, GgufError::TensorOverlap { ref first, ref second, first_end: 64, second_start: 32 }
        if first == "a" && second == "b"),
        "{e:?}"
    );
    // Same offset, listed in reverse order.
    let e = fail(
        raw()
            .tensor("b", &[8], GgmlType::F32, 0)
            .tensor("a", &[8], GgmlType::F32, 0)
            .data(64)
            .build(),
    );
    assert!(matches!(e, GgufError::TensorOverlap { .. }), "{e:?}");
    // Touching is fine.
    let ok = raw()
        .tensor("a", &[8], GgmlType::F32, 0)
        .tensor("b", &[8], GgmlType::F32, 32)
        .data(64)
        .build();
    assert!(parse(ok).0.is_ok());
}

#[test]
fn shape_errors() {
    let one =
        |dims: &[u64], dtype: GgmlType| fail(raw().tensor("t", dims, dtype, 0).data(64).build());
    // llama.cpp #18674: dim[1] = 2^42+1 so that ne*stride wraps.
    assert!(matches!(
        one(&[1 << 22, (1 << 42) + 1], GgmlType::F32),
        GgufError::ShapeOverflow { .. }
    ));
    assert!(matches!(
        one(&[i64::MAX as u64, 2], GgmlType::I8),
        GgufError::ShapeOverflow { .. }
    ));
    assert!(matches!(
        one(&[4, (1 << 30) - 1, (1 << 30) + 1, 1], GgmlType::F32),
        GgufError::ShapeOverflow { .. }
    ));
    // Element count fits i64, byte size does not.
    assert!(matches!(
        one(&[1 << 61], GgmlType::F64),
        GgufError::ShapeOverflow { .. }
    ));
    let e = one(&[4, 0], GgmlType::F32);
    assert!(
        matches!(e, GgufError::ZeroDim { index: 1, ref tensor, .. } if tensor == "t"),
        "{e:?}"
    );
    let e = one(&[1, 1, 1, 1, 1], GgmlType::F32);
    assert!(
        matches!(e, GgufError::BadDimCount { n_dims: 5, .. }),
        "{e:?}"
    );
    let e = one(&[], GgmlType::F32);
    assert!(
        matches!(e, GgufError::BadDimCount { n_dims: 0, .. }),
        "{e:?}"
    );
    let e = one(&[48, 2], GgmlType::Q4_K);
    assert!(
        matches!(
            e,
            GgufError::RowNotMultipleOfBlock {
                row: 48,
                block: 256,
                ..
            }
        ),
        "{e:?}"
    );
    // n_dims huge: rejected before reading any dims.
    let mut b = raw().build();
    b[8..16].copy_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&string(b"t"));
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&[0; 64]);
    assert!(matches!(
        fail(b),
        GgufError::BadDimCount {
            n_dims: u32::MAX,
            ..
        }
    ));
}

#[test]
fn duplicate_and_unnamed_tensors_and_unknown_dtype() {
    let e = fail(
        raw()
            .tensor("w", &[8], GgmlType::F32, 0)
            .tensor("w", &[8], GgmlType::F32, 32)
            .data(64)
            .build(),
    );
    assert!(
        matches!(e, GgufError::DuplicateTensor { ref name } if name == "w"),
        "{e:?}"
    );
    let e = fail(raw().tensor("", &[8], GgmlType::F32, 0).data(32).build());
    assert!(
        matches!(
            e,
            GgufError::EmptyName {
                what: "tensor name",
                ..
            }
        ),
        "{e:?}"
    );
    for id in [4u32, 5, 16, 29, 39, u32::MAX, 0x8000_0000] {
        let e = fail(
            raw()
                .tensor_raw("blk.0.attn_q.weight", &[32], id, 0)
                .data(64)
                .build(),
        );
        assert!(
            matches!(e, GgufError::UnknownDtype { ref tensor, id: i } if tensor == "blk.0.attn_q.weight" && i == id),
            "{e:?}"
        );
        assert!(e.to_string().contains(&id.to_string()));
    }
    let long = "x".repeat(limits::MAX_TENSOR_NAME_LEN as usize + 1);
    let e = fail(raw().tensor(&long, &[8], GgmlType::F32, 0).data(32).build());
    assert!(
        matches!(
            e,
            GgufError::StringTooLong {
                what: "tensor name",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn data_section_missing() {
    // Header ends, padding and data are absent, yet a tensor is declared.
    let mut r = raw().tensor("t", &[8], GgmlType::F32, 0);
    r.alignment = 1;
    let e = fail(r.build());
    assert!(
        matches!(
            e,
            GgufError::DataPastEof { .. } | GgufError::TensorOutOfBounds { .. }
        ),
        "{e:?}"
    );
}

#[test]
fn default_limit_constants_at_their_boundaries() {
    // At the limit: not rejected as "too many" (the tiny file then fails on size instead).
    let at = fail(
        Raw {
            n_tensors: Some(limits::MAX_TENSORS),
            ..raw()
        }
        .build(),
    );
    assert!(matches!(at, GgufError::CountPastEof { .. }), "{at:?}");
    let at = fail(
        Raw {
            n_kv: Some(limits::MAX_METADATA_ENTRIES),
            ..raw()
        }
        .build(),
    );
    assert!(matches!(at, GgufError::CountPastEof { .. }), "{at:?}");
    let at = fail(
        raw()
            .kv(kv("k", 9, &array(0, limits::MAX_ARRAY_LEN, &[])))
            .build(),
    );
    assert!(matches!(at, GgufError::CountPastEof { .. }), "{at:?}");
    let over = fail(
        raw()
            .kv(kv("k", 9, &array(0, limits::MAX_ARRAY_LEN + 1, &[])))
            .build(),
    );
    assert!(matches!(over, GgufError::TooMany { .. }), "{over:?}");
    let at = fail(
        raw()
            .kv(kv("k", 8, &limits::MAX_STRING_LEN.to_le_bytes()))
            .build(),
    );
    assert!(matches!(at, GgufError::UnexpectedEof { .. }), "{at:?}");
    let over = fail(
        raw()
            .kv(kv("k", 8, &(limits::MAX_STRING_LEN + 1).to_le_bytes()))
            .build(),
    );
    assert!(matches!(over, GgufError::StringTooLong { .. }), "{over:?}");
    // Trailing bytes so that the entry count itself fits and the key length is what fails.
    let key_at = fail(
        raw()
            .kv(limits::MAX_KEY_LEN.to_le_bytes().to_vec())
            .data(64)
            .build(),
    );
    assert!(
        matches!(key_at, GgufError::UnexpectedEof { .. }),
        "{key_at:?}"
    );
    let key_over = fail(
        raw()
            .kv((limits::MAX_KEY_LEN + 1).to_le_bytes().to_vec())
            .data(64)
            .build(),
    );
    assert!(
        matches!(
            key_over,
            GgufError::StringTooLong {
                what: "metadata key",
                ..
            }
        ),
        "{key_over:?}"
    );
}

#[test]
fn custom_limits_accept_at_and_reject_above() {
    let small = Limits {
        max_metadata_entries: 3,
        max_tensors: 2,
        max_string_len: 5,
        max_array_len: 4,
        max_array_depth: 2,
    };
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
    let cases = [
        file(1, 2, "12345", 4, 2),
        file(0, 3, "12345", 4, 2),
        file(0, 2, "123456", 4, 2),
        file(0, 2, "12345", 5, 2),
        file(0, 2, "12345", 4, 3),
    ];
    for (i, bytes) in cases.into_iter().enumerate() {
        let e = parse_with(bytes, &small).0.unwrap_err();
        let ok = match i {
            0 => matches!(
                e,
                GgufError::TooMany {
                    what: "metadata entries",
                    count: 4,
                    max: 3,
                    ..
                }
            ),
            1 => matches!(
                e,
                GgufError::TooMany {
                    what: "tensors",
                    count: 3,
                    max: 2,
                    ..
                }
            ),
            2 => matches!(e, GgufError::StringTooLong { len: 6, max: 5, .. }),
            3 => matches!(
                e,
                GgufError::TooMany {
                    what: "array elements",
                    count: 5,
                    max: 4,
                    ..
                }
            ),
            _ => matches!(e, GgufError::ArrayTooDeep { max: 2, .. }),
        };
        assert!(ok, "case {i}: {e:?}");
    }
}
