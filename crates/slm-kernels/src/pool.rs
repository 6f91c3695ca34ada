//! [`Pool`]: the threads every parallel kernel runs on.

use crate::KernelError;

/// Thread pool used by all parallel kernels. `Pool::new(1)` runs everything on the calling
/// thread (and spawns nothing, so it works on wasm32).
pub struct Pool {
    n_threads: usize,
    inner: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("n_threads", &self.n_threads).finish()
    }
}

impl Pool {
    /// A pool of `n_threads` workers (0 is treated as 1).
    ///
    /// # Errors
    /// `ThreadPool` if the OS refuses to start the threads.
    pub fn new(n_threads: usize) -> Result<Pool, KernelError> {
        let n = n_threads.max(1);
        let inner = if n == 1 {
            None
        } else {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("slm-kernel-{i}"))
                    .build()
                    .map_err(|e| KernelError::ThreadPool { n_threads: n, reason: e.to_string() })?,
            )
        };
        Ok(Pool { n_threads: n, inner })
    }

    /// Number of threads work is spread over.
    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Runs `f(i)` for every `i in 0..n_tasks`, spread over the pool's threads, and returns when
    /// all calls have finished. Tasks should be roughly equal in cost.
    pub fn run(&self, n_tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        match &self.inner {
            Some(pool) if n_tasks > 1 => pool.install(|| {
                use rayon::prelude::*;
                (0..n_tasks).into_par_iter().for_each(f);
            }),
            _ => (0..n_tasks).for_each(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_task_once() {
        for n in [1, 2, 3] {
            let pool = Pool::new(n).unwrap();
            assert_eq!(pool.n_threads(), n);
            let hits: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
            pool.run(hits.len(), &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
        assert_eq!(Pool::new(0).unwrap().n_threads(), 1);
    }
}
