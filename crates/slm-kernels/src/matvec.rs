//! One-token products (generation): how rows are shared out between the threads.
//!
//! Generation streams every weight from memory once per token, so what limits it is how well the
//! hardware prefetchers follow the reads. Each thread therefore owns one contiguous share of every
//! matrix and walks it front to back: with a four-row kernel as four long ascending streams (rows
//! `j`, `j + q`, `j + 2q`, `j + 3q` of a share of `4q` rows; four neighbouring rows read in
//! lockstep would jump back and forth within a page and defeat the prefetchers: 3× slower
//! streaming Q8_0 weights, measured), otherwise row after row. Many short tasks restart the
//! streams at every task: splitting SmolLM2's matrices into 8 claimed chunks instead of one
//! share per thread cost ~10% of generation speed (measured).
//!
//! A thread that finishes its shares early steals steps from the back of the others' (a busy
//! or descheduled core then slows the product by a little, not by its whole share). A share is
//! one atomic word: the owner's front and the thieves' back, so the owner claims with one
//! uncontended `fetch_add` and a theft is a compare-exchange that fails if the owner moved.

use crate::dot::{DotFn, QuartersFn};
use crate::{Pool, QMatrix};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Acquire};

/// Steps (of four rows) claimed or stolen at a time.
const STEPS_PER_CLAIM: u64 = 8;

/// The unclaimed steps of one thread's share of one matrix, `front..back`, as
/// `front | back << 32`. With a four-row kernel, steps `0..q` are four rows each (`j`, `j + q`,
/// ...) and step `q`, when the share's length is not a multiple of four, its last one to three
/// rows; without, step `k` is rows `4k..4k + 4` of the share.
#[derive(Debug, Default)]
#[repr(align(64))] // one cache line each: owners claim without disturbing one another
pub(crate) struct Share(AtomicU64);

impl Share {
    fn reset(&self, steps: u64) {
        self.0.store(steps << 32, std::sync::atomic::Ordering::Release);
    }

    /// The owner's next steps, from the front.
    fn claim(&self) -> Option<Range<usize>> {
        let prev = self.0.fetch_add(STEPS_PER_CLAIM, AcqRel);
        let (front, back) = (prev & 0xFFFF_FFFF, prev >> 32);
        (front < back).then(|| front as usize..(front + STEPS_PER_CLAIM).min(back) as usize)
    }

    /// Another thread's steps, from the back.
    fn steal(&self) -> Option<Range<usize>> {
        let mut cur = self.0.load(Acquire);
        loop {
            let (front, back) = (cur & 0xFFFF_FFFF, cur >> 32);
            if front >= back {
                return None;
            }
            let new_back = back - STEPS_PER_CLAIM.min(back - front);
            match self.0.compare_exchange_weak(cur, (new_back << 32) | front, AcqRel, Acquire) {
                Ok(_) => return Some(new_back as usize..back as usize),
                Err(now) => cur = now,
            }
        }
    }
}

/// One matrix of a one-token product and where its results go.
pub(crate) struct MatvecJob<'a, 'b> {
    pub w: &'a QMatrix<'b>,
    /// `[w.rows]` results; every cell is written by exactly one step.
    pub out: *mut f32,
}

/// Raw jobs shared by the pool's threads.
struct Jobs<'j, 'a, 'b>(&'j [MatvecJob<'a, 'b>]);
// SAFETY: the output pointers are written at disjoint cells (each step's rows belong to one
// share, and each step is claimed or stolen once), and `matvec` does not return before every
// thread has left the job, so they never outlive the borrows they came from.
unsafe impl Send for Jobs<'_, '_, '_> {}
unsafe impl Sync for Jobs<'_, '_, '_> {}

/// Thread `t`'s share of `rows` rows: contiguous, sizes differing by at most one.
fn share_rows(rows: usize, n_threads: usize, t: usize) -> Range<usize> {
    rows * t / n_threads..rows * (t + 1) / n_threads
}

/// `out[r] = dot(w.row(r), x)` for every job, with the four-row kernel `quarters` where there is
/// one and the one-row kernel `one` for the other rows. `shares` is reusable scratch.
///
/// # Safety
/// Every job's `out` is valid for writes of `w.rows` floats that nothing else accesses during
/// the call; the kernels suit this CPU and the jobs' common type, and `x` holds the row's
/// activations in the kernels' format. (Weight bytes are bounds-checked here.)
pub(crate) unsafe fn matvec<A: Sync>(
    pool: &Pool,
    jobs: &[MatvecJob],
    quarters: Option<QuartersFn<A>>,
    one: DotFn<A>,
    x: &[A],
    shares: &mut Vec<Share>,
) {
    let n_threads = pool.n_threads();
    let n_shares = jobs.len() * n_threads;
    if shares.len() < n_shares {
        shares.resize_with(n_shares, Share::default);
    }
    for (j, job) in jobs.iter().enumerate() {
        for t in 0..n_threads {
            let len = share_rows(job.w.rows, n_threads, t).len() as u64;
            // Either way a share of `len` rows has ceil(len / 4) steps.
            shares[j * n_threads + t].reset(len.div_ceil(4));
        }
    }
    let (shares, jobs) = (&shares[..n_shares], Jobs(jobs));
    pool.run(n_threads, &|me| {
        let jobs = &jobs;
        let run = |j: usize, t: usize, steps: Range<usize>| {
            // SAFETY: per `matvec`'s contract; the steps were claimed or stolen once.
            unsafe { run_steps(&jobs.0[j], share_rows(jobs.0[j].w.rows, n_threads, t), steps, quarters, one, x) }
        };
        for j in 0..jobs.0.len() {
            while let Some(steps) = shares[j * n_threads + me].claim() {
                run(j, me, steps);
            }
        }
        for j in 0..jobs.0.len() {
            for t in (1..n_threads).map(|k| (me + k) % n_threads) {
                while let Some(steps) = shares[j * n_threads + t].steal() {
                    run(j, t, steps);
                }
            }
        }
    });
}

