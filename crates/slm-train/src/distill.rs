//! Knowledge distillation: a student learns from a teacher's predictions as well as from the
//! data (Hinton et al. 2015; DistilBERT's soft-target loss).
//!
//! Per position, with student logits `z`, temperature `T`, weight `α` and the teacher's top-k
//! distribution `p̃` (its softmax at temperature `T`, kept on its `k` likeliest tokens and
//! renormalised):
//!
//! `loss = α·T²·KL(p̃ ‖ softmax(z/T)) + (1−α)·CE(softmax(z), target)`
//! `∂loss/∂z = α·T·(softmax(z/T) − p̃) + (1−α)·(softmax(z) − onehot(target))`
//!
//! The teacher runs once, over the same windows the student trains on ([`TeacherCache`]: the
//! batcher's windows start every `T` tokens, so window `w`'s positions are the teacher's exactly),
//! and its top-k is stored in a GGUF file next to the run, so a second run (or a resume) reuses
//! it. The student must share the teacher's tokenizer (same ids).

use crate::data::fingerprint;
use crate::error::TrainError;
use crate::trainer::Trainer;
use rayon::prelude::*;
use slm_format::{GgmlType, GgufFile, GgufWriter, Value};
use slm_kernels::Pool;
use slm_model::{Logits, Model};
use std::path::Path;
use std::sync::Arc;

/// Distillation settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistillConfig {
    /// Weight of the soft (teacher) term; `1 − alpha` weighs the hard cross-entropy.
    pub alpha: f32,
    /// Softmax temperature of both distributions in the soft term.
    pub temperature: f32,
    /// Teacher tokens kept per position.
    pub top_k: usize,
}

impl DistillConfig {
    /// Checks the ranges: `alpha` in `[0, 1]`, temperature > 0, `1 ≤ top_k ≤ 1024`.
    pub fn validate(&self) -> Result<(), TrainError> {
        let ok = (0.0..=1.0).contains(&self.alpha)
            && self.temperature.is_finite()
            && self.temperature > 0.0
            && (1..=1024).contains(&self.top_k);
        if ok {
            Ok(())
        } else {
            Err(TrainError::Setting(format!(
                "distillation needs 0 ≤ alpha ≤ 1, temperature > 0 and 1 ≤ top-k ≤ 1024: {self:?}"
            )))
        }
    }
}

/// The teacher's top-k next-token distribution for every position of every training window.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherCache {
    /// Tokens per window.
    pub seq_len: usize,
    /// Entries per position.
    pub k: usize,
    /// Temperature the probabilities were computed at.
    pub temperature: f32,
    /// Fingerprint of the training tokens the cache belongs to.
    pub data_fingerprint: u64,
    /// `[windows][seq_len][k]` token ids.
    pub ids: Vec<u32>,
    /// `[windows][seq_len][k]` probabilities (each position's sum to 1).
    pub probs: Vec<f32>,
}

const KEY_SEQ_LEN: &str = "slm.distill.seq_len";
const KEY_K: &str = "slm.distill.top_k";
const KEY_TEMPERATURE: &str = "slm.distill.temperature";
const KEY_FINGERPRINT: &str = "slm.distill.data_fingerprint";

impl TeacherCache {
    /// Runs `teacher` over every window of `tokens` (window `w` = `tokens[w·T .. w·T+T]`) and keeps
    /// its top-k at `cfg.temperature`. `progress(done, total)` is called after each window.
    pub fn build(
        teacher: &Model,
        pool: &Pool,
        tokens: &[u32],
        seq_len: usize,
        cfg: &DistillConfig,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<TeacherCache, TrainError> {
        cfg.validate()?;
        let v = teacher.config().n_vocab;
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= v) {
            return Err(TrainError::InvalidArgument(format!(
                "token id {id} is outside the teacher's vocabulary of {v}; the student must use the teacher's tokenizer"
            )));
        }
        let n_windows = tokens.len().saturating_sub(1) / seq_len.max(1);
        let k = cfg.top_k.min(v);
        let mut ctx = teacher.new_context(seq_len, seq_len)?;
        let mut ids = Vec::with_capacity(n_windows * seq_len * k);
        let mut probs = Vec::with_capacity(n_windows * seq_len * k);
        for w in 0..n_windows {
            ctx.clear();
            let window = &tokens[w * seq_len..(w + 1) * seq_len];
            let logits = teacher.forward_prompt(&mut ctx, pool, window, Logits::All)?;
            let rows: Vec<(Vec<u32>, Vec<f32>)> = logits
                .par_chunks(v)
                .map(|row| top_k_softmax(row, k, cfg.temperature))
                .collect();
            for (i, p) in rows {
                ids.extend(i);
                probs.extend(p);
            }
            progress(w + 1, n_windows);
        }
        Ok(TeacherCache {
            seq_len,
            k,
            temperature: cfg.temperature,
            data_fingerprint: fingerprint(tokens),
            ids,
            probs,
        })
    }

