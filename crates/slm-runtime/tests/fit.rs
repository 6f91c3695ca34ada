//! `slm fit`'s predictor: memory parts add up to what the engine allocates, bigger formats cost
//! more memory and stream more bytes, verdicts and the best-fit choice follow the budget.

use slm_format::{GgmlType, GgufFile};
use slm_model::quantize::{FileType, QuantizeOptions};
use slm_model::random_init::{golden_config, random_llama_gguf};
use slm_model::ContextBytes;
use slm_runtime::fit::{best_fit, builtin_profiles, predict, DeviceProfile, Footprint, Verdict};

fn file() -> GgufFile {
    GgufFile::from_bytes(random_llama_gguf(&golden_config(), GgmlType::F32, 3).unwrap()).unwrap()
}

fn quant(ftype: FileType) -> QuantizeOptions {
    QuantizeOptions { allow_requantize: true, ..QuantizeOptions::preset(ftype, 1) }
}

fn device(memory_bytes: u64) -> DeviceProfile {
    let mut d = builtin_profiles().into_iter().find(|p| p.name == "zen3-2core").expect("built-in profile");
    d.memory_bytes = memory_bytes;
    d
}

#[test]
fn footprint_counts_every_tensor_and_linear() {
    let f = file();
    let fp = Footprint::of(&f, None).unwrap();
    assert_eq!(fp.tensor_bytes, f.tensors().iter().map(|t| t.n_bytes).sum::<u64>());
    assert_eq!(fp.file_bytes, f.data_offset() + fp.tensor_bytes);
    assert_eq!(fp.block_linears.len(), golden_config().n_layer * 7);
    assert_eq!(fp.output.name, "output.weight");
    let q4 = Footprint::of(&f, Some(&quant(FileType::Q4_0))).unwrap();
    assert!(q4.tensor_bytes * 5 < fp.tensor_bytes, "Q4_0 is ~7x smaller than F32");
    assert!(q4.block_linears.iter().all(|l| l.dtype == GgmlType::Q4_0));
}

#[test]
fn memory_parts_add_up_and_follow_the_context() {
    let f = file();
    let fp = Footprint::of(&f, None).unwrap();
    let d = device(1 << 40);
    let p = predict(&fp, &d, 256, 64, 64, 16);
    let ctx = ContextBytes::of(&golden_config(), 256, 64);
    assert_eq!(p.kv_cache_bytes, ctx.kv_cache as u64);
    assert_eq!(p.peak_bytes, p.weights_bytes + p.kv_cache_bytes + p.activation_bytes + p.runtime_bytes);
    let longer = predict(&fp, &d, 512, 64, 64, 16);
    assert_eq!(longer.kv_cache_bytes, 2 * p.kv_cache_bytes);
    assert!(p.prompt_tps > 0.0 && p.gen_tps > 0.0);
}

#[test]
fn smaller_formats_are_predicted_faster_to_generate() {
    let f = file();
    let d = device(1 << 40);
    let f32 = predict(&Footprint::of(&f, None).unwrap(), &d, 128, 64, 64, 16);
    let q8 = predict(&Footprint::of(&f, Some(&quant(FileType::Q8_0))).unwrap(), &d, 128, 64, 64, 16);
    // With one streaming rate for all types, generation time is proportional to bytes.
    assert!(q8.gen_tps > 2.0 * f32.gen_tps, "{} vs {}", q8.gen_tps, f32.gen_tps);
}

#[test]
fn verdicts_and_best_fit_follow_the_budget() {
    let f = file();
    let options = |budget: u64| -> Vec<(FileType, _)> {
        FileType::all()
            .map(|ft| (ft, predict(&Footprint::of(&f, Some(&quant(ft))).unwrap(), &device(budget), 256, 64, 64, 16)))
            .collect()
    };
    let all = options(1 << 40);
    let f32_peak = all.iter().find(|(ft, _)| *ft == FileType::F32).unwrap().1.peak_bytes;
    let q8_peak = all.iter().find(|(ft, _)| *ft == FileType::Q8_0).unwrap().1.peak_bytes;
    assert_eq!(best_fit(all).unwrap().0, FileType::F32, "everything fits: the largest wins");
    // A budget between Q8_0 and F16: F32/F16/BF16 do not fit, Q8_0 is the best that does.
    let tight = options(q8_peak + 1);
    let (best, p) = best_fit(tight.clone()).unwrap();
    assert_eq!(best, FileType::Q8_0);
    assert!(matches!(p.verdict, Verdict::Fits { .. }));
    let f32 = &tight.iter().find(|(ft, _)| *ft == FileType::F32).unwrap().1;
    assert_eq!(f32.verdict, Verdict::TooLarge { need_bytes: f32_peak, have_bytes: q8_peak + 1 });
    assert!(best_fit(options(1 << 20)).is_none(), "1 MiB fits nothing");
}

#[test]
fn the_browser_profile_is_capped_by_the_wasm_address_space() {
    let b = builtin_profiles().into_iter().find(|p| p.name == "browser-tab").unwrap();
    assert_eq!(b.address_space_bytes, Some(4 << 30));
    let fp = Footprint::of(&file(), None).unwrap();
    let mut huge = b.clone();
    huge.memory_bytes = 1 << 40;
    huge.address_space_bytes = Some(1 << 20);
    assert!(matches!(predict(&fp, &huge, 64, 64, 64, 16).verdict, Verdict::TooLarge { have_bytes: 1048576, .. }));
}
