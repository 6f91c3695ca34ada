//! Shard index: `SafetensorsModel::open_index` on an arbitrary `model.safetensors.index.json` next
//! to two valid shards must return `Ok` or a typed `Err` (never panic, never open a file outside the
//! model directory). An accepted index must give a consistent name → tensor lookup.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use slm_format::safetensors::{Dtype, SafetensorsModel, SafetensorsWriter};

/// A model directory with two shards (tensors `a`, `b` and `c`), made once per process.
fn model_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("slm-fuzz-index-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let mut one = SafetensorsWriter::new();
        one.add_f32("a", Dtype::F32, &[2], &[1.0, 2.0]).expect("shard 1");
        one.add_f32("b", Dtype::F16, &[1, 2], &[3.0, 4.0]).expect("shard 1");
        one.write_file(&dir.join("model-00001-of-00002.safetensors"))
            .expect("shard 1");
        let mut two = SafetensorsWriter::new();
        two.add_f32("c", Dtype::BF16, &[3], &[5.0, 6.0, 7.0]).expect("shard 2");
        two.write_file(&dir.join("model-00002-of-00002.safetensors"))
            .expect("shard 2");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = model_dir();
    let index = dir.join("model.safetensors.index.json");
    std::fs::write(&index, data).expect("write the index");
    let Ok(model) = SafetensorsModel::open_index(&index) else {
        return;
    };
    assert!(model.n_files() <= 2, "only two shards exist");
    for name in model.names() {
        let (file, entry) = model.get(name).expect("every listed name resolves");
        assert_eq!(&entry.name, name);
        assert!(file.tensor(name).is_some());
        let values = model.tensor_f32(name).expect("listed").expect("valid shard converts");
        assert_eq!(values.len() as u64, entry.n_elements());
    }
});