/// Steps `steps` of the share `rows` of `job` (see [`Share`]).
///
/// # Safety
/// As [`matvec`]; `steps` were claimed or stolen from this share, so no other thread writes
/// their output cells.
unsafe fn run_steps<A>(
    job: &MatvecJob,
    rows: Range<usize>,
    steps: Range<usize>,
    quarters: Option<QuartersFn<A>>,
    one: DotFn<A>,
    x: &[A],
) {
    let rb = job.w.row_bytes();
    let one_row = |r: usize| {
        if let Some(row) = job.w.data.get(r * rb..(r + 1) * rb) {
            // SAFETY: the kernel suits this CPU; cell `r` belongs to this step.
            unsafe { *job.out.add(r) = one(row, x) };
        }
    };
    let Some(quarters) = quarters else {
        (rows.start + 4 * steps.start..(rows.start + 4 * steps.end).min(rows.end)).for_each(one_row);
        return;
    };
    let q = rows.len() / 4;
    let Some(share) = job.w.data.get(rows.start * rb..rows.end * rb) else { return };
    let four = steps.start.min(q)..steps.end.min(q);
    if !four.is_empty() {
        // SAFETY: the share's 4q rows lie in `share` and its outputs start at `rows.start`.
        unsafe { quarters(share, rb, q, four, x, job.out.add(rows.start)) };
    }
    if steps.contains(&q) {
        (rows.start + 4 * q..rows.end).for_each(one_row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::Isa;
    use crate::quant::tests::{quantized_rows, test_data};
    use crate::quant::SUPPORTED_TYPES;
    use crate::{matmul_many, matmul_with_isa, Scratch};

    /// Fused one-token products of matrices with awkward row counts, for every type and ISA on
    /// 1–4 threads (more threads than cores, so shares are stolen): every row is bit for bit
    /// what a one-row matrix of it gives on one thread.
    #[test]
    fn shares_and_thefts_give_every_row_its_one_row_result() {
        let single = Pool::new(1).unwrap();
        let mut scratch = Scratch::new();
        for dtype in SUPPORTED_TYPES {
            let cols = if dtype.block_size() == 256 { 256 } else { 96 };
            let x = test_data(cols, 5);
            let rb = dtype.row_bytes(cols as u64).unwrap() as usize;
            for rows in [[1, 2, 3], [5, 7, 64], [577, 193, 190]] {
                let ws: Vec<Vec<u8>> = (0..3).map(|i| quantized_rows(dtype, rows[i], cols, 9 + i as u64)).collect();
                let ms: Vec<QMatrix> = (0..3).map(|i| QMatrix::new(dtype, rows[i], cols, &ws[i]).unwrap()).collect();
                for isa in Isa::available() {
                    let mut want: Vec<Vec<f32>> = Vec::new();
                    for (i, &n) in rows.iter().enumerate() {
                        want.push(
                            (0..n)
                                .map(|r| {
                                    let row = QMatrix::new(dtype, 1, cols, &ws[i][r * rb..(r + 1) * rb]).unwrap();
                                    let mut o = [0.0];
                                    matmul_with_isa(&single, &row, &x, 1, &mut o, &mut scratch, isa).unwrap();
                                    o[0]
                                })
                                .collect(),
                        );
                    }
                    for threads in 1..=4 {
                        let pool = Pool::new(threads).unwrap();
                        let mut outs: Vec<Vec<f32>> = rows.iter().map(|&r| vec![f32::NAN; r]).collect();
                        for _ in 0..5 {
                            outs.iter_mut().for_each(|o| o.fill(f32::NAN));
                            if isa == crate::best_isa() {
                                let [o0, o1, o2] = &mut outs[..] else { unreachable!() };
                                matmul_many(&pool, [&ms[0], &ms[1], &ms[2]], &x, 1, [o0, o1, o2], &mut scratch)
                                    .unwrap();
                            } else {
                                for (m, o) in ms.iter().zip(outs.iter_mut()) {
                                    matmul_with_isa(&pool, m, &x, 1, o, &mut scratch, isa).unwrap();
                                }
                            }
                            for (i, (out, want)) in outs.iter().zip(&want).enumerate() {
                                for (r, (got, want)) in out.iter().zip(want).enumerate() {
                                    assert_eq!(
                                        got.to_bits(),
                                        want.to_bits(),
                                        "{dtype} {isa:?} threads {threads} matrix {i} row {r}: {got} vs {want}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// An owner claiming and a thief stealing at once take every step exactly once.
    #[test]
    fn claims_and_thefts_cover_every_step_once() {
        for steps in [0u64, 1, 7, 8, 9, 1000, 100_003] {
            let share = Share::default();
            share.reset(steps);
            let (owned, stolen) = std::thread::scope(|s| {
                let thief = s.spawn(|| std::iter::from_fn(|| share.steal()).collect::<Vec<_>>());
                let owned = std::iter::from_fn(|| share.claim()).collect::<Vec<_>>();
                (owned, thief.join().unwrap())
            });
            let mut seen = vec![0u8; steps as usize];
            for r in owned.iter().chain(&stolen) {
                for s in r.clone() {
                    seen[s] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{steps} steps: some taken twice or never");
        }
    }
}