    /// Number of windows.
    pub fn n_windows(&self) -> usize {
        self.ids.len() / (self.seq_len * self.k).max(1)
    }

    /// Writes the cache as a GGUF file, atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut w = GgufWriter::new();
        w.add(KEY_SEQ_LEN, Value::U64(self.seq_len as u64));
        w.add(KEY_K, Value::U64(self.k as u64));
        w.add(KEY_TEMPERATURE, Value::F32(self.temperature));
        w.add(KEY_FINGERPRINT, Value::U64(self.data_fingerprint));
        let dims = [self.k as u64, (self.ids.len() / self.k.max(1)) as u64];
        let id_bytes: Vec<u8> = self
            .ids
            .iter()
            .flat_map(|&i| (i as i32).to_le_bytes())
            .collect();
        w.add_tensor("teacher.top_ids", &dims, GgmlType::I32, id_bytes)?;
        w.add_tensor_f32("teacher.top_probs", &dims, &self.probs)?;
        w.write_file(path)?;
        Ok(())
    }

    /// Reads a cache written by [`save`](Self::save) and checks it belongs to `tokens` at
    /// `seq_len` and `cfg` (a mismatch is an error: delete the file to rebuild it).
    pub fn load(
        path: &Path,
        tokens: &[u32],
        seq_len: usize,
        cfg: &DistillConfig,
    ) -> Result<TeacherCache, TrainError> {
        let file = GgufFile::open(path)?;
        let md = file.metadata();
        let bad = |reason: String| TrainError::Checkpoint {
            path: path.display().to_string(),
            reason,
        };
        let (s, k) = (
            md.get_u64(KEY_SEQ_LEN)? as usize,
            md.get_u64(KEY_K)? as usize,
        );
        let (t, fp) = (md.get_f32(KEY_TEMPERATURE)?, md.get_u64(KEY_FINGERPRINT)?);
        if s != seq_len
            || !(t.is_finite() && t > 0.0)
            || fp != fingerprint(tokens)
            || k == 0
            || k > cfg.top_k.max(1)
        {
            return Err(bad(format!(
                "teacher cache for seq_len {s}, top-k {k}, temperature {t}, data {fp:x} does not match this run (seq_len {seq_len}, top-k {}, temperature {}, data {:x})",
                cfg.top_k,
                cfg.temperature,
                fingerprint(tokens)
            )));
        }
        let n_rows = (tokens.len().saturating_sub(1) / seq_len.max(1)) * seq_len;
        let read = |name: &str, dtype: GgmlType| -> Result<&[u8], TrainError> {
            let info = file
                .tensor(name)
                .ok_or_else(|| bad(format!("tensor {name} is missing")))?;
            if info.dtype != dtype || info.dims != [k as u64, n_rows as u64] {
                return Err(bad(format!(
                    "tensor {name} is {:?} {}, expected [{k}, {n_rows}] {dtype}",
                    info.dims, info.dtype
                )));
            }
            Ok(file.tensor_data(info))
        };
        let ids: Vec<u32> = read("teacher.top_ids", GgmlType::I32)?
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32)
            .collect();
        let probs: Vec<f32> = read("teacher.top_probs", GgmlType::F32)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut cache = TeacherCache {
            seq_len,
            k,
            temperature: t,
            data_fingerprint: fp,
            ids,
            probs,
        };
        cache.retemper(cfg.temperature);
        Ok(cache)
    }

    /// Re-expresses the cached distributions at temperature `t`: within the kept top-k,
    /// `p_t ∝ p_old^(T_old / t)` exactly (both are softmaxes of the same logits), so one teacher
    /// pass serves every temperature.
    pub fn retemper(&mut self, t: f32) {
        if t == self.temperature || self.k == 0 {
            return;
        }
        let power = (self.temperature / t) as f64;
        for row in self.probs.chunks_mut(self.k) {
            // Largest first: scale by the first entry so the powers cannot underflow to all zeros.
            let top = row[0].max(f32::MIN_POSITIVE) as f64;
            let sum: f64 = row.iter().map(|&p| (p as f64 / top).powf(power)).sum();
            for p in row.iter_mut() {
                *p = ((*p as f64 / top).powf(power) / sum) as f32;
            }
        }
        self.temperature = t;
    }

    /// The teacher's entries for `windows`, in the batcher's `[B][T]` row order.
    pub(crate) fn rows(&self, windows: &[usize]) -> (Vec<u32>, Vec<f32>) {
        let per = self.seq_len * self.k;
        let mut ids = Vec::with_capacity(windows.len() * per);
        let mut probs = Vec::with_capacity(windows.len() * per);
        for &w in windows {
            ids.extend_from_slice(&self.ids[w * per..(w + 1) * per]);
            probs.extend_from_slice(&self.probs[w * per..(w + 1) * per]);
        }
        (ids, probs)
    }
}

