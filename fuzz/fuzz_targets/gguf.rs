//! GGUF reader: `GgufFile::from_bytes` on arbitrary bytes must return `Ok` or a typed `Err`, never
//! panic, hang or allocate more than a small multiple of the input. An accepted file must survive
//! a walk of its metadata and every tensor's data, and round-trip through `GgufWriter`: writing it
//! back and reading that again gives the same metadata and the same tensors (name, shape, type,
//! bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use slm_format::{GgufFile, GgufWriter};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    // Walk everything a loader would touch.
    for (key, value) in file.metadata().iter() {
        let _ = (key.len(), value.type_description());
        let _ = file.metadata().get_u64(key);
        let _ = file.metadata().get_f32(key);
        let _ = file.metadata().get_str_array(key);
        let _ = file.metadata().get_f32_array(key);
        let _ = file.metadata().get_i32_array(key);
    }
    for t in file.tensors() {
        let bytes = file.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.n_bytes, "tensor {} data length", t.name);
        assert_eq!(t.dims.iter().product::<u64>(), t.n_elements);
        assert!(file.tensor(&t.name).is_some());
    }

    // Round trip. The writer is stricter than the reader (names < 64 bytes, UINT32 alignment), so
    // a file it refuses is skipped; one it accepts must read back identically.
    let mut w = GgufWriter::new();
    for (key, value) in file.metadata().iter() {
        w.add(key, value.clone());
    }
    for t in file.tensors() {
        if w.add_tensor(&t.name, &t.dims, t.dtype, file.tensor_data(t)).is_err() {
            return;
        }
    }
    let Ok(bytes) = w.to_bytes() else {
        return;
    };
    let again = GgufFile::from_bytes(bytes).expect("a file GgufWriter wrote must read back");
    let meta = |f: &GgufFile| -> Vec<(String, String)> {
        // Debug text, so NaN floats compare equal to themselves.
        f.metadata()
            .iter()
            .map(|(k, v)| (k.to_string(), format!("{v:?}")))
            .collect()
    };
    assert_eq!(meta(&file), meta(&again), "metadata changed in the round trip");
    assert_eq!(file.tensors().len(), again.tensors().len());
    for (a, b) in file.tensors().iter().zip(again.tensors()) {
        assert_eq!((&a.name, &a.dims, a.dtype), (&b.name, &b.dims, b.dtype));
        assert!(
            file.tensor_data(a) == again.tensor_data(b),
            "tensor {} bytes changed",
            a.name
        );
    }
});
