//! The stages of the sampler chain and the candidate list they edit.
//!
//! Semantics follow llama.cpp's samplers (`src/llama-sampling.cpp`): penalties, top-k, top-p and
//! min-p see the untempered logits, temperature comes last before the draw.

use std::cmp::Ordering;

/// One token still in the running.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Its (possibly modified) logit.
    pub logit: f32,
}

/// Higher logit first; equal logits by lower id, so results never depend on sort stability.
fn by_logit_desc(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// The candidate list. Its buffers are reused from token to token.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    items: Vec<Candidate>,
    /// `items` is in [`by_logit_desc`] order.
    sorted: bool,
    /// `items[i].id == i` for every i (fresh from the logits, nothing removed or reordered).
    indexed: bool,
}

impl Candidates {
    /// Refills from a logit vector (index = token id). NaN becomes -inf so it can never win.
    pub fn fill(&mut self, logits: &[f32]) {
        self.items.clear();
        self.items.extend(
            (0u32..).zip(logits).map(|(id, &l)| Candidate { id, logit: if l.is_nan() { f32::NEG_INFINITY } else { l } }),
        );
        self.sorted = false;
        self.indexed = true;
    }

    /// The remaining candidates (sorted best first if a stage has sorted them).
    pub fn as_slice(&self) -> &[Candidate] {
        &self.items
    }

    /// Number of remaining candidates.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no candidate remains.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The best candidate (highest logit, lowest id among equals), if any.
    pub fn best(&self) -> Option<Candidate> {
        if self.sorted {
            return self.items.first().copied();
        }
        self.items.iter().copied().min_by(by_logit_desc)
    }

    fn max_logit(&self) -> f32 {
        self.best().map_or(f32::NEG_INFINITY, |c| c.logit)
    }

    /// Sorts the first `k` candidates best-first and drops the rest.
    fn keep_top(&mut self, k: usize) {
        if k < self.items.len() {
            if k > 0 && !self.sorted {
                self.items.select_nth_unstable_by(k - 1, by_logit_desc);
            }
            self.items.truncate(k);
        }
        if !self.sorted {
            self.items.sort_unstable_by(by_logit_desc);
            self.sorted = true;
        }
        self.indexed = false;
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.items.sort_unstable_by(by_logit_desc);
            self.sorted = true;
            self.indexed = false;
        }
    }
}

/// One stage of the chain: edits the candidates; stateful stages also see accepted tokens.
pub trait SamplerStage: Send + std::fmt::Debug {
    /// Short name, for debugging.
    fn name(&self) -> &'static str;
    /// Edits the candidate list (remove, reorder, change logits). Never empties it.
    fn apply(&mut self, candidates: &mut Candidates);
    /// Sees a token that became part of the sequence.
    fn accept(&mut self, _token: u32) {}
    /// Forgets all state (new sequence).
    fn reset(&mut self) {}
}

/// Repetition, frequency and presence penalties over the last `last_n` accepted tokens
/// (llama.cpp's `penalties`): a seen token's positive logit is divided by `repeat`, a negative
/// one multiplied; then `count * frequency + presence` is subtracted.
#[derive(Clone, Debug)]
pub struct Penalties {
    last_n: usize,
    repeat: f32,
    frequency: f32,
    presence: f32,
    /// Ring buffer of the last `last_n` tokens.
    history: Vec<u32>,
    next: usize,
    /// Scratch: sorted copy of `history`.
    scratch: Vec<u32>,
}

impl Penalties {
    /// A penalty stage; `last_n = 0` disables it.
    pub fn new(last_n: usize, repeat: f32, frequency: f32, presence: f32) -> Penalties {
        Penalties {
            last_n,
            repeat,
            frequency,
            presence,
            history: Vec::with_capacity(last_n),
            next: 0,
            scratch: Vec::with_capacity(last_n),
        }
    }

    fn is_noop(&self) -> bool {
        self.last_n == 0 || (self.repeat == 1.0 && self.frequency == 0.0 && self.presence == 0.0)
    }

    fn penalize(&self, logit: f32, count: u32) -> f32 {
        let l = if logit <= 0.0 { logit * self.repeat } else { logit / self.repeat };
        l - count as f32 * self.frequency - self.presence
    }
}

