//! Pulls a model into the cache and verifies it, printing timestamped progress.
//!
//! ```text
//! SLM_CACHE_DIR=/tmp/hubtest cargo run -p slm-hub --example pull -- smollm2-135m-instruct
//! ```
//! Add `--list` to list the cache afterwards (with full SHA-256 checks).

use std::cell::Cell;
use std::process::ExitCode;
use std::time::Instant;

use slm_hub::{ensure_model, sha256_file, Cache, HubConfig, Progress, Registry};

/// Prints messages and every 10% of each phase, with seconds since start.
struct Printer {
    t0: Instant,
    total: Cell<Option<u64>>,
    done: Cell<u64>,
    next_tenth: Cell<u64>,
}

impl Printer {
    fn say(&self, s: &str) {
        eprintln!("[{:7.2}s] {s}", self.t0.elapsed().as_secs_f64());
    }
}

impl Progress for Printer {
    fn start(&self, what: &str, total: Option<u64>) {
        self.total.set(total);
        self.done.set(0);
        self.next_tenth.set(1);
        self.say(&format!("start: {what} ({} bytes)", total.map_or("?".into(), |t| t.to_string())));
    }
    fn advance(&self, bytes: u64) {
        self.done.set(self.done.get() + bytes);
        if let Some(total) = self.total.get().filter(|t| *t > 0) {
            while self.next_tenth.get() <= 10 && self.done.get() * 10 >= total * self.next_tenth.get() {
                self.say(&format!("  {}%", self.next_tenth.get() * 10));
                self.next_tenth.set(self.next_tenth.get() + 1);
            }
        }
    }
    fn finish(&self) {
        self.say(&format!("finish ({} bytes)", self.done.get()));
    }
    fn message(&self, msg: &str) {
        self.say(msg);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.iter().find(|a| !a.starts_with("--")).map_or("default", String::as_str);
    let p = Printer { t0: Instant::now(), total: Cell::new(None), done: Cell::new(0), next_tenth: Cell::new(1) };
    let run = || -> Result<(), slm_hub::HubError> {
        let cfg = HubConfig::from_env()?;
        p.say(&format!("cache {} endpoint {} offline {}", cfg.cache_root.display(), cfg.hub_endpoint, cfg.offline));
        let path = ensure_model(&cfg, name, &p)?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        p.say(&format!("model at {} ({size} bytes, sha256 {})", path.display(), sha256_file(&path)?));
        if args.iter().any(|a| a == "--list") {
            let listing = Cache::new(&cfg).list(Registry::builtin()?, true)?;
            for m in &listing.models {
                p.say(&format!("cached: {}/{} {} bytes {:?}", m.name, m.file, m.size, m.status));
            }
            for part in &listing.partial {
                p.say(&format!("partial: {} {} bytes", part.path.display(), part.size));
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            p.say(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}
