//! [`Pool`]: the threads every parallel kernel runs on.
//!
//! A decode step issues ~200 small parallel matmuls of 10–100 µs each, so the cost of waking
//! workers matters as much as the kernels. Workers therefore spin for a short while after each
//! job (a new job is picked up in well under a microsecond) and only then park on a condvar.
//! The calling thread works too: `Pool::new(2)` is the caller plus one worker.
//!
//! Protocol of one [`Pool::run`] (all atomics `SeqCst`; the job lives on the caller's stack):
//! 1. the caller publishes a pointer to the job, resets the task counter, bumps `epoch`, wakes
//!    parked workers;
//! 2. everyone claims task indices with `next.fetch_add(1)` until they run out;
//! 3. a worker announces itself in `in_flight` *before* loading the job pointer and leaves it
//!    after its last task;
//! 4. the caller waits until all tasks completed, clears the job pointer, then waits for
//!    `in_flight == 0` — after that no worker can still hold a reference to the job, so `run`
//!    may return and the closure's borrows end.

use crate::KernelError;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long an idle worker spins before parking.
const DEFAULT_SPIN: Duration = Duration::from_micros(500);

/// One posted job: the closure (lifetime erased, see the module protocol) and its task count.
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    n_tasks: usize,
}

struct Shared {
    job: AtomicPtr<Job>,
    epoch: AtomicU64,
    next: AtomicUsize,
    completed: AtomicUsize,
    in_flight: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    sleeping: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    spin: Duration,
}

impl Shared {
    /// Claims and runs tasks of `job` until none are left.
    ///
    /// # Safety
    /// `job` must point to a live `Job` whose closure is live (guaranteed by the protocol).
    unsafe fn work(&self, job: *const Job) {
        // SAFETY: per the caller's contract.
        let job = unsafe { &*job };
        // SAFETY: the closure outlives the job (it is borrowed by `run`, which waits for us).
        let f = unsafe { &*job.f };
        loop {
            let i = self.next.fetch_add(1, SeqCst);
            if i >= job.n_tasks {
                break;
            }
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))).is_err() {
                self.panicked.store(true, SeqCst);
            }
            self.completed.fetch_add(1, SeqCst);
        }
    }

    fn worker_loop(&self) {
        let mut seen = self.epoch.load(SeqCst);
        loop {
            if !self.wait_for_epoch(&mut seen) {
                return;
            }
            self.in_flight.fetch_add(1, SeqCst);
            let job = self.job.load(SeqCst);
            if !job.is_null() {
                // SAFETY: non-null while the caller waits for `in_flight` to drop to zero.
                unsafe { self.work(job) };
            }
            self.in_flight.fetch_sub(1, SeqCst);
        }
    }

    /// Spins, then parks, until `epoch` moves past `seen`. Returns false on shutdown.
    fn wait_for_epoch(&self, seen: &mut u64) -> bool {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.shutdown.load(SeqCst) {
                return false;
            }
            let e = self.epoch.load(SeqCst);
            if e != *seen {
                *seen = e;
                return true;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            if start.elapsed() < self.spin {
                // Be polite on oversubscribed machines.
                std::thread::yield_now();
                continue;
            }
            let mut guard = match self.lock.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            self.sleeping.fetch_add(1, SeqCst);
            while self.epoch.load(SeqCst) == *seen && !self.shutdown.load(SeqCst) {
                guard = match self.wake.wait(guard) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
            self.sleeping.fetch_sub(1, SeqCst);
        }
    }

    fn wake_all(&self) {
        if self.sleeping.load(SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.wake.notify_all();
        }
    }
}

/// Thread pool used by all parallel kernels. `Pool::new(1)` runs everything on the calling
/// thread and spawns nothing (so it also works on wasm32).
pub struct Pool {
    n_threads: usize,
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// Serialises concurrent `run` calls from different threads (the protocol has one job slot).
    run_lock: Mutex<()>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("n_threads", &self.n_threads).finish()
    }
}

