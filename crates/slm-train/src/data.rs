//! Training data: text documents → tokens packed into one stream with EOS between documents →
//! train/validation split → deterministic, seeded batches of next-token windows.
//!
//! A window is `T + 1` consecutive tokens (inputs `0..T`, targets `1..=T`); windows start every
//! `T` tokens, so an epoch sees every token once. Windows may span a document boundary: the EOS
//! token marks it, as in GPT-style packing. The window order of epoch `e` is a shuffle seeded by
//! `(seed, e)`, so the whole data position is `(epoch, cursor)` and resumes exactly.

use crate::error::TrainError;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use slm_runtime::Tokenizer;
use std::path::{Path, PathBuf};

/// Largest text file read as one document (guards against pointing at a disk image).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Tokenizes `docs` and packs them into one stream: `[BOS] doc EOS [BOS] doc EOS ...` (BOS only
/// when the tokenizer adds one to prompts).
pub fn pack_documents<S: AsRef<str>>(
    tokenizer: &Tokenizer,
    docs: &[S],
) -> Result<Vec<u32>, TrainError> {
    let eos = tokenizer.eos_id().ok_or_else(|| {
        TrainError::Data("the tokenizer has no end-of-sequence token to separate documents; use one that defines EOS".into())
    })?;
    let bos = if tokenizer.add_bos() {
        tokenizer.bos_id()
    } else {
        None
    };
    let mut out = Vec::new();
    for doc in docs {
        out.extend(bos);
        out.extend(tokenizer.encode(doc.as_ref(), false)?);
        out.push(eos);
    }
    Ok(out)
}