/// The `k` largest entries of `softmax(row / t)`, renormalised over those `k`.
fn top_k_softmax(row: &[f32], k: usize, t: f32) -> (Vec<u32>, Vec<f32>) {
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    let k = k.min(row.len());
    // Largest first; ties by id so the result does not depend on the sort's internals.
    let cmp = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_unstable_by(cmp);
    let max = row[idx[0] as usize];
    let e: Vec<f64> = idx
        .iter()
        .map(|&i| (((row[i as usize] - max) / t) as f64).exp())
        .collect();
    let sum: f64 = e.iter().sum();
    (idx, e.iter().map(|x| (x / sum) as f32).collect())
}

/// Soft targets for the rows of one micro-batch: `k` (id, probability) pairs per row.
#[derive(Clone, Copy, Debug)]
pub struct SoftTargets<'a> {
    /// Entries per row.
    pub k: usize,
    /// `[N][k]` token ids.
    pub ids: &'a [u32],
    /// `[N][k]` probabilities.
    pub probs: &'a [f32],
    /// The loss mix.
    pub cfg: DistillConfig,
}

/// The distillation loss of each logit row (see the module docs), in place like
/// `ops::cross_entropy_in_place`: returns the summed loss and leaves `scale·∂loss/∂z` in `logits`.
/// `soft` holds the rows' entries starting at row 0 of `logits`.
pub fn distill_loss_in_place(
    logits: &mut [f32],
    targets: &[u32],
    v: usize,
    soft: &SoftTargets,
    scale: f32,
) -> f64 {
    let (k, alpha, t) = (soft.k, soft.cfg.alpha, soft.cfg.temperature);
    let losses: Vec<f64> = logits
        .par_chunks_mut(v)
        .zip(targets.par_iter())
        .enumerate()
        .map(|(r, (row, &target))| {
            let (ids, probs) = (
                &soft.ids[r * k..(r + 1) * k],
                &soft.probs[r * k..(r + 1) * k],
            );
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            // log-sum-exp at temperature 1 and at T.
            let (mut s1, mut st) = (0.0f64, 0.0f64);
            for &z in row.iter() {
                s1 += ((z - max) as f64).exp();
                st += (((z - max) / t) as f64).exp();
            }
            let (ls1, lst) = (s1.ln(), st.ln());
            let ce = ls1 - row.get(target as usize).map_or(0.0, |&z| (z - max) as f64);
            let mut kl = 0.0f64;
            for (&i, &p) in ids.iter().zip(probs) {
                if p > 0.0 {
                    let log_q = ((row[i as usize] - max) / t) as f64 - lst;
                    kl += p as f64 * ((p as f64).ln() - log_q);
                }
            }
            // Gradient: α·T·(q − p̃) + (1−α)·(p − onehot), times scale.
            let (hard_w, soft_w) = ((1.0 - alpha) * scale, alpha * t * scale);
            for z in row.iter_mut() {
                let p = (((*z - max) as f64) - ls1).exp() as f32;
                let q = ((((*z - max) / t) as f64) - lst).exp() as f32;
                *z = hard_w * p + soft_w * q;
            }
            if let Some(z) = row.get_mut(target as usize) {
                *z -= hard_w;
            }
            for (&i, &p) in ids.iter().zip(probs) {
                row[i as usize] -= soft_w * p;
            }
            (1.0 - alpha as f64) * ce + alpha as f64 * (t as f64 * t as f64) * kl
        })
        .collect();
    losses.iter().sum()
}

impl Trainer {
    /// Makes every following [`step`](Trainer::step) a distillation step against `cache` (checked
    /// to be built over this trainer's training tokens at its sequence length).
    pub fn set_teacher(
        &mut self,
        cache: Arc<TeacherCache>,
        cfg: DistillConfig,
    ) -> Result<(), TrainError> {
        cfg.validate()?;
        if cache.seq_len != self.cfg.seq_len || cache.data_fingerprint != self.data_fingerprint() {
            return Err(TrainError::InvalidArgument(
                "the teacher cache was built for other data or another sequence length".into(),
            ));
        }
        self.teacher = Some((cache, cfg));
        Ok(())
    }
}
