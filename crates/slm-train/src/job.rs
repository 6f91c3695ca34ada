//! File-level pieces of a training job for front ends: the tokenizer saved with a run (so
//! `--resume` needs nothing else), the data read, tokenized and split, and a rayon pool of a
//! chosen size (training is deterministic for a thread count).

use crate::data::{pack_documents, read_documents, split_train_val, text_bytes};
use crate::error::TrainError;
use crate::export::copy_tokenizer_metadata;
use slm_format::{GgufFile, GgufWriter, Metadata};
use slm_runtime::Tokenizer;
use std::path::Path;

/// File name of the tokenizer metadata saved in a run's output folder.
pub const TOKENIZER_FILE: &str = "tokenizer.gguf";

/// Saves the `tokenizer.*` keys of `md` as a tensor-less GGUF in `out_dir` (atomically).
pub fn save_tokenizer(out_dir: &Path, md: &Metadata) -> Result<(), TrainError> {
    let mut w = GgufWriter::new();
    copy_tokenizer_metadata(&mut w, md);
    let path = out_dir.join(TOKENIZER_FILE);
    let bytes = w.to_bytes()?;
    slm_format::atomic::write_bytes_atomic(&path, &bytes).map_err(|source| TrainError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Loads the tokenizer metadata saved by [`save_tokenizer`].
pub fn load_tokenizer(out_dir: &Path) -> Result<Metadata, TrainError> {
    let path = out_dir.join(TOKENIZER_FILE);
    if !path.is_file() {
        return Err(TrainError::Data(format!(
            "{} is missing; pass --tokenizer or --init as for the first run",
            path.display()
        )));
    }
    Ok(GgufFile::open(&path)?.metadata().clone())
}

/// Tokenized, split training data.
#[derive(Clone, Debug)]
pub struct PreparedData {
    /// Training token stream.
    pub train: Vec<u32>,
    /// Validation token stream (empty when `val_fraction` is 0).
    pub val: Vec<u32>,
    /// Bytes of text per validation token, for bits per byte.
    pub bytes_per_token: Option<f64>,
    /// Documents read.
    pub documents: usize,
    /// Bytes of text read.
    pub bytes: usize,
}

/// Reads every text file under `data`, packs it with `tokenizer` and holds out the last
/// `val_fraction` of the tokens for validation.
pub fn prepare_data(
    data: &Path,
    tokenizer: &Tokenizer,
    val_fraction: f64,
    seq_len: usize,
) -> Result<PreparedData, TrainError> {
    if !data.exists() {
        return Err(TrainError::Data(format!(
            "data path {} does not exist; pass a text file or a folder of .txt/.md files",
            data.display()
        )));
    }
    let docs = read_documents(data)?;
    let bytes = docs.iter().map(String::len).sum();
    let tokens = pack_documents(tokenizer, &docs)?;
    let (train, val) = split_train_val(&tokens, val_fraction, seq_len)?;
    let bytes_per_token = (!val.is_empty())
        .then(|| text_bytes(tokenizer, &val) as f64 / val.len() as f64)
        .filter(|b| *b > 0.0);
    Ok(PreparedData {
        train,
        val,
        bytes_per_token,
        documents: docs.len(),
        bytes,
    })
}

/// Runs `f` on a rayon pool of `threads` threads (`None`: rayon's default).
pub fn with_threads<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<R, TrainError> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        if n == 0 {
            return Err(TrainError::Setting("threads must be at least 1".into()));
        }
        b = b.num_threads(n);
    }
    let pool = b
        .build()
        .map_err(|e| TrainError::Setting(format!("cannot start the thread pool: {e}")))?;
    Ok(pool.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::{tokenizer_metadata, train_bpe, BpeOptions};

    #[test]
    fn data_is_packed_split_and_the_tokenizer_saved() {
        let dir = tempfile::tempdir().unwrap();
        let text = "the cat sat on the mat. ".repeat(40);
        std::fs::write(dir.path().join("a.txt"), &text).unwrap();
        std::fs::write(dir.path().join("b.md"), &text).unwrap();
        let tok = train_bpe(std::slice::from_ref(&text), &BpeOptions::new(280)).unwrap();
        let md = tokenizer_metadata(&tok.tokenizer, Some(&tok.config)).unwrap();
        save_tokenizer(dir.path(), &md).unwrap();
        let md2 = load_tokenizer(dir.path()).unwrap();
        assert_eq!(crate::bpe::canonical(&md), crate::bpe::canonical(&md2));
        let t = Tokenizer::from_gguf(&md2).unwrap();
        let d = prepare_data(dir.path(), &t, 0.1, 8).unwrap();
        assert_eq!((d.documents, d.bytes), (2, 2 * text.len()));
        assert!(!d.val.is_empty() && d.train.len() > d.val.len());
        assert!(d.bytes_per_token.unwrap() > 1.0);
        let e = prepare_data(&dir.path().join("nope"), &t, 0.1, 8).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert_eq!(
            with_threads(Some(1), rayon::current_num_threads).unwrap(),
            1
        );
    }
}
