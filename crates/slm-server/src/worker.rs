//! The worker thread: owns the model context, takes jobs from a bounded queue one at a time and
//! streams each job's events back over a channel. A job whose channel has closed (client gone)
//! is cancelled before its next forward step.
//!
//! Continuous batching (several requests sharing each decode step) is a later step; for now one
//! request generates at a time and the others wait in the queue.

use crate::engine::Engine;
use crate::error::ApiError;
use crate::generate::{Output, Slot, TokenLogprob};
use crate::metrics::Metrics;
use crate::params::GenParams;
use crate::types::Usage;
use slm_runtime::FinishReason;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// What the worker reports about a job.
#[derive(Debug)]
pub enum Event {
    /// New text, with the log-probabilities of its tokens (empty unless asked for).
    Text(String, Vec<TokenLogprob>),
    /// The end: why, and the token counts.
    Done(FinishReason, Usage),
    /// The job failed.
    Error(ApiError),
}

/// One request for the worker.
pub struct Job {
    /// Prompt token ids (already checked to fit).
    pub prompt: Vec<u32>,
    /// Validated settings.
    pub params: GenParams,
    /// Tokens the job may generate.
    pub max_tokens: usize,
    /// Where events go; closed when the client is gone.
    pub events: UnboundedSender<Event>,
    /// When the job was queued.
    pub enqueued: Instant,
}

/// The sending side of the bounded job queue.
pub struct Queue {
    tx: Mutex<Option<SyncSender<Job>>>,
    capacity: usize,
    metrics: Arc<Metrics>,
}

impl Queue {
    /// Queues a job, or answers 503 (full, or shutting down).
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        let guard = self
            .tx
            .lock()
            .map_err(|_| ApiError::Internal("job queue lock poisoned".into()))?;
        let Some(tx) = guard.as_ref() else {
            return Err(ApiError::ShuttingDown);
        };
        self.metrics.queue_depth.fetch_add(1, Relaxed);
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.metrics.queue_depth.fetch_sub(1, Relaxed);
                Err(match e {
                    TrySendError::Full(_) => ApiError::Busy {
                        capacity: self.capacity,
                        retry_after_s: 1,
                    },
                    TrySendError::Disconnected(_) => ApiError::ShuttingDown,
                })
            }
        }
    }

    /// Stops taking jobs; the worker finishes those already queued and exits.
    pub fn close(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
    }
}

/// Starts the worker thread with a queue of `capacity` waiting jobs.
pub fn spawn(
    engine: Arc<Engine>,
    capacity: usize,
    metrics: Arc<Metrics>,
) -> Result<(Queue, JoinHandle<()>), ApiError> {
    let slots = (0..engine.opts.n_slots.max(1))
        .map(|_| Slot::new(&engine))
        .collect::<Result<Vec<_>, _>>()?;
    let (tx, rx) = sync_channel(capacity.max(1));
    let m = metrics.clone();
    let handle = std::thread::Builder::new()
        .name("slm-worker".into())
        .spawn(move || run(&engine, slots, &rx, &m))
        .map_err(|e| ApiError::Internal(format!("cannot start the worker thread: {e}")))?;
    Ok((
        Queue {
            tx: Mutex::new(Some(tx)),
            capacity: capacity.max(1),
            metrics,
        },
        handle,
    ))
}

/// Sends events to the request's channel.
struct ChannelOutput<'a> {
    events: &'a UnboundedSender<Event>,
}

impl Output for ChannelOutput<'_> {
    fn cancelled(&self) -> bool {
        self.events.is_closed()
    }

    fn emit(&mut self, text: String, logprobs: Vec<TokenLogprob>) -> bool {
        self.events.send(Event::Text(text, logprobs)).is_ok()
    }
}

/// The slot for `prompt`: the one that keeps the most of its cache for it (a continuation of
/// its conversation, keeping at least 90% of what it holds); else a slot never used; else the
/// least recently used one (a new conversation evicts the oldest, not one that merely shares a
/// system prompt with it).
fn pick<'s>(slots: &'s mut [Slot], prompt: &[u32]) -> Option<&'s mut Slot> {
    let keeps_most =
        |s: &Slot| s.cached_len() > 0 && s.shared_prefix(prompt) * 10 >= s.cached_len() * 9;
    let index = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| keeps_most(s))
        .max_by_key(|(_, s)| s.shared_prefix(prompt))
        .map(|(i, _)| i)
        .or_else(|| slots.iter().position(|s| s.last_used().is_none()))
        .or_else(|| {
            slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used())
                .map(|(i, _)| i)
        })?;
    slots.get_mut(index)
}

fn run(engine: &Engine, mut slots: Vec<Slot>, rx: &Receiver<Job>, metrics: &Metrics) {
    while let Ok(job) = rx.recv() {
        metrics.queue_depth.fetch_sub(1, Relaxed);
        metrics.queue_wait.observe(job.enqueued.elapsed());
        if job.events.is_closed() {
            metrics.cancelled.fetch_add(1, Relaxed);
            continue;
        }
        metrics.active.fetch_add(1, Relaxed);
        let mut out = ChannelOutput {
            events: &job.events,
        };
        let Some(slot) = pick(&mut slots, &job.prompt) else {
            break;
        };
        let event = match slot.generate(engine, &job.prompt, &job.params, job.max_tokens, &mut out)
        {
            Ok(o) => {
                metrics.prompt_tokens.fetch_add(o.n_prompt as u64, Relaxed);
                metrics
                    .reused_prompt_tokens
                    .fetch_add(o.n_reused as u64, Relaxed);
                metrics
                    .completion_tokens
                    .fetch_add(o.n_generated as u64, Relaxed);
                metrics.request_latency.observe(job.enqueued.elapsed());
                if let Some(t) = o.first_token {
                    metrics
                        .time_to_first_token
                        .observe(t.duration_since(job.enqueued));
                }
                if o.finish == FinishReason::Cancelled {
                    metrics.cancelled.fetch_add(1, Relaxed);
                }
                let usage = Usage {
                    prompt_tokens: o.n_prompt,
                    completion_tokens: o.n_generated,
                    total_tokens: o.n_prompt + o.n_generated,
                };
                Event::Done(o.finish, usage)
            }
            Err(e) => Event::Error(e),
        };
        // The client may be gone; nothing to do then.
        let _ = job.events.send(event);
        metrics.active.fetch_sub(1, Relaxed);
    }
}