impl SamplerStage for Penalties {
    fn name(&self) -> &'static str {
        "penalties"
    }

    fn apply(&mut self, c: &mut Candidates) {
        if self.is_noop() || self.history.is_empty() {
            return;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.history);
        self.scratch.sort_unstable();
        let mut i = 0;
        while let Some(&token) = self.scratch.get(i) {
            let run = self.scratch.get(i..).map_or(0, |rest| rest.iter().take_while(|&&t| t == token).count());
            i += run.max(1);
            let count = u32::try_from(run).unwrap_or(u32::MAX);
            if c.indexed {
                if let Some(cand) = c.items.get_mut(token as usize) {
                    cand.logit = self.penalize(cand.logit, count);
                }
            } else if let Some(cand) = c.items.iter_mut().find(|x| x.id == token) {
                cand.logit = self.penalize(cand.logit, count);
            }
        }
        // Logits changed, so any order is stale.
        c.sorted = false;
    }

    fn accept(&mut self, token: u32) {
        if self.last_n == 0 {
            return;
        }
        if self.history.len() < self.last_n {
            self.history.push(token);
        } else if let Some(slot) = self.history.get_mut(self.next) {
            *slot = token;
        }
        self.next = (self.next + 1) % self.last_n;
    }

    fn reset(&mut self) {
        self.history.clear();
        self.next = 0;
    }
}

/// Keeps the `k` most likely tokens (`k = 0`: all).
#[derive(Clone, Debug)]
pub struct TopK(pub usize);

impl SamplerStage for TopK {
    fn name(&self) -> &'static str {
        "top-k"
    }
    fn apply(&mut self, c: &mut Candidates) {
        if self.0 > 0 {
            c.keep_top(self.0);
        }
    }
}

/// Nucleus sampling: keeps the most likely tokens whose probabilities first add up to `p`
/// (`p >= 1`: all).
#[derive(Clone, Debug)]
pub struct TopP(pub f32);

/// How many candidates top-p sorts first before falling back to a full sort.
const TOP_P_PREFIX: usize = 256;

impl SamplerStage for TopP {
    fn name(&self) -> &'static str {
        "top-p"
    }
    fn apply(&mut self, c: &mut Candidates) {
        if self.0 >= 1.0 || c.len() <= 1 {
            return;
        }
        let max = c.max_logit();
        if max == f32::NEG_INFINITY {
            return;
        }
        let p = f64::from(self.0);
        let total: f64 = c.items.iter().map(|x| f64::from(x.logit - max).exp()).sum();
        // Usually the nucleus is a few dozen tokens: sort only a prefix unless that is not enough.
        if !c.sorted && c.len() > TOP_P_PREFIX {
            let mut prefix_mass = 0.0;
            c.items.select_nth_unstable_by(TOP_P_PREFIX - 1, by_logit_desc);
            if let Some(prefix) = c.items.get_mut(..TOP_P_PREFIX) {
                prefix.sort_unstable_by(by_logit_desc);
                prefix_mass = prefix.iter().map(|x| f64::from(x.logit - max).exp()).sum::<f64>() / total;
            }
            if prefix_mass >= p {
                c.items.truncate(TOP_P_PREFIX);
                c.sorted = true;
                c.indexed = false;
            }
        }
        c.sort();
        let mut cum = 0.0;
        let mut keep = c.len();
        for (i, x) in c.items.iter().enumerate() {
            cum += f64::from(x.logit - max).exp() / total;
            if cum >= p {
                keep = i + 1;
                break;
            }
        }
        c.items.truncate(keep.max(1));
    }
}

/// Keeps tokens whose probability is at least `p` times the top token's (`p <= 0`: all).
#[derive(Clone, Debug)]
pub struct MinP(pub f32);

impl SamplerStage for MinP {
    fn name(&self) -> &'static str {
        "min-p"
    }
    fn apply(&mut self, c: &mut Candidates) {
        if self.0 <= 0.0 || c.len() <= 1 {
            return;
        }
        let max = c.max_logit();
        if max == f32::NEG_INFINITY {
            return;
        }
        // p_i >= p * p_max  ⇔  logit_i >= max + ln p  (the normalizer cancels).
        let threshold = max + self.0.ln();
        let before = c.len();
        // `retain` keeps the order, so a sorted list stays sorted.
        c.items.retain(|x| x.logit >= threshold);
        if c.len() != before {
            c.indexed = false;
        }
    }
}

/// Divides logits by the temperature (> 0).
#[derive(Clone, Debug)]
pub struct Temperature(pub f32);

