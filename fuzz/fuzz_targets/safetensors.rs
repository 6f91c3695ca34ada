//! safetensors reader: `SafetensorsFile::from_bytes` on arbitrary bytes must return `Ok` or a typed
//! `Err`, never panic or allocate more than the input justifies. An accepted file must convert
//! every tensor to f32 (or fail cleanly) and round-trip through `SafetensorsWriter` with the same
//! metadata and tensors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slm_format::safetensors::{SafetensorsFile, SafetensorsWriter};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = SafetensorsFile::from_bytes(data.to_vec()) else {
        return;
    };
    for t in file.tensors() {
        let bytes = file.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.end - t.begin, "tensor {} data length", t.name);
        assert_eq!(t.n_elements().checked_mul(t.dtype.size()), Some(bytes.len() as u64));
        if let Ok(values) = file.tensor_f32(t) {
            assert_eq!(values.len() as u64, t.n_elements());
        }
    }

    let mut w = SafetensorsWriter::new();
    for (k, v) in file.metadata() {
        w.add_metadata(k, v);
    }
    for t in file.tensors() {
        if w.add_tensor(&t.name, t.dtype, &t.shape, file.tensor_data(t).to_vec())
            .is_err()
        {
            return;
        }
    }
    let again = SafetensorsFile::from_bytes(w.to_bytes()).expect("a file SafetensorsWriter wrote must read back");
    assert_eq!(file.metadata(), again.metadata(), "metadata changed in the round trip");
    assert_eq!(file.tensors().len(), again.tensors().len());
    for t in file.tensors() {
        let u = again.tensor(&t.name).expect("tensor lost in the round trip");
        assert_eq!((t.dtype, &t.shape), (u.dtype, &u.shape));
        assert!(
            file.tensor_data(t) == again.tensor_data(u),
            "tensor {} bytes changed",
            t.name
        );
    }
});