/// Reads the documents under `path`: the file itself, or every `.txt`/`.md` file below a folder
/// (recursively, sorted by path so the order never depends on the file system). One file is one
/// document.
pub fn read_documents(path: &Path) -> Result<Vec<String>, TrainError> {
    let io = |p: &Path, source| TrainError::Io {
        path: p.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    if path.is_dir() {
        collect_text_files(path, &mut files).map_err(|e| io(path, e))?;
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    if files.is_empty() {
        return Err(TrainError::Data(format!(
            "no .txt or .md files under {}",
            path.display()
        )));
    }
    let mut docs = Vec::with_capacity(files.len());
    for f in files {
        let len = std::fs::metadata(&f).map_err(|e| io(&f, e))?.len();
        if len > MAX_FILE_BYTES {
            return Err(TrainError::Data(format!(
                "{} is {len} bytes, above the {MAX_FILE_BYTES}-byte limit; split it",
                f.display()
            )));
        }
        let bytes = std::fs::read(&f).map_err(|e| io(&f, e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            TrainError::Data(format!(
                "{} is not UTF-8 text; convert it or remove it",
                f.display()
            ))
        })?;
        docs.push(text);
    }
    Ok(docs)
}

fn collect_text_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            collect_text_files(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("txt" | "md")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Splits a packed stream into `(train, validation)`: the last `val_fraction` of the tokens
/// (at least one window of `seq_len + 1` when the fraction is positive) become validation.
pub fn split_train_val(
    tokens: &[u32],
    val_fraction: f64,
    seq_len: usize,
) -> Result<(Vec<u32>, Vec<u32>), TrainError> {
    if !(0.0..1.0).contains(&val_fraction) {
        return Err(TrainError::Setting(format!(
            "validation fraction {val_fraction} must be in [0, 1)"
        )));
    }
    if val_fraction == 0.0 {
        return Ok((tokens.to_vec(), Vec::new()));
    }
    let n_val = ((tokens.len() as f64 * val_fraction).round() as usize).max(seq_len + 1);
    if n_val + seq_len + 1 > tokens.len() {
        return Err(TrainError::Data(format!(
            "{} tokens cannot hold a validation split of {n_val} and a training window of {}; add data or shorten sequences",
            tokens.len(),
            seq_len + 1
        )));
    }
    let cut = tokens.len() - n_val;
    Ok((tokens[..cut].to_vec(), tokens[cut..].to_vec()))
}

/// Where a [`Batcher`] is in its data (saved in checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPosition {
    /// Completed passes over the data.
    pub epoch: u64,
    /// Windows of the current epoch already handed out.
    pub cursor: u64,
}

/// Deterministic shuffled batches of next-token windows over a token stream.
#[derive(Clone, Debug)]
pub struct Batcher {
    tokens: Vec<u32>,
    seq_len: usize,
    batch: usize,
    seed: u64,
    pos: DataPosition,
    order: Vec<u32>,
}

impl Batcher {
    /// Batches of `batch` windows of `seq_len` over `tokens`, shuffled per epoch from `seed`.
    pub fn new(
        tokens: Vec<u32>,
        seq_len: usize,
        batch: usize,
        seed: u64,
    ) -> Result<Batcher, TrainError> {
        if seq_len == 0 || batch == 0 {
            return Err(TrainError::Setting(format!(
                "sequence length {seq_len} and batch {batch} must be positive"
            )));
        }
        let n_windows = tokens.len().saturating_sub(1) / seq_len;
        if n_windows == 0 {
            return Err(TrainError::Data(format!(
                "{} tokens are fewer than one window of {} (sequence length + 1); add data or shorten sequences",
                tokens.len(),
                seq_len + 1
            )));
        }
        if n_windows > u32::MAX as usize {
            return Err(TrainError::Data(format!(
                "{n_windows} windows exceed the supported 2^32"
            )));
        }
        let mut b = Batcher {
            tokens,
            seq_len,
            batch,
            seed,
            pos: DataPosition {
                epoch: 0,
                cursor: 0,
            },
            order: Vec::new(),
        };
        b.shuffle();
        Ok(b)
    }

    /// Number of windows per epoch.
    pub fn n_windows(&self) -> usize {
        self.order.len()
    }

    /// The data position.
    pub fn position(&self) -> DataPosition {
        self.pos
    }

    /// The token stream.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Moves to `pos` (from a checkpoint).
    pub fn seek(&mut self, pos: DataPosition) -> Result<(), TrainError> {
        if pos.cursor > self.order.len() as u64 {
            return Err(TrainError::Data(format!(
                "data position {} is past the {} windows of this data; it is not the data of the checkpoint",
                pos.cursor,
                self.order.len()
            )));
        }
        self.pos = pos;
        self.shuffle();
        Ok(())
    }

    fn shuffle(&mut self) {
        let n = self.tokens.len().saturating_sub(1) / self.seq_len;
        self.order = (0..n as u32).collect();
        let mut rng = Rng::new(self.seed ^ self.pos.epoch.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.shuffle(&mut self.order);
    }

    /// The next batch as `(inputs, targets)`, each `[B*T]`; rolls over to a new epoch (and a new
    /// shuffle) when the current one is exhausted.
    pub fn next_batch(&mut self) -> (Vec<u32>, Vec<u32>) {
        let windows = self.next_windows();
        self.gather(&windows)
    }

    /// The window indices of the next batch (window `w` starts at token `w·T`): for data kept
    /// per window, such as a teacher's predictions in distillation.
    pub fn next_windows(&mut self) -> Vec<usize> {
        let mut windows = Vec::with_capacity(self.batch);
        for _ in 0..self.batch {
            if self.pos.cursor as usize >= self.order.len() {
                self.pos = DataPosition {
                    epoch: self.pos.epoch + 1,
                    cursor: 0,
                };
                self.shuffle();
            }
            let w = self
                .order
                .get(self.pos.cursor as usize)
                .copied()
                .unwrap_or(0) as usize;
            self.pos.cursor += 1;
            windows.push(w);
        }
        windows
    }

    /// `(inputs, targets)` of `windows`, each `[windows*T]`.
    pub fn gather(&self, windows: &[usize]) -> (Vec<u32>, Vec<u32>) {
        let t = self.seq_len;
        let mut inputs = Vec::with_capacity(windows.len() * t);
        let mut targets = Vec::with_capacity(windows.len() * t);
        for &w in windows {
            let start = w * t;
            inputs.extend_from_slice(&self.tokens[start..start + t]);
            targets.extend_from_slice(&self.tokens[start + 1..start + t + 1]);
        }
        (inputs, targets)
    }
}

/// Consecutive non-overlapping windows of `tokens` (for validation), at most `max_windows`:
/// `(inputs, targets)` each `[windows*T]`.
pub fn eval_windows(tokens: &[u32], seq_len: usize, max_windows: usize) -> (Vec<u32>, Vec<u32>) {
    let n = (tokens.len().saturating_sub(1) / seq_len.max(1)).min(max_windows);
    let mut inputs = Vec::with_capacity(n * seq_len);
    let mut targets = Vec::with_capacity(n * seq_len);
    for w in 0..n {
        inputs.extend_from_slice(&tokens[w * seq_len..(w + 1) * seq_len]);
        targets.extend_from_slice(&tokens[w * seq_len + 1..(w + 1) * seq_len + 1]);
    }
    (inputs, targets)
}

/// Bytes of text the tokens stand for (sum of their pieces), the denominator of bits per byte.
pub fn text_bytes(tokenizer: &Tokenizer, tokens: &[u32]) -> usize {
    tokens
        .iter()
        .map(|&id| tokenizer.token_to_piece(id).len())
        .sum()
}

/// Bits per byte of text from a mean loss in nats per token over `n_tokens` tokens that stand for
/// `n_bytes` bytes: `loss · n_tokens / (n_bytes · ln 2)` (comparable across vocabularies).
pub fn bits_per_byte(loss_nats: f64, n_tokens: usize, n_bytes: usize) -> f64 {
    if n_bytes == 0 {
        return f64::NAN;
    }
    loss_nats * n_tokens as f64 / (n_bytes as f64 * std::f64::consts::LN_2)
}

/// A 64-bit FNV-1a fingerprint of a token stream (checkpoints refuse to resume on other data).
pub fn fingerprint(tokens: &[u32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &t in tokens {
        for b in t.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_window_once_per_epoch_and_shift_targets() {
        let tokens: Vec<u32> = (0..41).collect();
        let mut b = Batcher::new(tokens, 4, 2, 9).unwrap();
        assert_eq!(b.n_windows(), 10);
        let mut starts = Vec::new();
        for _ in 0..5 {
            let (x, y) = b.next_batch();
            for (xs, ys) in x.chunks(4).zip(y.chunks(4)) {
                assert!(xs.iter().zip(ys).all(|(a, b)| b - a == 1), "{xs:?} {ys:?}");
                starts.push(xs[0]);
            }
        }
        starts.sort();
        assert_eq!(starts, (0..10).map(|w| w * 4).collect::<Vec<u32>>());
        assert_eq!(
            b.position(),
            DataPosition {
                epoch: 0,
                cursor: 10
            }
        );
        b.next_batch();
        assert_eq!(
            b.position(),
            DataPosition {
                epoch: 1,
                cursor: 2
            }
        );
    }

    #[test]
    fn same_seed_same_batches_and_seek_resumes() {
        let tokens: Vec<u32> = (0..200).collect();
        let mut a = Batcher::new(tokens.clone(), 8, 3, 1).unwrap();
        let mut b = Batcher::new(tokens.clone(), 8, 3, 1).unwrap();
        let mut c = Batcher::new(tokens.clone(), 8, 3, 2).unwrap();
        assert_eq!(a.next_batch(), b.next_batch());
        assert_ne!(a.clone().next_batch(), c.next_batch());
        for _ in 0..20 {
            a.next_batch();
        }
        let mut resumed = Batcher::new(tokens, 8, 3, 1).unwrap();
        resumed.seek(a.position()).unwrap();
        for _ in 0..20 {
            assert_eq!(a.next_batch(), resumed.next_batch());
        }
    }

    #[test]
    fn split_keeps_the_tail_for_validation() {
        let tokens: Vec<u32> = (0..100).collect();
        let (tr, va) = split_train_val(&tokens, 0.1, 4).unwrap();
        assert_eq!(tr.len(), 90);
        assert_eq!(va, (90..100).collect::<Vec<u32>>());
        assert!(split_train_val(&tokens[..8], 0.5, 4).is_err());
        assert!(Batcher::new(vec![1, 2, 3], 4, 1, 0).is_err());
    }

    #[test]
    fn bits_per_byte_converts_nats_per_token() {
        // 1 nat/token, 2 tokens per 3 bytes: 2/3 nats per byte = 0.9618 bits per byte.
        assert!((bits_per_byte(1.0, 200, 300) - 2.0 / 3.0 / std::f64::consts::LN_2).abs() < 1e-12);
        assert!(bits_per_byte(1.0, 1, 0).is_nan());
    }

    #[test]
    fn eval_windows_are_consecutive() {
        let (x, y) = eval_windows(&(0..10).collect::<Vec<u32>>(), 3, 10);
        assert_eq!(x, vec![0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(y, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
}
