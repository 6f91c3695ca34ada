//! Hugging Face `config.json`: arbitrary bytes through `serde_json` and `HfConfig::from_value` must
//! give `Ok` or a typed `Err`. An accepted config must round-trip: serialized back to JSON and parsed
//! again, it is the same config.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use slm_format::hf_config::{GenerationConfig, HfConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = serde_json::from_value::<GenerationConfig>(value.clone());
    let path = Path::new("config.json");
    let Ok(config) = HfConfig::from_value(value, path) else {
        return;
    };
    let json = match &config {
        HfConfig::Llama(c) => serde_json::to_value(c),
        HfConfig::Bert(c) => serde_json::to_value(c),
    }
    .expect("a parsed config serializes");
    // Floats print in their shortest round-tripping form; NaN/inf cannot come from JSON.
    let again = HfConfig::from_value(json, path).expect("a serialized config parses again");
    assert_eq!(config, again, "config changed in the round trip");
});