impl Pool {
    /// A pool of `n_threads` threads including the caller (0 is treated as 1).
    ///
    /// # Errors
    /// `ThreadPool` if the OS refuses to start a thread (always for `n_threads > 1` on wasm32).
    pub fn new(n_threads: usize) -> Result<Pool, KernelError> {
        Self::with_spin(n_threads, DEFAULT_SPIN)
    }

    /// As [`Pool::new`], with how long idle workers spin before parking (longer = lower latency
    /// between back-to-back jobs, more CPU burnt while idle).
    ///
    /// # Errors
    /// As [`Pool::new`].
    pub fn with_spin(n_threads: usize, spin: Duration) -> Result<Pool, KernelError> {
        let n = n_threads.max(1);
        let shared = Arc::new(Shared {
            job: AtomicPtr::new(std::ptr::null_mut()),
            epoch: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            spin,
        });
        let mut pool = Pool { n_threads: n, shared, workers: Vec::with_capacity(n - 1), run_lock: Mutex::new(()) };
        for i in 1..n {
            let s = Arc::clone(&pool.shared);
            let handle = std::thread::Builder::new()
                .name(format!("slm-kernel-{i}"))
                .spawn(move || s.worker_loop())
                .map_err(|e| KernelError::ThreadPool { n_threads: n, reason: e.to_string() })?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Number of threads work is spread over (including the caller).
    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Runs `f(i)` for every `i in 0..n_tasks`, spread over the pool's threads (the caller
    /// included), and returns when all calls have finished. Tasks are claimed dynamically, so
    /// uneven tasks balance out; make several per thread.
    ///
    /// A panic in `f` is re-raised on the caller after all threads have left the job.
    ///
    /// A `run` issued while another is in progress (from inside a task, or from another thread)
    /// executes its tasks on the calling thread instead of waiting, so nesting cannot deadlock.
    pub fn run(&self, n_tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() || n_tasks <= 1 {
            (0..n_tasks).for_each(f);
            return;
        }
        let _serial = match self.run_lock.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                (0..n_tasks).for_each(f);
                return;
            }
        };
        let s = &*self.shared;
        // SAFETY (lifetime erasure): the pointer is only dereferenced by workers between the
        // publication below and the `in_flight == 0` wait at the end of this function.
        let f_static: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
        let job = Job { f: f_static, n_tasks };
        s.next.store(0, SeqCst);
        s.completed.store(0, SeqCst);
        s.panicked.store(false, SeqCst);
        s.job.store(&job as *const Job as *mut Job, SeqCst);
        s.epoch.fetch_add(1, SeqCst);
        s.wake_all();
        // SAFETY: `job` and `f` are live for the whole call.
        unsafe { s.work(&job) };
        let mut spins = 0u32;
        while s.completed.load(SeqCst) < n_tasks {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        s.job.store(std::ptr::null_mut(), SeqCst);
        while s.in_flight.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        if s.panicked.load(SeqCst) {
            // A kernel bug, not an input error: surface it where it can be seen.
            std::panic::resume_unwind(Box::new("a task panicked inside slm_kernels::Pool::run"));
        }
    }
}

impl Pool {
    /// Runs `f(i, a_i, b_i)` for every `i` in `0..min(a.len() / a_chunk, b.len() / b_chunk)`,
    /// where `a_i = &mut a[i * a_chunk..][..a_chunk]` and likewise `b_i`: [`Pool::run`] over
    /// disjoint mutable chunks of two buffers (e.g. per-task outputs and scratch) without locks
    /// or allocation. A zero chunk size means no tasks.
    pub fn run_chunks<A: Send, B: Send>(
        &self,
        a: &mut [A],
        a_chunk: usize,
        b: &mut [B],
        b_chunk: usize,
        f: &ChunkTask<'_, A, B>,
    ) {
        let n_tasks = match (a.len().checked_div(a_chunk), b.len().checked_div(b_chunk)) {
            (Some(x), Some(y)) => x.min(y),
            _ => 0,
        };
        let (pa, pb) = (SendPtr(a.as_mut_ptr()), SendPtr(b.as_mut_ptr()));
        self.run(n_tasks, &|i| {
            // SAFETY: i < n_tasks, so both chunks lie inside their buffers; `run` calls each
            // index exactly once, so the chunks handed out are disjoint, and the borrows of `a`
            // and `b` outlive `run`.
            let (ca, cb) = unsafe {
                (
                    std::slice::from_raw_parts_mut(pa.get().add(i * a_chunk), a_chunk),
                    std::slice::from_raw_parts_mut(pb.get().add(i * b_chunk), b_chunk),
                )
            };
            f(i, ca, cb);
        });
    }
}

impl Pool {
    /// Runs `f(first_row, rows_of_a, rows_of_b)` over blocks of whole rows, a few blocks per
    /// thread: `a` has rows of `a_width` elements, `b` (optional per-row data, `b_width` 0 for
    /// none) rows of `b_width`. The blocks are disjoint and cover every row, the last one shorter
    /// when the rows do not divide evenly. Rows are counted from `a` (and `b` when it has width).
    pub fn run_rows<A: Send, B: Send>(
        &self,
        a: &mut [A],
        a_width: usize,
        b: &mut [B],
        b_width: usize,
        f: &ChunkTask<'_, A, B>,
    ) {
        let mut n_rows = a.len().checked_div(a_width).unwrap_or(0);
        if let Some(nb) = b.len().checked_div(b_width) {
            n_rows = n_rows.min(nb);
        }
        if n_rows == 0 {
            return;
        }
        let per_task = n_rows.div_ceil(self.n_threads() * 4).max(1);
        let (pa, pb) = (SendPtr(a.as_mut_ptr()), SendPtr(b.as_mut_ptr()));
        self.run(n_rows.div_ceil(per_task), &|i| {
            let r0 = i * per_task;
            let n = per_task.min(n_rows - r0);
            // SAFETY: r0 + n <= n_rows, so both blocks lie inside their buffers (n_rows was
            // bounded by both lengths); `run` calls each index once, so blocks are disjoint; the
            // borrows of `a` and `b` outlive `run`.
            let (ca, cb) = unsafe {
                (
                    std::slice::from_raw_parts_mut(pa.get().add(r0 * a_width), n * a_width),
                    std::slice::from_raw_parts_mut(pb.get().add(r0 * b_width), n * b_width),
                )
            };
            f(r0, ca, cb);
        });
    }
}

/// A task of [`Pool::run_chunks`]: `(task index, chunk of a, chunk of b)`; of [`Pool::run_rows`]:
/// `(first row, rows of a, rows of b)`.
pub type ChunkTask<'a, A, B> = dyn Fn(usize, &mut [A], &mut [B]) + Sync + 'a;

/// A raw pointer that may cross threads; users guarantee disjoint access (see `run_chunks`).
struct SendPtr<T>(*mut T);
// SAFETY: only used by `Pool::run_chunks`, whose tasks access disjoint chunks of `T: Send`.
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Send> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// Method access, so closures capture the whole (Sync) wrapper rather than the raw field.
    fn get(&self) -> *mut T {
        self.0
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        {
            let _guard = self.shared.lock.lock();
            self.shared.wake.notify_all();
        }
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn run_chunks_hands_out_disjoint_chunks() {
        let pool = Pool::new(2).unwrap();
        let mut a = vec![0usize; 10 * 3 + 2];
        let mut b = vec![0u8; 7 * 2];
        pool.run_chunks(&mut a, 3, &mut b, 2, &|i, ca, cb| {
            assert_eq!((ca.len(), cb.len()), (3, 2));
            ca.iter_mut().for_each(|x| *x += i + 1);
            cb.iter_mut().for_each(|x| *x += 1);
        });
        // 7 tasks (b limits): a's first 21 entries written once each, the rest untouched.
        let want: Vec<usize> = (0..32).map(|k| if k < 21 { k / 3 + 1 } else { 0 }).collect();
        assert_eq!(a, want);
        assert!(b.iter().all(|&x| x == 1));
        pool.run_chunks(&mut a, 0, &mut b, 2, &|_, _, _| panic!("no tasks with a zero chunk"));
    }

    #[test]
    fn run_rows_covers_every_row_once_with_a_short_tail() {
        let pool = Pool::new(2).unwrap();
        // 37 rows of 3 (plus a stray element) and per-row data of 2.
        let mut a = vec![0usize; 37 * 3 + 1];
        let mut b = vec![0usize; 37 * 2];
        pool.run_rows(&mut a, 3, &mut b, 2, &|first, ra, rb| {
            assert_eq!(ra.len() / 3, rb.len() / 2);
            for (j, (x, y)) in ra.chunks_exact_mut(3).zip(rb.chunks_exact_mut(2)).enumerate() {
                x.iter_mut().for_each(|v| *v += first + j + 1);
                y.iter_mut().for_each(|v| *v += 1);
            }
        });
        let want: Vec<usize> = (0..37 * 3 + 1).map(|k| if k < 37 * 3 { k / 3 + 1 } else { 0 }).collect();
        assert_eq!(a, want);
        assert!(b.iter().all(|&v| v == 1));
        // Without per-row data.
        let mut c = vec![0u8; 5 * 4];
        pool.run_rows(&mut c, 4, &mut [] as &mut [()], 0, &|_, rc, _| rc.iter_mut().for_each(|v| *v += 1));
        assert!(c.iter().all(|&v| v == 1));
        pool.run_rows(&mut c, 0, &mut [] as &mut [()], 0, &|_, _, _| panic!("no rows of width 0"));
    }

    #[test]
    fn runs_every_task_once() {
        for n in [1, 2, 3] {
            let pool = Pool::new(n).unwrap();
            assert_eq!(pool.n_threads(), n);
            for n_tasks in [0, 1, 2, 37, 1000] {
                let hits: Vec<AtomicUsize> = (0..n_tasks).map(|_| AtomicUsize::new(0)).collect();
                pool.run(hits.len(), &|i| {
                    hits[i].fetch_add(1, SeqCst);
                });
                assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "threads {n} tasks {n_tasks}");
            }
        }
        assert_eq!(Pool::new(0).unwrap().n_threads(), 1);
    }

