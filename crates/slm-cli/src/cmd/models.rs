//! `slm pull` and `slm list`: the model registry and the local cache.

use crate::args::PullArgs;
use crate::progress::BarProgress;
use anyhow::Result;
use slm_hub::{Cache, HubConfig, Registry, VerifyStatus};

/// `slm pull NAME`
pub fn pull(args: PullArgs) -> Result<()> {
    let cfg = HubConfig::from_env()?;
    let spec = Registry::builtin()?.lookup(&args.name)?;
    let path = slm_hub::pull(&cfg, spec, &BarProgress::default())?;
    outln!("{}", path.display());
    Ok(())
}

/// `slm list`
pub fn list() -> Result<()> {
    let cfg = HubConfig::from_env()?;
    let registry = Registry::builtin()?;
    let listing = Cache::new(&cfg).list(registry, false)?;
    outln!("cache: {}", cfg.models_dir().display());
    outln!("{:<26} {:>10} {:<8} {:<10} description", "name", "size", "quant", "status");
    for spec in registry.models() {
        // Only the registry's own file at the registry's size counts; anything else in the folder
        // (a truncated copy, a stray file) is what `run` would refuse too.
        let mine = listing.models.iter().filter(|m| m.name == spec.name && m.file == spec.file);
        let status = match mine.map(|m| &m.status).next() {
            Some(VerifyStatus::SizeOk | VerifyStatus::Verified) => "cached",
            Some(_) => "invalid",
            None => "-",
        };
        outln!(
            "{:<26} {:>10} {:<8} {:<10} {}",
            spec.name,
            human_bytes(spec.size),
            spec.quant,
            status,
            spec.description
        );
    }
    Ok(())
}

/// `1234567` → `1.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
