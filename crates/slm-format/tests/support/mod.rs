//! Shared helpers of the GGUF integration tests: a counting allocator that records the largest
//! single allocation per thread, parse helpers, a raw GGUF builder that can write anything
//! (including nonsense), and a small valid file.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use slm_format::gguf::limits::Limits;
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
pub fn parse(bytes: Vec<u8>) -> (Result<GgufFile, GgufError>, usize) {
    parse_with(bytes, &Limits::default())
}

pub fn parse_with(bytes: Vec<u8>, limits: &Limits) -> (Result<GgufFile, GgufError>, usize) {
    MAX_ALLOC.with(|m| m.set(0));
    let r = GgufFile::from_bytes_with_limits(bytes, limits);
    (r, MAX_ALLOC.with(|m| m.get()))
}

/// Parses a hostile file that must fail; asserts no allocation above 1 MiB happened.
pub fn fail(bytes: Vec<u8>) -> GgufError {
    let len = bytes.len();
    let (r, max_alloc) = parse(bytes);
    assert!(
        max_alloc <= (1 << 20).max(4 * len),
        "allocated {max_alloc} bytes for a {len}-byte file"
    );
    match r {
        Ok(_) => panic!("a malformed file was accepted"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

// ---- a raw builder that can write anything, including nonsense -------------------------------

pub struct RawTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub dtype: u32,
    pub offset: u64,
}

pub struct Raw {
    pub version: u32,
    pub n_tensors: Option<u64>,
    pub n_kv: Option<u64>,
    pub kvs: Vec<Vec<u8>>,
    pub tensors: Vec<RawTensor>,
    pub alignment: usize,
    pub data: Vec<u8>,
}

pub fn raw() -> Raw {
    Raw {
        version: 3,
        n_tensors: None,
        n_kv: None,
        kvs: vec![],
        tensors: vec![],
        alignment: 32,
        data: vec![],
    }
}

pub fn string(s: &[u8]) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s);
    b
}

/// A key/value entry with the given type id and already-encoded value bytes.
pub fn kv(key: &str, type_id: u32, value: &[u8]) -> Vec<u8> {
    let mut b = string(key.as_bytes());
    b.extend_from_slice(&type_id.to_le_bytes());
    b.extend_from_slice(value);
    b
}

pub fn kv_u32(key: &str, v: u32) -> Vec<u8> {
    kv(key, 4, &v.to_le_bytes())
}

/// An array header (element type + count) followed by `body`.
pub fn array(elem: u32, count: u64, body: &[u8]) -> Vec<u8> {
    let mut b = elem.to_le_bytes().to_vec();
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(body);
    b
}

impl Raw {
    pub fn kv(mut self, entry: Vec<u8>) -> Raw {
        self.kvs.push(entry);
        self
    }
    pub fn tensor(mut self, name: &str, dims: &[u64], dtype: GgmlType, offset: u64) -> Raw {
        self.tensors.push(RawTensor {
            name: name.into(),
            dims: dims.to_vec(),
            dtype: dtype.id(),
            offset,
        });
        self
    }
    pub fn tensor_raw(mut self, name: &str, dims: &[u64], dtype: u32, offset: u64) -> Raw {
        self.tensors.push(RawTensor {
            name: name.into(),
            dims: dims.to_vec(),
            dtype,
            offset,
        });
        self
    }
    pub fn data(mut self, n: usize) -> Raw {
        self.data = vec![0xAB; n];
        self
    }
    pub fn build(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(
            &self
                .n_tensors
                .unwrap_or(self.tensors.len() as u64)
                .to_le_bytes(),
        );
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
pub fn valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_u32("llama.block_count", 2)
        .add_bool("b", true);
    w.add_f32("eps", 1e-5)
        .add_u64("big", 1 << 40)
        .add_i8("neg", -3);
    w.add_str_array("tokenizer.ggml.tokens", &["<s>", "</s>", "a", "ü"]);
    w.add_f32_array("tokenizer.ggml.scores", &[0.0, -1.0, -2.0, -3.0]);
    w.add_array(
        "nested",
        Array::Array(vec![
            Array::U16(vec![1, 2]),
            Array::String(vec!["x".into()]),
        ]),
    );
    w.add_tensor("q", &[32, 2], GgmlType::Q4_0, vec![1u8; 36])
        .unwrap();
    w.add_tensor_f32("norm", &[8], &[1.0; 8]).unwrap();
    w.to_bytes().unwrap()
}

pub fn nested(depth: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 1..depth {
        v.extend_from_slice(&array(9, 1, &[]));
    }
    v.extend_from_slice(&array(4, 1, &7u32.to_le_bytes()));
    v
}