impl SamplerStage for Temperature {
    fn name(&self) -> &'static str {
        "temperature"
    }
    fn apply(&mut self, c: &mut Candidates) {
        if self.0 > 0.0 && self.0 != 1.0 {
            let inv = 1.0 / self.0;
            for x in &mut c.items {
                x.logit *= inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(logits: &[f32]) -> Candidates {
        let mut c = Candidates::default();
        c.fill(logits);
        c
    }

    fn ids(c: &Candidates) -> Vec<u32> {
        c.as_slice().iter().map(|x| x.id).collect()
    }

    #[test]
    fn top_k_keeps_best_sorted_with_id_tiebreak() {
        let mut c = cands(&[1.0, 5.0, 3.0, 5.0, -2.0]);
        TopK(3).apply(&mut c);
        assert_eq!(ids(&c), [1, 3, 2]);
        let mut c = cands(&[1.0, 2.0]);
        TopK(10).apply(&mut c);
        assert_eq!(ids(&c), [1, 0]);
    }

    #[test]
    fn top_p_keeps_smallest_nucleus() {
        // Probabilities 0.5, 0.3, 0.15, 0.05.
        let logits: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        for (p, expected) in [(0.5, vec![0]), (0.79, vec![0, 1]), (0.81, vec![0, 1, 2]), (0.99, vec![0, 1, 2, 3])] {
            let mut c = cands(&logits);
            TopP(p).apply(&mut c);
            assert_eq!(ids(&c), expected, "p = {p}");
        }
    }

    #[test]
    fn top_p_prefix_path_matches_full_sort() {
        // 1,000 tokens: a peaked head (prefix path) and a flat one (needs the full sort).
        for flat in [false, true] {
            let logits: Vec<f32> = (0..1000).map(|i| if flat { (i % 7) as f32 * 0.01 } else { -(i as f32) * 0.05 }).collect();
            let mut fast = cands(&logits);
            TopP(0.9).apply(&mut fast);
            // Reference: full sort + cumulative sum in f64.
            let mut sorted: Vec<(u32, f32)> = (0u32..).zip(logits.iter().copied()).collect();
            sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let max = sorted[0].1;
            let total: f64 = sorted.iter().map(|x| f64::from(x.1 - max).exp()).sum();
            let mut cum = 0.0;
            let mut keep = 0;
            for (i, x) in sorted.iter().enumerate() {
                cum += f64::from(x.1 - max).exp() / total;
                if cum >= 0.9 {
                    keep = i + 1;
                    break;
                }
            }
            let expected: Vec<u32> = sorted[..keep].iter().map(|x| x.0).collect();
            assert_eq!(ids(&fast), expected, "flat = {flat}");
        }
    }

    #[test]
    fn min_p_keeps_tokens_above_fraction_of_max() {
        // Probabilities 0.5, 0.3, 0.15, 0.05; min_p 0.2 keeps p >= 0.1.
        let logits: Vec<f32> = [0.05f32, 0.5, 0.15, 0.3].iter().map(|p| p.ln()).collect();
        let mut c = cands(&logits);
        MinP(0.2).apply(&mut c);
        let mut kept = ids(&c);
        kept.sort_unstable();
        assert_eq!(kept, [1, 2, 3]);
        let mut c = cands(&logits);
        MinP(0.99).apply(&mut c);
        assert_eq!(ids(&c), [1], "the top token always survives");
    }

    #[test]
    fn penalties_follow_llama_cpp() {
        let mut pen = Penalties::new(4, 2.0, 0.0, 0.0);
        for t in [0, 1, 1] {
            pen.accept(t);
        }
        let mut c = cands(&[4.0, -4.0, 3.0]);
        pen.apply(&mut c);
        assert_eq!(c.as_slice().iter().map(|x| x.logit).collect::<Vec<_>>(), [2.0, -8.0, 3.0]);

        let mut pen = Penalties::new(8, 1.0, 0.5, 1.0);
        for t in [2, 2, 2] {
            pen.accept(t);
        }
        let mut c = cands(&[0.0, 0.0, 10.0]);
        pen.apply(&mut c);
        assert_eq!(c.as_slice()[2].logit, 10.0 - 3.0 * 0.5 - 1.0);
    }

    #[test]
    fn penalty_window_forgets_old_tokens() {
        let mut pen = Penalties::new(2, 2.0, 0.0, 0.0);
        for t in [0, 1, 2] {
            pen.accept(t); // 0 falls out of the window
        }
        let mut c = cands(&[4.0, 4.0, 4.0]);
        pen.apply(&mut c);
        assert_eq!(c.as_slice().iter().map(|x| x.logit).collect::<Vec<_>>(), [4.0, 2.0, 2.0]);
        pen.reset();
        let mut c = cands(&[4.0, 4.0, 4.0]);
        pen.apply(&mut c);
        assert_eq!(c.as_slice()[1].logit, 4.0);
    }

    #[test]
    fn nan_never_wins() {
        let c = cands(&[f32::NAN, 1.0, f32::NAN]);
        assert_eq!(c.best().map(|x| x.id), Some(1));
    }
}
