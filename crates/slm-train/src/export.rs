//! Conversion between the flat parameter vector and GGUF files that `slm_model::Model` loads.
//!
//! Export writes every tensor as F32 with the `llama.*` hyper-parameter keys slm-model and
//! llama.cpp read, plus (optionally) the tokenizer metadata of a source model so the result runs
//! with `slm run`. Import dequantizes any supported dtype into f32 for fine-tuning.
//!
//! A model with shared blocks ([`BlockMap`]) stores each stored block once (`blk.{j}.*`) and
//! the map under `slm.block_map`; slm-model loads it, llama.cpp does not (it wants
//! `blk.0..block_count`): [`unshare`] turns it into an ordinary model with copied blocks.

use crate::error::TrainError;
use crate::layout::{BlockMap, ParamLayout};
use crate::model::TrainModel;
use slm_format::{GgufFile, GgufWriter, Metadata};
use slm_model::ModelConfig;
use std::path::Path;

fn u32_of(v: usize, what: &str) -> Result<u32, TrainError> {
    u32::try_from(v)
        .map_err(|_| TrainError::Config(format!("{what} = {v} does not fit the GGUF u32 field")))
}

/// Adds the hyper-parameter keys of `cfg` (same set as `slm_model::random_init`).
pub fn add_config_metadata(
    w: &mut GgufWriter,
    cfg: &ModelConfig,
    name: &str,
) -> Result<(), TrainError> {
    let arch = cfg.arch.gguf_name();
    w.add_string("general.architecture", arch);
    w.add_string("general.name", name);
    w.add_u32(
        format!("{arch}.embedding_length"),
        u32_of(cfg.d_model, "d_model")?,
    );
    w.add_u32(
        format!("{arch}.block_count"),
        u32_of(cfg.n_layer, "n_layer")?,
    );
    w.add_u32(
        format!("{arch}.attention.head_count"),
        u32_of(cfg.n_head, "n_head")?,
    );
    w.add_u32(
        format!("{arch}.attention.head_count_kv"),
        u32_of(cfg.n_kv_head, "n_kv_head")?,
    );
    w.add_u32(
        format!("{arch}.attention.key_length"),
        u32_of(cfg.head_dim, "head_dim")?,
    );
    w.add_u32(
        format!("{arch}.attention.value_length"),
        u32_of(cfg.head_dim, "head_dim")?,
    );
    w.add_u32(
        format!("{arch}.feed_forward_length"),
        u32_of(cfg.d_ff, "d_ff")?,
    );
    w.add_u32(
        format!("{arch}.context_length"),
        u32_of(cfg.n_ctx_train, "n_ctx_train")?,
    );
    w.add_u32(
        format!("{arch}.rope.dimension_count"),
        u32_of(cfg.head_dim, "head_dim")?,
    );
    w.add_u32(
        format!("{arch}.vocab_size"),
        u32_of(cfg.n_vocab, "n_vocab")?,
    );
    w.add_f32(
        format!("{arch}.attention.layer_norm_rms_epsilon"),
        cfg.rms_eps,
    );
    w.add_f32(format!("{arch}.rope.freq_base"), cfg.rope_theta);
    Ok(())
}

/// Adds `slm.block_map` when `layout`'s layers do not simply run their own blocks.
pub fn add_block_map(w: &mut GgufWriter, layout: &ParamLayout) -> Result<(), TrainError> {
    if layout.block_map.is_identity() {
        return Ok(());
    }
    let map = layout.block_map.layers();
    let ints = map
        .iter()
        .map(|&j| i32::try_from(j))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| TrainError::Config("a block index does not fit INT32".into()))?;
    w.add_i32_array(slm_model::weights::BLOCK_MAP_KEY, &ints);
    Ok(())
}

/// The same model without sharing: every layer gets its own copy of the block it runs, so the
/// file loads in llama.cpp (at the size of the unshared model).
pub fn unshare(
    cfg: &ModelConfig,
    layout: &ParamLayout,
    params: &[f32],
) -> Result<(ParamLayout, Vec<f32>), TrainError> {
    if params.len() != layout.len() {
        return Err(TrainError::InvalidArgument(format!(
            "{} values for a layout of {}",
            params.len(),
            layout.len()
        )));
    }
    let flat = ParamLayout::new(cfg)?;
    let mut out = vec![0.0f32; flat.len()];
    let map = layout.block_map.layers();
    for t in &flat.tensors {
        // `blk.{i}.rest` reads `blk.{map[i]}.rest`; the other tensors keep their names.
        let source = match t.name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
            Some((i, rest)) => {
                let j = i.parse::<usize>().ok().and_then(|i| map.get(i).copied());
                match j {
                    Some(j) => format!("blk.{j}.{rest}"),
                    None => t.name.clone(),
                }
            }
            None => t.name.clone(),
        };
        let src = layout.tensor(&source).ok_or_else(|| {
            TrainError::InvalidArgument(format!("tensor '{source}' is not in the shared layout"))
        })?;
        out[t.range()].copy_from_slice(&params[src.range()]);
    }
    Ok((flat, out))
}

