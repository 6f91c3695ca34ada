//! [`SafetensorsModel`]: the weights of a Hugging Face model directory, either one
//! `model.safetensors` or several shards listed by `model.safetensors.index.json`.
//!
//! The index's `weight_map` (tensor name → shard file) is untrusted: shard names must be plain
//! file names inside the directory (no separators, no `..`), every listed tensor must exist in
//! its shard, and a tensor may not appear in two shards.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};


use super::error::SafetensorsError;
use super::reader::{SafetensorsFile, TensorEntry};

/// Name of the single-file weights.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Name of the shard index.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// Largest index file read (the JSON of a model with a million tensors is far smaller).
pub const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

/// All safetensors files of a model, with a name → shard lookup.
#[derive(Debug)]
pub struct SafetensorsModel {
    files: Vec<(PathBuf, SafetensorsFile)>,
    /// Tensor name → (file index, entry index).
    index: HashMap<String, (usize, usize)>,
    /// Tensor names in file order, then header order.
    names: Vec<String>,
}

impl SafetensorsModel {
    /// Opens `dir/model.safetensors.index.json` and its shards if the index exists, otherwise
    /// `dir/model.safetensors`.
    pub fn open_dir(dir: &Path) -> Result<SafetensorsModel, SafetensorsError> {
        let index_path = dir.join(INDEX_FILE);
        if index_path.is_file() {
            return Self::open_index(&index_path);
        }
        let single = dir.join(SINGLE_FILE);
        if single.is_file() {
            return Self::from_files(vec![(single.clone(), SafetensorsFile::open(&single)?)]);
        }
        Err(SafetensorsError::NoWeights {
            dir: dir.to_path_buf(),
        })
    }

    /// Opens a shard index and every shard it names.
    pub fn open_index(index_path: &Path) -> Result<SafetensorsModel, SafetensorsError> {
        let bad = |reason: String| SafetensorsError::BadIndex {
            path: index_path.to_path_buf(),
            reason,
        };
        let len = std::fs::metadata(index_path)
            .map_err(|e| SafetensorsError::io(index_path, e))?
            .len();
        if len > MAX_INDEX_BYTES {
            return Err(bad(format!(
                "{len} bytes, more than the limit of {MAX_INDEX_BYTES}"
            )));
        }
        let text = std::fs::read(index_path).map_err(|e| SafetensorsError::io(index_path, e))?;
        // `weight_map` is read with unique keys: a tensor mapped twice is an error, not "the last wins".
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: super::json::UniqueObject,
        }
        let index: Index = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("not an index with a \"weight_map\" object of unique keys: {e}")))?;
        let map = index.weight_map.0;
        let dir = index_path.parent().unwrap_or(Path::new("."));
        // Shard name → tensor names it must hold.
        let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tensor, file) in &map {
            let file = file
                .as_str()
                .ok_or_else(|| bad(format!("the shard of `{tensor}` is not a string")))?;
            if file.is_empty()
                || file.contains('/')
                || file.contains('\\')
                || file == "."
                || file == ".."
            {
                return Err(bad(format!("shard name {file:?} of `{tensor}` is not a plain file name in the model directory")));
            }
            shards
                .entry(file.to_string())
                .or_default()
                .push(tensor.clone());
        }
        let mut files = Vec::with_capacity(shards.len());
        for (shard, tensors) in &shards {
            let path = dir.join(shard);
            let file = SafetensorsFile::open(&path)?;
            if let Some(missing) = tensors.iter().find(|t| file.tensor(t).is_none()) {
                return Err(bad(format!(
                    "`{missing}` is mapped to {shard}, which does not contain it"
                )));
            }
            files.push((path, file));
        }
        Self::from_files(files)
    }

    /// Combines already opened files; a tensor name may appear only once across them.
    pub fn from_files(
        files: Vec<(PathBuf, SafetensorsFile)>,
    ) -> Result<SafetensorsModel, SafetensorsError> {
        let mut index = HashMap::new();
        let mut names = Vec::new();
        for (fi, (path, file)) in files.iter().enumerate() {
            for (ti, t) in file.tensors().iter().enumerate() {
                if index.insert(t.name.clone(), (fi, ti)).is_some() {
                    return Err(SafetensorsError::BadIndex {
                        path: path.clone(),
                        reason: format!("tensor `{}` appears in more than one shard", t.name),
                    });
                }
                names.push(t.name.clone());
            }
        }
        Ok(SafetensorsModel {
            files,
            index,
            names,
        })
    }

    /// Every tensor name.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of shard files.
    pub fn n_files(&self) -> usize {
        self.files.len()
    }

    /// The entry called `name` with the file that holds it.
    pub fn get(&self, name: &str) -> Option<(&SafetensorsFile, &TensorEntry)> {
        let &(fi, ti) = self.index.get(name)?;
        let (_, file) = self.files.get(fi)?;
        Some((file, file.tensors().get(ti)?))
    }

    /// The values of `name` as f32 (`None` when absent).
    pub fn tensor_f32(&self, name: &str) -> Option<Result<Vec<f32>, SafetensorsError>> {
        self.get(name).map(|(f, t)| f.tensor_f32(t))
    }
}
