//! Device profiles: how much memory a model may use and how fast the kernels run there.
//! Profiles are data (`profiles.json`, embedded); `--device auto` measures this machine instead.

use serde::{Deserialize, Serialize};
use slm_format::GgmlType;
use std::collections::BTreeMap;

/// What the predictor needs to know about a device.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeviceProfile {
    /// Short name (`--device NAME`).
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// Memory the model process may use, in bytes (RAM minus what the OS and other apps keep).
    pub memory_bytes: u64,
    /// A cap on the process's address space, in bytes (wasm32 tabs: 4 GiB), if any.
    pub address_space_bytes: Option<u64>,
    /// Threads the engine uses.
    pub threads: usize,
    /// Weight bytes the one-token (generation) kernels stream per second, GB/s, by tensor type
    /// name; `"default"` for types not listed.
    pub decode_gbps: BTreeMap<String, f64>,
    /// Multiply-add throughput of the batched (prompt) kernels, GFLOP/s, by tensor type name;
    /// `"default"` for others.
    pub prompt_gflops: BTreeMap<String, f64>,
    /// Attention throughput (f32 dot products over the KV cache), GFLOP/s.
    pub attention_gflops: f64,
    /// Fixed cost of one pool job (thread wake-up and join), microseconds; a layer runs 5.
    pub job_overhead_us: f64,
    /// Time per generated token and block that the kernel probe does not see (norms, RoPE,
    /// activations, KV-cache writes, the attention job's own work beyond its FLOPs),
    /// microseconds. Fitted by calibration on a real model; 0 in estimates and older profiles.
    #[serde(default)]
    pub gen_block_us: f64,
    /// The same for each prompt token and block, microseconds.
    #[serde(default)]
    pub prompt_block_us: f64,
    /// Memory of the engine itself (code, allocator, tokenizer tables), bytes.
    pub runtime_bytes: u64,
    /// Where the figures come from (a probe run, or the published figures an estimate rests on).
    pub source: String,
}

impl DeviceProfile {
    fn lookup(map: &BTreeMap<String, f64>, dtype: GgmlType) -> f64 {
        map.get(dtype.name()).or_else(|| map.get("default")).copied().unwrap_or(1.0).max(1e-6)
    }

    /// Generation-kernel streaming rate for `dtype`, bytes per second.
    pub fn decode_bytes_per_sec(&self, dtype: GgmlType) -> f64 {
        Self::lookup(&self.decode_gbps, dtype) * 1e9
    }

    /// Prompt-kernel throughput for `dtype`, FLOP per second.
    pub fn prompt_flops_per_sec(&self, dtype: GgmlType) -> f64 {
        Self::lookup(&self.prompt_gflops, dtype) * 1e9
    }
}

/// The profiles shipped with slm (estimates for devices that cannot be probed from here).
pub fn builtin_profiles() -> Vec<DeviceProfile> {
    // The JSON is part of the binary and checked by a unit test, so parsing cannot fail at run time;
    // an empty list is the fallback that keeps this total.
    serde_json::from_str(include_str!("profiles.json")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_profiles_parse_and_are_sane() {
        let all: Vec<super::DeviceProfile> = serde_json::from_str(include_str!("profiles.json")).unwrap();
        assert!(all.len() >= 4);
        for p in &all {
            assert!(p.memory_bytes > 0 && p.threads > 0, "{}", p.name);
            assert!(p.decode_gbps.contains_key("default") && p.prompt_gflops.contains_key("default"), "{}", p.name);
            assert!(!p.source.is_empty(), "{} says where its figures come from", p.name);
            assert!(p.gen_block_us >= 0.0 && p.prompt_block_us >= 0.0, "{}", p.name);
        }
    }

    #[test]
    fn a_profile_saved_before_the_per_block_terms_still_loads() {
        let old = r#"{"name":"old","description":"saved by an earlier slm","memory_bytes":1073741824,
            "address_space_bytes":null,"threads":2,"decode_gbps":{"default":20.0},"prompt_gflops":{"default":50.0},
            "attention_gflops":40.0,"job_overhead_us":3.0,"runtime_bytes":8000000,"source":"test"}"#;
        let p: super::DeviceProfile = serde_json::from_str(old).unwrap();
        assert_eq!((p.gen_block_us, p.prompt_block_us), (0.0, 0.0));
        assert_eq!((p.threads, p.job_overhead_us), (2, 3.0));
        let again: super::DeviceProfile = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(again, p, "a profile round-trips through JSON");
    }
}