/// Adds every tensor of `layout` from `values` (a vector of the layout's length) as F32, named
/// `prefix + name` (empty prefix: the model's own tensors).
pub fn add_tensors(
    w: &mut GgufWriter,
    layout: &ParamLayout,
    values: &[f32],
    prefix: &str,
) -> Result<(), TrainError> {
    if values.len() != layout.len() {
        return Err(TrainError::InvalidArgument(format!(
            "{} values for a layout of {}",
            values.len(),
            layout.len()
        )));
    }
    for t in &layout.tensors {
        let dims = if t.rows == 1 {
            vec![t.cols as u64]
        } else {
            vec![t.cols as u64, t.rows as u64]
        };
        w.add_tensor_f32(format!("{prefix}{}", t.name), &dims, &values[t.range()])?;
    }
    Ok(())
}

/// Copies every `tokenizer.*` key of `source` (vocabulary, merges, special ids, chat template).
pub fn copy_tokenizer_metadata(w: &mut GgufWriter, source: &Metadata) {
    for (key, value) in source.iter() {
        if key.starts_with("tokenizer.") {
            w.add(key, value.clone());
        }
    }
}

/// The bytes of an F32 GGUF model holding `params`, loadable by `slm_model::Model`.
pub fn export_gguf_bytes(
    cfg: &ModelConfig,
    layout: &ParamLayout,
    params: &[f32],
    tokenizer_source: Option<&Metadata>,
) -> Result<Vec<u8>, TrainError> {
    let mut w = GgufWriter::new();
    add_config_metadata(&mut w, cfg, "slm-train")?;
    add_block_map(&mut w, layout)?;
    if let Some(md) = tokenizer_source {
        copy_tokenizer_metadata(&mut w, md);
    }
    add_tensors(&mut w, layout, params, "")?;
    Ok(w.to_bytes()?)
}

/// Writes [`export_gguf_bytes`] to `path` atomically.
pub fn export_gguf(
    path: &Path,
    cfg: &ModelConfig,
    layout: &ParamLayout,
    params: &[f32],
    tokenizer_source: Option<&Metadata>,
) -> Result<(), TrainError> {
    let bytes = export_gguf_bytes(cfg, layout, params, tokenizer_source)?;
    slm_format::atomic::write_bytes_atomic(path, &bytes).map_err(|source| TrainError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads the tensors of `layout` named `prefix + name` from `file` into a flat f32 vector,
/// dequantizing any supported dtype.
pub fn read_tensors(
    file: &GgufFile,
    layout: &ParamLayout,
    prefix: &str,
) -> Result<Vec<f32>, TrainError> {
    // Check every tensor's presence and shape before allocating, so a file that claims a huge
    // model fails with a clear error instead of exhausting memory.
    let found = locate_tensors(file, layout, prefix)?;
    let mut out = vec![0.0f32; layout.len()];
    for (t, info) in layout.tensors.iter().zip(found) {
        let m = slm_kernels::QMatrix::new(info.dtype, t.rows, t.cols, file.tensor_data(info))?;
        for (i, row) in out[t.range()].chunks_exact_mut(t.cols).enumerate() {
            m.dequantize_row(i, row)?;
        }
    }
    Ok(out)
}

/// The tensor of `file` named `prefix + name` for every tensor of `layout`, in layout order,
/// each checked for presence and shape (a vector may also be stored as `[n, 1]`).
pub(crate) fn locate_tensors<'f>(
    file: &'f GgufFile,
    layout: &ParamLayout,
    prefix: &str,
) -> Result<Vec<&'f slm_format::TensorInfo>, TrainError> {
    let mut found = Vec::with_capacity(layout.tensors.len());
    for t in &layout.tensors {
        let name = format!("{prefix}{}", t.name);
        let info = file.tensor(&name).ok_or_else(|| {
            TrainError::InvalidArgument(format!("tensor '{name}' is missing from the file"))
        })?;
        let expected: Vec<u64> = if t.rows == 1 {
            vec![t.cols as u64]
        } else {
            vec![t.cols as u64, t.rows as u64]
        };
        let matches = info.dims == expected || (t.rows == 1 && info.dims == [t.cols as u64, 1]);
        if !matches {
            return Err(TrainError::Model(slm_model::ModelError::TensorShape {
                name,
                expected,
                found: info.dims.clone(),
            }));
        }
        found.push(info);
    }
    Ok(found)
}

/// Loads a GGUF model for fine-tuning: its config and its weights as f32 (a model with shared
/// blocks comes back unshared; [`import_gguf_model`] keeps the sharing).
pub fn import_gguf(file: &GgufFile) -> Result<(ModelConfig, Vec<f32>), TrainError> {
    let (model, params) = import_gguf_model(file)?;
    let (cfg, layout) = (model.config(), model.layout());
    if !layout.block_map.is_identity() {
        let (_, flat) = unshare(cfg, layout, &params)?;
        return Ok((cfg.clone(), flat));
    }
    Ok((cfg.clone(), params))
}

/// Loads a GGUF model for fine-tuning as a [`TrainModel`] (with the file's block sharing, if
/// any) and its weights as f32.
pub fn import_gguf_model(file: &GgufFile) -> Result<(TrainModel, Vec<f32>), TrainError> {
    let cfg = ModelConfig::from_gguf(file)?;
    let model = match BlockMap::from_gguf(file.metadata(), cfg.n_layer)? {
        Some(map) => TrainModel::with_sharing(cfg, map)?,
        None => TrainModel::new(cfg)?,
    };
    let params = read_tensors(file, model.layout(), "")?;
    Ok((model, params))
}