    #[test]
    fn many_back_to_back_jobs_and_parked_workers() {
        let pool = Pool::with_spin(3, Duration::from_micros(1)).unwrap();
        let total = AtomicUsize::new(0);
        for round in 0..2000 {
            if round % 500 == 0 {
                // Let the workers park, so waking them is exercised too.
                std::thread::sleep(Duration::from_millis(2));
            }
            pool.run(5, &|i| {
                total.fetch_add(i + 1, SeqCst);
            });
        }
        assert_eq!(total.load(SeqCst), 2000 * 15);
    }

    #[test]
    fn work_is_spread_over_threads() {
        let pool = Pool::new(2).unwrap();
        let ids = Mutex::new(std::collections::HashSet::new());
        for _ in 0..50 {
            pool.run(64, &|_| {
                std::thread::sleep(Duration::from_micros(50));
                if let Ok(mut s) = ids.lock() {
                    s.insert(std::thread::current().id());
                }
            });
        }
        assert_eq!(ids.lock().unwrap().len(), 2);
    }

    #[test]
    fn nested_and_concurrent_runs_complete() {
        let pool = Pool::new(2).unwrap();
        let n = AtomicUsize::new(0);
        pool.run(4, &|_| {
            pool.run(3, &|_| {
                n.fetch_add(1, SeqCst);
            });
        });
        assert_eq!(n.load(SeqCst), 12);
        let m = AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for _ in 0..3 {
                sc.spawn(|| {
                    for _ in 0..200 {
                        pool.run(4, &|_| {
                            m.fetch_add(1, SeqCst);
                        });
                    }
                });
            }
        });
        assert_eq!(m.load(SeqCst), 3 * 200 * 4);
    }

    #[test]
    fn a_panicking_task_is_reraised_on_the_caller_and_the_pool_survives() {
        let pool = Pool::new(2).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(8, &|i| {
                if i == 5 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        pool.run(8, &|_| {
            n.fetch_add(1, SeqCst);
        });
        assert_eq!(n.load(SeqCst), 8);
    }
}
